#!/usr/bin/env bash
# Dylib plugins through the CLI: the C and Swift examples register and answer from warm sandboxed workers;
# a library with the wrong ABI is refused with 65, one line, nothing stored; a crashing call fails only its
# task; bench dispatch reports every mode.
. "$(dirname "$0")/lib.sh"
flock /tmp/warden-plugins-make.lock make -s -C "$ROOT/plugins" >/dev/null
fresh_state

expect_status 0 "$WARDEN" plugin register "$ROOT/plugins/hello-c"
contains "$OUT" "registered hello-c@1.0.0 (dylib, 2 tools: greet, sum)"
expect_status 0 "$WARDEN" run hello-c.greet --input '{"name": "Ada"}'
[ "$(json_get "['greeting']" <<<"$OUT")" = "Hello, Ada!" ] || fail "greet: $OUT"
expect_status 0 "$WARDEN" run hello-c.sum --input '{"numbers": [1, 2, 3.5]}'
[ "$(json_get "['sum']" <<<"$OUT")" = 6.5 ] || fail "sum: $OUT"
ok "the C example answers"

expect_status 0 "$WARDEN" plugin register "$ROOT/plugins/hello-swift"
expect_status 0 "$WARDEN" run hello-swift.reverse --input '{"text": "héllo"}'
[ "$(json_get "['reversed']" <<<"$OUT")" = "olléh" ] || fail "reverse: $OUT"
ok "the Swift example answers (its runtime is inside the .so)"

expect_status 0 "$WARDEN" plugin show hello-c --json
[ "$(json_get "['hosting']" <<<"$OUT")" = isolated ] || fail "hosting: $OUT"

before=$("$WARDEN" audit --json | json_get "[-1]['seq']")
expect_status 65 "$WARDEN" plugin register "$ROOT/plugins/test/abi2"
contains "$ERR" '$.library: "lib/libabi2.so" has ABI version 2, but this Warden speaks version 1'
[ "$(wc -l <<<"$ERR")" = 1 ] || fail "error is not one line: $ERR"
after=$("$WARDEN" audit --json | json_get "[-1]['seq']")
[ "$before" = "$after" ] || fail "a refused registration wrote to the store"
expect_status 66 "$WARDEN" plugin show test-abi2
expect_status 65 "$WARDEN" plugin register "$ROOT/plugins/test/ctorcrash"
contains "$ERR" "crashed while loading (signal 11, SIGSEGV)"
ok "bad libraries are refused at registration with 65, nothing stored"

expect_status 0 "$WARDEN" plugin register "$ROOT/plugins/test/hostile"
expect_status 1 "$WARDEN" run hostile.segfault --json
[ "$(json_get "['state']" <<<"$OUT")" = dead ] || fail "segfault state: $OUT"
contains "$(json_get "['reason']" <<<"$OUT")" "signal 11, SIGSEGV"
expect_status 0 "$WARDEN" run hello-c.greet --input '{"name": "after"}'
expect_status 0 "$WARDEN" run hostile.ok
ok "a crashing call fails only its own task; the next calls work"

expect_status 0 "$WARDEN" bench dispatch --n 200 --plugin "$ROOT/plugins/hello-c" --json
for m in isolated isolated-parallel in-process process; do
  contains "$OUT" "\"name\" : \"$m\""
done
python3 -c "import json,sys; d=json.load(sys.stdin); assert d['name']=='dispatch' and d['median_ms']>0 and d['per_second']>0, d" <<<"$OUT" \
  || fail "bench dispatch --json: $OUT"
ok "bench dispatch reports isolated, parallel, in-process and process calls"
