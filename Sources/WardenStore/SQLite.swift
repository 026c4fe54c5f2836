import CSQLite3
import Glibc
import WardenCore
import WardenSystem

/// A database error that keeps the engine's code (SQLite extended result code, or a PostgreSQL SQLSTATE
/// folded into `sqlstate`).
public struct SQLError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let sqlstate: String?
    public let message: String

    public var isUniqueViolation: Bool { code == 2067 || code == 1555 || sqlstate == "23505" }
    public var isBusy: Bool { code & 0xFF == SQLITE_BUSY || code & 0xFF == SQLITE_LOCKED || sqlstate == "40001" || sqlstate == "40P01" }
    public var description: String { message }

    public var wardenError: WardenError {
        WardenError(isBusy ? .tempFail : .internalError, "store: \(message)")
    }
}

/// One SQLite connection with a prepared-statement cache. Not thread-safe: the database serializes use.
final class SQLiteConnection: SQLExecutor {
    private(set) var db: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    init(path: String, readOnly: Bool = false) throws {
        let flags = (readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK else {
            let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(db)
            db = nil
            throw SQLError(code: rc, sqlstate: nil, message: "open \(path): \(msg)")
        }
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 10_000)
        // Savepoint journals in memory: group commit wraps every caller's writes in a savepoint, and a
        // sub-journal that spills to a temp file costs a page write per page touched (it doubled the I/O).
        _ = sqlite3_exec(db, "PRAGMA temp_store=MEMORY", nil, nil, nil)
    }

    deinit { close() }

    func close() {
        for (_, s) in statements { sqlite3_finalize(s) }
        statements = [:]
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    private func error(_ rc: Int32, _ sql: String) -> SQLError {
        let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "closed"
        let short = sql.count > 80 ? String(sql.prefix(80)) + "…" : sql
        return SQLError(code: sqlite3_extended_errcode(db), sqlstate: nil, message: "\(msg) (sqlite \(rc)) in: \(short)")
    }

    private func prepare(_ sql: String) throws -> OpaquePointer {
        if let s = statements[sql] {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
            return s
        }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql) }
        statements[sql] = stmt
        return stmt
    }

    private func bind(_ stmt: OpaquePointer, _ params: [SQLValue], _ sql: String) throws {
        for (i, p) in params.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch p {
            case .null: rc = sqlite3_bind_null(stmt, idx)
            case .int(let v): rc = sqlite3_bind_int64(stmt, idx, v)
            case .double(let v): rc = sqlite3_bind_double(stmt, idx, v)
            case .text(let v): rc = sqlite3_bind_text(stmt, idx, v, -1, csqlite3_transient())
            case .blob(let v):
                rc = v.withUnsafeBytes { sqlite3_bind_blob(stmt, idx, $0.baseAddress, Int32($0.count), csqlite3_transient()) }
            }
            if rc != SQLITE_OK { throw error(rc, sql) }
        }
    }

    @discardableResult
    func execute(_ sql: String, _ params: [SQLValue] = []) throws -> Int {
        if params.isEmpty && sql.contains(";") {
            // Multi-statement scripts (migrations) go through sqlite3_exec.
            let rc = sqlite3_exec(db, sql, nil, nil, nil)
            if rc != SQLITE_OK { throw error(rc, sql) }
            return Int(sqlite3_changes(db))
        }
        let stmt = try prepare(sql)
        defer { sqlite3_reset(stmt) }
        try bind(stmt, params, sql)
        var rc = sqlite3_step(stmt)
        while rc == SQLITE_ROW { rc = sqlite3_step(stmt) }
        guard rc == SQLITE_DONE else { throw error(rc, sql) }
        return Int(sqlite3_changes(db))
    }

    func query(_ sql: String, _ params: [SQLValue] = []) throws -> [SQLRow] {
        let stmt = try prepare(sql)
        defer { sqlite3_reset(stmt) }
        try bind(stmt, params, sql)
        let n = sqlite3_column_count(stmt)
        var columns: [String: Int] = [:]
        for i in 0..<n { columns[String(cString: sqlite3_column_name(stmt, i))] = Int(i) }
        var rows: [SQLRow] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            var values: [SQLValue] = []
            values.reserveCapacity(Int(n))
            for i in 0..<n {
                switch sqlite3_column_type(stmt, i) {
                case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(stmt, i)))
                case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(stmt, i)))
                case SQLITE_TEXT:
                    let p = sqlite3_column_text(stmt, i)!
                    let len = Int(sqlite3_column_bytes(stmt, i))
                    values.append(.text(String(decoding: UnsafeBufferPointer(start: p, count: len), as: UTF8.self)))
                case SQLITE_BLOB:
                    let len = Int(sqlite3_column_bytes(stmt, i))
                    if let p = sqlite3_column_blob(stmt, i), len > 0 {
                        values.append(.blob(Array(UnsafeRawBufferPointer(start: p, count: len))))
                    } else {
                        values.append(.blob([]))
                    }
                default: values.append(.null)
                }
            }
            rows.append(SQLRow(values: values, columns: columns))
        }
        return rows
    }
}

