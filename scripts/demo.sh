#!/usr/bin/env bash
# `make demo`: a real run on the embedded SQLite store. Registers the example plugins, runs calls in the
# sandbox, shows admission (a denial naming its rule, an approval), a retry, and the audit chain verifying.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${WARDEN:-$ROOT/.build/release/warden}
export WARDEN_HOME=$ROOT/.build/demo-state
export WARDEN_PROFILES=$ROOT/sandbox-profiles
rm -rf "$WARDEN_HOME" /tmp/warden-demo-scratch
mkdir -p /tmp/warden-demo-scratch && touch /tmp/warden-demo-scratch/{old.log,report.txt} && chmod -R 777 /tmp/warden-demo-scratch
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "Create the state directory and store" "$W" init
step "Register the example plugins (manifests validated, files pinned by sha256)" "$W" plugin register "$ROOT/plugins/wordcount"
"$W" plugin register "$ROOT/plugins/flaky" >/dev/null
"$W" plugin register "$ROOT/plugins/files" >/dev/null
"$W" plugin register "$ROOT/plugins/researcher" >/dev/null
for p in "$ROOT"/plugins/*/; do
  # Built plugins (dylibs, MCP servers) join the demo when they are there.
  [ -f "$p/warden-plugin.json" ] || continue
  case $(basename "$p") in wordcount|flaky|files|researcher) ;; *) "$W" plugin register "$p" >/dev/null 2>&1 || true ;; esac
done
step "Registered plugins" "$W" plugin list
step "Run a tool in the sandbox, no daemon needed" "$W" run wordcount.count --input '{"text": "the quick brown fox jumps over the lazy dog the end", "top": 2}'
id=$("$W" tasks --json --limit 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
step "A C shared library (dylib plugin), hosted in a warm sandboxed worker" "$W" run hello-c.greet --input '{"name": "operator"}'
step "A Swift shared library through the same C ABI" "$W" run hello-swift.reverse --input '{"text": "warden"}'
if [ -x "$ROOT/.build/venv/bin/python" ] && "$ROOT/.build/venv/bin/python" -c "import mcp" 2>/dev/null; then
  # An existing MCP server (Python SDK) becomes a plugin: started once in its sandbox, its tools re-exported.
  bash "$ROOT/plugins/mcp-demo/make-plugin.sh" "$ROOT/.build/venv" "$WARDEN_HOME/mcp-demo" >/dev/null
  "$W" plugin register "$WARDEN_HOME/mcp-demo" >/dev/null
  step "An MCP server as a plugin (mcp kind)" "$W" run mcp-demo.add --input '{"a": 2, "b": 40}'
fi
step "The wordcount task's record: admission rule, placement, sandbox record, history" "$W" status "$id"

cat >"$WARDEN_HOME/policy.json" <<'P'
{ "tenants": { "default": {"quota": {"cpu": "2", "memory": "2Gi", "tasks": 20}, "rateLimit": "50/s"},
               "guest":   {"quota": {"cpu": "500m", "memory": "256Mi", "tasks": 2}, "rateLimit": "5/s"} },
  "rules": [ {"id": "guests-read-only", "effect": "deny", "tenants": ["guest"], "tools": ["files.delete"]},
             {"id": "approve-deletes", "effect": "require_approval", "tools": ["files.delete"]},
             {"id": "allow-rest", "effect": "allow"} ],
  "default": "deny" }
P
step "Install an admission policy" "$W" policy set "$WARDEN_HOME/policy.json"
echo
echo '$ warden run files.delete --tenant guest --input '"'"'{"name": "report.txt"}'"'"
set +e; "$W" run files.delete --tenant guest --input '{"name": "report.txt"}'; echo "(exit $?: denied, and the rule is named)"; set -e

"$W" serve --node demo-node >"$WARDEN_HOME/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$WARDEN_HOME/warden.sock" ] && break; sleep 0.05; done
echo; echo "(started warden serve --node demo-node in the background)"

step "A flaky tool fails twice with exit 75 and is retried with backoff" "$W" run flaky.once --input '{"succeed_on": 3}'
fid=$("$W" tasks --json --limit 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
"$W" status "$fid" | sed -n '/history/,$p'

step "A delete needs an approval" "$W" submit files.delete --input '{"name": "old.log"}'
did=$("$W" tasks --json --limit 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
"$W" status "$did" | head -3
step "An operator approves it" "$W" approve "$did" --reason "cleanup ticket 42"
step "…and it runs" "$W" wait "$did" --timeout 30s
"$W" run files.list

# A workflow whose middle step is an agent: it calls tools through Warden, and one of its calls is denied.
cat >"$WARDEN_HOME/research.json" <<'J'
{ "name": "research",
  "steps": [
    {"id": "count", "tool": "wordcount.count", "input": {"text": "{{input.text}}", "top": 1}},
    {"id": "study", "tool": "researcher.study", "after": ["count"],
     "input": {"text": "the most frequent word was {{steps.count.result.top[0].word}}", "delete": "report.txt"}},
    {"id": "report", "tool": "wordcount.count", "after": ["study"],
     "input": {"text": "agent report: {{steps.study.result.steps}}"}}
  ] }
J
cat >"$WARDEN_HOME/policy2.json" <<'P'
{ "tenants": { "default": {"quota": {"cpu": "2", "memory": "2Gi", "tasks": 20}, "rateLimit": "50/s"},
               "research": {"quota": {"cpu": "2", "memory": "2Gi", "tasks": 20}} },
  "rules": [ {"id": "research-never-deletes", "effect": "deny", "tenants": ["research"], "tools": ["files.delete"]},
             {"id": "approve-deletes", "effect": "require_approval", "tools": ["files.delete"]},
             {"id": "allow-rest", "effect": "allow"} ],
  "default": "deny" }
P
"$W" policy set "$WARDEN_HOME/policy2.json" >/dev/null
step "A workflow with an agent step (tenant research: its delete will be denied)" "$W" workflow submit "$WARDEN_HOME/research.json" --tenant research --input '{"text": "the cat saw the other cat"}'
wf=$("$W" tasks --json --limit 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["workflow"])')
for _ in $(seq 300); do s=$("$W" workflow status "$wf" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'); [ "$s" = running ] || break; sleep 0.1; done
step "Its status" "$W" workflow status "$wf"
step "The whole story: admission, placement, sandbox records, the agent's child calls, the denying rule" "$W" explain "$wf"

step "The live cluster: allocation per node, and why each task is where it is" "$W" report placement
step "Capacity planning: how many 16-core, 64Gi nodes does this workload need? (found, and a proven lower bound)" "$W" plan --tasks "$ROOT/Benchmarks/plan/general.json" --shape 16,64Gi --time-limit 3
echo '$ warden plan --tasks Benchmarks/plan/tasks.json --nodes Benchmarks/plan/nodes-small.json   # why tasks do not fit'
"$W" plan --tasks "$ROOT/Benchmarks/plan/tasks.json" --nodes "$ROOT/Benchmarks/plan/nodes-small.json" --html "$WARDEN_HOME/plan.html" | sed -n '/^unplaced/,$p' | head -8 || true
echo "(HTML report: $WARDEN_HOME/plan.html)"

step "Metrics (Prometheus text format)" bash -c "\"$W\" metrics | grep -E '^warden_(admissions_total|tasks|queue_depth_total)' | head -12"
step "The audit log is a hash chain; verify it" "$W" audit --verify
kill -TERM $SERVE; wait $SERVE 2>/dev/null || true
trap - EXIT
echo; echo "demo state left in $WARDEN_HOME (try: WARDEN_HOME=$WARDEN_HOME $W tasks)"
