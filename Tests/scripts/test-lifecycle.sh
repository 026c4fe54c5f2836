#!/usr/bin/env bash
# The task lifecycle through `serve` and the CLI: retries with backoff, dead letters and replay, cancel of a
# running sandbox, idempotency keys, dependencies, locks, per-plugin concurrency, cache, trace context,
# OTLP spans, Prometheus over HTTP, leases after kill -9, clean SIGTERM.
. "$(dirname "$0")/lib.sh"
fresh_state
testkit_plugin false 8 true
"$WARDEN" plugin register "$ROOT/plugins/flaky" >/dev/null
PORT=$(( 30000 + RANDOM % 20000 ))
start_serve --otlp-file "$TMP_ROOT/spans.jsonl" --metrics-addr "127.0.0.1:$PORT"

# Retries: flaky fails with 75 twice, then succeeds on attempt 3 (retry.max 3, backoff 100ms..1s).
expect_status 0 "$WARDEN" run flaky --input '{"succeed_on": 3}'
[ "$(json_get "['succeeded_on_attempt']" <<<"$OUT")" = 3 ] || fail "flaky result $OUT"
id=$("$WARDEN" tasks --json --limit 1 | json_get "[0]['id']")
expect_status 0 "$WARDEN" status "$id" --json
[ "$(json_get "['attempts']" <<<"$OUT")" = 3 ] || fail "attempts"
n_retry=$(grep -c '"to" : "queued"' <<<"$OUT" || true)
[ "$n_retry" -ge 3 ] || fail "expected the two retries in the history: $OUT"
ok "retryable failures are retried with backoff until success"

# Retries exhausted → dead → DLQ → replay (fails again: dead again).
expect_status 1 "$WARDEN" run flaky --input '{"succeed_on": 9}' --retries 1
dead=$("$WARDEN" tasks --json --limit 1 | json_get "[0]['id']")
[ "$("$WARDEN" status "$dead" --json | json_get "['state']")" = dead ] || fail "not dead"
expect_status 0 "$WARDEN" dlq list
contains "$OUT" "$dead"
expect_status 1 "$WARDEN" run testkit.fail
failed=$("$WARDEN" tasks --json --limit 1 | json_get "[0]['id']")
[ "$("$WARDEN" status "$failed" --json | json_get "['attempts']")" = 1 ] || fail "a non-retryable failure was retried"
expect_status 0 "$WARDEN" dlq replay "$dead"
wait_state "$dead" dead
[ "$("$WARDEN" status "$dead" --json | json_get "['attempts']")" = 2 ] || fail "replay did not get a fresh budget"
ok "exhausted and non-retryable failures go to the DLQ; replay re-runs with a fresh budget"

# Cancel kills the running sandbox (the sleep would take 30 s) and is recorded.
expect_status 0 "$WARDEN" submit testkit.sleep --input '{"seconds": 30, "tag": "victim"}'
victim=$OUT
wait_state "$victim" running
for _ in $(seq 100); do grep -q "start victim" "$SHARED/log" 2>/dev/null && break; sleep 0.05; done
start=$(date +%s%N)
expect_status 0 "$WARDEN" cancel "$victim" --reason "test cancel"
for _ in $(seq 100); do pgrep -f "testkit" >/dev/null || break; sleep 0.05; done
! pgrep -f "bin/testkit" >/dev/null || fail "the canceled tool still runs"
[ $(( ($(date +%s%N) - start) / 1000000 )) -lt 3000 ] || fail "cancel took too long"
! grep -q "end victim" "$SHARED/log" || fail "the canceled sleep finished"
expect_status 0 "$WARDEN" audit --task "$victim"
contains "$OUT" "task.canceled"
ok "cancel kills the running sandbox at once and is audited"

# Idempotency keys: the same key returns the first task.
a=$("$WARDEN" submit testkit.echo --idempotency-key order-42 --input '{"n": 1}')
b=$("$WARDEN" submit testkit.echo --idempotency-key order-42 --input '{"n": 2}')
[ "$a" = "$b" ] || fail "same key gave $a and $b"
c=$("$WARDEN" submit testkit.echo --idempotency-key order-42 --tenant other)
[ "$a" != "$c" ] || fail "keys are per tenant"
ok "idempotency keys return the first task (per tenant)"

# Dependencies: b runs after a; a failed dependency cancels its dependents with the reason.
a=$("$WARDEN" submit testkit.sleep --input '{"seconds": 0.3, "tag": "dep-a"}')
b=$("$WARDEN" submit testkit.sleep --after "$a" --input '{"seconds": 0, "tag": "dep-b"}')
expect_status 0 "$WARDEN" wait "$b" --timeout 20s
ea=$(grep "end dep-a" "$SHARED/log" | awk '{print $3}'); sb=$(grep "start dep-b" "$SHARED/log" | awk '{print $3}')
python3 -c "import sys; sys.exit(0 if $sb >= $ea else 1)" || fail "dependent started before its dependency ended"
f=$("$WARDEN" submit testkit.fail)
g=$("$WARDEN" submit testkit.echo --after "$f")
h=$("$WARDEN" submit testkit.echo --after "$g")
wait_state "$h" canceled
contains "$("$WARDEN" status "$g" --json | json_get "['reason']")" "dependency $f failed"
expect_status 66 "$WARDEN" submit testkit.echo --after t0000000000nosuchid
ok "dependencies order work; a failed dependency cancels the chain with the reason"

