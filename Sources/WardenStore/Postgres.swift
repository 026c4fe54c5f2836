#if WARDEN_POSTGRES
import CLibPQ
import Glibc
import WardenCore
import WardenSystem

/// One libpq connection. `?` placeholders become `$1…`; values go as text (blobs as binary); results come
/// back typed by column OID. Not thread-safe: the pool hands a connection to one caller at a time.
final class PostgresConnection: SQLExecutor {
    let conn: OpaquePointer
    let pq: LibPQ

    init(url: String) throws {
        pq = try LibPQ.get()
        guard let c = pq.connectdb(url) else { throw SQLError(code: -1, sqlstate: nil, message: "PQconnectdb returned nothing") }
        guard pq.status(c) == CONNECTION_OK else {
            let msg = String(cString: pq.errorMessage(c)!).trimmed
            pq.finish(c)
            throw SQLError(code: -1, sqlstate: "08001", message: "connect: \(msg)")
        }
        conn = c
        _ = try query("SET client_min_messages = warning", [])
    }

    deinit { pq.finish(conn) }

    var isOK: Bool { pq.status(conn) == CONNECTION_OK }

    /// `?` → `$n`, outside quoted strings.
    static func numbered(_ sql: String) -> String {
        var out = ""
        var n = 0
        var inQuote = false
        for c in sql {
            if c == "'" { inQuote.toggle() }
            if c == "?" && !inQuote {
                n += 1
                out += "$\(n)"
            } else {
                out.append(c)
            }
        }
        return out
    }

    private func run(_ sql: String, _ params: [SQLValue]) throws -> OpaquePointer {
        let res: OpaquePointer?
        if params.isEmpty {
            res = pq.exec(conn, sql)
        } else {
            var buffers: [UnsafeMutablePointer<CChar>?] = []
            var lengths: [Int32] = []
            var formats: [Int32] = []
            for p in params {
                switch p {
                case .null:
                    buffers.append(nil); lengths.append(0); formats.append(0)
                case .int(let i):
                    buffers.append(strdup(String(i))); lengths.append(0); formats.append(0)
                case .double(let d):
                    buffers.append(strdup(String(d))); lengths.append(0); formats.append(0)
                case .text(let t):
                    buffers.append(strdup(t)); lengths.append(0); formats.append(0)
                case .blob(let b):
                    let p = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, b.count))
                    b.withUnsafeBytes { raw in if let base = raw.baseAddress { memcpy(p, base, b.count) } }
                    buffers.append(p); lengths.append(Int32(b.count)); formats.append(1)
                }
            }
            defer { for b in buffers { free(b) } }
            let values = buffers.map { UnsafePointer($0) }
            res = values.withUnsafeBufferPointer { vb in
                lengths.withUnsafeBufferPointer { lb in
                    formats.withUnsafeBufferPointer { fb in
                        pq.execParams(conn, Self.numbered(sql), Int32(params.count), nil, vb.baseAddress, lb.baseAddress, fb.baseAddress, 0)
                    }
                }
            }
        }
        guard let res else { throw SQLError(code: -1, sqlstate: "08006", message: String(cString: pq.errorMessage(conn)!).trimmed) }
        let status = pq.resultStatus(res)
        if status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK {
            let state = pq.resultErrorField(res, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let msg = String(cString: pq.resultErrorMessage(res)!).trimmed
            pq.clear(res)
            let short = sql.count > 80 ? String(sql.prefix(80)) + "…" : sql
            throw SQLError(code: -1, sqlstate: state, message: "\(msg) (SQLSTATE \(state ?? "?")) in: \(short)")
        }
        return res
    }

    @discardableResult
    func execute(_ sql: String, _ params: [SQLValue]) throws -> Int {
        let res = try run(sql, params)
        defer { pq.clear(res) }
        return Int(String(cString: pq.cmdTuples(res)!)) ?? 0
    }

    func query(_ sql: String, _ params: [SQLValue]) throws -> [SQLRow] {
        let res = try run(sql, params)
        defer { pq.clear(res) }
        let rows = pq.ntuples(res), cols = pq.nfields(res)
        var columns: [String: Int] = [:]
        var types: [UInt32] = []
        for c in 0..<cols {
            columns[String(cString: pq.fname(res, c)!)] = Int(c)
            types.append(pq.ftype(res, c))
        }
        var out: [SQLRow] = []
        out.reserveCapacity(Int(rows))
        for r in 0..<rows {
            var values: [SQLValue] = []
            for c in 0..<cols {
                if pq.getisnull(res, r, c) == 1 { values.append(.null); continue }
                let text = String(cString: pq.getvalue(res, r, c)!)
                switch types[Int(c)] {
                case 20, 21, 23, 26: values.append(.int(Int64(text) ?? 0))
                case 700, 701, 1700: values.append(.double(Double(text) ?? 0))
                case 16: values.append(.int(text == "t" ? 1 : 0))
                case 17: values.append(.blob(Self.unhex(text)))
                default: values.append(.text(text))
                }
            }
            out.append(SQLRow(values: values, columns: columns))
        }
        return out
    }

    /// bytea's text output: `\x` followed by hex.
    static func unhex(_ s: String) -> [UInt8] {
        let u = Array(s.utf8)
        guard u.count >= 2, u[0] == 92, u[1] == 120 else { return u }
        var out: [UInt8] = []
        out.reserveCapacity((u.count - 2) / 2)
        func v(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
        var i = 2
        while i + 1 < u.count {
            out.append(v(u[i]) << 4 | v(u[i + 1]))
            i += 2
        }
        return out
    }

    var socket: Int32 { pq.socket(conn) }

    /// Notifications received since the last call (after `consume`).
    func notifications() -> [(channel: String, payload: String)] {
        _ = pq.consumeInput(conn)
        var out: [(String, String)] = []
        while let n = pq.notifies(conn) {
            out.append((String(cString: n.pointee.relname), String(cString: n.pointee.extra)))
            pq.freemem(n)
        }
        return out
    }
}

