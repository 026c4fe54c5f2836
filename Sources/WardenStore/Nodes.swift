import WardenCore

/// A node (a `serve` or `agent` executor) as stored.
public struct NodeRecord: Sendable, Hashable {
    public var name: String
    public var capacity: Resources
    public var labels: [String: String]
    public var reserved: Resources
    public var lastHeartbeat: Int64
    public var epoch: Int64
    public var startedAt: Int64
    public var owner: String?
    public var draining: Bool
    /// Filled by `nodes(allocations:)`: what placed and running tasks hold on it.
    public var allocated = Resources.zero
    public var running = 0

    public init(name: String, capacity: Resources, labels: [String: String] = [:], reserved: Resources = .zero,
                lastHeartbeat: Int64 = 0, epoch: Int64 = 0, startedAt: Int64 = 0, owner: String? = nil, draining: Bool = false)
    {
        self.name = name
        self.capacity = capacity
        self.labels = labels
        self.reserved = reserved
        self.lastHeartbeat = lastHeartbeat
        self.epoch = epoch
        self.startedAt = startedAt
        self.owner = owner
        self.draining = draining
    }

    /// Ready when it heartbeat within `staleMs` and is not draining.
    public func ready(now: Int64, staleMs: Int64) -> Bool { !draining && now - lastHeartbeat <= staleMs }

    /// DESIGN §7 node shape.
    public func json(now: Int64, staleMs: Int64) -> JSONValue {
        var o: [String: JSONValue] = [
            "name": .string(name), "cpu": .string(Quantity.formatCPU(capacity.cpuMillis)),
            "memory": .string(Quantity.formatBytes(capacity.memoryBytes)),
            "allocated": ["cpu": .string(Quantity.formatCPU(allocated.cpuMillis)), "memory": .string(Quantity.formatBytes(allocated.memoryBytes))],
            "labels": .object(labels.mapValues { .string($0) }), "ready": .bool(ready(now: now, staleMs: staleMs)),
            "last_heartbeat": .string(Time.iso8601(lastHeartbeat)), "running": .int(Int64(running)),
            "owner": .optional(owner), "draining": .bool(draining),
        ]
        if !capacity.extended.isEmpty { o["resources"] = .object(capacity.extended.mapValues { .int($0) }) }
        return .object(o)
    }
}

extension Store {
    /// Registers or refreshes a node; bumps its epoch when a new process (`owner`) takes it over.
    @discardableResult
    public func upsertNode(_ n: NodeRecord, now: Int64 = Time.nowMs()) throws(WardenError) -> NodeRecord {
        try write { tx in
            let prev = try tx.queryOne("SELECT owner, epoch FROM nodes WHERE name = ?", [.text(n.name)])
            let epoch = (prev?.int("epoch") ?? 0) + (prev?.text("owner") == n.owner ? 0 : 1)
            let ext: JSONValue? = n.capacity.extended.isEmpty ? nil : .object(n.capacity.extended.mapValues { .int($0) })
            try tx.execute("""
                INSERT INTO nodes (name, cpu_m, mem_b, ext, labels, reserved, last_heartbeat, epoch, started_at, owner, draining)
                VALUES (?,?,?,?,?,?,?,?,?,?,?)
                ON CONFLICT (name) DO UPDATE SET cpu_m = excluded.cpu_m, mem_b = excluded.mem_b, ext = excluded.ext,
                labels = excluded.labels, reserved = excluded.reserved, last_heartbeat = excluded.last_heartbeat,
                epoch = excluded.epoch, started_at = excluded.started_at, owner = excluded.owner, draining = excluded.draining
                """, [.text(n.name), .int(n.capacity.cpuMillis), .int(n.capacity.memoryBytes), .json(ext),
                      .text(JSONValue.object(n.labels.mapValues { .string($0) }).canonical), .text(n.reserved.json.canonical),
                      .int(now), .int(epoch), .int(n.startedAt == 0 ? now : n.startedAt), .opt(n.owner), .bool(n.draining)])
            if prev?.text("owner") != n.owner {
                try appendAudit(tx, actor: n.owner ?? "node", tenant: nil, task: nil, action: "node.register",
                                detail: ["node": .string(n.name), "capacity": n.capacity.json, "epoch": .int(epoch)])
            }
            var out = n
            out.epoch = epoch
            out.lastHeartbeat = now
            return out
        }
    }

