import Glibc
import WardenCore
import WardenSystem

/// Warden as the client of one MCP server over a pair of pipes (the stdio of an mcp-kind plugin's
/// sandboxed server). Requests may be in flight concurrently; a reader thread matches responses to them,
/// relays `notifications/progress` to the request that asked for it, and answers the server's own `ping`.
/// When the server closes its stdout every pending request fails with `.closed`.
public final class MCPClient: @unchecked Sendable {
    public enum CallError: Error, Sendable, Equatable {
        /// The server answered with a JSON-RPC error.
        case rpc(RPCError)
        /// The server went away (its stdout closed) before answering.
        case closed(String)
        case timeout
        case cancelled
        /// The server's answer is not what the protocol says it should be.
        case protocolViolation(String)

        public var description: String {
            switch self {
            case .rpc(let e): return "the MCP server answered error \(e.code): \(e.message)"
            case .closed(let why): return why
            case .timeout: return "timeout"
            case .cancelled: return "canceled"
            case .protocolViolation(let why): return "protocol violation: \(why)"
            }
        }
    }

    /// Versions Warden offers and accepts in the `initialize` handshake with a plugin server, newest first.
    public static let handshakeVersions = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]

    /// Fraction-free progress as the server sent it: progress, total (if any), message (if any).
    public typealias Progress = @Sendable (Double, Double?, String?) -> Void

    final class Pending {
        let done = Signal()
        var response: JSONValue?
        let progress: Progress?
        init(progress: Progress?) { self.progress = progress }
    }

    let writer: LineWriter
    let readFD: Int32
    private var lock = pthread_mutex_t()
    private var pending: [Int64: Pending] = [:]
    private var nextID: Int64 = 1
    private var closedReason: String?
    /// Called once, from the reader thread, when the server's stdout closes.
    public var onClose: (@Sendable (String) -> Void)?
    /// Explains a close (the server's last stderr line, its exit status); set by the owner.
    public var closeDetail: (@Sendable () -> String)?
    public private(set) var protocolVersion: String?
    public private(set) var serverInfo: JSONValue?

    /// Starts reading `readFD` at once. The client owns both descriptors: it closes `readFD` when the
    /// server's output ends and `writeFD` when it is released.
    public init(readFD: Int32, writeFD: Int32) {
        self.readFD = readFD
        self.writer = LineWriter(fd: writeFD)
        pthread_mutex_init(&lock, nil)
        startThread { [self] in readLoop() }
    }

    deinit { writer.close() }

    public var isClosed: Bool {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return closedReason != nil
    }

    // MARK: protocol

    /// The `initialize` handshake (then `notifications/initialized`).
    public func initialize(clientVersion: String, timeoutMs: Int64) -> Result<Void, CallError> {
        let params: JSONValue = [
            "protocolVersion": .string(Self.handshakeVersions[0]),
            "capabilities": [:],
            "clientInfo": ["name": "warden", "version": .string(clientVersion)],
        ]
        switch request("initialize", params, timeoutMs: timeoutMs) {
        case .failure(let e): return .failure(e)
        case .success(let r):
            guard let v = r["protocolVersion"]?.stringValue else {
                return .failure(.protocolViolation("the initialize result has no protocolVersion"))
            }
            guard Self.handshakeVersions.contains(v) else {
                return .failure(.protocolViolation("the server chose protocol version \(quoted(v)), which Warden does not speak (it offers \(Self.handshakeVersions.joined(separator: ", ")))"))
            }
            protocolVersion = v
            serverInfo = r["serverInfo"]
            writer.send(RPC.notification("notifications/initialized", nil))
            return .success(())
        }
    }

    /// Every tool the server offers (following `nextCursor`).
    public func listTools(timeoutMs: Int64) -> Result<[PluginManifest.Tool], CallError> {
        var tools: [PluginManifest.Tool] = []
        var cursor: String?
        let deadline = Time.monotonicNs() + UInt64(timeoutMs) * 1_000_000
        for _ in 0..<1000 {
            let left = Int64((deadline - min(deadline, Time.monotonicNs())) / 1_000_000)
            let params: JSONValue? = cursor.map { ["cursor": .string($0)] }
            switch request("tools/list", params, timeoutMs: max(1, left)) {
            case .failure(let e): return .failure(e)
            case .success(let r):
                guard let list = r["tools"]?.arrayValue else {
                    return .failure(.protocolViolation("the tools/list result has no tools array"))
                }
                for t in list {
                    guard let name = t["name"]?.stringValue else { continue }
                    var schema = t["inputSchema"] ?? ["type": "object"]
                    if schema.objectValue == nil { schema = ["type": "object"] }
                    tools.append(PluginManifest.Tool(name: name, description: t["description"]?.stringValue ?? "", inputSchema: schema))
                }
                guard let next = r["nextCursor"]?.stringValue, !next.isEmpty else { return .success(tools) }
                cursor = next
            }
        }
        return .failure(.protocolViolation("tools/list did not end after 1000 pages"))
    }

    /// `tools/call`: the raw CallToolResult. `isCancelled` is polled; when it turns true (or the deadline
    /// passes) the server gets `notifications/cancelled` and the call returns at once.
    public func callTool(_ name: String, arguments: JSONValue, timeoutMs: Int64, progress: Progress? = nil,
                         isCancelled: (() -> Bool)? = nil) -> Result<JSONValue, CallError>
    {
        request("tools/call", ["name": .string(name), "arguments": arguments], timeoutMs: timeoutMs,
                progress: progress, isCancelled: isCancelled)
    }

    /// Sends one request and waits for its response.
    public func request(_ method: String, _ params: JSONValue?, timeoutMs: Int64, progress: Progress? = nil,
                        isCancelled: (() -> Bool)? = nil) -> Result<JSONValue, CallError>
    {
        let p = Pending(progress: progress)
        pthread_mutex_lock(&lock)
        if let why = closedReason {
            pthread_mutex_unlock(&lock)
            return .failure(.closed(why))
        }
        let id = nextID
        nextID += 1
        pending[id] = p
        pthread_mutex_unlock(&lock)

        var params = params
        if progress != nil {
            // The request id doubles as the progress token.
            var o = params?.objectValue ?? [:]
            var meta = o["_meta"]?.objectValue ?? [:]
            meta["progressToken"] = .int(id)
            o["_meta"] = .object(meta)
            params = .object(o)
        }
        guard writer.send(RPC.request(id: .int(id), method: method, params: params)) else {
            forget(id)
            return .failure(.closed(closedReason ?? "the MCP server's stdin is closed"))
        }
        let deadline = Time.monotonicNs() + UInt64(max(1, timeoutMs)) * 1_000_000
        while true {
            let now = Time.monotonicNs()
            if now >= deadline {
                forget(id)
                writer.send(RPC.notification("notifications/cancelled", ["requestId": .int(id), "reason": "timeout"]))
                return .failure(.timeout)
            }
            let slice = isCancelled == nil ? Int64((deadline - now) / 1_000_000) + 1 : 20
            if p.done.wait(timeoutMs: max(1, slice)) { break }
            if let isCancelled, isCancelled() {
                forget(id)
                writer.send(RPC.notification("notifications/cancelled", ["requestId": .int(id), "reason": "canceled by Warden"]))
                return .failure(.cancelled)
            }
        }
        guard let response = p.response else {
            return .failure(.closed(closedReason ?? "the MCP server closed the connection"))
        }
        if let e = response["error"] {
            return .failure(.rpc(RPCError(json: e) ?? RPCError(RPCError.internalError, "malformed error object")))
        }
        guard let r = response["result"], r.objectValue != nil else {
            return .failure(.protocolViolation("a response without a result object"))
        }
        return .success(r)
    }

    private func forget(_ id: Int64) {
        pthread_mutex_lock(&lock)
        pending[id] = nil
        pthread_mutex_unlock(&lock)
    }

    // MARK: reading

    private func readLoop() {
        let reader = LineReader(fd: readFD)
        while let line = reader.next() {
            guard case .line(let bytes) = line, !bytes.isEmpty, let msg = try? JSONValue.parse(bytes) else { continue }
            handle(msg)
        }
        close(readFD)
        var why = "the MCP server closed its stdout"
        if let d = closeDetail?(), !d.isEmpty { why += " (\(d))" }
        pthread_mutex_lock(&lock)
        closedReason = why
        let waiting = pending
        pending.removeAll()
        pthread_mutex_unlock(&lock)
        for (_, p) in waiting { p.done.signal() }
        onClose?(why)
    }

    private func handle(_ msg: JSONValue) {
        let method = msg["method"]?.stringValue
        if let method {
            if let id = msg["id"] {
                // A request from the server. Warden offers no client features; it answers ping.
                if method == "ping" {
                    writer.send(RPC.result(id: id, [:]))
                } else {
                    writer.send(RPC.error(id: id, RPCError(RPCError.methodNotFound, "Method not found: \(method)")))
                }
                return
            }
            if method == "notifications/progress", let params = msg["params"],
               let token = params["progressToken"]?.intValue, let value = params["progress"]?.doubleValue
            {
                pthread_mutex_lock(&lock)
                let p = pending[token]
                pthread_mutex_unlock(&lock)
                p?.progress?(value, params["total"]?.doubleValue, params["message"]?.stringValue)
            }
            return
        }
        guard let id = msg["id"]?.intValue else { return }
        pthread_mutex_lock(&lock)
        let p = pending.removeValue(forKey: id)
        pthread_mutex_unlock(&lock)
        guard let p else { return }
        p.response = msg
        p.done.signal()
    }
}
