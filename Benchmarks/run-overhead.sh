#!/usr/bin/env bash
# The cost of the first end-to-end path: `warden run` of the wordcount example (admission, durable task
# record, placement, sandbox, result) against running the same script directly with the same input,
# alternating in one hyperfine run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${WARDEN:-$ROOT/.build/release/warden}
command -v hyperfine >/dev/null || { echo "run-overhead: hyperfine missing (make setup installs it)"; exit 1; }
export WARDEN_HOME=$(mktemp -d /tmp/warden-bench-run-XXXXXX) WARDEN_PROFILES=$ROOT/sandbox-profiles
trap 'rm -rf "$WARDEN_HOME"' EXIT
"$W" init >/dev/null
# A copy that is not cacheable, so every run really runs.
cp -r "$ROOT/plugins/wordcount" "$WARDEN_HOME/wc"
sed -i 's/"cacheable": true/"cacheable": false/' "$WARDEN_HOME/wc/warden-plugin.json"
"$W" plugin register "$WARDEN_HOME/wc" >/dev/null
INPUT='{"text": "the quick brown fox jumps over the lazy dog"}'
echo "$INPUT" >"$WARDEN_HOME/input.json"
hyperfine -N --warmup 3 --runs "${RUNS:-30}" --export-json "$WARDEN_HOME/h.json" \
  "$W run wordcount.count --input @$WARDEN_HOME/input.json" \
  "sh -c '$WARDEN_HOME/wc/bin/wordcount < $WARDEN_HOME/input.json'" >/dev/null
python3 - "$WARDEN_HOME/h.json" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"]
w, d = r[0]["median"] * 1000, r[1]["median"] * 1000
print(f"warden run (no daemon): median {w:.1f} ms; the script directly: median {d:.1f} ms; overhead {w - d:.1f} ms ({w / d:.2f}x)")
PY
