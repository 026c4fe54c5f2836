"""End to end: the SDK's stdio client → `warden mcp` → a sandboxed mcp-kind plugin whose server is written
with the SDK's own server API (plugins/mcp-demo/server.py, MCPServer / FastMCP) → back. Run by
test-mcp-plugin.sh with WARDEN and WARDEN_HOME (mcp-demo registered)."""

import asyncio
import json
import os
import sys

import anyio
from mcp import Client, StdioServerParameters

PARAMS = StdioServerParameters(command=os.environ["WARDEN"], args=["mcp"], env=dict(os.environ))


def ok(what):
    print(f"  ok: {what}", flush=True)


def text(r):
    return "\n".join(c.text for c in r.content if getattr(c, "text", None) is not None)


async def whoami(c):
    r = await c.call_tool("mcp-demo.whoami", {})
    assert not r.is_error, r
    return json.loads(text(r))


async def main():
    async with Client(PARAMS) as c:
        assert c.protocol_version == "2026-07-28"
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert {"mcp-demo.add", "mcp-demo.slow", "mcp-demo.sleep", "mcp-demo.crash"} <= set(tools), tools.keys()
        assert tools["mcp-demo.add"].input_schema["required"] == ["a", "b"], tools["mcp-demo.add"].input_schema
        assert tools["mcp-demo.add"].description == "Add two integers."
        ok("the plugin server's tools are re-exported as mcp-demo.TOOL with their schemas")

        r = await c.call_tool("mcp-demo.add", {"a": 40, "b": 2})
        assert not r.is_error and text(r) == "42" and r.structured_content == {"result": 42}, r
        me = await whoami(c)
        assert me["uid"] == 65534 and me["cwd"] == "/plugin" and me["pid"] < 10, me
        ok(f"a call goes client → warden → sandboxed server (uid {me['uid']}, cwd {me['cwd']}, pid {me['pid']} in its namespace) → back")

        seen = []

        async def on_progress(progress, total, message):
            seen.append((progress, message))

        r = await c.call_tool("mcp-demo.slow", {"steps": 4}, progress_callback=on_progress)
        assert not r.is_error and text(r) == "done after 4 steps", r
        assert [p for p, _ in seen] == [0.25, 0.5, 0.75, 1.0], seen
        assert seen[-1][1] == "step 4 of 4", seen
        ok("the server's progress notifications reach the client")

        r = await c.call_tool("mcp-demo.add", {"a": 1, "b": "two"})
        assert r.is_error and "invalid input" in text(r), r
        r = await c.call_tool("mcp-demo.fail", {"message": "quota of coffee exceeded"})
        assert r.is_error and "quota of coffee exceeded" in text(r), r
        ok("schema violations and tool errors come back as isError with the reason")

        before = await whoami(c)
        with anyio.move_on_after(1.5):
            await c.call_tool("mcp-demo.sleep", {"seconds": 30})
            raise AssertionError("sleep returned")
        for _ in range(100):
            after = await whoami(c)
            if after["cancelled"] > before["cancelled"]:
                break
            await anyio.sleep(0.05)
        assert after["cancelled"] == before["cancelled"] + 1, (before, after)
        assert after["instance"] == before["instance"], "the server was restarted instead of canceled"
        ok("notifications/cancelled travels on to the plugin server, which stays up")

        r = await c.call_tool("mcp-demo.crash", {})
        assert r.is_error and "died during the call" in text(r), r
        task_id = r.meta["warden/task"]
        again = await whoami(c)
        assert again["instance"] != before["instance"], "the server was not restarted"
        ok("a crash fails the call (retried, then dead) and the next call gets a fresh server")
        r = await c.call_tool("mcp-demo.add", {"a": 2, "b": 3})
        assert not r.is_error and text(r) == "5"
    print(task_id)


asyncio.run(main())
