"""`warden mcp` spoken to in raw JSON-RPC, line by line: every legacy protocol version, the 2026-07-28
envelope, error codes, pagination, concurrency, admission outcomes as isError results, progress,
cancellation (the sandbox is killed), shutdown on stdin close — with no serve and with one.
Run by test-mcp-raw.sh with WARDEN, WARDEN_HOME (initialised) and TMP_ROOT set."""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from mcp_support import (Session, make_sleeper_plugin, pgrep, task, text_of, wait_until, warden)  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
TMP = os.environ["TMP_ROOT"]
MODERN = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
          "io.modelcontextprotocol/clientCapabilities": {},
          "io.modelcontextprotocol/clientInfo": {"name": "raw-modern", "version": "1"}}


def ok(what):
    print(f"  ok: {what}", flush=True)


def setup():
    warden("plugin", "register", f"{ROOT}/plugins/wordcount")
    warden("plugin", "register", make_sleeper_plugin(f"{TMP}/sleeper"))
    warden("plugin", "register", f"{ROOT}/plugins/flaky")
    policy = {
        "tenants": {"default": {}, "guest": {"quota": {"tasks": 1}}, "limited": {"rateLimit": "1/h"},
                    "envtenant": {}},
        "rules": [{"id": "no-fail-for-guests", "effect": "deny", "tenants": ["guest"], "tools": ["sleeper.fail"]},
                  {"id": "allow-rest", "effect": "allow"}],
        "default": "deny",
    }
    with open(f"{TMP}/policy.json", "w") as f:
        json.dump(policy, f)
    warden("policy", "set", f"{TMP}/policy.json")


def legacy_versions():
    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"]:
        s = Session()
        r = s.initialize(version)
        assert r["result"]["protocolVersion"] == version, r
        assert r["result"]["capabilities"]["tools"] is not None
        names = [t["name"] for t in s.request("tools/list")["result"]["tools"]]
        assert "wordcount.count" in names and "sleeper.echo" in names, names
        res = s.call("wordcount.count", {"text": "to be or not to be"})["result"]
        assert res["isError"] is False, res
        assert json.loads(text_of(res))["words"] == 6, res
        # structuredContent exists from 2025-06-18 on; older clients only get text.
        assert ("structuredContent" in res) == (version >= "2025-06-18"), (version, res)
        assert "resultType" not in res
        assert s.close() == 0
        ok(f"initialize/list/call at {version}")
    s = Session()
    assert s.initialize("1999-01-01")["result"]["protocolVersion"] == "2025-11-25"
    s.close()
    ok("an unsupported version gets the newest handshake version")


def modern_era():
    s = Session()
    d = s.request("server/discover", {"_meta": MODERN})["result"]
    assert d["supportedVersions"] == ["2026-07-28"] and d["resultType"] == "complete", d
    tools = s.request("tools/list", {"_meta": MODERN})["result"]
    assert tools["resultType"] == "complete" and tools["ttlMs"] == 0 and tools["cacheScope"] == "private"
    res = s.call("sleeper.echo", {"x": 1}, meta=MODERN)["result"]
    assert res["resultType"] == "complete" and res["structuredContent"]["echo"] == {"x": 1}, res
    bad = s.request("tools/call", {"name": "sleeper.echo", "_meta": dict(MODERN, **{
        "io.modelcontextprotocol/protocolVersion": "2030-01-01"})})
    assert bad["error"]["code"] == -32022 and bad["error"]["data"]["supported"] == ["2026-07-28"], bad
    # The audit names the client of the envelope as the actor.
    audit = json.loads(warden("audit", "--task", res["_meta"]["warden/task"], "--json")[1])
    assert audit[0]["actor"] == "mcp:raw-modern" and audit[0]["tenant"] == "default", audit[0]
    s.close()
    ok("2026-07-28: discover, enveloped list and call, -32022 for an unknown version")


