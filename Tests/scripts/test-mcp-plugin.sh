#!/usr/bin/env bash
# The mcp plugin kind end to end: registration discovers the tools of a real MCP server (written with the
# `mcp` SDK's MCPServer/FastMCP) started in its sandbox; a manifest naming a tool the server lacks, and a
# server that cannot start, are refused; the SDK client calls through `warden mcp` to the sandboxed server
# and back (progress, isError, cancellation forwarded, a crash retried and the server restarted).
. "$(dirname "$0")/lib.sh"
: "${VENV:=$ROOT/.build/venv}"
[ -x "$VENV/bin/python" ] || fail "no Python venv at $VENV (run: make venv)"
fresh_state
demo="$TMP_ROOT/mcp-demo"
"$ROOT/plugins/mcp-demo/make-plugin.sh" "$VENV" "$demo"
# One retry, so a crash shows up as a retryable failure that was retried.
python3 - "$demo/warden-plugin.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); m["retry"] = {"max": 1, "initialBackoff": "100ms"}
json.dump(m, open(sys.argv[1], "w"))
PY
expect_status 0 "$WARDEN" plugin register "$demo"
contains "$OUT" "mcp-demo@1.0.0 (mcp, 6 tools: add, whoami, slow, sleep, fail, crash)"
expect_status 0 "$WARDEN" plugin show mcp-demo --json
[ "$(json_get "['tools'][0]['name']" <<<"$OUT")" = add ] || fail "discovered tools: $OUT"
ok "registration discovers the server's tools"

expect_status 0 "$WARDEN" run mcp-demo.add --input '{"a": 2, "b": 3}'
[ "$(json_get "['structuredContent']['result']" <<<"$OUT")" = 5 ] || fail "run: $OUT"
ok "warden run calls an mcp-kind tool in-process"

liar="$TMP_ROOT/liar"; "$ROOT/plugins/mcp-demo/make-plugin.sh" "$VENV" "$liar" liar
python3 - "$liar/warden-plugin.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["tools"] = [{"name": "add", "description": "d", "inputSchema": {"type": "object"}},
              {"name": "teleport", "description": "d", "inputSchema": {"type": "object"}}]
json.dump(m, open(sys.argv[1], "w"))
PY
expect_status 65 "$WARDEN" plugin register "$liar"
contains "$ERR" 'does not offer a tool "teleport"'
expect_status 66 "$WARDEN" plugin show liar
ok "a manifest naming a tool the server does not offer is refused"

broken="$TMP_ROOT/broken"; "$ROOT/plugins/mcp-demo/make-plugin.sh" "$VENV" "$broken" broken
sed -i 's/"server.py"/"no-such-server.py"/' "$broken/warden-plugin.json"
expect_status 65 "$WARDEN" plugin register "$broken"
contains "$ERR" "did not start"
contains "$ERR" "no-such-server.py"
ok "a server that cannot start is refused with its own error"

export WARDEN
task=$("$VENV/bin/python" "$ROOT/Tests/scripts/mcp_plugin_test.py" | tee -a /dev/stderr | tail -1)
expect_status 0 "$WARDEN" status "$task" --json
[ "$(json_get "['state']" <<<"$OUT")" = dead ] || fail "crash task: $OUT"
[ "$(json_get "['attempts']" <<<"$OUT")" = 2 ] || fail "the crash was not retried: $OUT"
contains "$(json_get "['history']" <<<"$OUT")" "retry 1 of 1"
ok "the crash was a retryable failure: retried once, then dead"
