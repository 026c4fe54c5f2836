#!/usr/bin/env bash
# Crash test: kill -9 `warden serve` many times while clients submit keyed tasks (some clients are killed
# mid-submit and retry with the same key). Afterwards: every acknowledged task exists and ends terminal,
# no idempotency key maps to two tasks, a retried key returns the task first acknowledged, and the audit
# chain verifies. CRASH_KILLS sets the number of serve kills (default 20).
. "$(dirname "$0")/lib.sh"
fresh_state
testkit_plugin true 64 false
python3 - "$WARDEN" "$WARDEN_HOME" "$TMP_ROOT" "${CRASH_KILLS:-20}" <<'PY'
import json, os, random, signal, subprocess, sys, threading, time
warden, home, tmp, kills = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
env = dict(os.environ, WARDEN_HOME=home)
random.seed(7)
acks = {}            # key -> id acknowledged (exit 0)
lock = threading.Lock()
stop = False
client_procs = set()
killed_clients = 0

def serve():
    return subprocess.Popen([warden, "serve", "--node", "crashnode", "--lease", "2s"], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/serve-crash.log", "a"))

def client(cid):
    global killed_clients
    i = 0
    while not stop:
        key = f"c{cid}-{i}"
        tool = "testkit.sleep" if i % 3 == 0 else "testkit.echo"
        inp = json.dumps({"seconds": random.choice([0, 0.05, 0.2]), "tag": key}) if tool == "testkit.sleep" else json.dumps({"k": key})
        for attempt in range(50):
            p = subprocess.Popen([warden, "submit", tool, "--idempotency-key", key, "--input", inp], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            with lock: client_procs.add(p)
            out, err = p.communicate()
            with lock: client_procs.discard(p)
            if p.returncode == 0:
                tid = out.decode().strip()
                with lock:
                    if key in acks and acks[key] != tid:
                        print(f"FAIL: key {key} acknowledged as {acks[key]} and then {tid}", flush=True); os._exit(1)
                    acks[key] = tid
                break
            time.sleep(0.02)   # killed, or the store was busy: retry with the same key
        i += 1

clients = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(4)]
for t in clients: t.start()
srv = serve()
for k in range(kills):
    time.sleep(random.uniform(0.3, 1.0))
    if random.random() < 0.5:
        with lock: victims = list(client_procs)
        if victims:
            try: random.choice(victims).send_signal(signal.SIGKILL); killed_clients += 1
            except ProcessLookupError: pass
    srv.send_signal(signal.SIGKILL); srv.wait()
    srv = serve()
stop = True
for t in clients: t.join(60)
# Let the last serve finish everything.
deadline = time.time() + 120
while time.time() < deadline:
    tasks = json.loads(subprocess.run([warden, "tasks", "--json", "--limit", "1000000"], env=env, capture_output=True).stdout)
    live = [t for t in tasks if t["state"] not in ("succeeded", "dead", "rejected", "canceled", "in_doubt")]
    if not live: break
    time.sleep(0.5)
srv.send_signal(signal.SIGTERM); srv.wait(30)
tasks = json.loads(subprocess.run([warden, "tasks", "--json", "--limit", "1000000"], env=env, capture_output=True).stdout)
by_id = {t["id"]: t for t in tasks}
problems = []
for key, tid in acks.items():
    t = by_id.get(tid)
    if t is None: problems.append(f"acknowledged task {tid} ({key}) is missing")
    elif t["state"] not in ("succeeded", "dead", "rejected", "canceled", "in_doubt"): problems.append(f"{tid} ({key}) ended {t['state']}")
    elif t["idempotency_key"] != key: problems.append(f"{tid} has key {t['idempotency_key']}, acknowledged for {key}")
keys = {}
for t in tasks:
    k = t["idempotency_key"]
    if k: keys.setdefault((t["tenant"], k), []).append(t["id"])
dups = {k: v for k, v in keys.items() if len(v) > 1}
if dups: problems.append(f"keys with two tasks: {list(dups.items())[:3]}")
states = {}
for t in tasks: states[t["state"]] = states.get(t["state"], 0) + 1
audit = subprocess.run([warden, "audit", "--verify"], env=env, capture_output=True, text=True)
if audit.returncode != 0: problems.append("audit: " + audit.stderr.strip())
print(f"  crash test: {kills} serve kills, {killed_clients} client kills, {len(acks)} acknowledged tasks, states {states}; {audit.stdout.strip()}")
if problems:
    for p in problems[:20]: print("FAIL:", p)
    sys.exit(1)
PY
ok "nothing acknowledged was lost, no key maps to two tasks, the audit chain verifies"
