#!/usr/bin/env bash
# Runs every Tests/scripts/test-*.sh in order; each gets $WARDEN (the binary) and $VENV. Fails if any fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${WARDEN:?set WARDEN to the warden binary}"
failed=()
passed=0
for t in Tests/scripts/test-*.sh; do
  [ -e "$t" ] || continue
  echo "=== $t"
  start=$(date +%s)
  if bash "$t"; then
    passed=$((passed + 1))
    echo "=== PASS $t ($(( $(date +%s) - start ))s)"
  else
    failed+=("$t")
    echo "=== FAIL $t"
  fi
done
echo "script tests: $passed passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then printf '  failed: %s\n' "${failed[@]}"; exit 1; fi
[ $passed -gt 0 ] || { echo "no script tests ran"; exit 1; }
