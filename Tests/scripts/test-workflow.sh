#!/usr/bin/env bash
# Workflows end to end: validation at submit (unknown step, cycle, non-upstream reference → 65 with the
# path), data passing with fan-out and fan-in, a step that fails once and is retried exactly once, a failing
# step that fails its workflow and skips its dependents, cancel, explain, and kill -9 of serve in the middle
# with no completed step re-run (checked with a side-effect ledger).
. "$(dirname "$0")/lib.sh"
fresh_state
testkit_plugin true 8 false
"$WARDEN" plugin register "$ROOT/plugins/wordcount" >/dev/null
"$WARDEN" plugin register "$ROOT/plugins/flaky" >/dev/null

bad="$TMP_ROOT/bad.json"
echo '{"name": "x", "steps": [{"id": "a", "tool": "testkit.echo"}, {"id": "b", "tool": "testkit.echo", "after": ["nope"]}]}' >"$bad"
expect_status 65 "$WARDEN" workflow submit "$bad"; contains "$ERR" '$.steps[1].after[0]: unknown step "nope"'
echo '{"name": "x", "steps": [{"id": "a", "tool": "testkit.echo", "after": ["b"]}, {"id": "b", "tool": "testkit.echo", "after": ["a"]}]}' >"$bad"
expect_status 65 "$WARDEN" workflow submit "$bad"; contains "$ERR" "cycle"
echo '{"name": "x", "steps": [{"id": "a", "tool": "testkit.echo"}, {"id": "b", "tool": "testkit.echo", "input": {"v": "{{steps.a.result.x}}"}}]}' >"$bad"
expect_status 65 "$WARDEN" workflow submit "$bad"; contains "$ERR" '$.steps[1].input.v: step "a" is not upstream of "b"'
echo '{"name": "x", "steps": [{"id": "a", "tool": "nosuch.tool"}]}' >"$bad"
expect_status 65 "$WARDEN" workflow submit "$bad"; contains "$ERR" '$.steps[0].tool: unknown plugin'
ok "invalid workflows are refused at submit with the JSON path"

start_serve
cat >"$TMP_ROOT/wf.json" <<'J'
{ "name": "fan",
  "steps": [
    {"id": "count", "tool": "wordcount.count", "input": {"text": "{{input.text}}", "top": 1}},
    {"id": "left",  "tool": "testkit.echo", "after": ["count"], "input": {"side": "left", "words": "{{steps.count.result.words}}"}},
    {"id": "right", "tool": "testkit.echo", "after": ["count"], "input": {"side": "right", "top": "{{steps.count.result.top[0].word}}"}},
    {"id": "flaky", "tool": "flaky.once", "after": ["count"], "input": {"succeed_on": 2}, "retry": {"max": 1, "initialBackoff": "50ms", "maxBackoff": "100ms"}},
    {"id": "join",  "tool": "testkit.echo", "after": ["left", "right", "flaky"],
     "input": {"summary": "{{steps.left.result.words}} words, top {{steps.right.result.top}}", "attempt": "{{steps.flaky.result.succeeded_on_attempt}}"}}
  ] }
J
expect_status 0 "$WARDEN" workflow submit "$TMP_ROOT/wf.json" --input '{"text": "to be or not to be"}'
wf=$OUT
for _ in $(seq 200); do s=$("$WARDEN" workflow status "$wf" --json | json_get "['state']"); [ "$s" = running ] || break; sleep 0.1; done
[ "$s" = succeeded ] || fail "workflow ended $s: $("$WARDEN" workflow status "$wf")"
expect_status 0 "$WARDEN" workflow status "$wf" --json
join=$(json_get "['steps'][4]['result']['summary']" <<<"$OUT")
[ "$join" = "6 words, top to" ] || fail "data passing: got '$join'"
[ "$(json_get "['steps'][4]['result']['attempt']" <<<"$OUT")" = 2 ] || fail "flaky result not passed"
[ "$(json_get "['steps'][3]['attempts']" <<<"$OUT")" = 2 ] || fail "the flaky step should run exactly twice (one retry)"
ok "fan-out, fan-in and data passing; the failing-once step retried exactly once"

