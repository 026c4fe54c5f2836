import CWardenLinux
import Glibc
import WardenCore
import WardenSystem

/// The local control socket of a running `serve` (`<state>/warden.sock`). Clients write to the store
/// themselves (a submission is durable before anyone is told); the socket only wakes the scheduler at once
/// and lets a waiting client hear about a task's change without polling. One request line, one reply line.
///
///   wake                      → ok            (new work, approvals, replays)
///   watch ID MS               → changed | timeout
///   cancel ID                 → ok            (kill the task's sandbox if it runs here)
///   ping                      → pong
///   metrics                   → the Prometheus text as one JSON string
///   follow ID                 → ok, then `progress FRACTION MESSAGE` lines as the task reports progress,
///                               until the client closes the connection (`warden mcp` relays them)
public enum ControlSocket {
    public static func path(stateDir: String) -> String {
        let p = "\(stateDir)/warden.sock"
        if p.utf8.count < 100 { return p }
        return "/tmp/warden-\(SHA256.hex(stateDir).prefix(16)).sock"
    }

    static func address(_ path: String) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes + [0])
        }
        return addr
    }
}

/// Reads one `\n`-terminated line (at most 64 KiB) from a blocking fd.
func readLine(_ fd: Int32) -> String? {
    var out: [UInt8] = []
    var byte: UInt8 = 0
    while out.count < 65536 {
        let n = read(fd, &byte, 1)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return out.isEmpty ? nil : String(decoding: out, as: UTF8.self) }
        if byte == 10 { return String(decoding: out, as: UTF8.self) }
        out.append(byte)
    }
    return String(decoding: out, as: UTF8.self)
}

public final class ControlClient: @unchecked Sendable {
    let fd: Int32

