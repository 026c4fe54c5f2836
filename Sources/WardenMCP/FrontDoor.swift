import Glibc
import WardenCore
import WardenEngine
import WardenPlugins
import WardenStore
import WardenSystem

/// `warden mcp` (DESIGN §8): an MCP server on stdin/stdout, one JSON-RPC message per line. It speaks the
/// handshake era (`initialize`, versions 2024-11-05 … 2025-11-25) and the 2026-07-28 revision (every request
/// carries its protocol version and client capabilities in `_meta`; `server/discover`). Each registered
/// tool is offered as `plugin.tool`; `tools/call` is a task like any other — admitted, recorded, run by a
/// running `serve` when there is one and in this process otherwise — and every way a task can end
/// (rejection, failure, cancellation) is reported as an `isError` result with the reason. Only protocol
/// messages go to stdout.
public final class MCPFrontDoor: @unchecked Sendable {
    public struct Options: Sendable {
        public var tenant = "default"
        public var stateDir = "./.warden"
        /// Tools per `tools/list` page.
        public var pageSize = 100
        /// After stdin closes, calls still running get this long to finish before they are canceled.
        public var shutdownGraceMs: Int64 = 2000
        /// At most this many `tools/call`s in flight at once.
        public var maxInFlight = 256
        public var serverVersion = "0.1.0"
        /// Agent sockets: every call becomes a child task of this task (same tenant, its trace continued).
        public var parent: String?
        public var parentTraceparent: String?
        /// Relay tools' progress to this client (the stdio front door). Agent sockets do not: there is one
        /// per agent task, and each hook would stay chained on the engine.
        public var relayProgress = true
        public init() {}
    }

