#!/usr/bin/env bash
# `make bench`: every benchmark, each against a peer measured in the same run.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export WARDEN=${WARDEN:-$ROOT/.build/release/warden} WARDEN_PROFILES=$ROOT/sandbox-profiles
run() { echo; echo "== $*"; "$@" || echo "(failed: $*)"; }
run "$WARDEN" bench spawn --json
run bash "$ROOT/Benchmarks/spawn.sh"
run bash "$ROOT/Benchmarks/submit-stores.sh"
run "$WARDEN" bench tasks --json
run "$WARDEN" bench queue --json
run "$WARDEN" bench dispatch --json
run "$WARDEN" bench schedule --nodes 10000 --n 100000 --json
run bash "$ROOT/Benchmarks/run-overhead.sh"
[ -x "$ROOT/.build/venv/bin/python" ] && run bash "$ROOT/Benchmarks/mcp-overhead.sh"
[ -f "$ROOT/Benchmarks/plan-quality.sh" ] && run bash "$ROOT/Benchmarks/plan-quality.sh"
run bash "$ROOT/Benchmarks/agent-overhead.sh"
