import Glibc
import WardenCore
import WardenScheduler
import WardenStore
import WardenSystem

extension Engine {
    /// How long without a heartbeat before a node counts as not ready.
    public var staleMs: Int64 { max(config.leaseMs, 3 * config.heartbeatMs) }

    /// The scheduler's demand for a task.
    public static func demand(_ t: TaskRecord) -> TaskDemand {
        TaskDemand(id: t.id, resources: t.resources, priority: t.priority)
    }

    /// A placer holding every node of the store and what its active tasks hold. The engine places with the
    /// same `Placer` the planner uses: there is no second scorer.
    public func loadPlacer(_ tx: SQLExecutor, strategy: Strategy = .binpack, now: Int64 = Time.nowMs()) throws -> Placer {
        let placer = Placer(strategy: strategy)
        for n in try store.nodes(tx) {
            placer.upsertNode(NodeSpec(name: n.name, capacity: n.capacity, labels: n.labels, reserved: n.reserved),
                              ready: n.ready(now: now, staleMs: staleMs))
        }
        for t in try store.activeTasks(tx) {
            if let node = t.node { try? placer.assign(Self.demand(t), to: node) }
        }
        return placer
    }

    /// Registers this process's node (capacity, labels) with a fresh heartbeat.
    @discardableResult
    public func registerNode() throws(WardenError) -> NodeRecord {
        try store.upsertNode(NodeRecord(name: config.node, capacity: config.capacity, labels: config.labels, owner: config.instance))
    }

    /// Tries to place one queued task on this process's node. Returns the placed task, or the reason it waits.
    public func placeLocally(_ id: String) throws(WardenError) -> (placed: TaskRecord?, waiting: String?) {
        let now = Time.nowMs()
        let startNs = Time.monotonicNs()
        let store = self.store
        return try store.write { tx in
            guard let t = try store.task(tx, id), t.state == .queued else { return (nil, nil) }
            if let b = try blocker(tx, t, now: now) { return (nil, b.reason) }
            let placer = try loadPlacer(tx, now: now)
            let decision = placer.place(Self.demand(t))
            guard let node = decision.node else {
                try tx.execute("UPDATE tasks SET explanation = ? WHERE id = ?", [.text(decision.explanation), .text(id)])
                return (nil, decision.explanation)
            }
            guard node == config.node else {
                // Another node is the better fit: leave it to that node's serve or agent.
                return (nil, "waiting for node \(node): \(decision.explanation)")
            }
            let placed = try place(tx, t, node: node, owner: config.instance, explanation: decision.explanation, now: now)
            if config.spans, let p = placed {
                try Tracer.insert(tx, name: "schedule", task: p, startNs: startNs, endNs: Time.monotonicNs(), attributes: ["node": node])
            }
            return (placed, placed == nil ? "waiting for a lock" : nil)
        }
    }

    /// `run` without a daemon: drives one task to a terminal state in this process — approval wait, backoff,
    /// placement on the local node, the attempt, retries. `status` is told what it waits for.
    public func drive(_ id: String, deadline: UInt64? = nil, status: ((String) -> Void)? = nil) throws(WardenError) -> TaskRecord {
        try registerNode()
        // This process's node exists only while it drives: afterwards no scheduler may place work on it.
        defer { try? store.retireNode(config.node, owner: config.instance) }
        var lastStatus = ""
        func say(_ s: String) {
            if s != lastStatus { status?(s); lastStatus = s }
        }
        while true {
            guard let t = try store.task(id) else { throw WardenError.notFound("unknown task \(quoted(id))") }
            if t.state.isTerminal { return t }
            if let deadline, Time.monotonicNs() > deadline { return t }
            switch t.state {
            case .queued:
                let (placed, waiting) = try placeLocally(id)
                if let placed {
                    say("running \(placed.plugin).\(placed.tool) (attempt \(placed.attempts))")
                    execute(placed)
                    continue
                }
                if let w = waiting {
                    say(w)
                    if w.hasPrefix("0/") || w.contains("nodes fit") {
                        // The local node cannot take it now; with no other executor it may never.
                        let node = (try? store.nodes())?.first { $0.name == config.node }
                        if let node, !t.resources.fits(in: node.capacity - node.reserved) {
                            return try cancel(id, actor: "engine", reason: "no capacity: \(w)")
                        }
                    }
                }
                usleep(t.notBefore > Time.nowMs() ? useconds_t(min(200, max(1, t.notBefore - Time.nowMs())) * 1000) : 50_000)
            case .awaitingApproval:
                say("waiting for approval: warden approve \(id)")
                sweep()
                usleep(200_000)
            case .placed, .running:
                if t.leaseOwner == config.instance {
                    // Ours but not running: a previous loop iteration was interrupted; run it.
                    if t.state == .placed { execute(t); continue }
                }
                say("\(t.state.rawValue) on \(t.node ?? "?")")
                sweep()
                _ = try? store.heartbeat(node: config.node, owner: config.instance, leaseMs: config.leaseMs)
                usleep(50_000)
            default:
                usleep(50_000)
            }
        }
    }
}