    /// Extends the leases `owner` (a process) holds and refreshes its node's heartbeat. Returns false when
    /// another process owns the node now (this one must stop placing work there).
    public func heartbeat(node: String, owner: String, leaseMs: Int64, now: Int64 = Time.nowMs()) throws(WardenError) -> Bool {
        try write { tx in
            try tx.execute("UPDATE tasks SET lease_expires = ? WHERE lease_owner = ? AND state IN ('placed', 'running')",
                           [.int(now + leaseMs), .text(owner)])
            return try tx.execute("UPDATE nodes SET last_heartbeat = ? WHERE name = ? AND owner = ?", [.int(now), .text(node), .text(owner)]) > 0
        }
    }

    /// Marks a node not ready at once (its process is going away), if `owner` still owns it.
    public func retireNode(_ node: String, owner: String) throws(WardenError) {
        try write { tx in _ = try tx.execute("UPDATE nodes SET last_heartbeat = 0 WHERE name = ? AND owner = ?", [.text(node), .text(owner)]) }
    }

    /// Extends one attempt's lease (fenced by its epoch).
    public func renewLease(task: String, epoch: Int64, leaseMs: Int64, now: Int64 = Time.nowMs()) throws(WardenError) {
        try write { tx in
            _ = try tx.execute("UPDATE tasks SET lease_expires = ? WHERE id = ? AND lease_epoch = ? AND state IN ('placed', 'running')",
                               [.int(now + leaseMs), .text(task), .int(epoch)])
        }
    }

    public func setDraining(node: String, _ draining: Bool) throws(WardenError) {
        try write { tx in _ = try tx.execute("UPDATE nodes SET draining = ? WHERE name = ?", [.bool(draining), .text(node)]) }
    }

    static func decodeNode(_ r: SQLRow) -> NodeRecord {
        var ext: [String: Int64] = [:]
        if let e = r.json("ext")?.objectValue { for (k, v) in e { ext[k] = v.intValue ?? 0 } }
        var reserved = Resources.zero
        if let rj = r.json("reserved"), var rr = try? JSONObjectReader(rj), let res = try? Resources.read(from: &rr) { reserved = res }
        return NodeRecord(name: r.text("name") ?? "", capacity: Resources(cpuMillis: r.int("cpu_m") ?? 0, memoryBytes: r.int("mem_b") ?? 0, extended: ext),
                          labels: (r.json("labels")?.objectValue ?? [:]).compactMapValues(\.stringValue), reserved: reserved,
                          lastHeartbeat: r.int("last_heartbeat") ?? 0, epoch: r.int("epoch") ?? 0, startedAt: r.int("started_at") ?? 0,
                          owner: r.text("owner"), draining: r.bool("draining"))
    }

    /// All nodes, with what their placed and running tasks hold.
    public func nodes() throws(WardenError) -> [NodeRecord] {
        try read { tx in try self.nodes(tx) }
    }

    public func nodes(_ tx: SQLExecutor) throws -> [NodeRecord] {
        var nodes = try tx.query("SELECT * FROM nodes ORDER BY name", []).map(Self.decodeNode)
        let alloc = try tx.query("SELECT node, COALESCE(SUM(cpu_m), 0) AS c, COALESCE(SUM(mem_b), 0) AS m, COUNT(*) AS n FROM tasks WHERE state IN ('placed', 'running') AND node IS NOT NULL GROUP BY node", [])
        var byNode: [String: SQLRow] = [:]
        for r in alloc { if let n = r.text("node") { byNode[n] = r } }
        for i in nodes.indices {
            if let r = byNode[nodes[i].name] {
                nodes[i].allocated = Resources(cpuMillis: r.int("c") ?? 0, memoryBytes: r.int("m") ?? 0)
                nodes[i].running = Int(r.int("n") ?? 0)
            }
        }
        return nodes
    }

    /// Tasks holding resources (placed or running), for rebuilding the scheduler's view.
    public func activeTasks(_ tx: SQLExecutor) throws -> [TaskRecord] {
        try tx.query("SELECT \(Store.taskColumns) FROM tasks WHERE state IN ('placed', 'running')", []).map(Store.decodeTask)
    }
}
