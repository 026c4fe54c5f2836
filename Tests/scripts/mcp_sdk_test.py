"""`warden mcp` driven by the official Python SDK's stdio client (run with the venv's python): in `auto` mode
the SDK probes `server/discover` at 2026-07-28 first (and would fall back to `initialize`), in `legacy` mode
it does the handshake. Both: list, call, progress, isError, cancellation. Also times connect + list + one
call. Run by test-mcp-sdk.sh with WARDEN, WARDEN_HOME (with the sleeper and wordcount plugins) and SDK_RUNS."""

import asyncio
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from mcp_support import pgrep  # noqa: E402

import anyio  # noqa: E402
import mcp  # noqa: E402

try:
    from mcp import Client, StdioServerParameters
except ImportError:
    raise SystemExit(f"FAIL: the venv's mcp SDK ({getattr(mcp, '__version__', '?')}) has no mcp.Client; "
                     "this test needs mcp >= 2 (rebuild the venv: make venv)")

PARAMS = StdioServerParameters(command=os.environ["WARDEN"], args=["mcp"], env=dict(os.environ))


def ok(what):
    print(f"  ok: {what}", flush=True)


async def timed_connect_list_call(mode):
    start = time.monotonic()
    async with Client(PARAMS, mode=mode) as c:
        tools = await c.list_tools()
        r = await c.call_tool("wordcount.count", {"text": "one two three"})
        took = time.monotonic() - start
    assert "wordcount.count" in [t.name for t in tools.tools]
    assert not r.is_error and r.structured_content["words"] == 3, r
    return took


async def session(mode, marker):
    async with Client(PARAMS, mode=mode) as c:
        if mode == "auto":
            assert c.session.discover_result is not None, "auto mode did not adopt the 2026-07-28 revision"
            assert c.protocol_version == "2026-07-28", c.protocol_version
        else:
            assert c.session.initialize_result is not None
            assert c.protocol_version == "2025-11-25", c.protocol_version
        assert c.server_info.name == "warden"
        version = c.protocol_version

        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert {"sleeper.echo", "sleeper.sleep", "wordcount.count"} <= set(tools), tools.keys()
        assert tools["wordcount.count"].input_schema["required"] == ["text"]

        seen = []

        async def on_progress(progress, total, message):
            seen.append((progress, total, message))

        r = await c.call_tool("sleeper.progress", {}, progress_callback=on_progress)
        assert not r.is_error and r.structured_content == {"steps": 3}, r
        assert len(seen) >= 1 and [p for p, _, _ in seen] == sorted(p for p, _, _ in seen), seen
        assert seen[0][2].startswith("step"), seen

        r = await c.call_tool("wordcount.count", {"text": ["not", "a", "string"]})
        assert r.is_error and "invalid input" in r.content[0].text, r

        # Cancel from the client: the SDK sends notifications/cancelled; Warden kills the sandbox.
        with anyio.move_on_after(2.0):
            await c.call_tool("sleeper.sleep", {"seconds": float(marker)})
            raise AssertionError("the 30 s sleep returned")
        for _ in range(100):   # (an async wait: the SDK sends its cancel notification from this event loop)
            if not pgrep(f"sleep {marker}"):
                break
            await anyio.sleep(0.05)
        else:
            raise AssertionError("the canceled call's sandbox is still running 5 s later")
        r = await c.call_tool("sleeper.echo", {"after": "cancel"})
        assert not r.is_error and r.structured_content["echo"] == {"after": "cancel"}
    ok(f"{mode}: {version}, list, call, {len(seen)} progress notifications, isError, cancel kills the sandbox")


async def documented_config():
    """The client configuration of docs/MCP.md, as written (paths replaced), with nothing else in the env."""
    doc = open(os.path.join(os.path.dirname(__file__), "../../docs/MCP.md")).read()
    block = doc.split("## Adding Warden to an MCP client", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    block = block.replace("/usr/local/bin/warden", os.environ["WARDEN"]).replace("/var/lib/warden", os.environ["WARDEN_HOME"])
    cfg = json.loads(block)["mcpServers"]["warden"]
    async with Client(StdioServerParameters(command=cfg["command"], args=cfg["args"], env=cfg["env"])) as c:
        assert "wordcount.count" in [t.name for t in (await c.list_tools()).tools]
        r = await c.call_tool("wordcount.count", {"text": "a b a"})
        assert not r.is_error and r.structured_content["words"] == 3, r
        task = r.meta["warden/task"]
    ok(f"the mcpServers entry of docs/MCP.md works as written (tenant {cfg['args'][-1]})")
    return task


async def main():
    task = await documented_config()
    await session("auto", "35.1113")
    await session("legacy", "35.2221")
    runs = int(os.environ.get("SDK_RUNS", "5"))
    for mode in ("auto", "legacy"):
        times = [await timed_connect_list_call(mode) for _ in range(runs)]
        med = statistics.median(times)
        print(f"  connect+list+call ({mode}, SDK stdio client, {runs} runs): median {med * 1000:.0f} ms, "
              f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms", flush=True)
        assert med < 1.0, f"connect + list + call took {med:.2f} s (median), not under a second"
    ok("connect + list + one call is under a second")
    print(task)  # last line: the task of the documented config, checked by the shell script


asyncio.run(main())