    public static let handshakeVersions = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]
    public static let modernVersions = ["2026-07-28"]
    static let versionKey = "io.modelcontextprotocol/protocolVersion"
    static let capabilitiesKey = "io.modelcontextprotocol/clientCapabilities"
    static let clientInfoKey = "io.modelcontextprotocol/clientInfo"
    static let serverInfoKey = "io.modelcontextprotocol/serverInfo"

    let engine: Engine
    let options: Options
    let out: LineWriter
    public var log: (@Sendable (String) -> Void)?

    private var lock = pthread_mutex_t()
    private var calls: [String: Call] = [:]       // by request id (canonical JSON)
    private var byTask: [String: Call] = [:]
    private var negotiated: String?
    private var clientName = "client"
    private let allDone = Signal()

    /// One `tools/call` in flight.
    final class Call: @unchecked Sendable {
        let id: JSONValue
        let key: String
        let progressToken: JSONValue?
        var taskID: String?
        var canceled = false
        var lastProgress = -1.0
        init(id: JSONValue, key: String, progressToken: JSONValue?) {
            self.id = id
            self.key = key
            self.progressToken = progressToken
        }
    }

    /// The era and version one request is answered in.
    struct Era {
        var modern: Bool
        var version: String
        /// structuredContent exists from 2025-06-18 on.
        var structured: Bool { modern || version >= "2025-06-18" }
    }

    public init(engine: Engine, options: Options, output: Int32 = 1) {
        self.engine = engine
        self.options = options
        self.out = LineWriter(fd: output)
        pthread_mutex_init(&lock, nil)
        guard options.relayProgress else { return }
        let previous = engine.onProgress
        engine.onProgress = { [weak self] id, fraction, message in
            previous?(id, fraction, message)
            self?.progress(task: id, fraction, message)
        }
    }

    // MARK: serving

    /// Serves until `input` reaches end of file, then lets running calls finish for the grace period,
    /// cancels the rest and returns.
    public func serve(input: Int32 = 0) {
        let reader = LineReader(fd: input)
        while let line = reader.next() {
            switch line {
            case .tooLong:
                out.send(RPC.error(id: nil, RPCError(RPCError.invalidRequest, "message too large (over \(reader.maxLine) bytes)")))
            case .line(let bytes):
                if bytes.allSatisfy({ $0 == 32 || $0 == 9 }) { continue }
                handle(bytes)
            }
            if out.failed { break }
        }
        shutdown()
    }

    func shutdown() {
        let deadline = Time.monotonicNs() + UInt64(options.shutdownGraceMs) * 1_000_000
        while inFlight > 0 && Time.monotonicNs() < deadline { _ = allDone.wait(timeoutMs: 50) }
        stop(reason: "the MCP client disconnected")
    }

    /// Cancels every call still running (their tasks end canceled, their sandboxes are killed) and stops
    /// the plugin servers this process started. For stdin's end and for SIGTERM/SIGINT.
    public func stop(reason: String) {
        pthread_mutex_lock(&lock)
        let left = Array(calls.values)
        pthread_mutex_unlock(&lock)
        if !left.isEmpty { log?("\(reason): canceling \(left.count) call(s) still running") }
        for c in left { cancel(c, reason: reason) }
        // Their workers see the cancellation within a poll; the sandboxes are already killed.
        let hard = Time.monotonicNs() + 3_000_000_000
        while inFlight > 0 && Time.monotonicNs() < hard { _ = allDone.wait(timeoutMs: 50) }
        for (_, e) in engine.executors { e.shutdown() }
    }

    var inFlight: Int {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return calls.count
    }

    /// One line from the client: parse, validate the JSON-RPC envelope, dispatch.
    func handle(_ bytes: [UInt8]) {
        let msg: JSONValue
        do throws(WardenError) { msg = try JSONValue.parse(bytes) } catch {
            out.send(RPC.error(id: nil, RPCError(RPCError.parseError, "Parse error: \(error.message)")))
            return
        }
        guard case .object(let o) = msg else {
            let why = msg.arrayValue != nil ? "batches are not supported; send one message per line" : "a message must be a JSON object"
            out.send(RPC.error(id: nil, RPCError(RPCError.invalidRequest, "Invalid Request: \(why)")))
            return
        }
        let rawID = o["id"]
        var id: JSONValue?   // (not `flatMap { … : nil }`: JSONValue is nil-literal-expressible)
        if let r = rawID, RPC.isValidID(r) { id = r }
        guard o["jsonrpc"] == "2.0" else {
            out.send(RPC.error(id: id, RPCError(RPCError.invalidRequest, "Invalid Request: \"jsonrpc\" must be \"2.0\"")))
            return
        }
        guard let methodValue = o["method"] else {
            // A response to a request of ours (we send none) or garbage.
            if rawID != nil && (o["result"] != nil || o["error"] != nil) { return }
            out.send(RPC.error(id: id, RPCError(RPCError.invalidRequest, "Invalid Request: no \"method\"")))
            return
        }
        guard case .string(let method) = methodValue else {
            if rawID != nil { out.send(RPC.error(id: id, RPCError(RPCError.invalidRequest, "Invalid Request: \"method\" must be a string"))) }
            return
        }
        let params = o["params"]
        if let p = params, p.objectValue == nil {
            if rawID != nil { out.send(RPC.error(id: id, RPCError(RPCError.invalidParams, "Invalid params: \"params\" must be an object"))) }
            return
        }
        guard rawID != nil else {
            notification(method, params)
            return
        }
        guard let id else {
            out.send(RPC.error(id: nil, RPCError(RPCError.invalidRequest, "Invalid Request: \"id\" must be a string or a number")))
            return
        }
        request(id: id, method: method, params: params)
    }

    func notification(_ method: String, _ params: JSONValue?) {
        switch method {
        case "notifications/cancelled":
            guard let rid = params?["requestId"] else { return }
            pthread_mutex_lock(&lock)
            let call = calls[rid.canonical]
            pthread_mutex_unlock(&lock)
            if let call {
                let why = params?["reason"]?.stringValue.map { "canceled by the MCP client: \(String($0.prefix(200)))" } ?? "canceled by the MCP client"
                cancel(call, reason: why)
            }
        default:
            // notifications/initialized and anything else need no answer.
            break
        }
    }

    static let methods: Set<String> = ["initialize", "ping", "tools/list", "tools/call", "server/discover"]

    func request(id: JSONValue, method: String, params: JSONValue?) {
        guard Self.methods.contains(method) else {
            out.send(RPC.error(id: id, RPCError(RPCError.methodNotFound, "Method not found: \(String(method.prefix(100)))")))
            return
        }
        if method == "initialize" {
            out.send(initialize(id: id, params))
            return
        }
        let era: Era
        switch self.era(params, method: method) {
        case .success(let e): era = e
        case .failure(let e):
            out.send(RPC.error(id: id, e))
            return
        }
        switch method {
        case "ping":
            out.send(RPC.result(id: id, stamp([:], era)))
        case "server/discover":
            out.send(RPC.result(id: id, discover()))
        case "tools/list":
            out.send(listTools(id: id, params, era: era))
        case "tools/call":
            startCall(id: id, params, era: era)
        default:
            out.send(RPC.error(id: id, RPCError(RPCError.methodNotFound, "Method not found: \(method)")))
        }
    }

    /// The 2026-07-28 per-request envelope when `_meta` carries a protocol version, else the handshake era.
    func era(_ params: JSONValue?, method: String) -> Result<Era, RPCError> {
        guard let meta = params?["_meta"], let version = meta[Self.versionKey] else {
            pthread_mutex_lock(&lock)
            defer { pthread_mutex_unlock(&lock) }
            return .success(Era(modern: false, version: negotiated ?? Self.handshakeVersions[0]))
        }
        guard case .string(let v) = version else {
            return .failure(RPCError(RPCError.invalidParams, "Invalid params: the protocol-version envelope value must be a string"))
        }
        guard Self.modernVersions.contains(v) else {
            return .failure(RPCError(RPCError.unsupportedProtocolVersion, "Unsupported protocol version",
                                     data: ["supported": .array(Self.modernVersions.map { .string($0) }), "requested": .string(v)]))
        }
        if meta[Self.capabilitiesKey] == nil && method != "server/discover" {
            return .failure(RPCError(RPCError.invalidParams, "Invalid params: params._meta is missing the required envelope key(s): \(Self.capabilitiesKey)"))
        }
        if let name = meta[Self.clientInfoKey]?["name"]?.stringValue { setClient(name) }
        return .success(Era(modern: true, version: v))
    }

    func setClient(_ name: String) {
        let clean = String(name.unicodeScalars.filter { $0.value >= 32 && $0.value != 127 }.prefix(64).map(Character.init))
        pthread_mutex_lock(&lock)
        clientName = clean.isEmpty ? "client" : clean
        pthread_mutex_unlock(&lock)
    }

    var actor: String {
        if let p = options.parent { return "agent:\(p)" }
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return "mcp:\(clientName)"
    }

    /// Results of the 2026-07-28 revision say what they are.
    func stamp(_ result: [String: JSONValue], _ era: Era) -> JSONValue {
        var r = result
        if era.modern { r["resultType"] = "complete" }
        return .object(r)
    }

    var serverInfo: JSONValue { ["name": "warden", "version": .string(options.serverVersion)] }
    var capabilities: JSONValue { ["tools": ["listChanged": false]] }

    func initialize(id: JSONValue, _ params: JSONValue?) -> JSONValue {
        guard let requested = params?["protocolVersion"]?.stringValue else {
            return RPC.error(id: id, RPCError(RPCError.invalidParams, "Invalid params: initialize needs params.protocolVersion (a string)"))
        }
        // Version negotiation: the client's version when we speak it, else our newest.
        let version = Self.handshakeVersions.contains(requested) ? requested : Self.handshakeVersions[0]
        pthread_mutex_lock(&lock)
        negotiated = version
        pthread_mutex_unlock(&lock)
        if let name = params?["clientInfo"]?["name"]?.stringValue { setClient(name) }
        return RPC.result(id: id, [
            "protocolVersion": .string(version),
            "capabilities": capabilities,
            "serverInfo": serverInfo,
            "instructions": .string(Self.instructions),
        ])
    }

    static let instructions = "Tools are Warden plugins, named plugin.tool. Every call is admitted by policy and quotas and runs sandboxed; a refused or failed call returns isError with the reason."

    func discover() -> JSONValue {
        [
            "supportedVersions": .array(Self.modernVersions.map { .string($0) }),
            "capabilities": capabilities,
            "instructions": .string(Self.instructions),
            "resultType": "complete",
            "ttlMs": 0,
            "cacheScope": "private",
            "_meta": .object([Self.serverInfoKey: serverInfo]),
        ]
    }

    // MARK: tools/list

    /// Every tool this tenant may call, `plugin.tool`, sorted by name (newest version of each plugin).
    func tools() throws(WardenError) -> [(name: String, json: JSONValue)] {
        var newest: [String: PluginRecord] = [:]
        for p in try engine.store.plugins() { newest[p.name] = p }   // sorted by version: the last wins
        let policy = try engine.policy()
        var out: [(String, JSONValue)] = []
        for p in newest.values {
            for t in p.tools {
                if let policy, policy.decide(tenant: options.tenant, plugin: p.name, tool: t.name).effect == .deny { continue }
                var schema = t.inputSchema.objectValue ?? [:]
                if schema["type"] == nil { schema["type"] = "object" }
                let name = "\(p.name).\(t.name)"
                out.append((name, ["name": .string(name), "description": .string(t.description), "inputSchema": .object(schema)]))
            }
        }
        return out.sorted { $0.0 < $1.0 }
    }

    func listTools(id: JSONValue, _ params: JSONValue?, era: Era) -> JSONValue {
        var after: String?
        if let c = params?["cursor"], c != .null {
            guard let s = c.stringValue, let name = Self.decodeCursor(s) else {
                return RPC.error(id: id, RPCError(RPCError.invalidParams, "Invalid params: unknown cursor"))
            }
            after = name
        }
        let all: [(name: String, json: JSONValue)]
        do throws(WardenError) { all = try tools() } catch {
            return RPC.error(id: id, RPCError(RPCError.internalError, "cannot list tools: \(error.message)"))
        }
        let rest = after.map { a in all.filter { $0.name > a } } ?? all
        let page = Array(rest.prefix(max(1, options.pageSize)))
        var r: [String: JSONValue] = ["tools": .array(page.map(\.json))]
        if rest.count > page.count, let last = page.last { r["nextCursor"] = .string(Self.encodeCursor(last.name)) }
        if era.modern {
            r["ttlMs"] = 0
            r["cacheScope"] = "private"
        }
        return RPC.result(id: id, stamp(r, era))
    }

    /// Cursors are opaque to clients: the last name of the previous page, hex-encoded.
    static func encodeCursor(_ name: String) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = Array("w1.".utf8)
        for b in name.utf8 {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decodeCursor(_ cursor: String) -> String? {
        guard cursor.hasPrefix("w1.") else { return nil }
        let hex = Array(cursor.utf8.dropFirst(3))
        guard hex.count % 2 == 0, hex.count <= 512 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            default: return nil
            }
        }
        var bytes: [UInt8] = []
        var i = 0
        while i < hex.count {
            guard let hi = nibble(hex[i]), let lo = nibble(hex[i + 1]) else { return nil }
            bytes.append(hi << 4 | lo)
            i += 2
        }
        return String(validating: bytes, as: UTF8.self)
    }

    // MARK: tools/call

    func startCall(id: JSONValue, _ params: JSONValue?, era: Era) {
        guard let params, case .string(let name)? = params["name"] else {
            out.send(RPC.error(id: id, RPCError(RPCError.invalidParams, "Invalid params: tools/call needs params.name (a string)")))
            return
        }
        var input: JSONValue = .object([:])
        if let a = params["arguments"], a != .null {
            guard a.objectValue != nil else {
                out.send(RPC.error(id: id, RPCError(RPCError.invalidParams, "Invalid params: params.arguments must be an object, got \(a.typeName)")))
                return
            }
            input = a
        }
        // The tool must exist: an unknown name is a protocol error, not a task.
        guard let target = try? TaskSpec.parseTarget(name), target.tool != nil, target.version == nil,
              let (plugin, tool) = try? engine.resolve(TaskSpec(plugin: target.plugin, tool: target.tool))
        else {
            out.send(RPC.error(id: id, RPCError(RPCError.invalidParams, "Unknown tool: \(String(name.prefix(200)))")))
            return
        }
        var token = params["_meta"]?["progressToken"]
        if let t = token, !RPC.isValidID(t) { token = nil }
        let call = Call(id: id, key: id.canonical, progressToken: token)
        pthread_mutex_lock(&lock)
        if calls[call.key] != nil {
            pthread_mutex_unlock(&lock)
            out.send(RPC.error(id: id, RPCError(RPCError.invalidRequest, "Invalid Request: request id \(call.key) is already in use")))
            return
        }
        if calls.count >= options.maxInFlight {
            pthread_mutex_unlock(&lock)
            out.send(RPC.result(id: id, stamp(Self.errorContent("too many calls in flight (\(options.maxInFlight)); retry later"), era)))
            return
        }
        calls[call.key] = call
        pthread_mutex_unlock(&lock)

        var spec = TaskSpec(plugin: plugin.name, version: plugin.version, tool: tool.name)
        spec.input = input
        spec.tenant = options.tenant
        spec.submitter = actor
        if let parent = options.parent {
            spec.parent = parent
            spec.traceparent = Tracer.child(of: options.parentTraceparent)
        }
        let task = spec
        startThread { [self] in
            let result = run(call, spec: task, kind: plugin.manifest.kind, era: era)
            pthread_mutex_lock(&lock)
            calls[call.key] = nil
            if let t = call.taskID { byTask[t] = nil }
            let canceled = call.canceled
            pthread_mutex_unlock(&lock)
            // A canceled request gets no response (the client has stopped waiting for it).
            if !canceled { out.send(RPC.result(id: id, stamp(result, era))) }
            allDone.signal()
        }
    }

    /// Submits the call as a task and waits for it to end; the CallToolResult to answer with.
    func run(_ call: Call, spec: TaskSpec, kind: PluginManifest.Kind, era: Era) -> [String: JSONValue] {
        let sub: Submission
        do throws(WardenError) { sub = try engine.submit(spec) } catch {
            return Self.errorContent(error.message)
        }
        let id = sub.task.id
        pthread_mutex_lock(&lock)
        call.taskID = id
        byTask[id] = call
        let canceledEarly = call.canceled
        pthread_mutex_unlock(&lock)
        if canceledEarly { _ = try? engine.cancel(id, actor: actor, reason: "canceled by the MCP client") }

        var task = sub.task
        do throws(WardenError) {
            if !task.state.isTerminal {
                if let client = ControlClient.connect(stateDir: options.stateDir) {
                    // A serve runs it; its progress comes over the control socket.
                    let follower = call.progressToken == nil ? nil : ProgressFollower.start(stateDir: options.stateDir, id: id) { [weak self] f, m in
                        self?.progress(task: id, f, m)
                    }
                    defer { follower?.stop() }
                    client.wake()
                    while true {
                        guard let t = try engine.store.task(id) else { throw WardenError.notFound("task \(id) vanished") }
                        task = t
                        if t.state.isTerminal { break }
                        if !client.waitChange(id, timeoutMs: 1000) && ControlClient.connect(stateDir: options.stateDir) == nil {
                            // The serve went away: finish the task here (the lease rules hand it back first).
                            log?("the serve stopped while task \(id) was \(t.state.rawValue); running it here")
                            task = try engine.drive(id)
                            break
                        }
                    }
                } else {
                    task = try engine.drive(id)
                }
            }
        } catch {
            return Self.errorContent("task \(id): \(error.message)", task: id)
        }
        return result(task, kind: kind, era: era)
    }

    /// A finished task as a CallToolResult.
    func result(_ t: TaskRecord, kind: PluginManifest.Kind, era: Era) -> [String: JSONValue] {
        guard t.state == .succeeded else {
            return Self.errorContent("task \(t.id) \(t.state.rawValue): \(t.reason ?? "no reason recorded")", task: t.id)
        }
        let value = t.result ?? .null
        var r: [String: JSONValue] = ["isError": false, "_meta": ["warden/task": .string(t.id)]]
        if kind == .mcp, let content = value["content"]?.arrayValue {
            // An mcp plugin's answer passes through as its server gave it.
            r["content"] = .array(content)
            if era.structured, let s = value["structuredContent"] { r["structuredContent"] = s }
            return r
        }
        let text = value.stringValue ?? value.canonical
        r["content"] = [["type": "text", "text": .string(text)]]
        if era.structured, value.objectValue != nil { r["structuredContent"] = value }
        return r
    }

    static func errorContent(_ message: String, task: String? = nil) -> [String: JSONValue] {
        var r: [String: JSONValue] = ["isError": true, "content": [["type": "text", "text": .string(message)]]]
        if let task { r["_meta"] = ["warden/task": .string(task)] }
        return r
    }

    // MARK: cancellation and progress

    func cancel(_ call: Call, reason: String) {
        pthread_mutex_lock(&lock)
        call.canceled = true
        let task = call.taskID
        pthread_mutex_unlock(&lock)
        guard let task else { return }   // not submitted yet: `run` cancels it as soon as it is
        _ = try? engine.cancel(task, actor: actor, reason: reason)
        ControlClient.connect(stateDir: options.stateDir)?.cancel(task)
    }

    /// A task reported progress: tell the client that asked for it (progress only ever grows).
    func progress(task: String, _ fraction: Double, _ message: String) {
        pthread_mutex_lock(&lock)
        guard let call = byTask[task], let token = call.progressToken, !call.canceled, fraction > call.lastProgress else {
            pthread_mutex_unlock(&lock)
            return
        }
        call.lastProgress = fraction
        pthread_mutex_unlock(&lock)
        var params: [String: JSONValue] = ["progressToken": token, "progress": .double(fraction), "total": 1.0]
        if !message.isEmpty { params["message"] = .string(message) }
        out.send(RPC.notification("notifications/progress", .object(params)))
    }
}