/// The embedded store: SQLite in WAL mode with `synchronous=FULL` (a commit is on disk when it returns) and
/// group commit. Writers queue; whoever finds no commit in progress becomes the leader, runs every queued
/// write in one transaction (each in its own savepoint, so one failure does not undo the others), commits
/// once, and releases them all. With `groupCommit: false` every write is its own transaction (the baseline).
public final class SQLiteDatabase: Database, @unchecked Sendable {
    public let path: String
    public let groupCommit: Bool
    public var dialect: SQLDialect { .sqlite }
    public var location: String { "sqlite:\(path)" }

    private let writer: SQLiteConnection
    private var readers: [SQLiteConnection] = []
    private let memory: Bool

    private final class Job {
        /// Runs the caller's body; false when it threw (its writes are then rolled back).
        var run: ((SQLExecutor) -> Bool)?
        var done = false
        /// Handed the leader's role: run the next batch.
        var lead = false
        var commitError: Error?
        /// Each writer sleeps on its own condition, so a commit wakes exactly the writers it carried (and
        /// the next leader), not every thread in the queue.
        let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        init(_ run: @escaping (SQLExecutor) -> Bool) {
            self.run = run
            initMonotonicCondition(wake)
        }
        deinit {
            pthread_cond_destroy(wake)
            wake.deallocate()
        }
    }

    private var lock = pthread_mutex_t()
    private var pending: [Job] = []
    private var leaderActive = false
    /// Gathering: writers inside `write` now, the most seen at once (this second and the last), the leader
    /// waiting for more of them, and how long the last commit took.
    private var writersInside = 0
    private var peakWriters = (current: 0, previous: 0, since: UInt64(0))
    private var gatheringLeader: Job?
    private var gatherTarget = 0
    private var lastCommitNs: UInt64 = 0
    private var readLock = pthread_mutex_t()
    /// Statistics for `bench submit`: transactions committed and writes they carried.
    public private(set) var commits = 0
    public private(set) var writes = 0

    public init(path: String, groupCommit: Bool = true) throws {
        self.path = path
        self.groupCommit = groupCommit
        memory = path == ":memory:"
        writer = try SQLiteConnection(path: path)
        pthread_mutex_init(&lock, nil)
        pthread_mutex_init(&readLock, nil)
        if !memory {
            _ = try writer.query("PRAGMA journal_mode=WAL", [])
            try writer.execute("PRAGMA synchronous=FULL", [])
        }
    }

    public func close() {
        pthread_mutex_lock(&readLock)
        for r in readers { r.close() }
        readers = []
        pthread_mutex_unlock(&readLock)
        pthread_mutex_lock(&lock)
        writer.close()
        pthread_mutex_unlock(&lock)
    }

    public func read<T>(_ body: (SQLExecutor) throws -> T) throws -> T {
        if memory {
            // One connection holds an in-memory database: reads go through the writer's queue.
            return try write(body)
        }
        pthread_mutex_lock(&readLock)
        let conn: SQLiteConnection
        if let c = readers.popLast() {
            conn = c
        } else {
            pthread_mutex_unlock(&readLock)
            conn = try SQLiteConnection(path: path)
            pthread_mutex_lock(&readLock)
        }
        pthread_mutex_unlock(&readLock)
        defer {
            pthread_mutex_lock(&readLock)
            if readers.count < 8 { readers.append(conn) } else { conn.close() }
            pthread_mutex_unlock(&readLock)
        }
        try conn.execute("BEGIN", [])
        defer { _ = try? conn.execute("COMMIT", []) }
        return try body(conn)
    }

