import WardenCore

/// A value bound to or read from SQL, the same for SQLite and PostgreSQL.
public enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])

    public static func opt(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
    public static func opt(_ i: Int64?) -> SQLValue { i.map { .int($0) } ?? .null }
    public static func json(_ v: JSONValue?) -> SQLValue { v.map { .text($0.canonical) } ?? .null }
    public static func bool(_ b: Bool) -> SQLValue { .int(b ? 1 : 0) }
}

/// One result row. Column lookup by name goes through a table shared by all rows of a query.
public struct SQLRow: Sendable {
    public let values: [SQLValue]
    public let columns: [String: Int]

    public init(values: [SQLValue], columns: [String: Int]) {
        self.values = values
        self.columns = columns
    }

    public subscript(_ name: String) -> SQLValue {
        guard let i = columns[name] else { return .null }
        return values[i]
    }

    public func int(_ name: String) -> Int64? {
        switch self[name] {
        case .int(let i): return i
        case .double(let d): return Int64(d)
        case .text(let t): return Int64(t)
        default: return nil
        }
    }

    public func double(_ name: String) -> Double? {
        switch self[name] {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .text(let t): return Double(t)
        default: return nil
        }
    }

    public func text(_ name: String) -> String? {
        switch self[name] {
        case .text(let t): return t
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .blob(let b): return String(decoding: b, as: UTF8.self)
        case .null: return nil
        }
    }

    public func blob(_ name: String) -> [UInt8]? {
        switch self[name] {
        case .blob(let b): return b
        case .text(let t): return Array(t.utf8)
        default: return nil
        }
    }

    public func json(_ name: String) -> JSONValue? {
        guard let t = text(name) else { return nil }
        return try? JSONValue.parse(t)
    }

    public func bool(_ name: String) -> Bool { (int(name) ?? 0) != 0 }
}

/// Runs SQL inside a transaction (`write`) or a consistent read (`read`). Parameters are `?` placeholders;
/// the PostgreSQL connection rewrites them to `$1…`.
public protocol SQLExecutor: AnyObject {
    @discardableResult
    func execute(_ sql: String, _ params: [SQLValue]) throws -> Int
    func query(_ sql: String, _ params: [SQLValue]) throws -> [SQLRow]
}

extension SQLExecutor {
    public func queryOne(_ sql: String, _ params: [SQLValue]) throws -> SQLRow? {
        try query(sql, params).first
    }
}

public enum SQLDialect: String, Sendable { case sqlite, postgres }

/// A database with durable writes. `write` returns only after its transaction is committed (and, for
/// SQLite, fsynced): group commit may put many callers' writes in one transaction, each in its own savepoint.
public protocol Database: AnyObject, Sendable {
    var dialect: SQLDialect { get }
    func read<T>(_ body: (SQLExecutor) throws -> T) throws -> T
    func write<T>(_ body: (SQLExecutor) throws -> T) throws -> T
    func close()
    /// Where it is, for messages (`sqlite:/x/warden.db`, `postgres://host/db`).
    var location: String { get }
    /// Wakes listeners in other processes (PostgreSQL NOTIFY); a no-op where one machine shares a socket.
    func notify(_ channel: String, _ payload: String)
    /// Calls `handler` for every notification on `channel` (PostgreSQL LISTEN); a no-op otherwise.
    func listen(_ channel: String, handler: @escaping @Sendable (String) -> Void)
}

extension Database {
    public func notify(_ channel: String, _ payload: String) {}
    public func listen(_ channel: String, handler: @escaping @Sendable (String) -> Void) {}
}