def errors_and_edge_cases():
    s = Session()
    s.initialize()
    s.send_raw(b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"\n')
    r = s.next()
    assert r["error"]["code"] == -32700 and r["id"] is None, r
    s.send_raw(b"\xff\xfe{}\n")
    assert s.next()["error"]["code"] == -32700
    assert s.request("ping")["result"] == {}
    ok("malformed JSON gets -32700 and serving goes on")

    assert s.request("resources/list")["error"]["code"] == -32601
    assert s.request("no/such/method", {"x": 1})["error"]["code"] == -32601
    ok("unknown methods get -32601")

    for params, why in [({"arguments": {}}, "no name"), ({"name": 7}, "name not a string"),
                        ({"name": "sleeper.echo", "arguments": [1, 2]}, "arguments not an object"),
                        ({"name": "nosuch.tool"}, "unknown plugin"), ({"name": "sleeper.nosuch"}, "unknown tool"),
                        ({"name": "sleeper"}, "no tool part")]:
        r = s.request("tools/call", params)
        assert r.get("error", {}).get("code") == -32602, (why, r)
    assert s.request("initialize", {"capabilities": {}})["error"]["code"] == -32602
    assert s.request("tools/list", {"cursor": "bogus"})["error"]["code"] == -32602
    assert s.request("ping", [1])["error"]["code"] in (-32600, -32602)
    ok("bad params get -32602")

    s.send({"jsonrpc": "1.0", "id": 5, "method": "ping"})
    assert s.next()["error"]["code"] == -32600
    s.send([{"jsonrpc": "2.0", "id": 6, "method": "ping"}])
    assert s.next()["error"]["code"] == -32600
    s.send({"jsonrpc": "2.0", "id": {"no": 1}, "method": "ping"})
    r = s.next()
    assert r["error"]["code"] == -32600 and r["id"] is None, r
    s.send("just a string")
    assert s.next()["error"]["code"] == -32600
    s.notify("notifications/unknown", {"x": 1})
    s.notify("notifications/cancelled", {"requestId": "never-sent"})
    s.send({"jsonrpc": "2.0", "id": 99, "result": {}})   # a response to nothing: ignored
    assert s.request("ping", id="abc") == {"jsonrpc": "2.0", "id": "abc", "result": {}}
    s.quiet(0.3)
    ok("invalid requests get -32600; notifications and stray responses get nothing")
    assert s.close() == 0


def pagination():
    s = Session("--page-size", "2")
    s.initialize()
    full = [t["name"] for t in all_tools()]
    seen, cursor, pages = [], None, 0
    while True:
        r = s.request("tools/list", {"cursor": cursor} if cursor else None)["result"]
        assert len(r["tools"]) <= 2
        seen += [t["name"] for t in r["tools"]]
        pages += 1
        cursor = r.get("nextCursor")
        if not cursor:
            break
    assert seen == full and len(set(seen)) == len(seen), (seen, full)
    assert pages == (len(full) + 1) // 2
    s.close()
    ok(f"tools/list pages of 2 walk all {len(full)} tools once ({pages} pages)")


def all_tools():
    s = Session()
    s.initialize()
    r = s.request("tools/list")["result"]
    tools = r["tools"]
    assert "nextCursor" not in r, r
    for t in tools:
        assert t["name"].count(".") == 1 and t["inputSchema"]["type"] == "object" and "description" in t, t
    s.close()
    return tools


def concurrency_and_unknown_method_at_once():
    s = Session()
    s.initialize()
    start = time.monotonic()
    ids = [s.start("tools/call", {"name": "sleeper.sleep", "arguments": {"seconds": 1.5}}) for _ in range(4)]
    unknown = s.start("bogus/method")
    r, before = s.collect(lambda m: m.get("id") == unknown)
    assert r["error"]["code"] == -32601 and time.monotonic() - start < 1.0, "the unknown method waited"
    assert not before
    done = {}
    while len(done) < 4:
        m = s.next(timeout=15)
        done[m["id"]] = m
    took = time.monotonic() - start
    assert set(done) == set(ids) and all(m["result"]["isError"] is False for m in done.values()), done
    assert took < 4.5, f"4 calls of 1.5 s took {took:.1f} s: not concurrent"
    s.close()
    ok(f"4 concurrent 1.5 s calls finished in {took:.1f} s; an unknown method was answered at once")


def admission_outcomes():
    s = Session()
    s.initialize()
    r = s.call("wordcount.count", {"text": 5})["result"]
    assert r["isError"] and "invalid input" in text_of(r) and "$.input.text" in text_of(r), r
    ok("a schema violation is an isError result naming the field")

    r = s.call("sleeper.fail")["result"]
    assert r["isError"] and "exited with 3" in text_of(r) and "the disk is on fire" in text_of(r), r
    assert task(r["_meta"]["warden/task"])["state"] == "dead"
    ok("a failed task is an isError result with its reason")
    s.close()

    g = Session("--tenant", "guest")
    g.initialize()
    names = [t["name"] for t in g.request("tools/list")["result"]["tools"]]
    assert "sleeper.fail" not in names and "sleeper.echo" in names, names
    r = g.call("sleeper.fail")["result"]
    assert r["isError"] and "no-fail-for-guests" in text_of(r), r
    ok("a policy denial is an isError result naming the rule (and the tool is not listed)")
    first = g.start("tools/call", {"name": "sleeper.sleep", "arguments": {"seconds": 2}})
    time.sleep(0.5)
    r = g.call("sleeper.echo")["result"]
    assert r["isError"] and "quota" in text_of(r), r
    assert g.response(first, timeout=15)["result"]["isError"] is False
    ok("a quota rejection is an isError result")
    g.close()

    rl = Session(env={"WARDEN_TENANT": "limited"})
    rl.initialize()
    assert rl.call("sleeper.echo")["result"]["isError"] is False
    r = rl.call("sleeper.echo")["result"]
    assert r["isError"] and "rate limit" in text_of(r), r
    ok("a rate-limit rejection is an isError result")
    rl.close()

    t = Session("--tenant", "envtenant", env={"WARDEN_TENANT": "guest"})
    t.initialize()
    r = t.call("sleeper.echo", {"a": 1})["result"]
    assert r["structuredContent"]["tenant"] == "envtenant", r
    rec = task(r["_meta"]["warden/task"])
    assert rec["tenant"] == "envtenant", rec
    t.close()
    rc, _, err = warden("mcp", "--tenant", "bad tenant!", check=False)
    assert rc == 64 and "tenant" in err, (rc, err)
    ok("--tenant (over WARDEN_TENANT) is the tenant calls run as; a malformed one exits 64")


def progress():
    s2 = Session()
    s2.initialize()
    rid = s2.start("tools/call", {"name": "sleeper.progress", "arguments": {}, "_meta": {"progressToken": 77}})
    res, before = s2.collect(lambda m: m.get("id") == rid)
    notes = [m for m in before if m.get("method") == "notifications/progress"]
    assert notes, before
    values = [n["params"]["progress"] for n in notes]
    assert all(n["params"]["progressToken"] == 77 for n in notes)
    assert values == sorted(values) and len(set(values)) == len(values), values
    assert notes[0]["params"]["message"].startswith("step"), notes
    assert res["result"]["isError"] is False
    rid = s2.start("tools/call", {"name": "sleeper.progress", "arguments": {}})
    res, before = s2.collect(lambda m: m.get("id") == rid)
    assert not [m for m in before if m.get("method") == "notifications/progress"], before
    s2.close()
    ok(f"progress notifications ({len(notes)}, increasing) only for a request with a progressToken")


def cancellation(marker="31.4159", label="in-process"):
    s = Session()
    s.initialize()
    rid = s.start("tools/call", {"name": "sleeper.sleep", "arguments": {"seconds": float(marker)}})
    pids = wait_until(lambda: pgrep(f"sleep {marker}"), what="the sandboxed sleep to start")
    time.sleep(0.2)
    t0 = time.monotonic()
    s.notify("notifications/cancelled", {"requestId": rid, "reason": "user pressed stop"})
    wait_until(lambda: not pgrep(f"sleep {marker}"), timeout=5, what="the sandbox to be killed")
    killed_in = time.monotonic() - t0
    s.quiet(1.0)  # a canceled request gets no response
    tasks = json.loads(warden("tasks", "--json", "--limit", "5")[1])
    t = next(x for x in tasks if x["tool"] == "sleep")
    assert t["state"] == "canceled" and "user pressed stop" in (t["reason"] or ""), t
    assert s.request("ping")["result"] == {}
    s.close()
    ok(f"{label}: notifications/cancelled cancels the task and kills its sandbox (pid {pids[0]} gone in {killed_in:.2f} s)")


def stdin_close(marker="32.7182"):
    s = Session()
    s.initialize()
    s.start("tools/call", {"name": "sleeper.sleep", "arguments": {"seconds": float(marker)}})
    wait_until(lambda: pgrep(f"sleep {marker}"), what="the sandboxed sleep to start")
    t0 = time.monotonic()
    rc = s.close(timeout=10)
    took = time.monotonic() - t0
    assert rc == 0, rc
    assert not pgrep(f"sleep {marker}"), "the sandbox outlived warden mcp"
    tasks = json.loads(warden("tasks", "--json", "--limit", "5")[1])
    t = next(x for x in tasks if x["tool"] == "sleep")
    assert t["state"] == "canceled", t
    # A quick call piped in with stdin already closed is still answered before exit.
    p = subprocess.run([os.environ["WARDEN"], "mcp"], input=(
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}}}) + "\n" +
        json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "sleeper.echo", "arguments": {"q": 1}}}) + "\n"
    ).encode(), capture_output=True, timeout=20)
    lines = [json.loads(x) for x in p.stdout.decode().splitlines()]
    assert p.returncode == 0 and [m["id"] for m in lines] == [1, 2] and lines[1]["result"]["isError"] is False, lines
    ok(f"stdin closed: exit in {took:.1f} s, the running task canceled and its sandbox gone; piped calls still answered")


