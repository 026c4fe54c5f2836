#!/usr/bin/env bash
# Network isolation between sandboxes, with network namespaces made ahead of time (NetnsPool): a listener in
# one sandbox (TCP on 127.0.0.1 and an abstract UNIX socket, which lives in the network namespace) is reachable
# from inside its own sandbox and unreachable from a second sandbox and from the host. Control: the same
# listener run with --network host is reachable, so the probe can tell the difference.
. "$(dirname "$0")/lib.sh"
export WARDEN_HOME="$TMP_ROOT/state"
SH="$TMP_ROOT/shared"; mkdir -p "$SH"; chmod 777 "$SH"
cat >"$SH/listen.py" <<'PY'
import os, socket, sys, time
port, name = int(sys.argv[1]), b"\0warden-netns-" + sys.argv[1].encode()
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("127.0.0.1", port)); t.listen()
u = socket.socket(socket.AF_UNIX); u.bind(name); u.listen()
socket.create_connection(("127.0.0.1", port), timeout=2).close()          # reachable from its own sandbox
c = socket.socket(socket.AF_UNIX); c.connect(name); c.close()
open("/shared/ready", "w").close()
deadline = time.time() + 20
while not os.path.exists("/shared/done") and time.time() < deadline: time.sleep(0.05)
PY
cat >"$SH/probe.py" <<'PY'
import socket, sys
port, name = int(sys.argv[1]), b"\0warden-netns-" + sys.argv[1].encode()
res = []
try: socket.create_connection(("127.0.0.1", port), timeout=2).close(); res.append("tcp:reached")
except OSError as e: res.append("tcp:" + type(e).__name__)
try: c = socket.socket(socket.AF_UNIX); c.connect(name); res.append("unix:reached")
except OSError as e: res.append("unix:" + type(e).__name__)
print(" ".join(res))
PY

# listen MODE PORT: a listener sandbox in the background, waiting until it is ready.
listen() {
  rm -f "$SH/ready" "$SH/done"
  "$WARDEN" sandbox exec --network "$1" --bind "$SH:/shared" -- python3 /shared/listen.py "$2" >"$TMP_ROOT/listen.log" 2>&1 &
  LPID=$!
  for _ in $(seq 200); do [ -e "$SH/ready" ] && return 0; kill -0 $LPID 2>/dev/null || break; sleep 0.05; done
  cat "$TMP_ROOT/listen.log" >&2; fail "listener ($1) did not come up"
}
finish() { touch "$SH/done"; wait $LPID || fail "listener exited $?: $(cat "$TMP_ROOT/listen.log")"; }

listen loopback 47011
inside=$("$WARDEN" sandbox exec --network loopback --ro-bind "$SH:/shared" -- python3 /shared/probe.py 47011)
host=$(python3 "$SH/probe.py" 47011)
finish
[ "$inside" = "tcp:ConnectionRefusedError unix:ConnectionRefusedError" ] || fail "a second sandbox reached the first: $inside"
[ "$host" = "tcp:ConnectionRefusedError unix:ConnectionRefusedError" ] || fail "the host reached a sandbox: $host"
ok "a listener in one sandbox is unreachable from another sandbox and from the host ($inside)"

# Control: with --network host the same probe reaches the same listener.
listen host 47012
control=$(python3 "$SH/probe.py" 47012)
finish
[ "$control" = "tcp:reached unix:reached" ] || fail "control: the probe cannot reach a host-network listener: $control"
ok "control: the probe reaches a host-network listener ($control)"

# The pre-made namespace belongs to the host's user namespace: nothing inside may reconfigure it.
out=$("$WARDEN" sandbox exec --network loopback -- python3 -c '
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try: fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", 0)); print("lo reconfigured")
except OSError as e: print("refused", e.errno)')
[ "$out" = "refused 1" ] || fail "a sandbox could bring its loopback down: $out"
ok "a sandbox cannot reconfigure its network (EPERM)"
