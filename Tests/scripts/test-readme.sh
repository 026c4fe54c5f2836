#!/usr/bin/env bash
# Every example in the README runs as written: the tour block is extracted and run with bash -e from the
# repository root (it puts .build/release on PATH itself).
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
[ -x .build/release/warden ] || fail "the tour needs the release build (make build)"
python3 - README.md >"$TMP_ROOT/tour.sh" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"<!-- tour:.*?-->\n```sh\n(.*?)```", text, re.S)
assert m, "no tour block in README.md"
print(m.group(1))
PY
rm -rf /tmp/warden-tour /tmp/warden-tour-policy.json /tmp/warden-tour-serve.log
set +e
out=$(bash -e "$TMP_ROOT/tour.sh" 2>&1)
rc=$?
set -e
[ $rc = 0 ] || { echo "$out" | tail -30; fail "the README tour failed (exit $rc)"; }
contains "$out" '"words" : 6'
contains "$out" "exit 77 (77: denied by policy)"
contains "$out" "audit chain intact"
contains "$out" 'warden_admissions_total{outcome="denied"} 1'
pkill -f "warden serve --node tour-node" 2>/dev/null || true
rm -rf /tmp/warden-tour
ok "the README tour runs as written"
