import Glibc
import WardenCore
import WardenEngine
import WardenMCP
import WardenSystem

/// `warden mcp`: the MCP front door on stdin/stdout (DESIGN §8).
enum MCPCommands {
    static let all: [Command] = [
        Command(path: ["mcp"], synopsis: "warden mcp [--tenant T] [--page-size N]",
                abstract: "Serve the registered tools over MCP on stdin/stdout.",
                discussion: """
                One JSON-RPC message per line on stdin and stdout; logs go to stderr. Speaks the initialize \
                handshake (protocol versions 2024-11-05 to 2025-11-25) and the 2026-07-28 per-request envelope \
                with server/discover. Each tool is offered as plugin.tool; a call is a task, admitted by policy \
                and quotas as the tenant, and run by a running `serve` or else in this process. Exits when stdin \
                closes.
                """,
                options: [.value("--tenant", "T", "Tenant the calls run as (default: default, or $WARDEN_TENANT)."),
                          .value("--page-size", "N", "Tools per tools/list page (default 100).")],
                loadsLibraries: true, run: mcp),
    ]

    static func mcp(_ inv: Invocation) throws(WardenError) -> Int32 {
        // SIGTERM/SIGINT (a client giving up on a graceful exit): cancel what runs, then exit. The signals
        // are blocked first, before the engine starts any thread, and taken by one thread with sigwait.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        var o = MCPFrontDoor.Options()
        o.tenant = inv.value("--tenant") ?? FS.env("WARDEN_TENANT") ?? "default"
        try Engine.validateTenant(o.tenant)
        if let n = try Parse.int(inv, "--page-size", range: 1...10_000) { o.pageSize = Int(n) }
        o.stateDir = inv.ctx.absoluteState
        o.serverVersion = CLI.version
        let engine = try inv.ctx.engine()
        let door = MCPFrontDoor(engine: engine, options: o)
        door.log = { message in Out.err("warden mcp: \(message)") }
        let blocked = set
        startThread {
            var s = blocked
            var sig: Int32 = 0
            sigwait(&s, &sig)
            door.stop(reason: sig == SIGTERM ? "SIGTERM" : "SIGINT")
            exit(128 + sig)
        }
        door.serve(input: 0)
        return 0
    }
}
