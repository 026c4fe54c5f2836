import Foundation
import Testing
@testable import WardenCore
@testable import WardenStore

/// One suite, run against every store: SQLite on a file, SQLite in memory, and PostgreSQL when
/// WARDEN_TEST_PG_URL names a server (make test starts one; see Tests/scripts/with-postgres.sh).
enum StoreKind: String, CaseIterable, CustomStringConvertible {
    case sqliteFile, sqliteMemory, postgres
    var description: String { rawValue }

    static var available: [StoreKind] {
        var kinds: [StoreKind] = [.sqliteFile, .sqliteMemory]
        if ProcessInfo.processInfo.environment["WARDEN_TEST_PG_URL"] != nil {
            kinds.append(.postgres)
        } else {
            FileHandle.standardError.write(Data("\n*** SKIPPED: PostgreSQL store tests (WARDEN_TEST_PG_URL not set; make test sets it) ***\n".utf8))
        }
        return kinds
    }

    func open() throws -> Store {
        switch self {
        case .sqliteFile:
            let dir = NSTemporaryDirectory() + "warden-store-\(UUID().uuidString.prefix(8))"
            return try Store.open(url: nil, stateDir: dir)
        case .sqliteMemory:
            return try Store.open(url: "sqlite::memory:", stateDir: "/nonexistent")
        case .postgres:
            #if WARDEN_POSTGRES
            // A fresh database per test, so tests never see each other's rows.
            let base = ProcessInfo.processInfo.environment["WARDEN_TEST_PG_URL"]!
            let name = "wt_\(UUID().uuidString.prefix(8).lowercased())"
            let admin = try PostgresDatabase(url: base)
            _ = try admin.read { tx in try tx.execute("CREATE DATABASE \(name)", []) }
            return try Store.open(url: PGURL.with(database: name, base), stateDir: "/nonexistent")
            #else
            throw TestSkip("built without the Postgres trait")
            #endif
        }
    }
}

struct TestSkip: Error { let why: String; init(_ w: String) { why = w } }

enum PGURL {
    /// postgresql://user@host:port/db?x → same with another database name.
    static func with(database: String, _ url: String) -> String {
        guard let scheme = url.firstRange(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        let pathStart = rest.firstIndex(of: "/") ?? rest.endIndex
        let query = rest[pathStart...].firstIndex(of: "?").map { String(rest[$0...]) } ?? ""
        return String(url[..<scheme.upperBound]) + String(rest[..<pathStart]) + "/" + database + query
    }
}

func sampleTask(_ id: String = TaskID.make(), tenant: String = "default", key: String? = nil, state: TaskState = .queued) -> TaskRecord {
    var t = TaskRecord(id: id, plugin: "wordcount", version: "1.0.0", tool: "count", tenant: tenant, state: state,
                       input: ["text": "x"], resources: Resources(cpuMillis: 250, memoryBytes: 64 << 20), createdAt: Time.nowMs())
    t.idempotencyKey = key
    return t
}

@Suite(.serialized) struct StoreSuite {
    @Test(arguments: StoreKind.available)
    func migrationsAreIdempotent(kind: StoreKind) throws {
        let s = try kind.open()
        try Schema.migrate(s.db)
        try Schema.migrate(s.db)
        let v = try s.read { tx in try tx.queryOne("SELECT value FROM meta WHERE key = 'schema_version'", [])?.text("value") }
        #expect(v == String(Schema.migrations.count))
    }

    @Test(arguments: StoreKind.available)
    func pluginsKeepVersionsSideBySide(kind: StoreKind) throws {
        let s = try kind.open()
        for v in ["1.2.0", "1.10.0", "1.9.0"] {
            var j = ["name": "wc", "version": .string(v), "kind": "process", "exec": ["bin/wc"],
                     "tools": [["name": "count", "description": "", "inputSchema": ["type": "object"]]]] as JSONValue
            let m = try PluginManifest.decode(j)
            j = m.tools.isEmpty ? j : j
            try s.putPlugin(PluginRecord(manifest: m, manifestJSON: j, dir: "/p", files: ["bin/wc": "ab"], digest: "d\(v)",
                                         trusted: false, registeredAt: 1, tools: m.tools), actor: "test")
        }
        #expect(try s.plugin("wc")?.version == "1.10.0")
        #expect(try s.plugin("wc", version: "1.2.0")?.digest == "d1.2.0")
        #expect(try s.removePlugin("wc", version: "1.10.0", actor: "test") == 1)
        #expect(try s.plugin("wc")?.version == "1.9.0")
        #expect(try s.auditRecords().filter { $0.action.hasPrefix("plugin.") }.count == 4)
    }

