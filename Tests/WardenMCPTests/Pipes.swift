import Glibc
import WardenCore
import WardenMCP
import WardenSystem

/// A pipe pair for driving one side of a line protocol in tests; reading happens on a thread, so a
/// test waits for a message with a timeout and never hangs.
final class LineQueue: @unchecked Sendable {
    private var lock = pthread_mutex_t()
    private var lines: [JSONValue] = []
    private var raw: [String] = []
    private var closed = false
    private let arrived = Signal()

    init(fd: Int32) {
        pthread_mutex_init(&lock, nil)
        startThread { [self] in
            let reader = LineReader(fd: fd)
            while let l = reader.next() {
                guard case .line(let bytes) = l else { continue }
                let text = String(decoding: bytes, as: UTF8.self)
                pthread_mutex_lock(&lock)
                raw.append(text)
                lines.append((try? JSONValue.parse(bytes)) ?? .string("NOT JSON: \(text)"))
                pthread_mutex_unlock(&lock)
                arrived.signal()
            }
            pthread_mutex_lock(&lock)
            closed = true
            pthread_mutex_unlock(&lock)
            arrived.signal()
            close(fd)
        }
    }

    /// The next message, or nil after `timeoutMs` (or at end of input).
    func next(timeoutMs: Int64 = 5000) -> JSONValue? {
        let deadline = Time.monotonicNs() + UInt64(timeoutMs) * 1_000_000
        while true {
            pthread_mutex_lock(&lock)
            if !lines.isEmpty {
                let v = lines.removeFirst()
                pthread_mutex_unlock(&lock)
                return v
            }
            let done = closed
            pthread_mutex_unlock(&lock)
            if done { return nil }
            let now = Time.monotonicNs()
            if now >= deadline { return nil }
            _ = arrived.wait(timeoutMs: max(1, Int64((deadline - now) / 1_000_000)))
        }
    }

    var isClosed: Bool {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return closed && lines.isEmpty
    }
}

func makePipe() -> (read: Int32, write: Int32) {
    var fds: [Int32] = [-1, -1]
    precondition(pipe(&fds) == 0)
    return (fds[0], fds[1])
}

func write(_ fd: Int32, _ text: String) {
    try? FS.writeAll(fd: fd, Array((text + "\n").utf8))
}

func tempDir(_ name: String) -> String {
    var template = Array("/tmp/warden-mcp-\(name)-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}
