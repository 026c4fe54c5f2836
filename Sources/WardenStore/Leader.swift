import Glibc
import WardenCore
import WardenSystem

/// Leader election for several serves on one store. SQLite has a single serve (no election needed);
/// PostgreSQL uses a session advisory lock held on a dedicated connection: when that connection or its
/// process dies, PostgreSQL releases the lock and another serve takes over.
public protocol LeaderElection: AnyObject, Sendable {
    var isLeader: Bool { get }
    @discardableResult func tryAcquire() -> Bool
    func resign()
}

#if WARDEN_POSTGRES
public final class PostgresLeader: LeaderElection, @unchecked Sendable {
    static let lockKey: Int64 = 727_002
    let url: String
    private var conn: PostgresConnection?
    private var leader = false
    private var lock = pthread_mutex_t()
    private var lastCheck: UInt64 = 0

    public init(store: Store) {
        url = (store.db as? PostgresDatabase)?.url ?? ""
        pthread_mutex_init(&lock, nil)
    }

    /// True while we hold the lock on a live connection (checked at most every 500 ms).
    public var isLeader: Bool {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        guard leader, let c = conn else { return false }
        let now = Time.monotonicNs()
        if now - lastCheck > 500_000_000 {
            lastCheck = now
            if (try? c.query("SELECT 1 AS ok", [])) == nil {
                leader = false
                conn = nil
            }
        }
        return leader
    }

    @discardableResult
    public func tryAcquire() -> Bool {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if leader { return true }
        if conn == nil || conn?.isOK == false { conn = try? PostgresConnection(url: url) }
        guard let c = conn, let row = try? c.query("SELECT pg_try_advisory_lock(?) AS got", [.int(Self.lockKey)]).first else {
            return false
        }
        leader = row.bool("got")
        return leader
    }

    public func resign() {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if leader, let c = conn { _ = try? c.query("SELECT pg_advisory_unlock(?) AS released", [.int(Self.lockKey)]) }
        leader = false
        conn = nil
    }
}
#endif
