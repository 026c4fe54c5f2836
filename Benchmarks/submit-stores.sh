#!/usr/bin/env bash
# Durable submits per second on the embedded SQLite store and on PostgreSQL, in one run (each with its own
# baseline of one commit per submit). Starts a throw-away PostgreSQL with Tests/scripts/with-postgres.sh.
# SQLite runs with 64 clients (the default) and 32, on this disk and on a simulated slow disk (slowsync.c
# adds 3.3 ms to every fsync, the slowest measured on machines of this kind): group commit must hold up on
# both. With fewer clients than a commit's worth, batches are smaller and a slow disk shows it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${WARDEN:-$ROOT/.build/release/warden}
N=${N:-8000}
summary='import json,sys; d=json.load(sys.stdin); print("%.0f submits/s group commit, %.0f/s one commit each (%sx), median %s ms, %s commits" % (d["per_second"], d["baseline_per_second"], d["ratio"], d["median_ms"], d["commits"]))'
inner() {
  slow=$(mktemp -d /tmp/warden-slowsync-XXXXXX)
  trap 'rm -rf "$slow"' EXIT
  cc -O2 -shared -fPIC -o "$slow/slowsync.so" "$ROOT/Benchmarks/slowsync.c" -ldl
  for t in 64 32; do
    echo "sqlite, $t clients: $("$W" bench submit --n "$N" --threads "$t" --json | python3 -c "$summary")"
    echo "sqlite, $t clients, fsync +3.3 ms: $(LD_PRELOAD="$slow/slowsync.so" "$W" bench submit --n "$N" --threads "$t" --json | python3 -c "$summary")"
  done
  echo "postgres: $("$W" --store "$WARDEN_TEST_PG_URL" bench submit --n "$N" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f submits/s, median %s ms (PostgreSQL batches WAL flushes itself)" % (d["per_second"], d["median_ms"]))')"
}
if [ "${1:-}" = inner ]; then inner; exit; fi
bash "$ROOT/Tests/scripts/with-postgres.sh" bash "$0" inner