def sigterm(marker="34.0042"):
    s = Session()
    s.initialize()
    s.start("tools/call", {"name": "sleeper.sleep", "arguments": {"seconds": float(marker)}})
    wait_until(lambda: pgrep(f"sleep {marker}"), what="the sandboxed sleep to start")
    s.p.terminate()
    rc = s.p.wait(10)
    assert rc == 128 + 15, rc
    assert not pgrep(f"sleep {marker}"), "the sandbox outlived warden mcp"
    tasks = json.loads(warden("tasks", "--json", "--limit", "5")[1])
    t = next(x for x in tasks if x["tool"] == "sleep")
    assert t["state"] == "canceled" and t["reason"] == "SIGTERM", t
    ok("SIGTERM cancels the running task, kills its sandbox and exits 143")


def through_serve():
    log = open(f"{TMP}/serve.log", "w")
    serve = subprocess.Popen([os.environ["WARDEN"], "serve", "--node", "mcpnode"], stdout=log, stderr=log)
    try:
        wait_until(lambda: os.path.exists(f"{os.environ['WARDEN_HOME']}/warden.sock"), what="serve to listen")
        time.sleep(0.3)
        s = Session()
        s.initialize()
        rid = s.start("tools/call", {"name": "sleeper.progress", "arguments": {}, "_meta": {"progressToken": "p"}})
        res, before = s.collect(lambda m: m.get("id") == rid, timeout=20)
        assert res["result"]["isError"] is False, res
        rec = task(res["result"]["_meta"]["warden/task"])
        assert rec["node"] == "mcpnode", rec
        assert [m for m in before if m.get("method") == "notifications/progress"], "no progress relayed from serve"
        s.close()
        ok("with a serve running, calls execute there and its progress is relayed")
        cancellation(marker="33.1234", label="through serve")
    finally:
        serve.terminate()
        serve.wait(20)
        log.close()


if __name__ == "__main__":
    setup()
    legacy_versions()
    modern_era()
    errors_and_edge_cases()
    pagination()
    concurrency_and_unknown_method_at_once()
    admission_outcomes()
    progress()
    cancellation()
    stdin_close()
    sigterm()
    through_serve()
