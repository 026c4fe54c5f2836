import Glibc
import WardenCore
import WardenSystem

/// A registered plugin version as stored.
public struct PluginRecord: Sendable, Hashable {
    public var manifest: PluginManifest
    public var manifestJSON: JSONValue
    public var dir: String
    /// sha256 of every file, by path relative to `dir`.
    public var files: [String: String]
    /// sha256 over the sorted (path, file digest) list: changes when any file changes.
    public var digest: String
    public var trusted: Bool
    public var registeredAt: Int64
    /// The tools as offered (for mcp plugins: discovered from the server at registration).
    public var tools: [PluginManifest.Tool]

    public var name: String { manifest.name }
    public var version: String { manifest.version }

    public init(manifest: PluginManifest, manifestJSON: JSONValue, dir: String, files: [String: String], digest: String,
                trusted: Bool, registeredAt: Int64, tools: [PluginManifest.Tool])
    {
        self.manifest = manifest
        self.manifestJSON = manifestJSON
        self.dir = dir
        self.files = files
        self.digest = digest
        self.trusted = trusted
        self.registeredAt = registeredAt
        self.tools = tools
    }

    /// DESIGN §7 plugin shape.
    public var json: JSONValue {
        [
            "name": .string(name), "version": .string(version), "kind": .string(manifest.kind.rawValue),
            "digest": .string(digest), "hosting": .string(manifest.kind == .dylib ? manifest.hosting.rawValue : "isolated"),
            "tools": .array(tools.map(\.json)), "dir": .string(dir), "trusted": .bool(trusted),
            "registered_at": .string(Time.iso8601(registeredAt)), "files": .int(Int64(files.count)),
            "profile": .string(manifest.sandbox.profile), "agent": .bool(manifest.agent),
        ]
    }
}

/// One state transition of a task, with the audit record behind it.
public struct TaskEvent: Sendable, Hashable {
    public var at: Int64
    public var from: TaskState?
    public var to: TaskState
    public var reason: String?
    public var actor: String?
    public var detail: JSONValue?
    public var auditSeq: Int64?

    public var json: JSONValue {
        ["at": .string(Time.iso8601(at)), "from": .optional(from?.rawValue), "to": .string(to.rawValue),
         "reason": .optional(reason), "actor": .optional(actor), "detail": detail ?? .null, "audit_seq": .optional(auditSeq)]
    }
}

public struct AuditRecord: Sendable, Hashable {
    public var seq: Int64
    public var at: Int64
    public var actor: String
    public var tenant: String?
    public var task: String?
    public var action: String
    public var rule: String?
    public var detail: JSONValue?
    public var prevHash: String
    public var hash: String

    /// The bytes the chain hashes: sha256(prev_hash ‖ canonical record).
    public var canonical: String {
        let o: JSONValue = ["seq": .int(seq), "at": .int(at), "actor": .string(actor), "tenant": .optional(tenant),
                            "task": .optional(task), "action": .string(action), "rule": .optional(rule), "detail": detail ?? .null]
        return o.canonical
    }

    public static func chainHash(prev: String, canonical: String) -> String {
        var h = SHA256()
        h.update(prev)
        h.update(canonical)
        return SHA256.hexString(h.finalize())
    }

    public var json: JSONValue {
        ["seq": .int(seq), "at": .string(Time.iso8601(at)), "actor": .string(actor), "tenant": .optional(tenant),
         "task": .optional(task), "action": .string(action), "rule": .optional(rule), "detail": detail ?? .null,
         "prev_hash": .string(prevHash), "hash": .string(hash)]
    }
}

/// The durable state of Warden over a `Database` (SQLite or PostgreSQL): every domain operation is written
/// once here, in SQL both engines accept.
public final class Store: @unchecked Sendable {
    public let db: Database

    public init(_ db: Database) throws {
        self.db = db
        try Schema.migrate(db)
    }

