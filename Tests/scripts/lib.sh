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

# testkit_plugin [idempotent] [concurrency] [cacheable]: a copy of Tests/plugins/testkit with a shared dir.
testkit_plugin() {
  local idem=${1:-false} conc=${2:-8} cache=${3:-false}
  SHARED="$TMP_ROOT/shared-$RANDOM$RANDOM"; mkdir -p "$SHARED"; chmod 777 "$SHARED"
  TESTKIT="$TMP_ROOT/testkit-$RANDOM$RANDOM"; cp -r "$ROOT/Tests/plugins/testkit" "$TESTKIT"
  sed -i "s|@SHARED@|$SHARED|; s|@IDEMPOTENT@|$idem|; s|@CONCURRENCY@|$conc|; s|@CACHEABLE@|$cache|" "$TESTKIT/warden-plugin.json"
  "$WARDEN" plugin register "$TESTKIT" >/dev/null
}

# start_serve [args…]: a serve on the current state, in the background; waits until it answers.
start_serve() {
  "$WARDEN" serve --node testnode "$@" >>"$TMP_ROOT/serve.log" 2>&1 &
  SERVE_PID=$!
  CLEANUP+=("kill -9 $SERVE_PID 2>/dev/null")
  for _ in $(seq 100); do
    [ -S "$WARDEN_HOME/warden.sock" ] && "$WARDEN" nodes --json | grep -q '"ready" : true' && return 0
    sleep 0.05
  done
  cat "$TMP_ROOT/serve.log" >&2
  fail "serve did not come up"
}

stop_serve() {
  kill -TERM "$SERVE_PID" 2>/dev/null || true
  wait "$SERVE_PID" 2>/dev/null || true
}

# wait_state ID STATE [seconds]
wait_state() {
  local id=$1 want=$2 secs=${3:-20}
  for _ in $(seq $((secs * 20))); do
    s=$("$WARDEN" status "$id" --json | json_get "['state']")
    [ "$s" = "$want" ] && return 0
    sleep 0.05
  done
  fail "task $id is $s, expected $want"
}
