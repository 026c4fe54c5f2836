"""The cost Warden adds to an MCP tools/call: the same tool (mcp-demo.add of plugins/mcp-demo/server.py),
the same client (the SDK's stdio client), called directly on the server and through `warden mcp` (which
admits, records and runs it on the sandboxed copy of that server), alternating call by call."""

import asyncio
import json
import os
import statistics
import sys
import time

from mcp import Client, StdioServerParameters

n = int(os.environ.get("N", "200"))
warm = 10
server = os.environ["SERVER"]

direct = StdioServerParameters(command=sys.executable, args=[server], cwd=os.path.dirname(server))
warden = StdioServerParameters(command=os.environ["WARDEN"], args=["mcp"], env=dict(os.environ))


async def call(client, name, i):
    t = time.perf_counter()
    r = await client.call_tool(name, {"a": i, "b": 1})
    took = time.perf_counter() - t
    assert not r.is_error and r.structured_content == {"result": i + 1}, r
    return took


async def main():
    async with Client(direct, mode="legacy") as d, Client(warden, mode="legacy") as w:
        for i in range(warm):   # start the sandboxed server, warm caches
            await call(d, "add", i)
            await call(w, "mcp-demo.add", i)
        td, tw = [], []
        for i in range(n):
            if i % 2 == 0:
                td.append(await call(d, "add", i))
                tw.append(await call(w, "mcp-demo.add", i))
            else:
                tw.append(await call(w, "mcp-demo.add", i))
                td.append(await call(d, "add", i))
    md, mw = statistics.median(td) * 1000, statistics.median(tw) * 1000
    p90 = lambda xs: sorted(xs)[int(len(xs) * 0.9)] * 1000
    print(f"tools/call mcp-demo.add, {n} calls each, alternating (SDK stdio client, legacy mode)")
    print(f"  direct to the server:   median {md:7.2f} ms   p90 {p90(td):7.2f} ms")
    print(f"  through warden mcp:     median {mw:7.2f} ms   p90 {p90(tw):7.2f} ms")
    print(f"  overhead: +{mw - md:.2f} ms per call, ratio {mw / md:.2f}x")
    print(json.dumps({"name": "mcp-overhead", "n": n, "direct_median_ms": round(md, 3), "warden_median_ms": round(mw, 3),
                      "overhead_ms": round(mw - md, 3), "ratio": round(mw / md, 3)}))


asyncio.run(main())
