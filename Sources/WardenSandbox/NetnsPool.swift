import CWardenLinux
import Glibc
import WardenSystem

/// Network namespaces made ahead of time, so that creating one (about 1 ms of kernel work here, the largest
/// single cost of a spawn) happens on a background thread instead of on the spawn's path.
///
/// Each namespace is used by exactly one sandbox and never returned: the pool only moves the moment of
/// creation, so two sandboxes still never share a network namespace (or the abstract UNIX sockets that live
/// in it). The namespaces are owned by the host's user namespace, so nothing inside a sandbox holds any
/// capability over its network (it cannot reconfigure `lo`, open raw sockets or bind privileged ports).
///
/// The spawning thread enters one just for the clone and goes back to its own at once (warden_spawn).
public final class NetnsPool: @unchecked Sendable {
    /// The most namespaces kept ready per kind (loopback up or down).
    public let target: Int
    // All guarded by `lock`. Per kind (index 0: `lo` down, 1: up): made and unused; how many to have ready;
    // how many a steady stream of spawns keeps ready (grows by one each time a spawn had to wait, so a
    // one-shot command makes exactly one). Arrays, not [Bool: …]: every generic type a one-shot command
    // touches first costs it metadata instantiation.
    private var ready: [[Int32]] = [[], []]
    private var want = [0, 0]
    private var keep = [0, 0]
    private var filling = false
    private var disabled = false
    private var lock = pthread_mutex_t()
    private let madeOne = Signal()

    public init(target: Int = 3) {
        self.target = target
        pthread_mutex_init(&lock, nil)
    }

    /// Starts making one namespace of this kind in the background unless one is ready or coming. Call it as
    /// early as possible: as soon as a command knows it will spawn.
    public func prepare(loopback: Bool) {
        let k = loopback ? 1 : 0
        pthread_mutex_lock(&lock)
        want[k] = max(want[k], 1)
        let start = startFillerLocked()
        pthread_mutex_unlock(&lock)
        if start { startThread { [self] in fill() } }
    }

    /// A fresh namespace of this kind, or nil (then the caller creates one with CLONE_NEWNET). Waits briefly
    /// for one being made rather than making a second in parallel on the spawn's path. The caller owns the fd.
    public func take(loopback: Bool) -> Int32? {
        prepare(loopback: loopback)
        let k = loopback ? 1 : 0
        var waited = false
        for _ in 0..<2 {
            pthread_mutex_lock(&lock)
            if let fd = ready[k].popLast() {
                if waited { keep[k] = min(target, keep[k] + 1) }
                want[k] = keep[k]
                let start = startFillerLocked()
                pthread_mutex_unlock(&lock)
                if start { startThread { [self] in fill() } }
                return fd
            }
            let coming = filling && !disabled
            pthread_mutex_unlock(&lock)
            guard coming, !waited, madeOne.wait(timeoutMs: 5) else { return nil }
            waited = true
        }
        return nil
    }

    private func startFillerLocked() -> Bool {
        guard !filling, !disabled, ready[0].count < want[0] || ready[1].count < want[1] else { return false }
        filling = true
        return true
    }

    private func fill() {
        while true {
            pthread_mutex_lock(&lock)
            let kind = ready[0].count < want[0] ? 0 : ready[1].count < want[1] ? 1 : nil
            guard let kind, !disabled else {
                filling = false
                pthread_mutex_unlock(&lock)
                return
            }
            pthread_mutex_unlock(&lock)
            let fd = warden_netns_create(Int32(kind))
            pthread_mutex_lock(&lock)
            if fd >= 0 { ready[kind].append(fd) } else { disabled = true }   // no privilege: spawns keep CLONE_NEWNET
            pthread_mutex_unlock(&lock)
            madeOne.signal()
        }
    }
}
