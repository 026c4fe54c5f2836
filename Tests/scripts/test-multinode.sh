#!/usr/bin/env bash
# Many nodes on PostgreSQL: a leader and a standby serve on the host, three agents in network namespaces
# reaching PostgreSQL over veth pairs on a test-only subnet. Covers spreading by capacity, kill -9 of an agent
# mid-task (idempotent work re-queued and re-run elsewhere, non-idempotent work in_doubt), kill -9 of the
# leader (the standby takes over, no double placement), and an agent cut off from the network. Agents enter
# only the network namespace (nsenter), not `ip netns exec`, which remounts /sys and so hides the cgroups.
. "$(dirname "$0")/lib.sh"
if [ "${1:-}" != inner ]; then
  command -v ip >/dev/null || fail "iproute2 missing"
  [ "$(id -u)" = 0 ] || fail "this test needs root for network namespaces"
  NS_PREFIX="wt$$"
  ip link add "${NS_PREFIX}br" type bridge
  ip addr add 10.77.0.1/24 dev "${NS_PREFIX}br"; ip link set "${NS_PREFIX}br" up
  for i in 1 2 3; do
    ip netns add "${NS_PREFIX}n$i"
    ip link add "${NS_PREFIX}h$i" type veth peer name "${NS_PREFIX}p$i"
    ip link set "${NS_PREFIX}p$i" netns "${NS_PREFIX}n$i"
    ip link set "${NS_PREFIX}h$i" master "${NS_PREFIX}br" up
    ip -n "${NS_PREFIX}n$i" addr add "10.77.0.1$i/24" dev "${NS_PREFIX}p$i"
    ip -n "${NS_PREFIX}n$i" link set "${NS_PREFIX}p$i" up
    ip -n "${NS_PREFIX}n$i" link set lo up
  done
  teardown() { for i in 1 2 3; do ip netns del "${NS_PREFIX}n$i" 2>/dev/null; done; ip link del "${NS_PREFIX}br" 2>/dev/null; true; }
  trap teardown EXIT
  PG_EXTRA_NET=10.77.0.1/24 NS_PREFIX=$NS_PREFIX bash "$ROOT/Tests/scripts/with-postgres.sh" bash "$0" inner
  exit $?
fi

HOSTURL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
NSURL="postgresql://postgres@10.77.0.1:$PG_PORT/postgres"
export WARDEN_STORE=$HOSTURL
export WARDEN_HOME="$TMP_ROOT/host"; mkdir -p "$WARDEN_HOME"
testkit_plugin true 64 false        # idempotent copy: testkit
IDEM=$TESTKIT
NONIDEM="$TMP_ROOT/nonidem"; cp -r "$IDEM" "$NONIDEM"
sed -i 's/"name": "testkit"/"name": "nonidem"/; s/"idempotent": true/"idempotent": false/' "$NONIDEM/warden-plugin.json"
"$WARDEN" plugin register "$NONIDEM" >/dev/null

serve_bg() { # name args…
  local name=$1; shift
  WARDEN_HOME="$TMP_ROOT/$name" "$WARDEN" "$@" >>"$TMP_ROOT/$name.log" 2>&1 &
  echo $!
}
agent() { # i cpu
  mkdir -p "$TMP_ROOT/a$1"
  WARDEN_HOME="$TMP_ROOT/a$1" nsenter --net=/run/netns/"${NS_PREFIX}n$1" "$WARDEN" agent --store "$NSURL" --node "a$1" --cpu "$2" --memory 2Gi --lease 3s >>"$TMP_ROOT/a$1.log" 2>&1 &
  echo $!
}
mkdir -p "$TMP_ROOT/leader" "$TMP_ROOT/standby"
LEADER=$(serve_bg leader serve --node leader --no-executor --lease 3s)
sleep 0.5
STANDBY=$(serve_bg standby serve --node standby --no-executor --lease 3s)
A1=$(agent 1 2); A2=$(agent 2 1); A3=$(agent 3 1)
CLEANUP+=("kill -9 $LEADER $STANDBY $A1 $A2 $A3 2>/dev/null")
for _ in $(seq 100); do [ "$("$WARDEN" nodes --json | python3 -c 'import json,sys; print(sum(n["ready"] for n in json.load(sys.stdin)))')" = 3 ] && break; sleep 0.1; done
expect_status 0 "$WARDEN" nodes
ok "three agents registered from their network namespaces, ready"

node_of() { "$WARDEN" status "$1" --json | json_get "['node']"; }
state_of() { "$WARDEN" status "$1" --json | json_get "['state']"; }

