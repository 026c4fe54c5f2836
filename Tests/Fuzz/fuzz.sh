#!/usr/bin/env bash
# Builds the libFuzzer targets of Tests/Fuzz/FuzzTargets.swift (WardenCore and the plugin frame codec, with
# the address sanitizer) and runs each for FUZZ_SECONDS (default 20), starting from a seed corpus of real
# inputs (shipped profiles, example manifests, frames, quantities). Exits 1 on the first finding and leaves
# the input that caused it in .build/fuzz/findings/.
#   Tests/Fuzz/fuzz.sh [TARGET…]     (default: every target)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/.build/fuzz
SECONDS_EACH=${FUZZ_SECONDS:-20}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frames json manifest profile policy schema quantity jsonbinary lines)
mkdir -p "$OUT/lib" "$OUT/findings"
FLAGS=(-sanitize=fuzzer,address -parse-as-library -O -g)

# WardenCore as its own module (the frame codec imports it), then the targets with the codec.
if [ ! -x "$OUT/warden-fuzz" ] || [ -n "$(find "$ROOT/Sources/WardenCore" "$ROOT/Sources/WardenPlugins/Frames.swift" "$ROOT/Sources/WardenMCP/LineReader.swift" "$ROOT/Tests/Fuzz" -newer "$OUT/warden-fuzz" -name '*.swift' | head -1)" ]; then
  echo "fuzz: building (swiftc ${FLAGS[*]})" >&2
  swiftc "${FLAGS[@]}" -module-name WardenCore -emit-module -emit-module-path "$OUT/lib/WardenCore.swiftmodule" \
    -emit-library -static -o "$OUT/lib/libWardenCore.a" "$ROOT"/Sources/WardenCore/*.swift 2> >(grep -v "warning: Cannot export" >&2)
  swiftc "${FLAGS[@]}" -module-name WardenFuzz -I "$OUT/lib" -L "$OUT/lib" -lWardenCore \
    "$ROOT/Sources/WardenPlugins/Frames.swift" "$ROOT/Sources/WardenMCP/LineReader.swift" "$ROOT/Tests/Fuzz/FuzzTargets.swift" -o "$OUT/warden-fuzz" \
    2> >(grep -v "warning: Cannot export" >&2)
fi

seed() {   # seed TARGET: a corpus directory of real inputs
  local dir=$OUT/corpus/$1
  mkdir -p "$dir"
  case $1 in
    frames)
      printf '%s' '{"t":"call","id":7,"tool":"greet","input":"{\"name\":\"x\"}","timeout_ms":5000}' > "$dir/call"
      printf '%s' '{"t":"result","id":7,"rc":0,"output":"{\"ok\":true}"}' > "$dir/result"
      printf '%s' '{"t":"ready","abi":1,"name":"hello-c","version":"1.0.0","tools":["greet","sum"]}' > "$dir/ready"
      printf '%s' '{"t":"progress","id":7,"fraction":0.5,"message":"half"}' > "$dir/progress"
      printf '%s' '{"t":"fatal","stage":"init","message":"init returned 1"}' > "$dir/fatal" ;;
    json|schema|policy)
      cp "$ROOT"/plugins/*/warden-plugin.json "$dir/" 2>/dev/null || true
      printf '%s' '{"type":"object","properties":{"text":{"type":"string","maxLength":10}},"required":["text"]}' > "$dir/schema"
      printf '%s' '{"tenants":{"guest":{"quota":{"cpu":"1","memory":"1Gi","tasks":4},"rateLimit":"5/s"}},"rules":[{"id":"r","effect":"deny","tenants":["guest"],"tools":["a.*"]}]}' > "$dir/policy"
      printf '%s' '{"name":"w","steps":[{"id":"a","tool":"x.y","input":{"v":"{{steps.b.result.v}}"},"after":["b"]},{"id":"b","tool":"x.y"}]}' > "$dir/workflow" ;;
    manifest) for p in "$ROOT"/plugins/*/warden-plugin.json; do cp "$p" "$dir/$(basename "$(dirname "$p")").json"; done ;;
    profile) cp "$ROOT"/sandbox-profiles/*.json "$dir/" ;;
    jsonbinary)   # the shipped profiles as text, and as the profile cache writes them
      cp "$ROOT"/sandbox-profiles/*.json "$dir/"
      cp /run/warden/json/* "/tmp/warden-$(id -u)/json/"* "$dir/" 2>/dev/null || true ;;
    lines) printf '\x20\x03{"jsonrpc":"2.0","id":1,"method":"ping"}\r\n\nx\n' > "$dir/rpc"; printf '\x04\x01aaaaaaa\nbb\r\nc' > "$dir/long" ;;
    quantity) for q in 1 250m 1.5 64Mi 1Gi 2G 10k 1e3 30s 1.5s 2m 1h 5/s 100/m -1 12Zi; do printf '%s' "$q" > "$dir/q-${q//\//_}"; done ;;
  esac
  echo "$dir"
}

# libFuzzer and the address sanitizer report crashes themselves; Swift's backtracer would get in their way.
export SWIFT_BACKTRACE=enable=no
status=0
for t in "${targets[@]}"; do
  corpus=$(seed "$t")
  log=$OUT/$t.log
  if WARDEN_FUZZ_TARGET=$t "$OUT/warden-fuzz" -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=5 \
       -artifact_prefix="$OUT/findings/$t-" "$corpus" > "$log" 2>&1; then
    echo "fuzz $t: $(grep -Eo 'Done [0-9]+ runs' "$log" | tail -1 || echo 'done') in ${SECONDS_EACH}s, no finding"
  else
    echo "fuzz $t: FINDING (log $log)"; grep -E "Fatal error|ERROR: AddressSanitizer|SUMMARY|precondition|Test unit written" "$log" | head -5
    status=1
  fi
done
exit $status
