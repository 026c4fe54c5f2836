#!/usr/bin/env bash
# Durable submits per second on the embedded SQLite store and on PostgreSQL, in one run (each with its own
# baseline of one commit per submit). Starts a throw-away PostgreSQL with Tests/scripts/with-postgres.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${WARDEN:-$ROOT/.build/release/warden}
N=${N:-4000}
inner() {
  echo "sqlite:   $("$W" bench submit --n "$N" --threads 32 --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(f"{d["per_second"]:.0f} submits/s group commit, {d["baseline_per_second"]:.0f}/s one commit each ({d["ratio"]}x), median {d["median_ms"]} ms")')"
  echo "postgres: $("$W" --store "$WARDEN_TEST_PG_URL" bench submit --n "$N" --threads 32 --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(f"{d["per_second"]:.0f} submits/s, median {d["median_ms"]} ms (PostgreSQL batches WAL flushes itself)")')"
}
if [ "${1:-}" = inner ]; then inner; exit; fi
bash "$ROOT/Tests/scripts/with-postgres.sh" bash "$0" inner
