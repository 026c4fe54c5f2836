#!/usr/bin/env bash
# `make bench`: runs every Benchmarks/*.sh (each gets $WARDEN, the release binary). Fails if any fails.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${WARDEN:?set WARDEN to the release warden binary}"
export WARDEN
failed=0
for b in Benchmarks/*.sh; do
  [ "$b" = Benchmarks/run-all.sh ] && continue
  echo "=== $b"
  bash "$b" || { echo "=== FAIL $b"; failed=1; }
done
exit $failed
