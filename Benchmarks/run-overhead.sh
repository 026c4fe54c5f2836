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
"$W" plugin register "$ROOT/plugins/wordcount" >/dev/null
INPUT='{"text": "the quick brown fox jumps over the lazy dog"}'
echo "$INPUT" >"$WARDEN_HOME/input.json"
# wordcount is cacheable: a different input per run keeps the cache out of the measurement.
hyperfine -N --warmup 3 --runs "${RUNS:-30}" --export-json "$WARDEN_HOME/h.json" \
  --command-name "warden run" "$W run wordcount.count --input @$WARDEN_HOME/input.json --retries 0 --timeout 9s --priority {N}" \
  --command-name "script directly" "sh -c '$ROOT/plugins/wordcount/bin/wordcount < $WARDEN_HOME/input.json'" \
  -L N 0,1 >/dev/null 2>&1 || true
python3 - "$WARDEN_HOME/h.json" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"]
med = {}
for x in r:
    name = x["command"].split(" ")[0] if "warden" not in x["command"] else "warden run"
    med.setdefault("warden run" if "run wordcount" in x["command"] else "script directly", []).extend(x["times"])
w, d = statistics.median(med["warden run"]) * 1000, statistics.median(med["script directly"]) * 1000
print(f"warden run (no daemon): median {w:.1f} ms; the script directly: median {d:.1f} ms; overhead {w - d:.1f} ms ({w / d:.2f}x)")
PY
