import Glibc
import WardenCore

/// One message on a plugin-host channel (a socketpair; fd 3 inside the worker). On the wire: a 4-byte
/// big-endian length, then that many bytes of one flat JSON object. `t` says what it is:
///
///   host → worker   init {config, max_output}   call {id, tool, input, timeout_ms}   cancel {id}   shutdown
///   worker → host   ready {abi, name, version, tools}   fatal {stage, message}
///                   log {id, level, message}   progress {id, fraction, message}
///                   result {id, rc, output | problem + length}
///
/// `input` and `output` are JSON texts carried as strings: the worker hands the input to the plugin as it is
/// and passes the plugin's output back unread; the host parses it once (as in-process hosting does), so a
/// plugin's invalid JSON is a failed call, not a broken channel.
public struct HostFrame: Sendable, Equatable {
    public var t: String
    public var id: Int64?
    public var tool: String?
    public var input: String?
    public var timeoutMs: Int64?
    public var config: String?
    public var maxOutput: Int64?
    public var rc: Int32?
    public var output: String?
    public var message: String?
    /// result: "output_limit" when the output (of `length` bytes) was over the cap and not sent.
    public var problem: String?
    public var length: Int64?
    public var level: Int32?
    public var fraction: Double?
    public var abi: UInt32?
    public var name: String?
    public var version: String?
    public var tools: [String]?
    public var stage: String?

    public init(_ t: String, id: Int64? = nil) {
        self.t = t
        self.id = id
    }
}

/// Frames are flat JSON objects (strings, integers, one number, one array of strings), written and read here
/// directly rather than through JSONEncoder/JSONDecoder: every call pays for two frames on each side, and
/// for this shape the Codable path costs ~20 µs a frame against ~2 µs (measured on the 2-core dev box).
/// The reader is strict: anything that is not such an object is garbage, and the channel is dropped.
public enum FrameCodec {
    /// Frames larger than this are refused by whoever reads them (the host uses the output cap plus slack).
    public static let defaultMax = 64 << 20

    public static func encode(_ f: HostFrame) -> [UInt8] {
        var w = FlatWriter()
        w.string("t", f.t)
        if let v = f.id { w.int("id", v) }
        if let v = f.rc { w.int("rc", Int64(v)) }
        if let v = f.timeoutMs { w.int("timeout_ms", v) }
        if let v = f.maxOutput { w.int("max_output", v) }
        if let v = f.length { w.int("length", v) }
        if let v = f.level { w.int("level", Int64(v)) }
        if let v = f.abi { w.int("abi", Int64(v)) }
        if let v = f.fraction, v.isFinite { w.raw("fraction", Array(String(v).utf8)) }
        for (k, v) in [("tool", f.tool), ("name", f.name), ("version", f.version), ("stage", f.stage), ("problem", f.problem),
                       ("message", f.message), ("config", f.config), ("input", f.input), ("output", f.output)]
        {
            if let v { w.string(k, v) }
        }
        if let tools = f.tools {
            w.key("tools")
            w.out.append(UInt8(ascii: "["))
            for (i, t) in tools.enumerated() {
                if i > 0 { w.out.append(UInt8(ascii: ",")) }
                appendString(&w.out, t.utf8)
            }
            w.out.append(UInt8(ascii: "]"))
        }
        return prefixed(w.finish())
    }

    /// A call frame with `input` (JSON text from JSONEncoder, so valid UTF-8) taken as bytes.
    public static func encodeCall(id: Int64, tool: String, input: [UInt8], timeoutMs: Int64) -> [UInt8] {
        var w = FlatWriter(capacity: 64 + tool.utf8.count + input.count + input.count / 8)
        w.string("t", "call")
        w.int("id", id)
        w.int("timeout_ms", timeoutMs)
        w.string("tool", tool)
        w.key("input")
        appendString(&w.out, input)
        return prefixed(w.finish())
    }

    /// A result frame with the plugin's bytes as `output` (invalid UTF-8 repaired, so the frame is valid).
    public static func encodeResult(id: Int64, rc: Int32, output: [UInt8]) -> [UInt8] {
        var w = FlatWriter(capacity: 48 + output.count + output.count / 8)
        w.string("t", "result")
        w.int("id", id)
        w.int("rc", Int64(rc))
        w.key("output")
        if output.allSatisfy({ $0 < 0x80 }) {
            appendString(&w.out, output)
        } else {
            appendString(&w.out, String(decoding: output, as: UTF8.self).utf8)
        }
        return prefixed(w.finish())
    }

