#!/usr/bin/env bash
# Capacity planning through the CLI: `plan` on a fixed cluster and for a node shape, its exit codes and errors,
# the HTML report rendered by headless Chromium (and a blank page failing the same check), `report placement`
# on a live cluster, and `bench schedule` agreeing with its full-scan baseline.
. "$(dirname "$0")/lib.sh"
P="$ROOT/Benchmarks/plan"

# Where would this workload go? All 87 tasks fit the example cluster.
expect_status 0 "$WARDEN" plan --tasks "$P/tasks.json" --nodes "$P/nodes.json" --json
python3 - "$OUT" <<'PY' || fail "plan --json shape"
import json, sys
d = json.loads(sys.argv[1])
for k in ("placements", "unplaced", "nodes_used", "lower_bound", "utilization", "nodes"):
    assert k in d, k
assert len(d["placements"]) == 87 and d["unplaced"] == [], d["unplaced"]
assert d["lower_bound"] <= d["nodes_used"]
assert {"task", "node"} <= set(d["placements"][0])
assert 0 < d["utilization"]["cpu"] <= 1
PY
ok "plan --nodes places every task and reports the DESIGN JSON shape"

# Why did this task not fit? A smaller cluster: exit 1, each unplaced task with its reason.
expect_status 1 "$WARDEN" plan --tasks "$P/tasks.json" --nodes "$P/nodes-small.json"
contains "$OUT" "etl-1: 0/5 nodes fit: 5 insufficient cpu (need 4, best free"
contains "$OUT" "train-0: 0/5 nodes fit: 5 constraint pool (not in [gpu])"
contains "$OUT" "stranded:"
ok "plan explains every unplaced task and exits 1"

# How many nodes of this shape? The fewest found and a proven lower bound; the same answer twice.
expect_status 0 "$WARDEN" plan --tasks "$P/general.json" --shape 16,64Gi --time-limit 5 --json
first=$OUT
python3 - "$OUT" <<'PY' || fail "plan --shape result"
import json, sys
d = json.loads(sys.argv[1])
assert d["unplaced"] == [] and d["lower_bound"] >= 1 and d["nodes_used"] >= d["lower_bound"], d
assert d["nodes_used"] <= d["ffd_nodes"], d
PY
expect_status 0 "$WARDEN" plan --tasks "$P/general.json" --shape 16,64Gi --time-limit 5 --json
[ "$(json_get "['placements']" <<<"$first")" = "$(json_get "['placements']" <<<"$OUT")" ] || fail "plan --shape is not deterministic"
ok "plan --shape: $(json_get "['nodes_used']" <<<"$OUT") nodes, lower bound $(json_get "['lower_bound']" <<<"$OUT"), same answer twice"

# Bad input: one line naming the field and the value, the right exit code.
expect_status 66 "$WARDEN" plan --tasks "$TMP_ROOT/none.json" --shape 16,64Gi
contains "$ERR" "--tasks: no such file"
echo '[{"id": "x", "cpu": "12Zi", "memory": "1Gi"}]' >"$TMP_ROOT/bad.json"
expect_status 65 "$WARDEN" plan --tasks "$TMP_ROOT/bad.json" --shape 16,64Gi
contains "$ERR" '$[0].cpu'; contains "$ERR" '"12Zi"'
expect_status 64 "$WARDEN" plan --tasks "$P/tasks.json" --shape 16,64Zi
contains "$ERR" '"64Zi"'
expect_status 64 "$WARDEN" plan --tasks "$P/tasks.json" --nodes "$P/nodes.json" --shape 16,64Gi
expect_status 64 "$WARDEN" plan --tasks "$P/tasks.json" --nodes "$P/nodes.json" --strategy greedy
contains "$ERR" '--strategy'
ok "plan rejects bad files (65), missing files (66) and bad options (64) naming the field"

# The HTML report renders in a real browser; a blank page fails the same check (the check can tell).
expect_status 1 "$WARDEN" plan --tasks "$P/tasks.json" --nodes "$P/nodes-small.json" --html "$TMP_ROOT/plan.html"
grep -q "<svg" "$TMP_ROOT/plan.html" || fail "no inline SVG in the report"
if grep -qiE '(src|href)="https?:' "$TMP_ROOT/plan.html"; then fail "the report loads something from the network"; fi
bash "$ROOT/Benchmarks/html-render-check.sh" "$TMP_ROOT/plan.html" || fail "the plan report renders blank"
echo '<!doctype html><html><body></body></html>' >"$TMP_ROOT/blank.html"
if bash "$ROOT/Benchmarks/html-render-check.sh" "$TMP_ROOT/blank.html" 2>/dev/null; then fail "a blank page passed the render check"; fi
ok "the HTML report renders in headless Chromium; a blank page is caught"

# The live cluster: a task too big for the node waits, and report placement says why.
fresh_state
"$WARDEN" plugin register "$ROOT/plugins/wordcount" >/dev/null
start_serve --cpu 2 --memory 4Gi
big=$("$WARDEN" submit wordcount.count --input '{"text": "x"}' --cpu 8)
small=$("$WARDEN" submit wordcount.count --input '{"text": "y"}')
"$WARDEN" wait "$small" --timeout 30s >/dev/null
for _ in $(seq 50); do "$WARDEN" status "$big" --json | grep -q "insufficient cpu" && break; sleep 0.1; done
expect_status 0 "$WARDEN" report placement --json --html "$TMP_ROOT/live.html"
python3 - "$OUT" "$big" <<'PY' || fail "report placement: $OUT"
import json, sys
d, big = json.loads(sys.argv[1]), sys.argv[2]
assert [n["name"] for n in d["nodes"]] == ["testnode"], d["nodes"]
waiting = {u["task"]: u["reason"] for u in d["unplaced"]}
assert "insufficient cpu (need 8, best free 2)" in waiting[big], waiting
PY
expect_status 0 "$WARDEN" report placement
contains "$OUT" "$big"
bash "$ROOT/Benchmarks/html-render-check.sh" "$TMP_ROOT/live.html" >/dev/null || fail "the live report renders blank"
"$WARDEN" cancel "$big" >/dev/null
stop_serve
ok "report placement shows the live node and why a queued task waits"

# Online speed: the index and its full-scan baseline make the same decisions.
expect_status 0 "$WARDEN" bench schedule --nodes 1000 --n 20000 --json
python3 - "$OUT" <<'PY' || fail "bench schedule: $OUT"
import json, sys
d = json.loads(sys.argv[1])
assert d["agree_with_baseline"] is True and d["placed"] > 0 and d["per_second"] > d["baseline_per_second"], d
PY
ok "bench schedule: $(json_get "['per_second']" <<<"$OUT")/s against a full scan at $(json_get "['baseline_per_second']" <<<"$OUT")/s"
