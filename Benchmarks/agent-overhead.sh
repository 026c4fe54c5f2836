#!/usr/bin/env bash
# Two overheads of issue 10, each against its direct counterpart in the same run, through one `serve`:
#  - a workflow step against a plain task: a 10-step chain of testkit.echo versus 10 `run`s one after another;
#  - a child call through an agent's MCP socket against a direct call: an agent that makes 10 calls of
#    testkit.echo versus 10 direct `run`s (the agent's own start-up is measured separately and subtracted).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${WARDEN:-$ROOT/.build/release/warden}
export WARDEN_HOME=$(mktemp -d /tmp/warden-bench-agent-XXXXXX) WARDEN_PROFILES=$ROOT/sandbox-profiles
trap 'kill $SERVE 2>/dev/null || true; rm -rf "$WARDEN_HOME"' EXIT
"$W" init >/dev/null
mkdir -p "$WARDEN_HOME/shared"; chmod 777 "$WARDEN_HOME/shared"
cp -r "$ROOT/Tests/plugins/testkit" "$WARDEN_HOME/testkit"
sed -i "s|@SHARED@|$WARDEN_HOME/shared|; s|@IDEMPOTENT@|true|; s|@CONCURRENCY@|64|; s|@CACHEABLE@|false|" "$WARDEN_HOME/testkit/warden-plugin.json"
"$W" plugin register "$WARDEN_HOME/testkit" >/dev/null
mkdir -p "$WARDEN_HOME/caller/bin"
cat >"$WARDEN_HOME/caller/warden-plugin.json" <<'J'
{"name": "caller", "version": "1.0.0", "kind": "process", "agent": true, "exec": ["bin/caller"],
 "tools": [{"name": "calls", "description": "Calls testkit.echo N times through Warden.", "inputSchema": {"type": "object"}}],
 "resources": {"cpu": "100m", "memory": "64Mi"}, "timeout": "120s"}
J
cat >"$WARDEN_HOME/caller/bin/caller" <<'PY'
#!/usr/bin/python3
import json, os, socket, sys, time
n = json.load(sys.stdin).get("n", 10)
s = socket.socket(socket.AF_UNIX); s.connect(os.environ["WARDEN_SOCKET"]); f = s.makefile("rwb")
def call(i, method, params):
    f.write(json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}).encode() + b"\n"); f.flush()
    while True:
        m = json.loads(f.readline())
        if m.get("id") == i: return m
call(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}})
t = time.time()
for i in range(n): call(i + 1, "tools/call", {"name": "testkit.echo", "arguments": {"i": i}})
json.dump({"calls": n, "seconds": time.time() - t}, sys.stdout)
PY
chmod +x "$WARDEN_HOME/caller/bin/caller"
"$W" plugin register "$WARDEN_HOME/caller" >/dev/null
"$W" serve --node bench >"$WARDEN_HOME/serve.log" 2>&1 &
SERVE=$!
for _ in $(seq 100); do [ -S "$WARDEN_HOME/warden.sock" ] && break; sleep 0.05; done
N=10
now() { date +%s.%N; }
"$W" run testkit.echo >/dev/null   # warm-up
t0=$(now); for i in $(seq $N); do "$W" run testkit.echo --input "{\"i\": $i}" >/dev/null; done; t1=$(now)
direct=$(python3 -c "print(($t1 - $t0) / $N * 1000)")
python3 - "$WARDEN_HOME/chain.json" "$N" <<'PY'
import json, sys
n = int(sys.argv[2])
steps = [{"id": f"s{i}", "tool": "testkit.echo", "input": {"i": i}, **({"after": [f"s{i-1}"]} if i else {})} for i in range(n)]
json.dump({"name": "chain", "steps": steps}, open(sys.argv[1], "w"))
PY
t0=$(now)
wf=$("$W" workflow submit "$WARDEN_HOME/chain.json")
while [ "$("$W" workflow status "$wf" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" = running ]; do sleep 0.02; done
t1=$(now)
step=$(python3 -c "print(($t1 - $t0) / $N * 1000)")
child=$("$W" run caller.calls --input "{\"n\": $N}" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['seconds'] / d['calls'] * 1000)")
python3 - "$direct" "$step" "$child" <<'PY'
import sys
direct, step, child = map(float, sys.argv[1:])
print(f"plain task through serve (warden run, one after another): {direct:.1f} ms each")
print(f"workflow step (10-step chain):                           {step:.1f} ms each ({step - direct:+.1f} ms, {step / direct:.2f}x)")
print(f"child call through an agent's MCP socket:                {child:.1f} ms each ({child - direct:+.1f} ms, {child / direct:.2f}x)")
PY