# 1. Spread by capacity: 8 tasks of 500m that each run 1.5 s; a1 holds 4, a2 and a3 two each.
ids=()
for i in $(seq 8); do ids+=("$("$WARDEN" submit testkit.sleep --cpu 500m --input "{\"seconds\": 1.5, \"tag\": \"spread$i\"}")"); done
for id in "${ids[@]}"; do expect_status 0 "$WARDEN" wait "$id" --timeout 60s; done
python3 - "$WARDEN" "${ids[@]}" <<'PY' || fail "work did not spread by capacity"
import json, subprocess, sys
w, ids = sys.argv[1], sys.argv[2:]
nodes = [json.loads(subprocess.run([w, "status", i, "--json"], capture_output=True).stdout)["node"] for i in ids]
count = {n: nodes.count(n) for n in set(nodes)}
print("  placements:", count)
assert set(count) == {"a1", "a2", "a3"}, count
PY
ok "work spread over all three nodes by capacity"

# 2. kill -9 an agent mid-task.
k_idem=(); k_non=()
for i in 1 2 3 4; do k_idem+=("$("$WARDEN" submit testkit.sleep --cpu 500m --input "{\"seconds\": 4, \"tag\": \"ki$i\"}")"); done
for i in 1 2 3 4; do k_non+=("$("$WARDEN" submit nonidem.sleep --cpu 500m --input "{\"seconds\": 4, \"tag\": \"kn$i\"}")"); done
# Once all eight run, the node running most of them is the victim (one `tasks` call: status per task is slow).
running_on() {
  "$WARDEN" tasks --json --limit 100 | python3 -c '
import json, sys
ids = set(sys.argv[1:])
for t in json.load(sys.stdin):
    if t["id"] in ids and t["state"] == "running": print(t["node"], t["id"])' "${k_idem[@]}" "${k_non[@]}"
}
for _ in $(seq 100); do [ "$(running_on | wc -l)" = 8 ] && break; sleep 0.1; done
snapshot=$(running_on)
victim_node=$(awk '{print $1}' <<<"$snapshot" | sort | uniq -c | sort -rn | awk 'NR==1 {print $2}')
mapfile -t victims < <(awk -v n="$victim_node" '$1 == n {print $2}' <<<"$snapshot")
[ ${#victims[@]} -gt 0 ] || fail "nothing running on $victim_node to kill"
declare -A PIDS=([a1]=$A1 [a2]=$A2 [a3]=$A3)
t0=$(date +%s.%N)
kill -9 "${PIDS[$victim_node]}"
idx=$(( ${victim_node#a} - 1 ))
for _ in $(seq 200); do [ "$("$WARDEN" nodes --json | json_get "[$idx]['ready']")" = False ] && break; sleep 0.1; done
t1=$(date +%s.%N)
for id in "${victims[@]}"; do
  for _ in $(seq 300); do s=$(state_of "$id"); [[ "$s" =~ ^(succeeded|in_doubt|dead)$ ]] && break; sleep 0.1; done
  case " ${k_idem[*]} " in
    *" $id "*) [ "$s" = succeeded ] || fail "idempotent $id ended $s"; [ "$(node_of "$id")" != "$victim_node" ] || fail "re-run on the dead node";;
    *) [ "$s" = in_doubt ] || fail "non-idempotent $id ended $s";;
  esac
done
echo "  agent kill ($victim_node, ${#victims[@]} running tasks): node not-ready after $(python3 -c "print(round($t1-$t0,1))") s"
ok "kill -9 of an agent: its node went not-ready, idempotent work re-ran elsewhere, non-idempotent work is in_doubt"
for id in "${k_idem[@]}" "${k_non[@]}"; do for _ in $(seq 300); do [[ "$(state_of "$id")" =~ ^(succeeded|in_doubt|dead)$ ]] && break; sleep 0.1; done; done

# 3. kill -9 the leader: the standby takes over; no task is ever placed twice for one attempt.
t0=$(date +%s.%N)
kill -9 "$LEADER"
probe=$("$WARDEN" submit testkit.echo --cpu 100m)
expect_status 0 "$WARDEN" wait "$probe" --timeout 60s
t1=$(date +%s.%N)
echo "  leader kill: a new submission ran $(python3 -c "print(round($t1-$t0,1))") s after the kill"
python3 - "$WARDEN" <<'PY' || fail "double placement"
import json, subprocess, sys
w = sys.argv[1]
for t in json.loads(subprocess.run([w, "tasks", "--json", "--limit", "100000"], capture_output=True).stdout):
    h = json.loads(subprocess.run([w, "status", t["id"], "--json"], capture_output=True).stdout)["history"]
    placed = [e for e in h if e["to"] == "placed"]
    assert len(placed) <= t["attempts"] + sum(1 for e in h if e["from"] == "placed" and e["to"] == "queued"), (t["id"], h)
PY
ok "kill -9 of the leader: the standby took over, no double placement"

# 4. Cut an agent off the network: its running task's lease expires, it re-runs elsewhere; the stale agent
#    cannot overwrite the newer result (fencing by lease epoch).
cut=$("$WARDEN" submit testkit.sleep --cpu 500m --input '{"seconds": 3, "tag": "cut"}')
for _ in $(seq 100); do [ "$(state_of "$cut")" = running ] && break; sleep 0.1; done
n=$(node_of "$cut"); i=${n#a}
ip -n "${NS_PREFIX}n$i" link set "${NS_PREFIX}p$i" down
for _ in $(seq 300); do [ "$(state_of "$cut")" = succeeded ] && break; sleep 0.1; done
[ "$(state_of "$cut")" = succeeded ] || fail "cut-off task ended $(state_of "$cut")"
[ "$(node_of "$cut")" != "$n" ] || fail "the task finished on the cut-off node"
ip -n "${NS_PREFIX}n$i" link set "${NS_PREFIX}p$i" up
sleep 4
[ "$(node_of "$cut")" != "$n" ] || fail "the stale agent overwrote the result"
expect_status 0 "$WARDEN" status "$cut" --json
[ "$(json_get "['attempts']" <<<"$OUT")" -ge 2 ] || fail "expected a second attempt"
ok "an agent cut off from the network loses its lease; the task re-runs elsewhere; the stale agent cannot overwrite it"
expect_status 0 "$WARDEN" audit --verify
