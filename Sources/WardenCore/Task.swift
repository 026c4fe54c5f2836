/// What a client asks for: one call of one tool of one plugin, by one tenant.
public struct TaskSpec: Sendable, Hashable {
    public var plugin: String
    public var version: String?
    public var tool: String?
    public var input: JSONValue = .object([:])
    public var tenant: String = "default"
    public var priority: Int = 0
    public var idempotencyKey: String?
    public var after: [String] = []
    public var locks: [String] = []
    /// Overrides of the manifest's defaults.
    public var resources: Resources?
    public var timeoutMs: Int64?
    public var retry: PluginManifest.RetryPolicy?
    public var approvalRequired: Bool?
    public var traceparent: String?
    public var parent: String?
    public var workflow: String?
    public var step: String?
    /// Who submitted (`cli:uid=0`, `mcp`, `agent:<task>`), recorded in the audit.
    public var submitter: String = "cli"

    public init(plugin: String, version: String? = nil, tool: String? = nil) {
        self.plugin = plugin
        self.version = version
        self.tool = tool
    }

    /// Parses `PLUGIN[.TOOL][@VERSION]`.
    public static func parseTarget(_ text: String, code: ExitCode = .usage) throws(WardenError) -> (plugin: String, tool: String?, version: String?) {
        var rest = Substring(text)
        var version: String?
        if let at = rest.firstIndex(of: "@") {
            version = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
            guard let v = version, Version(v) != nil else {
                throw WardenError.invalid("PLUGIN", "invalid version in \(quoted(text)) (expected NAME@MAJOR.MINOR.PATCH)", code: code)
            }
        }
        var tool: String?
        if let dot = rest.firstIndex(of: ".") {
            tool = String(rest[rest.index(after: dot)...])
            rest = rest[..<dot]
            guard let t = tool, PluginManifest.isValidToolName(t) else {
                throw WardenError.invalid("PLUGIN", "invalid tool name in \(quoted(text)) (expected PLUGIN.TOOL)", code: code)
            }
        }
        let plugin = String(rest)
        guard PluginManifest.isValidName(plugin) else {
            throw WardenError.invalid("PLUGIN", "invalid plugin name \(quoted(plugin)) (expected PLUGIN[.TOOL][@VERSION])", code: code)
        }
        return (plugin, tool, version)
    }
}

/// A task as stored. `json` is the shape of DESIGN §7.
public struct TaskRecord: Sendable, Hashable {
    public var id: String
    public var plugin: String
    public var version: String
    public var tool: String
    public var tenant: String
    public var state: TaskState
    public var node: String?
    public var priority: Int
    public var attempts: Int
    public var maxRetries: Int
    public var idempotencyKey: String?
    public var createdAt: Int64
    public var updatedAt: Int64
    public var reason: String?
    public var result: JSONValue?
    public var report: JSONValue?
    public var input: JSONValue
    public var resources: Resources
    public var timeoutMs: Int64
    public var notBefore: Int64 = 0
    public var leaseOwner: String?
    public var leaseExpires: Int64?
    public var leaseEpoch: Int64 = 0
    public var parent: String?
    public var workflow: String?
    public var step: String?
    public var traceparent: String?
    public var locks: [String] = []
    public var after: [String] = []
    public var rule: String?
    public var explanation: String?
    public var submitter: String = "cli"
    public var idempotent: Bool = false
    public var approvalDeadline: Int64?
    public var retryInitialMs: Int64 = 1000
    public var retryMaxMs: Int64 = 60_000

    public init(id: String, plugin: String, version: String, tool: String, tenant: String, state: TaskState,
                priority: Int = 0, input: JSONValue = .object([:]), resources: Resources = .zero,
                timeoutMs: Int64 = 30_000, createdAt: Int64 = 0)
    {
        self.id = id
        self.plugin = plugin
        self.version = version
        self.tool = tool
        self.tenant = tenant
        self.state = state
        self.priority = priority
        self.attempts = 0
        self.maxRetries = 0
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.input = input
        self.resources = resources
        self.timeoutMs = timeoutMs
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(id), "plugin": .string(plugin), "version": .string(version), "tool": .string(tool),
            "tenant": .string(tenant), "state": .string(state.rawValue), "node": .optional(node),
            "priority": .int(Int64(priority)), "attempts": .int(Int64(attempts)),
            "idempotency_key": .optional(idempotencyKey), "created_at": .string(Time.iso8601(createdAt)),
            "updated_at": .string(Time.iso8601(updatedAt)), "reason": .optional(reason), "result": .optional(result),
            "report": .optional(report), "resources": resources.json, "max_retries": .int(Int64(maxRetries)),
            "parent": .optional(parent), "workflow": .optional(workflow), "step": .optional(step),
            "rule": .optional(rule), "locks": .array(locks.map { .string($0) }), "after": .array(after.map { .string($0) }),
        ]
        if let traceparent { o["traceparent"] = .string(traceparent) }
        return .object(o)
    }
}

/// Ids: a 10-character time prefix (ms, Crockford base32, so ids sort by creation) and 8 random characters.
public enum TaskID {
    static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

    public static func make(prefix: String = "t", now: Int64 = Time.nowMs()) -> String {
        var out = [UInt8]()
        out.reserveCapacity(19)
        var t = UInt64(max(0, now))
        var timeChars = [UInt8](repeating: 0, count: 10)
        for i in (0..<10).reversed() {
            timeChars[i] = alphabet[Int(t & 31)]
            t >>= 5
        }
        out += timeChars
        var rng = SystemRandomNumberGenerator()
        var r = rng.next()
        for _ in 0..<8 {
            out.append(alphabet[Int(r & 31)])
            r >>= 5
        }
        return prefix + String(decoding: out, as: UTF8.self)
    }
}