    /// A PostgreSQL store URL (the store then loads libpq).
    public static func isPostgres(_ url: String?) -> Bool {
        url.map { $0.hasPrefix("postgres://") || $0.hasPrefix("postgresql://") } ?? false
    }

    /// Opens the store named by `url` (`sqlite:PATH`, `sqlite::memory:`, `postgres://…`), or the SQLite file
    /// `warden.db` in `stateDir`.
    public static func open(url: String?, stateDir: String, groupCommit: Bool = true) throws(WardenError) -> Store {
        do {
            let u = url ?? ""
            if u.isEmpty || u == "sqlite:" {
                try FS.mkdirs(stateDir)
                return try Store(SQLiteDatabase(path: "\(stateDir)/warden.db", groupCommit: groupCommit))
            }
            if u.hasPrefix("sqlite:") {
                return try Store(SQLiteDatabase(path: String(u.dropFirst(7)), groupCommit: groupCommit))
            }
            if isPostgres(u) {
                #if WARDEN_POSTGRES
                return try Store(PostgresDatabase(url: u))
                #else
                throw WardenError(.unavailable, "this warden was built without PostgreSQL support",
                                  hint: "build with `swift build --traits Postgres` (make build does)")
                #endif
            }
            throw WardenError(.usage, "--store: unknown store URL \(quoted(u)) (expected sqlite:PATH or postgres://…)")
        } catch let e as WardenError {
            throw e
        } catch let e as SQLError {
            throw WardenError(.unavailable, "cannot open the store: \(e.message)")
        } catch {
            throw WardenError(.internalError, "cannot open the store: \(error)")
        }
    }

    /// Runs `body` as one durable write; store errors become WardenErrors.
    public func write<T>(_ body: (SQLExecutor) throws -> T) throws(WardenError) -> T {
        do { return try db.write(body) } catch { throw Self.wrap(error) }
    }

    public func read<T>(_ body: (SQLExecutor) throws -> T) throws(WardenError) -> T {
        do { return try db.read(body) } catch { throw Self.wrap(error) }
    }

    static func wrap(_ error: Error) -> WardenError {
        if let w = error as? WardenError { return w }
        if let s = error as? SQLError { return s.wardenError }
        return WardenError(.internalError, "store: \(error)")
    }

    // MARK: audit

