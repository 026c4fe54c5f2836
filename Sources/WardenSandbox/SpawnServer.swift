import CWardenLinux
import Glibc
import WardenSystem

/// This process's `warden-sandbox --server` (see warden_helper.c): it clones a helper for each launch instead
/// of Warden exec'ing one, which saves an exec and a libc start per sandbox (about half a millisecond here).
/// Started on first use from the spawn thread, which lives as long as the process: the server, and every
/// helper and sandbox under it, dies with that thread. A server that has died is replaced on the next launch;
/// one that cannot be started leaves launches to the exec'd helper.
final class SpawnServer: @unchecked Sendable {
    let helper: String
    private var lock = pthread_mutex_t()
    private var socket: Int32 = -1
    private var pid: pid_t = -1
    private var unavailable = false

    init(helper: String) {
        self.helper = helper
        pthread_mutex_init(&lock, nil)
    }

    /// Launches through the server: warden_spawn_helper's result, or nil when no server can take it (then
    /// the caller execs the helper itself).
    func spawn(_ spec: inout warden_spawn_spec, _ result: inout warden_spawn_result) -> Int32? {
        for _ in 0..<2 {
            guard let sock = current() else { return nil }
            let r = warden_spawn_server(sock, &spec, &result)
            if r != -2 { return r }
            replace(sock)
        }
        return nil
    }

    /// The server's pid, for tests (nil before the first launch).
    var serverPID: pid_t? {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return pid > 0 ? pid : nil
    }

    private func current() -> Int32? {
        pthread_mutex_lock(&lock)
        let known = socket, failed = unavailable
        pthread_mutex_unlock(&lock)
        if known >= 0 { return known }
        if failed { return nil }
        // Started on the spawn thread (at once when that is this thread), and not under the lock: a launch
        // queued on the spawn thread may be waiting for the lock, and we would wait for it.
        let helper = self.helper
        let (fd, p) = Sandbox.spawnThread.run { () -> (Int32, pid_t) in
            var p: pid_t = -1
            let fd = warden_spawn_server_start(helper, &p)
            return (fd, p)
        }
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if socket >= 0 {
            // Another thread started one meanwhile: ours goes (its end closed, it exits; reaped here).
            if fd >= 0 { stop(fd, p) }
            return socket
        }
        guard fd >= 0 else {
            unavailable = true
            return nil
        }
        socket = fd
        pid = p
        return fd
    }

    private func stop(_ fd: Int32, _ p: pid_t) {
        close(fd)
        kill(p, SIGKILL)
        var st: Int32 = 0
        _ = warden_wait4(p, &st, nil, nil, nil)
    }

    /// The server behind `sock` did not take a request: reap it, so that the next launch starts another.
    /// The socket is shut down, never closed: another thread may be sending on it this moment, and a closed
    /// number can be reused by any open (one fd per dead server, which is rare, is the price).
    private func replace(_ sock: Int32) {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        guard socket == sock else { return }   // another thread replaced it already
        shutdown(socket, Int32(SHUT_RDWR))
        kill(pid, SIGKILL)
        var st: Int32 = 0
        _ = warden_wait4(pid, &st, nil, nil, nil)
        socket = -1
        pid = -1
    }
}