# Locks: tasks holding the same lock never overlap.
: >"$SHARED/log"
for i in 1 2 3; do "$WARDEN" submit testkit.sleep --lock shared-db --input "{\"seconds\": 0.3, \"tag\": \"lock$i\"}" >>"$TMP_ROOT/locked"; done
for id in $(cat "$TMP_ROOT/locked"); do expect_status 0 "$WARDEN" wait "$id" --timeout 30s; done
python3 - "$SHARED/log" <<'PY' || fail "tasks holding one lock overlapped"
import sys
ev = sorted((float(t), kind) for kind, tag, t in (l.split() for l in open(sys.argv[1])))
depth = 0
for _, kind in ev:
    depth += 1 if kind == "start" else -1
    assert depth <= 1, "overlap"
PY
ok "named locks serialize their holders"

# Per-plugin concurrency: flaky-like plugin with concurrency 1.
testkit_plugin false 1 false
for i in 1 2 3; do "$WARDEN" submit testkit.sleep --input "{\"seconds\": 0.2, \"tag\": \"c$i\"}" >>"$TMP_ROOT/conc"; done
for id in $(cat "$TMP_ROOT/conc"); do expect_status 0 "$WARDEN" wait "$id" --timeout 30s; done
python3 - "$SHARED/log" <<'PY' || fail "concurrency 1 was exceeded"
import sys
ev = sorted((float(t), kind) for kind, tag, t in (l.split() for l in open(sys.argv[1])))
depth = 0
for _, kind in ev:
    depth += 1 if kind == "start" else -1
    assert depth <= 1
PY
ok "per-plugin concurrency limit holds"

# Cache: testkit (first copy) is cacheable; the same input twice runs once.
testkit_plugin false 8 true
expect_status 0 "$WARDEN" run testkit.echo --input '{"cache": "me"}'
expect_status 0 "$WARDEN" run testkit.echo --input '{"cache": "me"}' --json
[ "$(json_get "['report']['reason']" <<<"$OUT")" = cached ] || fail "second call was not served from the cache: $OUT"
ok "cacheable results are reused for the same plugin digest, tool and input"

# Trace context reaches the tool and spans are exported as OTLP/JSON.
tp="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
expect_status 0 "$WARDEN" run testkit.env --traceparent "$tp"
[ "$(json_get "['TRACEPARENT']" <<<"$OUT")" = "$tp" ] || fail "traceparent not passed: $OUT"
# The exporter writes a batch every 200 ms, so admit/queue/place can be on disk before run: wait for all four.
spans_ok() {
python3 - "$TMP_ROOT/spans.jsonl" <<'PY'
import json, sys
names = set()
try:
    lines = open(sys.argv[1]).readlines()
except FileNotFoundError:
    lines = []
for line in lines:
    for rs in json.loads(line)["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                if s["traceId"] == "0af7651916cd43dd8448eb211c80319c": names.add(s["name"])
missing = {"admit", "queue", "place", "run"} - names
if missing: print(f"missing spans {missing}, have {names}", file=sys.stderr); sys.exit(1)
PY
}
for _ in $(seq 50); do spans_ok 2>/dev/null && break; sleep 0.1; done
spans_ok || fail "OTLP spans missing"
ok "traceparent propagated to the plugin; admit/queue/place/run spans exported as OTLP/JSON"

# Prometheus over HTTP.
python3 - "$PORT" <<'PY' || fail "metrics endpoint"
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
for m in ["warden_admissions_total", "warden_queue_depth_total", "warden_task_latency_seconds_bucket", "warden_node_allocated", "warden_sandbox_kills_total"]:
    assert m in text, m
PY
ok "/metrics serves queue depth, admissions, latency histograms, node allocation, kills by reason"

# Leases after kill -9 of serve: non-idempotent running → in_doubt; idempotent → re-queued and re-run.
nonidem=$("$WARDEN" submit testkit.sleep --input '{"seconds": 5, "tag": "nonidem"}')
testkit_plugin true 8 false
idem=$("$WARDEN" submit testkit.sleep --input '{"seconds": 1, "tag": "idem"}')
wait_state "$nonidem" running
wait_state "$idem" running
kill -9 "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
# Everything it launched dies with it: the spawn server, the helpers it cloned, the sandboxes under them.
for _ in $(seq 100); do pgrep -f "bin/testkit|warden-sandbox --server $SERVE_PID" >/dev/null || break; sleep 0.05; done
! pgrep -f "bin/testkit" >/dev/null || fail "a sandbox outlived the serve that launched it (kill -9)"
! pgrep -f "warden-sandbox --server $SERVE_PID" >/dev/null || fail "the spawn server outlived its serve (kill -9)"
start_serve
wait_state "$nonidem" in_doubt
contains "$("$WARDEN" status "$nonidem" --json | json_get "['reason']")" "not idempotent"
expect_status 0 "$WARDEN" wait "$idem" --timeout 30s
ok "after kill -9: its sandboxes and spawn server died with it; the non-idempotent task is in_doubt, the idempotent one re-ran"

# SIGTERM: a running task finishes within the grace period, then serve exits 0.
long=$("$WARDEN" submit testkit.sleep --input '{"seconds": 1, "tag": "grace"}')
wait_state "$long" running
kill -TERM "$SERVE_PID"
wait "$SERVE_PID"; rc=$?
[ $rc = 0 ] || fail "serve exited $rc on SIGTERM"
[ "$("$WARDEN" status "$long" --json | json_get "['state']")" = succeeded ] || fail "running task did not finish on SIGTERM"
ok "SIGTERM lets running work finish and exits cleanly"
expect_status 0 "$WARDEN" audit --verify