/// PostgreSQL behind the same `Database` protocol as SQLite: a small connection pool; every `write` is one
/// transaction (retried on serialization failures and deadlocks); PostgreSQL's own WAL batching does the
/// group commit across connections.
public final class PostgresDatabase: Database, @unchecked Sendable {
    public let url: String
    public var dialect: SQLDialect { .postgres }
    public var location: String { Self.redact(url) }
    private var pool: [PostgresConnection] = []
    private var lock = pthread_mutex_t()
    private let maxIdle = 16

    public init(url: String) throws {
        self.url = url
        pthread_mutex_init(&lock, nil)
        let c = try PostgresConnection(url: url)
        pool.append(c)
    }

    /// postgres://user:secret@host/db → postgres://user:***@host/db
    static func redact(_ url: String) -> String {
        guard let at = url.firstIndex(of: "@"), let scheme = url.firstRange(of: "://") else { return url }
        let userinfo = url[scheme.upperBound..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }

    func take() throws -> PostgresConnection {
        pthread_mutex_lock(&lock)
        while let c = pool.popLast() {
            if c.isOK {
                pthread_mutex_unlock(&lock)
                return c
            }
        }
        pthread_mutex_unlock(&lock)
        return try PostgresConnection(url: url)
    }

    func give(_ c: PostgresConnection) {
        guard c.isOK else { return }
        pthread_mutex_lock(&lock)
        if pool.count < maxIdle { pool.append(c) }
        pthread_mutex_unlock(&lock)
    }

    public func close() {
        pthread_mutex_lock(&lock)
        pool.removeAll()
        pthread_mutex_unlock(&lock)
    }

    public func read<T>(_ body: (SQLExecutor) throws -> T) throws -> T {
        let c = try take()
        defer { give(c) }
        return try body(c)
    }

    public func write<T>(_ body: (SQLExecutor) throws -> T) throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            let c = try take()
            do {
                try c.execute("BEGIN", [])
                let v = try body(c)
                try c.execute("COMMIT", [])
                give(c)
                return v
            } catch let e as SQLError where e.isBusy && attempt < 8 {
                _ = try? c.execute("ROLLBACK", [])
                give(c)
                usleep(useconds_t(1000 * attempt * attempt))
                continue
            } catch {
                _ = try? c.execute("ROLLBACK", [])
                give(c)
                throw error
            }
        }
    }

    /// NOTIFY outside any transaction (wakes agents and waiters on other machines).
    public func notify(_ channel: String, _ payload: String) {
        _ = try? read { tx in try tx.query("SELECT pg_notify(?, ?)", [.text(channel), .text(payload)]) }
    }

    /// Calls `handler` for every NOTIFY on `channel`, from a dedicated connection and thread.
    public func listen(_ channel: String, handler: @escaping @Sendable (String) -> Void) {
        let url = self.url
        startThread {
            while true {
                guard let c = try? PostgresConnection(url: url), (try? c.execute("LISTEN \(channel)", [])) != nil else {
                    usleep(500_000)
                    continue
                }
                while c.isOK {
                    var p = pollfd(fd: c.socket, events: Int16(POLLIN), revents: 0)
                    let n = poll(&p, 1, 1000)
                    if n < 0 && errno != EINTR { break }
                    for (_, payload) in c.notifications() { handler(payload) }
                    if n == 0, (try? c.query("SELECT 1", [])) == nil { break }
                }
                usleep(200_000)
            }
        }
    }
}
#endif
