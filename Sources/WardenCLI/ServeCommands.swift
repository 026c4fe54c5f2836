import Glibc
import WardenCore
import WardenEngine
import WardenSandbox
import WardenScheduler
import WardenStore
import WardenSystem

enum ServeCommands {
    /// Engine configuration shared by serve and agent.
    static func configure(_ inv: Invocation, engine: Engine) throws(WardenError) {
        var c = engine.config
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        c.node = inv.value("--node") ?? String(cString: host)
        guard PluginManifest.isValidToolName(c.node.replacingOccurrences(".", "-")) else {
            throw WardenError.invalid("--node", "invalid node name \(quoted(c.node))", code: .usage)
        }
        c.instance = "\(c.node):\(getpid()):\(Time.nowMs())"
        var cap = Engine.machineCapacity()
        if let v = inv.value("--cpu") { cap.cpuMillis = try Quantity.cpuMillis(v, field: "--cpu", code: .usage) }
        if let v = inv.value("--memory") { cap.memoryBytes = try Quantity.bytes(v, field: "--memory", code: .usage) }
        c.capacity = cap
        c.labels = try Parse.labels(inv)
        if let l = try Parse.duration(inv, "--lease") { c.leaseMs = l }
        if let h = try Parse.duration(inv, "--heartbeat") { c.heartbeatMs = h }
        guard c.heartbeatMs < c.leaseMs else {
            throw WardenError.invalid("--heartbeat", "must be shorter than the lease (\(Quantity.formatDuration(c.leaseMs)))", code: .usage)
        }
        engine.config = c
    }

    static func serve(_ inv: Invocation) throws(WardenError) -> Int32 {
        try runServer(inv, schedule: true)
    }

    static func agent(_ inv: Invocation) throws(WardenError) -> Int32 {
        guard inv.value("--node") != nil else { throw WardenError.invalid("--node", "required for an agent", code: .usage) }
        return try runServer(inv, schedule: false)
    }

    static func runServer(_ inv: Invocation, schedule: Bool) throws(WardenError) -> Int32 {
        try FS.mkdirs(inv.ctx.absoluteState, mode: 0o700)
        if (inv.ctx.storeURL ?? "").isEmpty && !FS.exists("\(inv.ctx.absoluteState)/warden.db") {
            _ = try Store.open(url: nil, stateDir: inv.ctx.absoluteState)
        }
        let engine = try inv.ctx.engine()
        try configure(inv, engine: engine)
        var o = Server.Options()
        o.schedule = schedule
        o.execute = !inv.has("--no-executor")
        o.stateDir = inv.ctx.absoluteState
        o.otlpFile = inv.value("--otlp-file").map { FS.absolute($0) }
        o.metricsAddr = inv.value("--metrics-addr")
        if let s = try Parse.int(inv, "--slots", range: 1...4096) { o.slots = Int(s) }
        // Several processes on one PostgreSQL store: only agents' local sockets, one leader schedules.
        o.controlSocket = true
        let server = Server(engine: engine, options: o)
        server.log = { msg in Out.err("warden: \(msg)") }
        server.leader = Wiring.leaderElection(engine: engine, ctx: inv.ctx)
        // Signals are taken synchronously: block them here (threads inherit the mask), sigwait below.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        try server.start()
        let role = schedule ? "serve" : "agent"
        Out.err("warden: \(role) node \(engine.config.node) (\(engine.config.capacity.summary)) on \(engine.store.db.location); \(o.execute ? "\(o.slots) slots" : "no executor")")
        var sig: Int32 = 0
        sigwait(&set, &sig)
        Out.err("warden: \(sig == SIGTERM ? "SIGTERM" : "SIGINT"): stopping (running tasks get \(Quantity.formatDuration(o.graceMs)) to finish)")
        server.stop()
        Out.err("warden: stopped")
        return 0
    }

    static func metrics(_ inv: Invocation) throws(WardenError) -> Int32 {
        if let c = ControlClient.connect(stateDir: inv.ctx.absoluteState), let text = c.metrics() {
            Out.raw(Array(text.utf8))
            return 0
        }
        let engine = try inv.ctx.engine()
        Out.raw(Array(engine.metrics.render(store: engine.store).utf8))
        return 0
    }

    static func nodes(_ inv: Invocation) throws(WardenError) -> Int32 {
        let engine = try inv.ctx.engine()
        let nodes = try engine.store.nodes()
        let now = Time.nowMs()
        if inv.json { Out.json(.array(nodes.map { $0.json(now: now, staleMs: engine.staleMs) })); return 0 }
        if nodes.isEmpty { Out.print("no nodes (start one with `warden serve` or `warden agent`)"); return 0 }
        Out.print(TaskCommands.pad("NAME", 16) + TaskCommands.pad("READY", 7) + TaskCommands.pad("CPU", 14) + TaskCommands.pad("MEMORY", 20) + TaskCommands.pad("TASKS", 7) + "LAST HEARTBEAT")
        for n in nodes {
            let ready = n.ready(now: now, staleMs: engine.staleMs)
            let age = Double(now - n.lastHeartbeat) / 1000
            Out.print(TaskCommands.pad(n.name, 16) + TaskCommands.pad(ready ? "yes" : "no", 7)
                      + TaskCommands.pad("\(Quantity.formatCPU(n.allocated.cpuMillis))/\(Quantity.formatCPU(n.capacity.cpuMillis))", 14)
                      + TaskCommands.pad("\(Quantity.formatBytes(n.allocated.memoryBytes))/\(Quantity.formatBytes(n.capacity.memoryBytes))", 20)
                      + TaskCommands.pad(String(n.running), 7) + "\(Time.iso8601(n.lastHeartbeat)) (\(String(format1(age)))s ago)")
        }
        return 0
    }

    static func format1(_ v: Double) -> String {
        let t = (v * 10).rounded() / 10
        return t >= 1e6 ? ">1e6" : String(t)
    }
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String { split(separatorString: a).joined(separator: b) }
}