    public func write<T>(_ body: (SQLExecutor) throws -> T) throws -> T {
        var result: Result<T, Error>?
        let commitError: Error? = withoutActuallyEscaping(body) { escapable -> Error? in
            let job = Job { conn in
                do {
                    result = .success(try escapable(conn))
                    return true
                } catch {
                    result = .failure(error)
                    return false
                }
            }
            pthread_mutex_lock(&lock)
            pending.append(job)
            writersInside += 1
            notePeak()
            if let g = gatheringLeader, pending.count >= gatherTarget { pthread_cond_signal(g.wake) }
            if !leaderActive {
                leaderActive = true
                job.lead = true
            }
            while !job.done && !job.lead { pthread_cond_wait(job.wake, &lock) }
            if !job.done {
                // Leader: the queue's head is this job (new leaders are always the head), so the batch
                // carries it.
                if groupCommit { gather(job) }
                let take = groupCommit ? min(pending.count, 1024) : 1
                let batch = Array(pending.prefix(take))
                pending.removeFirst(take)
                pthread_mutex_unlock(&lock)
                let started = Time.monotonicNs()
                let err = runBatch(batch)
                pthread_mutex_lock(&lock)
                lastCommitNs = Time.monotonicNs() &- started
                for j in batch {
                    if j.commitError == nil { j.commitError = err }
                    j.done = true
                    if j !== job { pthread_cond_signal(j.wake) }
                }
                commits += 1
                writes += batch.count
                if let next = pending.first {
                    next.lead = true
                    pthread_cond_signal(next.wake)
                } else {
                    leaderActive = false
                }
            }
            // The body must not outlive this block: drop the only reference to it before leaving.
            job.run = nil
            writersInside -= 1
            pthread_mutex_unlock(&lock)
            return job.commitError
        }
        if let e = commitError { throw (e as? SQLError)?.wardenError ?? e }
        switch result! {
        case .success(let v): return v
        case .failure(let e): throw (e as? SQLError)?.wardenError ?? e
        }
    }

    /// The most writers seen inside `write` at once, over the last second or two. Called with `lock` held.
    private func notePeak() {
        let now = Time.monotonicNs()
        if now &- peakWriters.since > 1_000_000_000 {
            peakWriters = (writersInside, peakWriters.current, now)
        } else {
            peakWriters.current = max(peakWriters.current, writersInside)
        }
    }

    /// Before a leader takes its batch: the writers its predecessor just released usually come straight
    /// back, and without waiting for them batches alternate between two halves of the clients. So when
    /// fewer are queued than have recently been writing at once, wait for them, at most half the last
    /// commit's time and 2 ms (PostgreSQL's commit_delay, sized by the clients actually seen). A lone
    /// writer never waits. Called with `lock` held.
    private func gather(_ leader: Job) {
        let target = max(peakWriters.current, peakWriters.previous)
        guard pending.count < target else { return }
        let waitNs = min(lastCommitNs / 2, 2_000_000)
        guard waitNs > 20_000 else { return }
        var deadline = monotonicDeadline(afterNs: waitNs)
        gatheringLeader = leader
        gatherTarget = target
        while pending.count < target {
            if pthread_cond_timedwait(leader.wake, &lock, &deadline) == ETIMEDOUT { break }
        }
        gatheringLeader = nil
    }

    /// Runs a batch in one transaction and commits it; returns the commit error, if any.
    private func runBatch(_ batch: [Job]) -> Error? {
        do {
            try writer.execute("BEGIN IMMEDIATE", [])
        } catch {
            return error
        }
        if batch.count == 1 {
            if batch[0].run?(writer) != true {
                _ = try? writer.execute("ROLLBACK", [])
                return nil
            }
        } else {
            for j in batch {
                do {
                    try writer.execute("SAVEPOINT g", [])
                } catch {
                    j.commitError = error
                    continue
                }
                if j.run?(writer) != true { _ = try? writer.execute("ROLLBACK TO g", []) }
                _ = try? writer.execute("RELEASE g", [])
            }
        }
        do {
            try writer.execute("COMMIT", [])
            return nil
        } catch {
            _ = try? writer.execute("ROLLBACK", [])
            return error
        }
    }
}
