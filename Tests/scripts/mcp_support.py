"""Helpers for the MCP script tests (standard library only): a raw JSON-RPC session with `warden mcp` that
checks every stdout line is a protocol message, and test plugins written into a temporary directory."""

import json
import os
import queue
import subprocess
import textwrap
import threading
import time

WARDEN = os.environ["WARDEN"]


def warden(*args, check=True, env=None):
    """Runs a warden command; returns (exit status, stdout, stderr)."""
    p = subprocess.run([WARDEN, *args], capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"warden {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    return p.returncode, p.stdout, p.stderr


def task(task_id):
    return json.loads(warden("status", task_id, "--json")[1])


class Session:
    """`warden mcp` on pipes. Every line it writes to stdout must be one JSON-RPC 2.0 message."""

    def __init__(self, *args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen([WARDEN, "mcp", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=e)
        self.messages = queue.Queue()
        self.stray = []  # stdout lines that are not protocol messages
        self.stderr = []
        self.next_id = 1000
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            try:
                m = json.loads(line)
                ok = isinstance(m, dict) and m.get("jsonrpc") == "2.0" and (
                    "method" in m or ("id" in m and ("result" in m) != ("error" in m)))
            except ValueError:
                ok = False
            if ok:
                self.messages.put(m)
            else:
                self.stray.append(line)
        self.messages.put(None)

    def _read_err(self):
        for line in self.p.stderr:
            self.stderr.append(line.decode(errors="replace"))

    def send_raw(self, data: bytes):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def send(self, message):
        self.send_raw(json.dumps(message).encode() + b"\n")

    def notify(self, method, params=None):
        m = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            m["params"] = params
        self.send(m)

    def start(self, method, params=None, id=None):
        """Sends a request without waiting; returns its id."""
        if id is None:
            self.next_id += 1
            id = self.next_id
        m = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            m["params"] = params
        self.send(m)
        return id

    def next(self, timeout=10):
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout}s; stderr: {''.join(self.stderr)[-2000:]}")
        if m is None:
            raise AssertionError(f"warden mcp closed stdout; stderr: {''.join(self.stderr)[-2000:]}")
        return m

    def collect(self, pred, timeout=10):
        """Messages until one satisfies pred; returns (that message, the ones before it)."""
        before = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.next(max(0.01, deadline - time.monotonic()))
            if pred(m):
                return m, before
            before.append(m)

    def response(self, id, timeout=10):
        return self.collect(lambda m: m.get("id") == id and "method" not in m, timeout)[0]

    def request(self, method, params=None, id=None, timeout=10):
        return self.response(self.start(method, params, id), timeout)

    def initialize(self, version="2025-11-25"):
        r = self.request("initialize", {"protocolVersion": version, "capabilities": {},
                                        "clientInfo": {"name": "raw-test", "version": "1"}})
        self.notify("notifications/initialized")
        return r

    def call(self, name, arguments=None, timeout=30, meta=None):
        params = {"name": name, "arguments": arguments or {}}
        if meta:
            params["_meta"] = meta
        return self.request("tools/call", params, timeout=timeout)

    def quiet(self, seconds):
        """Asserts nothing arrives for `seconds`."""
        try:
            m = self.messages.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message: {m}")

    def close(self, timeout=10):
        """Closes stdin; returns the exit status (asserting it exits within `timeout`)."""
        if not self.p.stdin.closed:
            self.p.stdin.close()
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise AssertionError(f"warden mcp did not exit within {timeout}s of stdin closing")
        assert not self.stray, f"non-protocol output on stdout: {self.stray[:3]}"
        return rc


def text_of(result):
    return "\n".join(c.get("text", "") for c in result.get("content", []))


def make_sleeper_plugin(directory):
    """A process plugin for the tests: sleep (exec's `sleep SECONDS`, so the sandboxed process can be found
    with pgrep), progress (reports `warden:progress` lines), fail (exits 3), echo."""
    os.makedirs(f"{directory}/bin", exist_ok=True)
    with open(f"{directory}/bin/tool", "w") as f:
        f.write(textwrap.dedent("""\
            #!/usr/bin/python3
            import json, os, sys, time
            data = json.load(sys.stdin)
            tool = os.environ["WARDEN_TOOL"]
            if tool == "sleep":
                os.execvp("sleep", ["sleep", str(data["seconds"])])
            elif tool == "progress":
                for i in range(1, 4):
                    print(f"warden:progress {i / 4} step {i}", file=sys.stderr, flush=True)
                    time.sleep(0.05)
                print(json.dumps({"steps": 3}))
            elif tool == "fail":
                print("the disk is on fire", file=sys.stderr)
                sys.exit(3)
            else:
                print(json.dumps({"echo": data, "tenant": os.environ.get("WARDEN_TENANT")}))
            """))
    os.chmod(f"{directory}/bin/tool", 0o755)
    obj = {"type": "object"}
    manifest = {
        "name": "sleeper", "version": "1.0.0", "kind": "process", "exec": ["bin/tool"],
        "tools": [
            {"name": "sleep", "description": "Sleep for some seconds.",
             "inputSchema": {"type": "object", "properties": {"seconds": {"type": "number", "minimum": 0}},
                             "required": ["seconds"]}},
            {"name": "progress", "description": "Report progress three times.", "inputSchema": obj},
            {"name": "fail", "description": "Fail with exit status 3.", "inputSchema": obj},
            {"name": "echo", "description": "Echo the input.", "inputSchema": obj},
        ],
        "resources": {"cpu": "100m", "memory": "32Mi"},
        "timeout": "60s",
    }
    with open(f"{directory}/warden-plugin.json", "w") as f:
        json.dump(manifest, f)
    return directory


def pgrep(pattern):
    r = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(x) for x in r.stdout.split()]


def wait_until(cond, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
