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
out=$("$VENV/bin/python" "$ROOT/Tests/scripts/mcp_sdk_test.py" | tee -a /dev/stderr)
task=$(tail -1 <<<"$out")
expect_status 0 "$WARDEN" status "$task" --json
[ "$(json_get "['tenant']" <<<"$OUT")" = claude ] || fail "the documented --tenant was not used: $OUT"

# The documented quick check (the printf pipeline of docs/MCP.md), as written but for the paths.
check=$(awk '/^printf/,/warden mcp$/' "$ROOT/docs/MCP.md")
[ -n "$check" ] || fail "no printf example in docs/MCP.md"
check=${check//"WARDEN_HOME=/var/lib/warden warden mcp"/"WARDEN_HOME=\"\$WARDEN_HOME\" \"\$WARDEN\" mcp"}
answer=$(eval "$check")
[ "$(json_get "['result']['structuredContent']['words']" <<<"$(tail -1 <<<"$answer")")" = 3 ] || fail "docs quick check: $answer"
ok "the quick check of docs/MCP.md answers as shown"
