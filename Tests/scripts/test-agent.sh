#!/usr/bin/env bash
# Agent plugins: an agent calls tools through its MCP socket; each call is a child task (same tenant,
# parent set, one trace); a denied call comes back as a tool error and explain names the denying rule;
# canceling the parent kills its running children; the depth budget stops runaway recursion.
. "$(dirname "$0")/lib.sh"
fresh_state
testkit_plugin true 64 false
"$WARDEN" plugin register "$ROOT/plugins/wordcount" >/dev/null
"$WARDEN" plugin register "$ROOT/plugins/researcher" >/dev/null
FILES="$TMP_ROOT/files"; cp -r "$ROOT/plugins/files" "$FILES"
mkdir -p "$TMP_ROOT/scratch"; touch "$TMP_ROOT/scratch/keep.txt"; chmod -R 777 "$TMP_ROOT/scratch"
sed -i "s|/tmp/warden-demo-scratch|$TMP_ROOT/scratch|" "$FILES/warden-plugin.json"
"$WARDEN" plugin register "$FILES" >/dev/null
AGENTKIT="$TMP_ROOT/agentkit"; cp -r "$ROOT/Tests/plugins/agentkit" "$AGENTKIT"
"$WARDEN" plugin register "$AGENTKIT" >/dev/null
cat >"$TMP_ROOT/policy.json" <<'P'
{ "rules": [ {"id": "agents-may-not-delete", "effect": "deny", "tools": ["files.delete"]},
             {"id": "allow-rest", "effect": "allow"} ],
  "agents": {"maxDepth": 3, "maxChildren": 20} }
P
"$WARDEN" policy set "$TMP_ROOT/policy.json" >/dev/null
start_serve --otlp-file "$TMP_ROOT/spans.jsonl"

expect_status 0 "$WARDEN" run researcher.study --input '{"text": "a rose is a rose is a rose", "delete": "keep.txt"}' --traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
python3 - "$OUT" <<'PY' || fail "agent result: $OUT"
import json, sys
r = json.loads(sys.argv[1])
assert "wordcount.count" in r["offered"] and "files.list" in r["offered"], r["offered"]
assert "files.delete" not in r["offered"], "a denied tool was offered"
count, listing, delete = r["steps"]
assert count["ok"] and count["result"]["words"] == 8, count
assert listing["ok"] and listing["result"]["names"] == ["keep.txt"], listing
assert not delete["ok"] and "agents-may-not-delete" in delete["error"], delete
PY
[ -e "$TMP_ROOT/scratch/keep.txt" ] || fail "the denied delete happened"
parent=$("$WARDEN" tasks --json --limit 100 | python3 -c 'import json,sys; print([t for t in json.load(sys.stdin) if t["tool"] == "study"][0]["id"])')
children=$("$WARDEN" tasks --json --limit 100 | python3 -c "import json,sys; print(' '.join(t['id'] for t in json.load(sys.stdin) if t['parent'] == '$parent'))")
[ "$(wc -w <<<"$children")" = 3 ] || fail "expected 3 child tasks of $parent, got: $children"
for c in $children; do
  [ "$("$WARDEN" status "$c" --json | json_get "['tenant']")" = default ] || fail "child tenant"
done
ok "the agent's calls are child tasks (same tenant, parent set); the denied tool was not offered and its call failed"

expect_status 0 "$WARDEN" explain "$parent"
contains "$OUT" "child task"
contains "$OUT" 'denied by policy rule "agents-may-not-delete"'
contains "$OUT" "admission: rejected by rule agents-may-not-delete"
ok "explain shows the children and names the denying rule"

for _ in $(seq 40); do
  python3 - "$TMP_ROOT/spans.jsonl" "$parent" <<'PY' && break
import json, sys
traces = {}
for line in open(sys.argv[1]):
    for rs in json.loads(line)["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                task = [a["value"]["stringValue"] for a in s["attributes"] if a["key"] == "warden.task"][0]
                traces.setdefault(s["traceId"], set()).add(task)
mine = traces.get("4bf92f3577b34da6a3ce929d0e0e4736", set())
sys.exit(0 if len(mine) >= 4 else 1)
PY
  sleep 0.2
done || fail "parent and children do not share one trace"
ok "parent and child spans share one trace"

# Canceling the parent kills its running child.
expect_status 0 "$WARDEN" submit agentkit.spawn
spawner=$OUT
child=""
for _ in $(seq 100); do
  child=$("$WARDEN" tasks --json --limit 100 | python3 -c "import json,sys; c=[t['id'] for t in json.load(sys.stdin) if t['parent'] == '$spawner' and t['state'] == 'running']; print(c[0] if c else '')")
  [ -n "$child" ] && break; sleep 0.1
done
[ -n "$child" ] || fail "the agent's child never ran"
for _ in $(seq 100); do grep -q "start child-of-spawn" "$SHARED/log" 2>/dev/null && break; sleep 0.05; done
expect_status 0 "$WARDEN" cancel "$spawner"
wait_state "$child" canceled
sleep 0.5
! pgrep -f "bin/testkit" >/dev/null || fail "the child's sandbox survived its parent's cancel"
ok "canceling the parent cancels its children and kills their sandboxes"

# The depth budget stops runaway recursion (maxDepth 3: the dive at level 3 is refused).
expect_status 0 "$WARDEN" run agentkit.dive --input '{}' --timeout 60s
python3 - "$OUT" <<'PY' || fail "depth budget: $OUT"
import json, sys
r = json.loads(sys.argv[1])
assert r["deepest"] == 3 and "agent depth budget" in r["stopped_by"], r
PY
ok "the depth budget stopped the recursion at the policy's maxDepth"
stop_serve
expect_status 0 "$WARDEN" audit --verify