expect_status 0 "$WARDEN" explain "$wf"
contains "$OUT" "workflow $wf \"fan\""
contains "$OUT" "step flaky"
contains "$OUT" "attempt 2 on testnode: succeeded"
expect_status 0 "$WARDEN" explain "$wf" --json
ok "explain tells the workflow's story"

# A failing step fails the workflow with the reason; its dependents never run.
cat >"$TMP_ROOT/wf2.json" <<'J'
{ "name": "breaks", "steps": [
    {"id": "boom", "tool": "testkit.fail"},
    {"id": "after-boom", "tool": "testkit.echo", "after": ["boom"]},
    {"id": "independent", "tool": "testkit.echo"} ] }
J
wf2=$("$WARDEN" workflow submit "$TMP_ROOT/wf2.json")
for _ in $(seq 200); do s=$("$WARDEN" workflow status "$wf2" --json | json_get "['state']"); [ "$s" = running ] || break; sleep 0.1; done
[ "$s" = failed ] || fail "workflow ended $s"
expect_status 0 "$WARDEN" workflow status "$wf2" --json
contains "$(json_get "['reason']" <<<"$OUT")" "step boom dead"
[ "$(json_get "['steps'][1]['state']" <<<"$OUT")" = skipped ] || fail "dependent of a failed step ran"
ok "a failed step fails the workflow with the reason and skips its dependents"

# Cancel.
echo '{"name": "slow", "steps": [{"id": "s", "tool": "testkit.sleep", "input": {"seconds": 30, "tag": "wfcancel"}}, {"id": "t", "tool": "testkit.echo", "after": ["s"]}]}' >"$TMP_ROOT/wf3.json"
wf3=$("$WARDEN" workflow submit "$TMP_ROOT/wf3.json")
sid=""; for _ in $(seq 100); do sid=$("$WARDEN" workflow status "$wf3" --json | json_get "['steps'][0]['task']"); [ "$sid" != None ] && [ "$("$WARDEN" status "$sid" --json | json_get "['state']")" = running ] && break; sleep 0.1; done
expect_status 0 "$WARDEN" workflow cancel "$wf3"
wait_state "$sid" canceled
[ "$("$WARDEN" workflow status "$wf3" --json | json_get "['state']")" = canceled ] || fail "workflow not canceled"
ok "workflow cancel cancels its running step"

# kill -9 of serve in the middle; completed steps are never re-run (ledger: /shared/log lines per tag).
: >"$SHARED/log"
cat >"$TMP_ROOT/wf4.json" <<'J'
{ "name": "ledger", "steps": [
    {"id": "one",   "tool": "testkit.sleep", "input": {"seconds": 0.2, "tag": "one"}},
    {"id": "two",   "tool": "testkit.sleep", "after": ["one"], "input": {"seconds": 0.2, "tag": "two"}},
    {"id": "three", "tool": "testkit.sleep", "after": ["two"], "input": {"seconds": 3, "tag": "three"}},
    {"id": "four",  "tool": "testkit.sleep", "after": ["three"], "input": {"seconds": 0.2, "tag": "four"}} ] }
J
wf4=$("$WARDEN" workflow submit "$TMP_ROOT/wf4.json")
for _ in $(seq 200); do grep -q "start three" "$SHARED/log" 2>/dev/null && break; sleep 0.05; done
kill -9 "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
start_serve
for _ in $(seq 300); do s=$("$WARDEN" workflow status "$wf4" --json | json_get "['state']"); [ "$s" = running ] || break; sleep 0.1; done
[ "$s" = succeeded ] || fail "resumed workflow ended $s"
for tag in one two four; do
  n=$(grep -c "end $tag" "$SHARED/log"); [ "$n" = 1 ] || fail "step $tag ran $n times"
done
ok "after kill -9 the workflow resumed; completed steps ran exactly once (step three, idempotent, re-ran after its lost lease)"
stop_serve
