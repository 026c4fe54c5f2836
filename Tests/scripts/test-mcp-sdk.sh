#!/usr/bin/env bash
# `warden mcp` with the official Python SDK client (from $VENV): the SDK's auto mode adopts the 2026-07-28
# revision through server/discover, legacy mode uses initialize; list, call, progress, isError, cancellation;
# connect + list + one call must take well under a second.
. "$(dirname "$0")/lib.sh"
: "${VENV:=$ROOT/.build/venv}"
[ -x "$VENV/bin/python" ] || fail "no Python venv at $VENV (run: make venv)"
fresh_state
"$WARDEN" plugin register "$ROOT/plugins/wordcount" >/dev/null
python3 -c "import sys; sys.path.insert(0, '$ROOT/Tests/scripts'); import mcp_support; mcp_support.make_sleeper_plugin('$TMP_ROOT/sleeper')"
"$WARDEN" plugin register "$TMP_ROOT/sleeper" >/dev/null
export WARDEN
"$VENV/bin/python" "$ROOT/Tests/scripts/mcp_sdk_test.py"