    /// Appends one hash-chained audit record inside `tx`; returns its sequence number.
    @discardableResult
    public func appendAudit(_ tx: SQLExecutor, actor: String, tenant: String?, task: String?, action: String,
                            rule: String? = nil, detail: JSONValue? = nil, at: Int64 = Time.nowMs()) throws -> Int64
    {
        let lockClause = db.dialect == .postgres ? " FOR UPDATE" : ""
        guard let head = try tx.queryOne("SELECT seq, hash FROM audit_head WHERE id = 1\(lockClause)", []) else {
            throw WardenError.internalError("audit head missing")
        }
        let seq = (head.int("seq") ?? 0) + 1
        let prev = head.text("hash") ?? ""
        var rec = AuditRecord(seq: seq, at: at, actor: actor, tenant: tenant, task: task, action: action, rule: rule,
                              detail: detail, prevHash: prev, hash: "")
        rec.hash = AuditRecord.chainHash(prev: prev, canonical: rec.canonical)
        try tx.execute("INSERT INTO audit (seq, at, actor, tenant, task, action, rule, detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       [.int(seq), .int(at), .text(actor), .opt(tenant), .opt(task), .text(action), .opt(rule),
                        .json(detail), .text(prev), .text(rec.hash)])
        try tx.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", [.int(seq), .text(rec.hash)])
        return seq
    }

    public func auditRecords(task: String? = nil, after: Int64 = 0, limit: Int = 1_000_000) throws(WardenError) -> [AuditRecord] {
        try read { tx in
            let rows: [SQLRow]
            if let task {
                rows = try tx.query("SELECT * FROM audit WHERE task = ? ORDER BY seq", [.text(task)])
            } else {
                rows = try tx.query("SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", [.int(after), .int(Int64(limit))])
            }
            return rows.map(Self.auditRecord)
        }
    }

    static func auditRecord(_ r: SQLRow) -> AuditRecord {
        AuditRecord(seq: r.int("seq") ?? 0, at: r.int("at") ?? 0, actor: r.text("actor") ?? "", tenant: r.text("tenant"),
                    task: r.text("task"), action: r.text("action") ?? "", rule: r.text("rule"), detail: r.json("detail"),
                    prevHash: r.text("prev_hash") ?? "", hash: r.text("hash") ?? "")
    }

    /// Recomputes the chain. Returns nil when intact, else the first broken sequence number and why.
    public func verifyAudit() throws(WardenError) -> (count: Int64, problem: (seq: Int64, why: String)?) {
        try read { tx in
            var prev = "0000000000000000000000000000000000000000000000000000000000000000"
            var expected: Int64 = 1
            var count: Int64 = 0
            var after: Int64 = 0
            while true {
                let rows = try tx.query("SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT 5000", [.int(after)])
                if rows.isEmpty { break }
                for row in rows {
                    let r = Self.auditRecord(row)
                    if r.seq != expected { return (count, (expected, "record \(expected) is missing (next is \(r.seq))")) }
                    if r.prevHash != prev { return (count, (r.seq, "prev_hash does not match the hash of record \(r.seq - 1)")) }
                    if AuditRecord.chainHash(prev: prev, canonical: r.canonical) != r.hash {
                        return (count, (r.seq, "hash does not match the record's contents (altered)"))
                    }
                    prev = r.hash
                    expected += 1
                    count += 1
                    after = r.seq
                }
            }
            if let head = try tx.queryOne("SELECT seq, hash FROM audit_head WHERE id = 1", []) {
                if (head.int("seq") ?? 0) != count || (count > 0 && head.text("hash") != prev) {
                    return (count, (count + 1, "the chain ends at \(count) but the head says \(head.int("seq") ?? 0): records were removed from the end"))
                }
            }
            return (count, nil)
        }
    }

    // MARK: plugins

    public func putPlugin(_ p: PluginRecord, actor: String) throws(WardenError) {
        try write { tx in
            let existed = try tx.queryOne("SELECT digest FROM plugins WHERE name = ? AND version = ?", [.text(p.name), .text(p.version)])
            try tx.execute("DELETE FROM plugins WHERE name = ? AND version = ?", [.text(p.name), .text(p.version)])
            let files = JSONValue.object(p.files.mapValues { .string($0) })
            try tx.execute("INSERT INTO plugins (name, version, kind, digest, dir, manifest, files, tools, trusted, registered_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                           [.text(p.name), .text(p.version), .text(p.manifest.kind.rawValue), .text(p.digest), .text(p.dir),
                            .text(p.manifestJSON.canonical), .text(files.canonical), .text(JSONValue.array(p.tools.map(\.json)).canonical),
                            .bool(p.trusted), .int(p.registeredAt)])
            try bumpPluginGeneration(tx)
            try appendAudit(tx, actor: actor, tenant: nil, task: nil, action: existed == nil ? "plugin.register" : "plugin.replace",
                            detail: ["plugin": .string("\(p.name)@\(p.version)"), "digest": .string(p.digest),
                                     "previous_digest": .optional(existed?.text("digest")), "trusted": .bool(p.trusted)])
        }
    }

    public func plugins(name: String? = nil) throws(WardenError) -> [PluginRecord] {
        let rows: [SQLRow] = try read { tx in
            if let name { return try tx.query("SELECT * FROM plugins WHERE name = ?", [.text(name)]) }
            return try tx.query("SELECT * FROM plugins", [])
        }
        var out: [PluginRecord] = []
        for r in rows {
            guard let mj = r.json("manifest"), let m = try? PluginManifest.decode(mj) else { continue }
            let files = (r.json("files")?.objectValue ?? [:]).compactMapValues(\.stringValue)
            let tools = (r.json("tools")?.arrayValue ?? []).compactMap { t -> PluginManifest.Tool? in
                guard let n = t["name"]?.stringValue else { return nil }
                return PluginManifest.Tool(name: n, description: t["description"]?.stringValue ?? "", inputSchema: t["inputSchema"] ?? ["type": "object"])
            }
            out.append(PluginRecord(manifest: m, manifestJSON: mj, dir: r.text("dir") ?? "", files: files, digest: r.text("digest") ?? "",
                                    trusted: r.bool("trusted"), registeredAt: r.int("registered_at") ?? 0, tools: tools))
        }
        return out.sorted { a, b in
            a.name != b.name ? a.name < b.name : (Version(a.version) ?? Version("0.0.0")!) < (Version(b.version) ?? Version("0.0.0")!)
        }
    }

    /// `name@version`, or the newest version of `name`.
    public func plugin(_ name: String, version: String? = nil) throws(WardenError) -> PluginRecord? {
        let all = try plugins(name: name)
        if let version { return all.first { $0.version == version } }
        return all.last
    }

    /// Removes one version or all versions; returns how many were removed.
    public func removePlugin(_ name: String, version: String?, actor: String) throws(WardenError) -> Int {
        try write { tx in
            let n: Int
            if let version {
                n = try tx.execute("DELETE FROM plugins WHERE name = ? AND version = ?", [.text(name), .text(version)])
            } else {
                n = try tx.execute("DELETE FROM plugins WHERE name = ?", [.text(name)])
            }
            if n > 0 {
                try bumpPluginGeneration(tx)
                try appendAudit(tx, actor: actor, tenant: nil, task: nil, action: "plugin.remove",
                                detail: ["plugin": .string(version.map { "\(name)@\($0)" } ?? name), "versions": .int(Int64(n))])
            }
            return n
        }
    }

    /// Changes whenever a plugin is registered, replaced or removed: lets a process cache decoded records.
    public func pluginGeneration() throws(WardenError) -> Int64 {
        try read { tx in try pluginGeneration(tx) }
    }

    public func pluginGeneration(_ tx: SQLExecutor) throws -> Int64 {
        Int64(try tx.queryOne("SELECT value FROM meta WHERE key = 'plugins_gen'", [])?.text("value") ?? "0") ?? 0
    }

    func bumpPluginGeneration(_ tx: SQLExecutor) throws {
        let cur = Int64(try tx.queryOne("SELECT value FROM meta WHERE key = 'plugins_gen'", [])?.text("value") ?? "0") ?? 0
        try tx.execute("INSERT INTO meta (key, value) VALUES ('plugins_gen', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [.text(String(cur + 1))])
    }

    // MARK: policy

    public func setPolicy(_ json: JSONValue, actor: String) throws(WardenError) {
        try write { tx in
            try tx.execute("DELETE FROM policy WHERE id = 1", [])
            try tx.execute("INSERT INTO policy (id, json, set_at, actor) VALUES (1, ?, ?, ?)", [.text(json.canonical), .int(Time.nowMs()), .text(actor)])
            try appendAudit(tx, actor: actor, tenant: nil, task: nil, action: "policy.set",
                            detail: ["sha256": .string(SHA256.hex(json.canonical))])
        }
    }

    public func policyJSON() throws(WardenError) -> JSONValue? {
        try read { tx in try tx.queryOne("SELECT json FROM policy WHERE id = 1", [])?.json("json") }
    }

    public func policy() throws(WardenError) -> Policy? {
        guard let j = try policyJSON() else { return nil }
        return try Policy.decode(j)
    }

    // MARK: tasks

    public static let taskColumns = "id, plugin, version, tool, tenant, state, node, priority, attempts, max_retries, idempotency_key, created_at, updated_at, reason, result, report, input, cpu_m, mem_b, ext, timeout_ms, not_before, lease_owner, lease_expires, lease_epoch, parent, workflow, step, traceparent, locks, after_ids, rule, explanation, submitter, idempotent, approval_deadline, retry_initial_ms, retry_max_ms"

    static func taskValues(_ t: TaskRecord) -> [SQLValue] {
        let ext: JSONValue? = t.resources.extended.isEmpty ? nil : .object(t.resources.extended.mapValues { .int($0) })
        return [
            .text(t.id), .text(t.plugin), .text(t.version), .text(t.tool), .text(t.tenant), .text(t.state.rawValue),
            .opt(t.node), .int(Int64(t.priority)), .int(Int64(t.attempts)), .int(Int64(t.maxRetries)), .opt(t.idempotencyKey),
            .int(t.createdAt), .int(t.updatedAt), .opt(t.reason), .json(t.result), .json(t.report), .text(t.input.canonical),
            .int(t.resources.cpuMillis), .int(t.resources.memoryBytes), .json(ext), .int(t.timeoutMs), .int(t.notBefore),
            .opt(t.leaseOwner), .opt(t.leaseExpires), .int(t.leaseEpoch), .opt(t.parent), .opt(t.workflow), .opt(t.step),
            .opt(t.traceparent), .text(t.locks.isEmpty ? "[]" : JSONValue.array(t.locks.map { .string($0) }).canonical),
            .text(t.after.isEmpty ? "[]" : JSONValue.array(t.after.map { .string($0) }).canonical), .opt(t.rule), .opt(t.explanation),
            .text(t.submitter), .bool(t.idempotent), .opt(t.approvalDeadline), .int(t.retryInitialMs), .int(t.retryMaxMs),
        ]
    }

    public static func decodeTask(_ r: SQLRow) -> TaskRecord {
        var ext: [String: Int64] = [:]
        if let e = r.json("ext")?.objectValue { for (k, v) in e { ext[k] = v.intValue ?? 0 } }
        var t = TaskRecord(id: r.text("id") ?? "", plugin: r.text("plugin") ?? "", version: r.text("version") ?? "",
                           tool: r.text("tool") ?? "", tenant: r.text("tenant") ?? "",
                           state: TaskState(rawValue: r.text("state") ?? "") ?? .queued, priority: Int(r.int("priority") ?? 0),
                           input: r.json("input") ?? .object([:]),
                           resources: Resources(cpuMillis: r.int("cpu_m") ?? 0, memoryBytes: r.int("mem_b") ?? 0, extended: ext),
                           timeoutMs: r.int("timeout_ms") ?? 30_000, createdAt: r.int("created_at") ?? 0)
        t.node = r.text("node")
        t.attempts = Int(r.int("attempts") ?? 0)
        t.maxRetries = Int(r.int("max_retries") ?? 0)
        t.idempotencyKey = r.text("idempotency_key")
        t.updatedAt = r.int("updated_at") ?? 0
        t.reason = r.text("reason")
        t.result = r.json("result")
        t.report = r.json("report")
        t.notBefore = r.int("not_before") ?? 0
        t.leaseOwner = r.text("lease_owner")
        t.leaseExpires = r.int("lease_expires")
        t.leaseEpoch = r.int("lease_epoch") ?? 0
        t.parent = r.text("parent")
        t.workflow = r.text("workflow")
        t.step = r.text("step")
        t.traceparent = r.text("traceparent")
        t.locks = r.json("locks")?.arrayValue?.compactMap(\.stringValue) ?? []
        t.after = r.json("after_ids")?.arrayValue?.compactMap(\.stringValue) ?? []
        t.rule = r.text("rule")
        t.explanation = r.text("explanation")
        t.submitter = r.text("submitter") ?? ""
        t.idempotent = r.bool("idempotent")
        t.approvalDeadline = r.int("approval_deadline")
        t.retryInitialMs = r.int("retry_initial_ms") ?? 1000
        t.retryMaxMs = r.int("retry_max_ms") ?? 60_000
        return t
    }

    /// Inserts a new task (state `submitted` or later) with its first event and audit record.
    @discardableResult
    public func insertTask(_ tx: SQLExecutor, _ t: TaskRecord, actor: String, rule: String?, detail: JSONValue? = nil) throws -> Int64 {
        let placeholders = Array(repeating: "?", count: 38).joined(separator: ",")
        try tx.execute("INSERT INTO tasks (\(Self.taskColumns)) VALUES (\(placeholders))", Self.taskValues(t))
        for a in t.after {
            try tx.execute("INSERT INTO deps (task, after_id) VALUES (?, ?) ON CONFLICT DO NOTHING", [.text(t.id), .text(a)])
        }
        try adjustUsage(tx, tenant: t.tenant, resources: t.resources, from: nil, to: t.state)
        var d: [String: JSONValue] = ["plugin": .string("\(t.plugin)@\(t.version)"), "tool": .string(t.tool)]
        if let detail, case .object(let o) = detail { for (k, v) in o { d[k] = v } }
        let seq = try appendAudit(tx, actor: actor, tenant: t.tenant, task: t.id, action: "task.\(t.state.rawValue)",
                                  rule: rule, detail: .object(d), at: t.createdAt)
        try tx.execute("INSERT INTO task_events (task, at, from_state, to_state, reason, actor, detail, audit_seq) VALUES (?,?,?,?,?,?,?,?)",
                       [.text(t.id), .int(t.createdAt), .null, .text(t.state.rawValue), .opt(t.reason), .text(actor), .json(.object(d)), .int(seq)])
        return seq
    }

    public func task(_ id: String) throws(WardenError) -> TaskRecord? {
        try read { tx in try self.task(tx, id) }
    }

    public func task(_ tx: SQLExecutor, _ id: String) throws -> TaskRecord? {
        try tx.queryOne("SELECT \(Self.taskColumns) FROM tasks WHERE id = ?", [.text(id)]).map(Self.decodeTask)
    }

    public func task(_ tx: SQLExecutor, tenant: String, idempotencyKey: String) throws -> TaskRecord? {
        try tx.queryOne("SELECT \(Self.taskColumns) FROM tasks WHERE tenant = ? AND idempotency_key = ?",
                        [.text(tenant), .text(idempotencyKey)]).map(Self.decodeTask)
    }

    public func tasks(state: TaskState? = nil, tenant: String? = nil, parent: String? = nil, workflow: String? = nil,
                      limit: Int = 1000) throws(WardenError) -> [TaskRecord]
    {
        try read { tx in try self.tasks(tx, state: state, tenant: tenant, parent: parent, workflow: workflow, limit: limit) }
    }

    public func tasks(_ tx: SQLExecutor, state: TaskState? = nil, tenant: String? = nil, parent: String? = nil,
                      workflow: String? = nil, limit: Int = 1000) throws -> [TaskRecord]
    {
        var clauses: [String] = []
        var params: [SQLValue] = []
        if let state { clauses.append("state = ?"); params.append(.text(state.rawValue)) }
        if let tenant { clauses.append("tenant = ?"); params.append(.text(tenant)) }
        if let parent { clauses.append("parent = ?"); params.append(.text(parent)) }
        if let workflow { clauses.append("workflow = ?"); params.append(.text(workflow)) }
        let whereSQL = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        params.append(.int(Int64(limit)))
        return try tx.query("SELECT \(Self.taskColumns) FROM tasks\(whereSQL) ORDER BY created_at DESC, id DESC LIMIT ?", params)
            .map(Self.decodeTask)
    }

    /// Changes a task's state inside `tx`: checks the transition is legal (and, with `expect`, that the task
    /// is still in one of those states, and with `epoch` that its lease epoch is unchanged), applies `set`
    /// (column → value), records the event and the audit.
    /// Returns nil when the task is not in an expected state (someone else moved it first).
    @discardableResult
    public func transition(_ tx: SQLExecutor, _ id: String, to next: TaskState, expect: Set<TaskState>? = nil,
                           actor: String, reason: String? = nil, rule: String? = nil, set: [String: SQLValue] = [:],
                           detail: JSONValue? = nil, epoch: Int64? = nil, at: Int64 = Time.nowMs()) throws -> TaskRecord?
    {
        let lockClause = db.dialect == .postgres ? " FOR UPDATE" : ""
        guard let row = try tx.queryOne("SELECT \(Self.taskColumns) FROM tasks WHERE id = ?\(lockClause)", [.text(id)]) else {
            throw WardenError.notFound("unknown task \(quoted(id))")
        }
        let current = Self.decodeTask(row)
        if let expect, !expect.contains(current.state) { return nil }
        // Fencing: a stale executor (its lease was taken over) cannot overwrite a newer attempt's result.
        if let epoch, current.leaseEpoch != epoch { return nil }
        guard current.state.canTransition(to: next) else {
            if expect != nil { return nil }
            throw WardenError(.failure, "task \(id) is \(current.state.rawValue); it cannot become \(next.rawValue)")
        }
        var assignments = ["state = ?", "updated_at = ?"]
        var params: [SQLValue] = [.text(next.rawValue), .int(at)]
        var fields = set
        if reason != nil && fields["reason"] == nil { fields["reason"] = .opt(reason) }
        for (k, v) in fields.sorted(by: { $0.key < $1.key }) {
            assignments.append("\(k) = ?")
            params.append(v)
        }
        params.append(.text(id))
        try tx.execute("UPDATE tasks SET \(assignments.joined(separator: ", ")) WHERE id = ?", params)
        try adjustUsage(tx, tenant: current.tenant, resources: current.resources, from: current.state, to: next)
        var d: [String: JSONValue] = ["from": .string(current.state.rawValue)]
        if let reason { d["reason"] = .string(reason) }
        if let detail, case .object(let o) = detail { for (k, v) in o { d[k] = v } }
        let seq = try appendAudit(tx, actor: actor, tenant: current.tenant, task: id, action: "task.\(next.rawValue)",
                                  rule: rule, detail: .object(d), at: at)
        try tx.execute("INSERT INTO task_events (task, at, from_state, to_state, reason, actor, detail, audit_seq) VALUES (?,?,?,?,?,?,?,?)",
                       [.text(id), .int(at), .text(current.state.rawValue), .text(next.rawValue), .opt(reason), .text(actor),
                        .json(detail), .int(seq)])
        return try task(tx, id)
    }

    public func history(_ id: String) throws(WardenError) -> [TaskEvent] {
        try read { tx in
            try tx.query("SELECT * FROM task_events WHERE task = ? ORDER BY id", [.text(id)]).map { r in
                TaskEvent(at: r.int("at") ?? 0, from: r.text("from_state").flatMap(TaskState.init(rawValue:)),
                          to: TaskState(rawValue: r.text("to_state") ?? "") ?? .queued, reason: r.text("reason"),
                          actor: r.text("actor"), detail: r.json("detail"), auditSeq: r.int("audit_seq"))
            }
        }
    }

    // MARK: logs

    public func appendLog(_ tx: SQLExecutor, task: String, attempt: Int, stream: String, data: [UInt8]) throws {
        guard !data.isEmpty else { return }
        try tx.execute("INSERT INTO task_logs (task, attempt, stream, data, at) VALUES (?,?,?,?,?)",
                       [.text(task), .int(Int64(attempt)), .text(stream), .blob(data), .int(Time.nowMs())])
    }

    public func logs(_ task: String) throws(WardenError) -> [(attempt: Int, stream: String, data: [UInt8])] {
        try read { tx in
            try tx.query("SELECT attempt, stream, data FROM task_logs WHERE task = ? ORDER BY id", [.text(task)]).map {
                (Int($0.int("attempt") ?? 0), $0.text("stream") ?? "", $0.blob("data") ?? [])
            }
        }
    }
}