    @Test(arguments: StoreKind.available)
    func transitionsAreCheckedAndRecorded(kind: StoreKind) throws {
        let s = try kind.open()
        let t = sampleTask()
        try s.write { tx in try s.insertTask(tx, t, actor: "test", rule: "no-policy") }
        let placed = try s.write { tx in try s.transition(tx, t.id, to: .placed, actor: "sched", set: ["node": .text("n1")]) }
        #expect(placed?.state == .placed && placed?.node == "n1")
        // Illegal: placed → succeeded.
        #expect(throws: WardenError.self) { try s.write { tx in try s.transition(tx, t.id, to: .succeeded, actor: "x") } }
        // Expectation not met: nobody moves it.
        let none = try s.write { tx in try s.transition(tx, t.id, to: .running, expect: [.queued], actor: "x") }
        #expect(none == nil)
        // Fencing: a stale epoch cannot write.
        let stale = try s.write { tx in try s.transition(tx, t.id, to: .running, actor: "x", epoch: 99) }
        #expect(stale == nil)
        let h = try s.history(t.id)
        #expect(h.map(\.to) == [.queued, .placed])
        #expect(h.allSatisfy { $0.auditSeq != nil })
        #expect(try s.task(t.id)?.state == .placed)
    }

    @Test(arguments: StoreKind.available)
    func idempotencyKeyIsUniquePerTenant(kind: StoreKind) throws {
        let s = try kind.open()
        try s.write { tx in try s.insertTask(tx, sampleTask(key: "k1"), actor: "t", rule: nil) }
        try s.write { tx in try s.insertTask(tx, sampleTask(tenant: "other", key: "k1"), actor: "t", rule: nil) }
        #expect(throws: (any Error).self) { try s.write { tx in try s.insertTask(tx, sampleTask(key: "k1"), actor: "t", rule: nil) } }
        // The failed insert left nothing behind.
        #expect(try s.tasks(limit: 100).count == 2)
    }

    @Test(arguments: StoreKind.available)
    func usageFollowsTransitions(kind: StoreKind) throws {
        let s = try kind.open()
        let a = sampleTask(), b = sampleTask()
        try s.write { tx in
            try s.insertTask(tx, a, actor: "t", rule: nil)
            try s.insertTask(tx, b, actor: "t", rule: nil)
        }
        var u = try s.read { tx in try s.usage(tx, tenant: "default") }
        #expect(u.tasks == 2 && u.queued == 2 && u.cpuMillis == 500)
        try s.write { tx in
            _ = try s.transition(tx, a.id, to: .placed, actor: "t")
            _ = try s.transition(tx, a.id, to: .running, actor: "t")
            _ = try s.transition(tx, a.id, to: .succeeded, actor: "t")
            _ = try s.transition(tx, b.id, to: .canceled, actor: "t")
        }
        u = try s.read { tx in try s.usage(tx, tenant: "default") }
        #expect(u.tasks == 0 && u.queued == 0 && u.cpuMillis == 0 && u.memoryBytes == 0)
    }

    @Test(arguments: StoreKind.available)
    func tokenBucketRefills(kind: StoreKind) throws {
        let s = try kind.open()
        let rate = try Quantity.rate("2/s", field: "r")
        let t0: Int64 = 1_000_000
        let taken = try s.write { tx in try (0..<3).map { _ in try s.takeToken(tx, key: "k", rate: rate, now: t0) } }
        #expect(taken[0] == nil && taken[1] == nil)
        #expect((taken[2] ?? 0) > 0)
        let later = try s.write { tx in try s.takeToken(tx, key: "k", rate: rate, now: t0 + 600) }
        #expect(later == nil)
    }

