"""A reference mcp-kind plugin: an MCP stdio server written with the `mcp` SDK's own server API
(MCPServer, which mcp 1.x called FastMCP). Warden starts it once in its sandbox and re-exports its tools
as mcp-demo.add, mcp-demo.slow, …"""
import asyncio
import os
import uuid

try:
    from mcp.server.mcpserver import Context, MCPServer as FastMCP
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context, FastMCP
    from mcp.server.fastmcp.exceptions import ToolError

server = FastMCP("mcp-demo")
INSTANCE = uuid.uuid4().hex  # changes when the server process is restarted
CANCELLED = 0  # sleeps canceled by the client (notifications/cancelled)


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def whoami() -> dict:
    """Where the server runs: its instance id (new on every start), pid, uid, working directory, and how
    many sleeps the client canceled."""
    return {"instance": INSTANCE, "pid": os.getpid(), "uid": os.getuid(), "cwd": os.getcwd(), "cancelled": CANCELLED}


@server.tool()
async def slow(steps: int, ctx: Context) -> str:
    """Take `steps` tenths of a second, reporting progress after each."""
    for i in range(steps):
        await asyncio.sleep(0.1)
        await ctx.report_progress(i + 1, steps, f"step {i + 1} of {steps}")
    return f"done after {steps} steps"


@server.tool()
async def sleep(seconds: float) -> str:
    """Sleep, then answer (for cancellation and timeouts)."""
    global CANCELLED
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        CANCELLED += 1
        raise
    return "slept"


@server.tool()
def fail(message: str) -> str:
    """Fail on purpose: the call ends with isError and the message."""
    raise ToolError(message)


@server.tool()
def crash() -> str:
    """Kill the whole server process (Warden restarts it for the next call)."""
    os._exit(3)


if __name__ == "__main__":
    server.run()
