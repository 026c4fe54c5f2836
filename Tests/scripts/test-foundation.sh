#!/usr/bin/env bash
# The foundation path end to end through the CLI: init, register, run sandboxed, status, tasks, plugin
# list/show/remove; a malformed manifest is refused with 65 and writes nothing.
. "$(dirname "$0")/lib.sh"
fresh_state

expect_status 0 "$WARDEN" plugin register "$ROOT/plugins/wordcount"
contains "$OUT" "registered wordcount@1.2.0"

expect_status 0 "$WARDEN" run wordcount.count --input '{"text": "a b a"}'
[ "$(json_get "['words']" <<<"$OUT")" = 3 ] || fail "wrong word count: $OUT"
ok "run returns the tool's result"

expect_status 0 "$WARDEN" tasks --json
id=$(json_get "[0]['id']" <<<"$OUT")
state=$(json_get "[0]['state']" <<<"$OUT")
[ "$state" = succeeded ] || fail "task state $state"
expect_status 0 "$WARDEN" status "$id" --json
[ "$(json_get "['report']['reason']" <<<"$OUT")" = exited ] || fail "report reason"
[ "$(json_get "['history'][-1]['to']" <<<"$OUT")" = succeeded ] || fail "history"
ok "status shows the sandbox record and history"

# A malformed manifest: exit 65, one line naming the field, nothing stored.
bad="$TMP_ROOT/bad"; mkdir -p "$bad/bin"; cp "$ROOT/plugins/wordcount/bin/wordcount" "$bad/bin/"
sed 's/"memory": "64Mi"/"memroy": "64Mi"/' "$ROOT/plugins/wordcount/warden-plugin.json" | sed 's/"wordcount"/"badone"/' >"$bad/warden-plugin.json"
before=$("$WARDEN" audit --json | json_get "[-1]['seq']")
expect_status 65 "$WARDEN" plugin register "$bad"
contains "$ERR" '$.resources.memroy'
[ "$(wc -l <<<"$ERR")" = 1 ] || fail "error is not one line: $ERR"
after=$("$WARDEN" audit --json | json_get "[-1]['seq']")
[ "$before" = "$after" ] || fail "a rejected registration wrote to the store"
expect_status 66 "$WARDEN" plugin show badone
ok "malformed manifest refused with 65, nothing written"

sed 's/"cpu": "250m"/"cpu": "12Zi"/' "$ROOT/plugins/wordcount/warden-plugin.json" | sed 's/"wordcount"/"badtwo"/' >"$bad/warden-plugin.json"
expect_status 65 "$WARDEN" plugin register "$bad"
contains "$ERR" '"12Zi"'
ok "malformed quantity refused with 65"

expect_status 64 "$WARDEN" run wordcount --cpu 1e400
contains "$ERR" "--cpu"
ok "malformed quantity on the command line is a usage error (64)"

expect_status 0 "$WARDEN" plugin remove wordcount
expect_status 66 "$WARDEN" run wordcount --input '{"text":"x"}'
ok "removed plugin cannot run"

# Two builds of one program: `warden` is static (no program interpreter: it starts without the dynamic
# loader); `warden-dynamic` beside it takes the commands that may dlopen (plugin libraries, libpq).
BIN_DIR=$(dirname "$(readlink -f "$WARDEN")")
readelf -lW "$BIN_DIR/warden" | grep -q "Requesting program interpreter" && fail "warden is not a static executable"
readelf -lW "$BIN_DIR/warden-dynamic" | grep -q "Requesting program interpreter" || fail "warden-dynamic is not dynamically linked"
"$WARDEN" plugin register "$ROOT/plugins/wordcount" >/dev/null
expect_status 0 "$WARDEN" run wordcount.count --input '{"text": "a b"}'
[ "$(json_get "['words']" <<<"$OUT")" = 2 ] || fail "run through warden-dynamic: $OUT"
# Without its twin, the static build says so (70) instead of loading libraries it cannot load.
lone="$TMP_ROOT/lone"; mkdir -p "$lone"; cp "$BIN_DIR/warden" "$lone/"
expect_status 0 "$lone/warden" --version
expect_status 70 "$lone/warden" run wordcount.count --input '{"text": "a b"}'
contains "$ERR" "warden-dynamic is not next to it"
[ "$(wc -l <<<"$ERR")" = 1 ] || fail "error is not one line: $ERR"
expect_status 70 "$lone/warden" --store postgres://nowhere/x tasks
contains "$ERR" "needs libpq"
expect_status 0 "$lone/warden" --store postgres://nowhere/x profile list   # reads files only: stays static
ok "warden is static; commands that load libraries run in warden-dynamic, and say so when it is missing"