    init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    /// A connected socket to the serve of `stateDir`, or nil when none listens.
    static func open(stateDir: String) -> Int32? {
        let path = ControlSocket.path(stateDir: stateDir)
        guard FS.exists(path) else { return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = ControlSocket.address(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Connects to the serve of `stateDir`, or nil when none is running.
    public static func connect(stateDir: String) -> ControlClient? {
        guard let fd = open(stateDir: stateDir) else { return nil }
        let c = ControlClient(fd: fd)
        guard c.request("ping", timeoutMs: 2000) == "pong" else { return nil }
        return c
    }

    /// Sends one line and reads the reply (nil on error or after `timeoutMs`).
    public func request(_ line: String, timeoutMs: Int64) -> String? {
        var tv = timeval(tv_sec: Int(timeoutMs / 1000), tv_usec: Int((timeoutMs % 1000) * 1000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard (try? FS.writeAll(fd: fd, Array((line + "\n").utf8))) != nil else { return nil }
        return readLine(fd)
    }

    public func wake() { _ = request("wake", timeoutMs: 2000) }
    public func cancel(_ id: String) { _ = request("cancel \(id)", timeoutMs: 2000) }

    /// True when the task changed within `timeoutMs`.
    public func waitChange(_ id: String, timeoutMs: Int64) -> Bool {
        request("watch \(id) \(timeoutMs)", timeoutMs: timeoutMs + 2000) == "changed"
    }

    public func metrics() -> String? {
        guard let line = request("metrics", timeoutMs: 5000), let v = try? JSONValue.parse(line) else { return nil }
        return v.stringValue
    }
}

/// Receives the progress a task reports while a serve runs it (`follow ID` on the control socket). Its
/// thread delivers `progress` lines until `stop()` or until the serve goes away.
public final class ProgressFollower: @unchecked Sendable {
    let fd: Int32

    init(fd: Int32) { self.fd = fd }

    /// Subscribes to `id`'s progress; nil when no serve runs or it does not offer `follow`.
    public static func start(stateDir: String, id: String,
                             onProgress: @escaping @Sendable (Double, String) -> Void) -> ProgressFollower?
    {
        guard let fd = ControlClient.open(stateDir: stateDir) else { return nil }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard (try? FS.writeAll(fd: fd, Array("follow \(id)\n".utf8))) != nil, readLine(fd) == "ok" else {
            close(fd)
            return nil
        }
        var forever = timeval(tv_sec: 0, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &forever, socklen_t(MemoryLayout<timeval>.size))
        startThread {
            while let line = readLine(fd) {
                let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count >= 2, parts[0] == "progress", let f = Double(parts[1]) else { continue }
                onProgress(f, parts.count > 2 ? String(parts[2]) : "")
            }
            close(fd)
        }
        return ProgressFollower(fd: fd)
    }

    /// Ends the subscription (the thread closes the socket).
    public func stop() { shutdown(fd, Int32(SHUT_RDWR)) }
}

/// The serve side: a listening socket, one thread per client connection.
public final class ControlServer: @unchecked Sendable {
    let path: String
    let listenFD: Int32
    private var lock = pthread_mutex_t()
    private var watchers: [String: [Signal]] = [:]
    private var followers: [String: [Int32]] = [:]
    public var onWake: (@Sendable () -> Void)?
    public var onCancel: (@Sendable (String) -> Void)?
    public var metricsText: (@Sendable () -> String)?

    public init(stateDir: String) throws(WardenError) {
        path = ControlSocket.path(stateDir: stateDir)
        if let existing = ControlClient.connect(stateDir: stateDir) {
            _ = existing
            throw WardenError(.unavailable, "another warden serve is running on \(stateDir)", hint: "stop it first, or use another --state")
        }
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Errno.current.error("socket") }
        var addr = ControlSocket.address(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw Errno.current.error("bind \(path)")
        }
        chmod(path, 0o600)
        guard listen(fd, 128) == 0 else { throw Errno.current.error("listen \(path)") }
        listenFD = fd
        pthread_mutex_init(&lock, nil)
    }

    public func start() {
        startThread { [self] in
            while true {
                let c = warden_accept_cloexec(listenFD)
                if c < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    if errno == EBADF || errno == EINVAL { return }
                    usleep(10_000)
                    continue
                }
                startThread { [self] in serve(c) }
            }
        }
    }

    public func stop() {
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
        unlink(path)
    }

    /// Wakes everyone watching `id`.
    public func changed(_ id: String) {
        pthread_mutex_lock(&lock)
        let ws = watchers.removeValue(forKey: id) ?? []
        pthread_mutex_unlock(&lock)
        for w in ws { w.signal() }
    }

    /// Sends a task's progress to the clients following it; a client that does not keep up misses reports.
    public func progress(_ id: String, _ fraction: Double, _ message: String) {
        pthread_mutex_lock(&lock)
        let fds = followers[id] ?? []
        pthread_mutex_unlock(&lock)
        guard !fds.isEmpty else { return }
        let text = message.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).joined(separator: " ")
        let bytes = Array("progress \(fraction) \(text)\n".utf8)
        for fd in fds {
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
        }
    }

    private func serve(_ fd: Int32) {
        defer {
            pthread_mutex_lock(&lock)
            for (id, fds) in followers where fds.contains(fd) {
                followers[id] = fds.filter { $0 != fd }
                if followers[id]?.isEmpty == true { followers[id] = nil }
            }
            pthread_mutex_unlock(&lock)
            close(fd)
        }
        while let line = readLine(fd) {
            let parts = line.split(separator: " ").map(String.init)
            var reply = "error unknown request"
            switch parts.first {
            case "ping": reply = "pong"
            case "wake":
                onWake?()
                reply = "ok"
            case "cancel" where parts.count == 2:
                onCancel?(parts[1])
                reply = "ok"
            case "watch" where parts.count == 3:
                let sem = Signal()
                pthread_mutex_lock(&lock)
                watchers[parts[1], default: []].append(sem)
                pthread_mutex_unlock(&lock)
                reply = sem.wait(timeoutMs: min(Int64(parts[2]) ?? 1000, 60_000)) ? "changed" : "timeout"
                if reply == "timeout" {
                    pthread_mutex_lock(&lock)
                    watchers[parts[1]]?.removeAll { $0 === sem }
                    if watchers[parts[1]]?.isEmpty == true { watchers[parts[1]] = nil }
                    pthread_mutex_unlock(&lock)
                }
            case "metrics":
                reply = JSONValue.string(metricsText?() ?? "").canonical
            case "follow" where parts.count == 2:
                pthread_mutex_lock(&lock)
                followers[parts[1], default: []].append(fd)
                pthread_mutex_unlock(&lock)
                reply = "ok"
            default: break
            }
            if (try? FS.writeAll(fd: fd, Array((reply + "\n").utf8))) == nil { return }
        }
    }
}
