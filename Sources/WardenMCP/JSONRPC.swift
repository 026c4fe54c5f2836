import Glibc
import WardenCore
import WardenSystem

/// JSON-RPC 2.0 as MCP frames it on stdio: one message per line, UTF-8, no embedded newlines. Shared by the
/// front door (`warden mcp`) and the client that talks to mcp-kind plugin servers.
public struct RPCError: Error, Sendable, Equatable {
    public var code: Int64
    public var message: String
    public var data: JSONValue?

    public init(_ code: Int64, _ message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public static let parseError: Int64 = -32700
    public static let invalidRequest: Int64 = -32600
    public static let methodNotFound: Int64 = -32601
    public static let invalidParams: Int64 = -32602
    public static let internalError: Int64 = -32603
    /// 2026-07-28: the request's protocol version is not served (data names the supported ones).
    public static let unsupportedProtocolVersion: Int64 = -32022

    public var json: JSONValue {
        var o: [String: JSONValue] = ["code": .int(code), "message": .string(message)]
        if let data { o["data"] = data }
        return .object(o)
    }

    public init?(json: JSONValue) {
        guard let code = json["code"]?.intValue else { return nil }
        self.code = code
        self.message = json["message"]?.stringValue ?? ""
        self.data = json["data"]
    }
}

public enum RPC {
    public static func request(id: JSONValue, method: String, params: JSONValue?) -> JSONValue {
        var o: [String: JSONValue] = ["jsonrpc": "2.0", "id": id, "method": .string(method)]
        if let params { o["params"] = params }
        return .object(o)
    }

    public static func notification(_ method: String, _ params: JSONValue?) -> JSONValue {
        var o: [String: JSONValue] = ["jsonrpc": "2.0", "method": .string(method)]
        if let params { o["params"] = params }
        return .object(o)
    }

    public static func result(id: JSONValue, _ result: JSONValue) -> JSONValue {
        ["jsonrpc": "2.0", "id": id, "result": result]
    }

    /// An error response; `id` is null when the request's id could not be read.
    public static func error(id: JSONValue?, _ error: RPCError) -> JSONValue {
        ["jsonrpc": "2.0", "id": id ?? .null, "error": error.json]
    }

    /// A request id as JSON-RPC allows it (string or number); anything else is not an id.
    public static func isValidID(_ v: JSONValue) -> Bool {
        switch v {
        case .string, .int, .double: return true
        default: return false
        }
    }
}

/// Writes whole messages, one per line, from any thread. After the first write error (the peer went away)
/// every later send is dropped and `failed` is true.
public final class LineWriter: @unchecked Sendable {
    let fd: Int32
    private var lock = pthread_mutex_t()
    private var broken = false
    private var closed = false

    public init(fd: Int32) {
        self.fd = fd
        pthread_mutex_init(&lock, nil)
    }

    @discardableResult
    public func send(_ message: JSONValue) -> Bool {
        var bytes = message.canonicalBytes
        bytes.append(10)
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if broken { return false }
        do throws(WardenError) { try FS.writeAll(fd: fd, bytes) } catch {
            broken = true
            return false
        }
        return true
    }

    public var failed: Bool {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return broken
    }

    /// Closes the descriptor; later sends are dropped.
    public func close() {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if fd >= 0 && !closed { _ = Glibc.close(fd) }
        closed = true
        broken = true
    }
}
