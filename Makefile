# Warden: `make demo` and `make test` do everything on a fresh Debian 12 machine (as root, or with sudo).
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

SWIFT ?= swift
TRAITS ?= Postgres
RELEASE_FLAGS := -c release --static-swift-stdlib --traits $(TRAITS)
DEBUG_FLAGS := --traits $(TRAITS)
BIN := .build/release/warden
VENV := .build/venv
APT_PACKAGES := libseccomp-dev libsqlite3-dev libssl-dev libpq-dev pkg-config python3-venv python3 \
	bubblewrap hyperfine postgresql chromium iproute2 golang-github-containers-common procps

.PHONY: all setup build build-debug test unit-test script-test demo bench clean venv plugins fuzz

all: build

# Installs what a fresh Debian 12 lacks; `apt-get update` only when something is missing.
setup:
	missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done)
	if [ -n "$$missing" ]; then
		echo "make setup: installing $$missing"
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo )
		$$SUDO apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null
	fi

venv: setup
	if [ ! -x $(VENV)/bin/python ] || ! $(VENV)/bin/python -c "import mcp" 2>/dev/null; then
		/usr/bin/python3 -m venv $(VENV)
		$(VENV)/bin/pip install -q --disable-pip-version-check "mcp>=2.3" pillow
	fi

build: setup
	$(SWIFT) build $(RELEASE_FLAGS)
	$(MAKE) --no-print-directory plugins

build-debug: setup
	$(SWIFT) build $(DEBUG_FLAGS) --build-tests

# Example plugins that need compiling (C and Swift dylibs).
plugins:
	$(MAKE) --no-print-directory -C plugins

test: setup venv build build-debug
	$(MAKE) --no-print-directory unit-test script-test

unit-test:
	WARDEN_BIN=$(CURDIR)/$(BIN) WARDEN_VENV=$(CURDIR)/$(VENV) bash Tests/scripts/with-postgres.sh $(SWIFT) test $(DEBUG_FLAGS) --skip-build

script-test:
	WARDEN=$(CURDIR)/$(BIN) VENV=$(CURDIR)/$(VENV) bash Tests/scripts/run-all.sh

demo: setup venv build
	WARDEN=$(CURDIR)/$(BIN) bash scripts/demo.sh

bench: setup build
	WARDEN=$(CURDIR)/$(BIN) bash Benchmarks/run-all.sh

# Longer fuzzing of the untrusted-input parsers (Tests/Fuzz); `make test` runs them for 10 s each.
fuzz: setup
	FUZZ_SECONDS=$${FUZZ_SECONDS:-120} bash Tests/Fuzz/fuzz.sh

clean:
	rm -rf .build