    @Test(arguments: StoreKind.available)
    func auditChainDetectsTampering(kind: StoreKind) throws {
        let s = try kind.open()
        for i in 0..<5 {
            try s.write { tx in try s.appendAudit(tx, actor: "a", tenant: "t", task: "x\(i)", action: "test") }
        }
        #expect(try s.verifyAudit().problem == nil)
        #expect(try s.verifyAudit().count == 5)
        // Altered.
        try s.write { tx in try tx.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 3", []) }
        #expect(try s.verifyAudit().problem?.seq == 3)
        try s.write { tx in try tx.execute("UPDATE audit SET actor = 'a' WHERE seq = 3", []) }
        #expect(try s.verifyAudit().problem == nil)
        // Reordered: swap two records' contents.
        try s.write { tx in
            try tx.execute("UPDATE audit SET task = 'x9' WHERE seq = 2", [])
            try tx.execute("UPDATE audit SET task = 'x1' WHERE seq = 4", [])
            try tx.execute("UPDATE audit SET task = 'x3' WHERE seq = 2", [])
        }
        #expect(try s.verifyAudit().problem != nil)
        try s.write { tx in
            try tx.execute("UPDATE audit SET task = 'x1' WHERE seq = 2", [])
            try tx.execute("UPDATE audit SET task = 'x3' WHERE seq = 4", [])
        }
        #expect(try s.verifyAudit().problem == nil)
        // Removed from the middle, and from the end.
        let saved = try s.read { tx in try tx.queryOne("SELECT * FROM audit WHERE seq = 5", []) }
        try s.write { tx in try tx.execute("DELETE FROM audit WHERE seq = 5", []) }
        #expect(try s.verifyAudit().problem?.why.contains("removed") == true)
        _ = saved
        try s.write { tx in try tx.execute("DELETE FROM audit WHERE seq = 2", []) }
        #expect(try s.verifyAudit().problem?.seq == 2)
    }

    @Test(arguments: StoreKind.available)
    func nodesHeartbeatAndLeases(kind: StoreKind) throws {
        let s = try kind.open()
        let n1 = try s.upsertNode(NodeRecord(name: "n1", capacity: Resources(cpuMillis: 4000, memoryBytes: 8 << 30), owner: "n1:1"))
        var t = sampleTask(state: .queued)
        try s.write { tx in try s.insertTask(tx, t, actor: "t", rule: nil) }
        t = try s.write { tx in try s.transition(tx, t.id, to: .placed, actor: "t", set: ["node": .text("n1"), "lease_owner": .text("n1:1"), "lease_expires": .int(5)]) }!
        #expect(try s.heartbeat(node: "n1", owner: "n1:1", leaseMs: 5000))
        #expect((try s.task(t.id)?.leaseExpires ?? 0) > 5)
        #expect(try s.heartbeat(node: "n1", owner: "someone-else", leaseMs: 5000) == false)
        let n2 = try s.upsertNode(NodeRecord(name: "n1", capacity: n1.capacity, owner: "n1:2"))
        #expect(n2.epoch == n1.epoch + 1)
        let nodes = try s.nodes()
        #expect(nodes.first?.allocated.cpuMillis == 250)
    }
}

/// Group commit is SQLite's: many writers, fewer fsyncs, each writer released only after its commit.
@Suite struct GroupCommitTests {
    @Test func concurrentWritersShareCommitsAndAllPersist() throws {
        let dir = NSTemporaryDirectory() + "warden-gc-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let db = try SQLiteDatabase(path: "\(dir)/w.db")
        let s = try Store(db)
        let threads = 8, each = 40
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<each { try? s.write { tx in try s.insertTask(tx, sampleTask(), actor: "t", rule: nil) } }
        }
        #expect(try s.tasks(limit: 10_000).count == threads * each)
        #expect(db.commits < db.writes, "group commit should batch: \(db.commits) commits for \(db.writes) writes")
        // A reopened store sees everything (it was committed, not just buffered).
        let again = try Store(SQLiteDatabase(path: "\(dir)/w.db"))
        #expect(try again.tasks(limit: 10_000).count == threads * each)
    }

    @Test func aFailingWriteRollsBackOnlyItself() throws {
        let dir = NSTemporaryDirectory() + "warden-gc-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let s = try Store(SQLiteDatabase(path: "\(dir)/w.db"))
        struct Boom: Error {}
        DispatchQueue.concurrentPerform(iterations: 40) { i in
            try? s.write { tx in
                try s.insertTask(tx, sampleTask("ok\(i)"), actor: "t", rule: nil)
                try s.insertTask(tx, sampleTask("bad\(i)"), actor: "t", rule: nil)
                if i % 2 == 0 { throw Boom() }
            }
        }
        let ids = Set(try s.tasks(limit: 1000).map(\.id))
        #expect(ids.count == 40)
        #expect(ids.contains("ok1") && !ids.contains("ok0") && !ids.contains("bad2"))
        #expect(try s.verifyAudit().problem == nil)
    }
}
