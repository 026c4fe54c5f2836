#!/usr/bin/env bash
# `warden mcp` in raw JSON-RPC: each legacy protocol version and the 2026-07-28 envelope, error codes and
# edge cases, pagination, concurrent calls, admission outcomes as isError results, progress, cancellation
# killing the sandbox, shutdown when stdin closes; without a serve and through one.
. "$(dirname "$0")/lib.sh"
fresh_state
export WARDEN TMP_ROOT
python3 "$ROOT/Tests/scripts/mcp_raw_test.py"
