#!/usr/bin/env bash
# The parsers that read untrusted bytes (plugin channel frames, JSON, manifests, profiles, policies and
# workflows, JSON Schemas, quantities, the profile cache's binary JSON, MCP line framing) under libFuzzer
# with the address sanitizer, briefly: FUZZ_SECONDS per target (default here 10; `make fuzz` runs longer).
# A finding fails the test and is kept in .build/fuzz/findings/ for replay:
# WARDEN_FUZZ_TARGET=T .build/fuzz/warden-fuzz FILE.
. "$(dirname "$0")/lib.sh"
FUZZ_SECONDS=${FUZZ_SECONDS:-10} bash "$ROOT/Tests/Fuzz/fuzz.sh" || fail "the fuzzers found an input that crashes a parser"
ok "9 parsers fuzzed for ${FUZZ_SECONDS:-10} s each: no crash, no sanitizer report, round trips hold"
