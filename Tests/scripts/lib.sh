# Shared helpers for the script tests. Source it: `. "$(dirname "$0")/lib.sh"`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${WARDEN:=$ROOT/.build/release/warden}"
export WARDEN_PROFILES="$ROOT/sandbox-profiles"
TMP_ROOT=$(mktemp -d /tmp/warden-script-XXXXXX)
CLEANUP=()
cleanup() {
  local c
  for c in "${CLEANUP[@]}"; do eval "$c" || true; done
  rm -rf "$TMP_ROOT"
}
trap cleanup EXIT

fresh_state() {
  export WARDEN_HOME="$TMP_ROOT/state-$RANDOM$RANDOM"
  "$WARDEN" init >/dev/null
}

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "  ok: $*"; }

# expect_status CODE CMD… : runs CMD, checks its exit status, keeps stdout in $OUT and stderr in $ERR.
expect_status() {
  local want=$1; shift
  set +e
  OUT=$("$@" 2>"$TMP_ROOT/stderr"); local got=$?
  set -e
  ERR=$(cat "$TMP_ROOT/stderr")
  [ "$got" = "$want" ] || fail "expected exit $want, got $got from: $* | stdout: $OUT | stderr: $ERR"
}

contains() { grep -qF -- "$2" <<<"$1" || fail "expected to find '$2' in: $1"; }
json_get() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }
