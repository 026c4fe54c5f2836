import WardenCore

/// Per-tenant totals kept up to date by every insert and transition, so admission never counts rows:
/// resources and number of non-terminal tasks, and how many wait in the queue. Tenant `*` is the total.
public struct Usage: Sendable, Hashable {
    public var cpuMillis: Int64 = 0
    public var memoryBytes: Int64 = 0
    public var tasks: Int64 = 0
    public var queued: Int64 = 0
    public init() {}
}

extension Store {
    static func waits(_ s: TaskState) -> Bool { s == .queued || s == .awaitingApproval }

    func adjustUsage(_ tx: SQLExecutor, tenant: String, resources: Resources, from: TaskState?, to: TaskState) throws {
        let wasLive = from.map { !$0.isTerminal } ?? false
        let isLive = !to.isTerminal
        let live: Int64 = wasLive == isLive ? 0 : (isLive ? 1 : -1)
        let q: Int64 = (from.map(Self.waits) ?? false) == Self.waits(to) ? 0 : (Self.waits(to) ? 1 : -1)
        guard live != 0 || q != 0 else { return }
        // The tenant's row and the total row, in one statement.
        let c = live * resources.cpuMillis, m = live * resources.memoryBytes
        try tx.execute("""
            INSERT INTO usage (tenant, cpu_m, mem_b, tasks, queued) VALUES (?, ?, ?, ?, ?), ('*', ?, ?, ?, ?)
            ON CONFLICT (tenant) DO UPDATE SET cpu_m = usage.cpu_m + excluded.cpu_m, mem_b = usage.mem_b + excluded.mem_b,
            tasks = usage.tasks + excluded.tasks, queued = usage.queued + excluded.queued
            """, [.text(tenant), .int(c), .int(m), .int(live), .int(q), .int(c), .int(m), .int(live), .int(q)])
    }

    public func usage(_ tx: SQLExecutor, tenant: String) throws -> Usage {
        guard let r = try tx.queryOne("SELECT * FROM usage WHERE tenant = ?", [.text(tenant)]) else { return Usage() }
        var u = Usage()
        u.cpuMillis = r.int("cpu_m") ?? 0
        u.memoryBytes = r.int("mem_b") ?? 0
        u.tasks = r.int("tasks") ?? 0
        u.queued = r.int("queued") ?? 0
        return u
    }

    /// Takes one token from the bucket `key` (refilling at `rate`); returns nil when taken, else the
    /// milliseconds until a token is available.
    public func takeToken(_ tx: SQLExecutor, key: String, rate: Rate, now: Int64 = Time.nowMs()) throws -> Int64? {
        let lockClause = db.dialect == .postgres ? " FOR UPDATE" : ""
        let row = try tx.queryOne("SELECT tokens, updated_ms FROM buckets WHERE key = ?\(lockClause)", [.text(key)])
        var tokens = Double(rate.burst)
        if let row, let t = row.double("tokens"), let at = row.int("updated_ms") {
            tokens = min(Double(rate.burst), t + Double(max(0, now - at)) / 1000 * rate.perSecond)
        }
        let taken = tokens >= 1
        let left = taken ? tokens - 1 : tokens
        try tx.execute("INSERT INTO buckets (key, tokens, updated_ms) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated_ms = excluded.updated_ms",
                       [.text(key), .double(left), .int(now)])
        return taken ? nil : Int64(((1 - tokens) / rate.perSecond * 1000).rounded(.up))
    }
}

extension Store {
    /// Adds to a durable counter (`name{label="v",…}`), inside the caller's transaction.
    public func bump(_ tx: SQLExecutor, _ name: String, _ labels: [(String, String)] = [], by n: Int64 = 1) throws {
        let key = labels.isEmpty ? name : "\(name){\(labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ","))}"
        try tx.execute("INSERT INTO counters (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = counters.value + excluded.value",
                       [.text(key), .int(n)])
    }

    public func counters() throws(WardenError) -> [(key: String, value: Int64)] {
        try read { tx in try tx.query("SELECT key, value FROM counters ORDER BY key", []).map { ($0.text("key") ?? "", $0.int("value") ?? 0) } }
    }
}
