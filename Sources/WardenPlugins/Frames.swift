import FoundationEssentials
import Glibc
import WardenCore

/// One message on a plugin-host channel (a socketpair; fd 3 inside the worker). On the wire: a 4-byte
/// big-endian length, then that many bytes of one JSON object. `t` says what it is:
///
///   host → worker   init {config, max_output}   call {id, tool, input, timeout_ms}   cancel {id}   shutdown
///   worker → host   ready {abi, name, version, tools}   fatal {stage, message}
///                   log {id, level, message}   progress {id, fraction, message}
///                   result {id, rc, output | message | problem}
///
/// `input` is the call's JSON as a string (the worker hands it to the plugin as it is); `output` is the
/// plugin's result as a JSON value, which the worker checked before sending.
public struct HostFrame: Codable, Sendable, Equatable {
    public var t: String
    public var id: Int64?
    public var tool: String?
    public var input: String?
    public var timeoutMs: Int64?
    public var config: String?
    public var maxOutput: Int64?
    public var rc: Int32?
    public var output: JSONValue?
    public var message: String?
    /// result: "output_limit" or "invalid_output" (then `length` or `message` says more).
    public var problem: String?
    public var length: Int64?
    public var level: Int32?
    public var fraction: Double?
    public var abi: UInt32?
    public var name: String?
    public var version: String?
    public var tools: [String]?
    public var stage: String?

    enum CodingKeys: String, CodingKey {
        case t, id, tool, input, config, rc, output, message, problem, length, level, fraction, abi, name, version, tools, stage
        case timeoutMs = "timeout_ms", maxOutput = "max_output"
    }

    public init(_ t: String, id: Int64? = nil) {
        self.t = t
        self.id = id
    }
}

public enum FrameCodec {
    /// Frames larger than this are refused by whoever reads them (the host uses the output cap plus slack).
    public static let defaultMax = 64 << 20

    public static func encode(_ frame: HostFrame) -> [UInt8] {
        // A HostFrame always encodes (strings, numbers and JSONValues only).
        let body = (try? JSONEncoder().encode(frame)).map(Array.init) ?? Array("{\"t\":\"invalid\"}".utf8)
        return prefixed(body)
    }

    /// A result frame carrying `raw` (already checked to be one JSON value) as `output`, without decoding
    /// and re-encoding it.
    public static func encodeResult(id: Int64, rc: Int32, rawOutput raw: [UInt8]) -> [UInt8] {
        var body = Array("{\"t\":\"result\",\"id\":\(id),\"rc\":\(rc),\"output\":".utf8)
        body.append(contentsOf: raw)
        body.append(UInt8(ascii: "}"))
        return prefixed(body)
    }

    static func prefixed(_ body: [UInt8]) -> [UInt8] {
        let n = UInt32(body.count)
        var out: [UInt8] = [UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
        out.reserveCapacity(4 + body.count)
        out.append(contentsOf: body)
        return out
    }
}

/// Reads frames from a file descriptor into a buffer. Anything that is not a well-formed frame of at most
/// `maxFrame` bytes is `garbage`: the peer is broken or hostile, and the channel is not used again.
public final class FrameReader {
    public enum Event: Sendable, Equatable {
        case frame(HostFrame)
        case eof
        case garbage(String)
    }

    public enum Fill: Equatable { case data, wouldBlock, eof, error(Int32) }

    public let fd: Int32
    public let maxFrame: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private let decoder = JSONDecoder()
    private var chunk = [UInt8](repeating: 0, count: 65536)

    public init(fd: Int32, maxFrame: Int = FrameCodec.defaultMax) {
        self.fd = fd
        self.maxFrame = maxFrame
    }

    /// True when a complete frame, or garbage, is buffered.
    public var hasBuffered: Bool {
        let avail = buffer.count - start
        guard avail >= 4 else { return false }
        let n = length(at: start)
        return n == 0 || n > maxFrame || avail >= 4 + n
    }

    private func length(at i: Int) -> Int {
        Int(buffer[i]) << 24 | Int(buffer[i + 1]) << 16 | Int(buffer[i + 2]) << 8 | Int(buffer[i + 3])
    }

    /// The next buffered frame, or nil when more bytes are needed.
    public func next() -> Event? {
        let avail = buffer.count - start
        guard avail >= 4 else { return nil }
        let n = length(at: start)
        guard n > 0, n <= maxFrame else {
            return .garbage("a frame header announcing \(n) bytes (the limit is \(maxFrame))")
        }
        guard avail >= 4 + n else {
            if buffer.capacity < start + 4 + n { buffer.reserveCapacity(start + 4 + n) }
            return nil
        }
        let body = buffer[(start + 4)..<(start + 4 + n)]
        start += 4 + n
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            start = 0
        } else if start > 1 << 20 {
            buffer.removeFirst(start)
            start = 0
        }
        do {
            return .frame(try decoder.decode(HostFrame.self, from: Data(body)))
        } catch {
            return .garbage("a frame that is not a JSON message (\(describe(decodingError: error)))")
        }
    }

    /// One read of whatever is available.
    public func fill() -> Fill {
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                buffer.append(contentsOf: chunk[0..<n])
                return .data
            }
            if n == 0 { return .eof }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return .wouldBlock }
            return .error(errno)
        }
    }

    /// Blocks (for a blocking fd) until a frame, EOF or garbage.
    public func readBlocking() -> Event {
        while true {
            if let e = next() { return e }
            switch fill() {
            case .data: continue
            case .wouldBlock:
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&p, 1, -1)
            case .eof: return buffer.count > start ? .garbage("a truncated frame before the end of the channel") : .eof
            case .error(let e): return .garbage("read failed: \(String(cString: strerror(e)))")
            }
        }
    }
}

/// Writes whole frames; on a non-blocking fd waits for room until `deadlineNs` (monotonic).
public enum FrameWriter {
    public enum Failure: Error, Equatable { case closed, timedOut }

    public static func send(_ fd: Int32, _ bytes: [UInt8], deadlineNs: UInt64? = nil) -> Failure? {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                off += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                var timeout: Int32 = -1
                if let d = deadlineNs {
                    let now = Time.monotonicNs()
                    if now >= d { return .timedOut }
                    timeout = Int32(min(UInt64(Int32.max), (d - now) / 1_000_000 + 1))
                }
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, timeout)
                continue
            }
            return .closed
        }
        return nil
    }
}