    /// Appends `bytes` (valid UTF-8) as a JSON string literal.
    static func appendString(_ out: inout [UInt8], _ bytes: some Collection<UInt8>) {
        let hex: StaticString = "0123456789abcdef"
        out.append(UInt8(ascii: "\""))
        for b in bytes {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(b)
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), 48, 48])
                out.append(hex.utf8Start[Int(b >> 4)])
                out.append(hex.utf8Start[Int(b & 15)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static func prefixed(_ body: [UInt8]) -> [UInt8] {
        let n = UInt32(body.count)
        var out: [UInt8] = [UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
        out.reserveCapacity(4 + body.count)
        out.append(contentsOf: body)
        return out
    }

    /// Reads a frame body, or says why it is not one.
    public static func decode(_ body: ArraySlice<UInt8>) -> Result<HostFrame, FrameError> {
        var r = FlatReader(body)
        var f = HostFrame("")
        var sawType = false
        do throws(FrameError) {
            try r.expect(UInt8(ascii: "{"))
            r.skipSpace()
            if r.peek == UInt8(ascii: "}") { throw FrameError("an empty object") }
            while true {
                let key = try r.string()
                try r.expect(UInt8(ascii: ":"))
                r.skipSpace()
                if r.peek == UInt8(ascii: "n") {
                    try r.literal("null")
                } else {
                    switch key {
                    case "t": f.t = try r.string(); sawType = true
                    case "id": f.id = try r.integer(key)
                    case "timeout_ms": f.timeoutMs = try r.integer(key)
                    case "max_output": f.maxOutput = try r.integer(key)
                    case "length": f.length = try r.integer(key)
                    case "rc": f.rc = try r.int32(key)
                    case "level": f.level = try r.int32(key)
                    case "abi":
                        let v = try r.integer(key)
                        guard let a = UInt32(exactly: v) else { throw FrameError("abi \(v) out of range") }
                        f.abi = a
                    case "fraction": f.fraction = try r.double(key)
                    case "tool": f.tool = try r.string()
                    case "input": f.input = try r.string()
                    case "config": f.config = try r.string()
                    case "output": f.output = try r.string()
                    case "message": f.message = try r.string()
                    case "problem": f.problem = try r.string()
                    case "name": f.name = try r.string()
                    case "version": f.version = try r.string()
                    case "stage": f.stage = try r.string()
                    case "tools": f.tools = try r.stringArray()
                    default: throw FrameError("an unknown key \(quoted(key))")
                    }
                }
                r.skipSpace()
                if r.peek == UInt8(ascii: ",") {
                    r.advance()
                    r.skipSpace()
                    continue
                }
                try r.expect(UInt8(ascii: "}"))
                break
            }
            r.skipSpace()
            guard r.atEnd else { throw FrameError("bytes after the object") }
            guard sawType else { throw FrameError("no \"t\"") }
        } catch {
            return .failure(error)
        }
        return .success(f)
    }
}

public struct FrameError: Error, Sendable, Equatable {
    public let why: String
    init(_ why: String) { self.why = why }
}

struct FlatWriter {
    var out: [UInt8] = []
    private var first = true

    init(capacity: Int = 128) {
        out.reserveCapacity(capacity)
        out.append(UInt8(ascii: "{"))
    }

    mutating func key(_ k: String) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        FrameCodec.appendString(&out, k.utf8)
        out.append(UInt8(ascii: ":"))
    }

    mutating func string(_ k: String, _ v: String) {
        key(k)
        FrameCodec.appendString(&out, v.utf8)
    }

    mutating func int(_ k: String, _ v: Int64) { raw(k, Array(String(v).utf8)) }

    mutating func raw(_ k: String, _ v: [UInt8]) {
        key(k)
        out.append(contentsOf: v)
    }

    mutating func finish() -> [UInt8] {
        out.append(UInt8(ascii: "}"))
        return out
    }
}

/// A strict reader of the values frames hold. Bounds-checked throughout: a hostile worker controls the bytes.
struct FlatReader {
    let b: ArraySlice<UInt8>
    var i: Int

    init(_ b: ArraySlice<UInt8>) {
        self.b = b
        i = b.startIndex
    }

    var atEnd: Bool { i >= b.endIndex }
    var peek: UInt8? { i < b.endIndex ? b[i] : nil }
    mutating func advance() { i += 1 }

    mutating func skipSpace() {
        while let c = peek, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 }
    }

    mutating func expect(_ c: UInt8) throws(FrameError) {
        skipSpace()
        guard peek == c else { throw FrameError("expected '\(Character(Unicode.Scalar(c)))' at byte \(i - b.startIndex)") }
        i += 1
    }

    mutating func literal(_ s: StaticString) throws(FrameError) {
        let n = s.utf8CodeUnitCount
        guard b.endIndex - i >= n, (0..<n).allSatisfy({ b[i + $0] == s.utf8Start[$0] }) else {
            throw FrameError("a bad literal at byte \(i - b.startIndex)")
        }
        i += n
    }

    mutating func string() throws(FrameError) -> String {
        skipSpace()
        guard peek == UInt8(ascii: "\"") else { throw FrameError("expected a string at byte \(i - b.startIndex)") }
        i += 1
        let start = i
        // Fast path: no escapes.
        while i < b.endIndex, b[i] != UInt8(ascii: "\""), b[i] != UInt8(ascii: "\\"), b[i] >= 0x20 { i += 1 }
        if i < b.endIndex, b[i] == UInt8(ascii: "\"") {
            defer { i += 1 }
            return String(decoding: b[start..<i], as: UTF8.self)
        }
        var out = Array(b[start..<i])
        while i < b.endIndex {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return String(decoding: out, as: UTF8.self)
            }
            guard c >= 0x20 else { throw FrameError("a control character in a string") }
            guard c == UInt8(ascii: "\\") else {
                out.append(c)
                i += 1
                continue
            }
            guard i + 1 < b.endIndex else { break }
            let e = b[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar), i + 1 < b.endIndex, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
                    let save = i
                    i += 2
                    let low = try hex4()
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        i = save
                    }
                }
                // A lone surrogate becomes U+FFFD, as String(decoding:) would make it.
                out.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
            default:
                throw FrameError("a bad escape in a string")
            }
        }
        throw FrameError("an unterminated string")
    }

    private mutating func hex4() throws(FrameError) -> UInt32 {
        guard b.endIndex - i >= 4 else { throw FrameError("a short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 97...102: d = UInt32(c - 87)
            case 65...70: d = UInt32(c - 55)
            default: throw FrameError("a bad \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    /// The span of a JSON number (strict grammar), and whether it has a fraction or exponent.
    private mutating func numberToken() throws(FrameError) -> (ArraySlice<UInt8>, Bool) {
        skipSpace()
        let start = i
        func digits(_ r: inout FlatReader) -> Int {
            let s = r.i
            while let c = r.peek, c >= 48, c <= 57 { r.i += 1 }
            return r.i - s
        }
        if peek == UInt8(ascii: "-") { i += 1 }
        guard digits(&self) > 0 else { throw FrameError("expected a number at byte \(start - b.startIndex)") }
        var real = false
        if peek == UInt8(ascii: ".") {
            i += 1
            real = true
            guard digits(&self) > 0 else { throw FrameError("a bad number") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            i += 1
            real = true
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
            guard digits(&self) > 0 else { throw FrameError("a bad number") }
        }
        return (b[start..<i], real)
    }

    mutating func integer(_ key: String) throws(FrameError) -> Int64 {
        let (tok, real) = try numberToken()
        guard !real, tok.count <= 20, let v = Int64(String(decoding: tok, as: UTF8.self)) else {
            throw FrameError("\(key) is not an integer")
        }
        return v
    }

    mutating func int32(_ key: String) throws(FrameError) -> Int32 {
        guard let v = Int32(exactly: try integer(key)) else { throw FrameError("\(key) out of range") }
        return v
    }

    mutating func double(_ key: String) throws(FrameError) -> Double {
        let (tok, _) = try numberToken()
        guard tok.count <= 64, let v = Double(String(decoding: tok, as: UTF8.self)), v.isFinite else {
            throw FrameError("\(key) is not a number")
        }
        return v
    }

    mutating func stringArray() throws(FrameError) -> [String] {
        try expect(UInt8(ascii: "["))
        var out: [String] = []
        skipSpace()
        if peek == UInt8(ascii: "]") {
            i += 1
            return out
        }
        while true {
            out.append(try string())
            skipSpace()
            if peek == UInt8(ascii: ",") {
                i += 1
                continue
            }
            try expect(UInt8(ascii: "]"))
            return out
        }
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
        let decoded = FrameCodec.decode(buffer[(start + 4)..<(start + 4 + n)])
        start += 4 + n
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            start = 0
        } else if start > 1 << 20 {
            buffer.removeFirst(start)
            start = 0
        }
        switch decoded {
        case .success(let f): return .frame(f)
        case .failure(let e): return .garbage("a frame that is not a flat JSON message (\(e.why))")
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
