/// `warden-plugin.json` (DESIGN §3), decoded strictly: unknown keys, wrong types, bad quantities and paths
/// that leave the plugin directory are errors with their JSON path. File existence and symlinks are checked
/// by the registry, which has the file system; this type has none.
public struct PluginManifest: Sendable, Hashable {
    public enum Kind: String, Sendable, Codable, CaseIterable { case process, dylib, mcp }
    public enum Hosting: String, Sendable, Codable { case isolated, inProcess = "in-process" }
    public enum Approval: String, Sendable, Codable { case none, required }

    public struct Tool: Sendable, Hashable {
        public var name: String
        public var description: String
        public var inputSchema: JSONValue
        public var exec: [String]?

        public init(name: String, description: String, inputSchema: JSONValue, exec: [String]? = nil) {
            self.name = name
            self.description = description
            self.inputSchema = inputSchema
            self.exec = exec
        }

        public var json: JSONValue {
            ["name": .string(name), "description": .string(description), "inputSchema": inputSchema]
        }
    }

    public struct SandboxSettings: Sendable, Hashable {
        public var profile: String = "default"
        public var network: String?
        public var readOnlyPaths: [String] = []
        public var writablePaths: [String] = []
        public init() {}
    }

    public struct RetryPolicy: Sendable, Hashable, Codable {
        public var max: Int = 0
        public var initialBackoffMs: Int64 = 1000
        public var maxBackoffMs: Int64 = 60_000
        public init(max: Int = 0, initialBackoffMs: Int64 = 1000, maxBackoffMs: Int64 = 60_000) {
            self.max = max
            self.initialBackoffMs = initialBackoffMs
            self.maxBackoffMs = maxBackoffMs
        }
    }

    public var name: String
    public var version: String
    public var kind: Kind
    public var exec: [String]?
    public var library: String?
    public var mcpCommand: [String]?
    public var mcpEnv: [String: String] = [:]
    public var tools: [Tool]
    public var resources: Resources
    public var sandbox: SandboxSettings
    public var hosting: Hosting
    public var timeoutMs: Int64
    public var retry: RetryPolicy
    public var idempotent: Bool
    public var concurrency: Int
    public var approval: Approval
    public var rateLimit: Rate?
    public var cacheable: Bool
    public var agent: Bool
    public var config: JSONValue

    public static let fileName = "warden-plugin.json"
    public static let defaultResources = Resources(cpuMillis: 250, memoryBytes: 64 << 20)

    public func tool(named name: String) -> Tool? { tools.first { $0.name == name } }

    /// Every path the manifest names inside the plugin directory (for existence and escape checks).
    public var referencedPaths: [(path: String, field: String)] {
        var out: [(String, String)] = []
        if let e = exec?.first, e.contains("/") { out.append((e, "$.exec[0]")) }
        if let l = library { out.append((l, "$.library")) }
        if let m = mcpCommand?.first, m.contains("/") { out.append((m, "$.mcp.command[0]")) }
        for (i, t) in tools.enumerated() {
            if let e = t.exec?.first, e.contains("/") { out.append((e, "$.tools[\(i)].exec[0]")) }
        }
        return out
    }

    // MARK: decoding

    public static func decode(_ data: [UInt8]) throws(WardenError) -> PluginManifest {
        try decode(JSONValue.parse(data))
    }

    public static func decode(_ json: JSONValue) throws(WardenError) -> PluginManifest {
        var r = try JSONObjectReader(json)
        let name = try r.requiredString("name")
        guard isValidName(name) else {
            throw WardenError.invalid("$.name", "invalid plugin name \(quoted(name)) (lowercase letters, digits, '-' and '_', starting with a letter or digit)")
        }
        let version = try r.requiredString("version")
        guard Version(version) != nil else {
            throw WardenError.invalid("$.version", "invalid version \(quoted(version)) (expected MAJOR.MINOR.PATCH, like \"1.2.0\")")
        }
        let kindText = try r.requiredString("kind")
        guard let kind = Kind(rawValue: kindText) else {
            throw WardenError.invalid("$.kind", "unknown kind \(quoted(kindText)) (one of: process, dylib, mcp)")
        }
        let exec = try r.stringArray("exec")
        if let exec { try checkArgv(exec, field: "$.exec") }
        let library = try r.string("library")
        if let library { try checkRelativePath(library, field: "$.library") }
        var mcpCommand: [String]?
        var mcpEnv: [String: String] = [:]
        if var m = try r.object("mcp") {
            mcpCommand = try m.stringArray("command")
            mcpEnv = try m.stringMap("env") ?? [:]
            try m.finish()
            guard let c = mcpCommand else { throw WardenError.invalid("$.mcp.command", "required") }
            try checkArgv(c, field: "$.mcp.command")
        }

        var tools: [Tool] = []
        if let list = try r.array("tools") {
            var names: Set<String> = []
            for (i, v) in list.enumerated() {
                let path = "$.tools[\(i)]"
                var t = try JSONObjectReader(v, path: path)
                let tname = try t.requiredString("name")
                guard isValidToolName(tname) else {
                    throw WardenError.invalid("\(path).name", "invalid tool name \(quoted(tname)) (letters, digits, '-' and '_')")
                }
                guard names.insert(tname).inserted else {
                    throw WardenError.invalid("\(path).name", "duplicate tool name \(quoted(tname))")
                }
                let desc = try t.string("description") ?? ""
                guard let schema = t.value("inputSchema") else {
                    throw WardenError.invalid("\(path).inputSchema", "required (a JSON Schema object, at least {\"type\": \"object\"})")
                }
                guard case .object = schema else {
                    throw WardenError.invalid("\(path).inputSchema", "expected an object, got \(schema.typeName)")
                }
                try JSONSchema.validateSchema(schema, path: "\(path).inputSchema")
                let texec = try t.stringArray("exec")
                if let texec { try checkArgv(texec, field: "\(path).exec") }
                try t.finish()
                tools.append(Tool(name: tname, description: desc, inputSchema: schema, exec: texec))
            }
        }

        var resources = defaultResources
        if var rr = try r.object("resources") {
            let given = try Resources.read(from: &rr)
            try rr.finish()
            if rr.dict["cpu"] != nil { resources.cpuMillis = given.cpuMillis }
            if rr.dict["memory"] != nil { resources.memoryBytes = given.memoryBytes }
            resources.extended = given.extended
        }

        var sandbox = SandboxSettings()
        if var s = try r.object("sandbox") {
            if let p = try s.string("profile") {
                guard !p.isEmpty else { throw WardenError.invalid("$.sandbox.profile", "must not be empty") }
                sandbox.profile = p
            }
            if let n = try s.string("network") {
                guard ["none", "loopback", "host"].contains(n) else {
                    throw WardenError.invalid("$.sandbox.network", "unknown network mode \(quoted(n)) (one of: none, loopback, host)")
                }
                sandbox.network = n
            }
            sandbox.readOnlyPaths = try s.stringArray("readOnlyPaths") ?? []
            sandbox.writablePaths = try s.stringArray("writablePaths") ?? []
            for (i, p) in sandbox.readOnlyPaths.enumerated() { try BindSpec.validate(p, field: "$.sandbox.readOnlyPaths[\(i)]") }
            for (i, p) in sandbox.writablePaths.enumerated() { try BindSpec.validate(p, field: "$.sandbox.writablePaths[\(i)]") }
            try s.finish()
        }

        var hosting = Hosting.isolated
        if let h = try r.string("hosting") {
            guard let v = Hosting(rawValue: h) else {
                throw WardenError.invalid("$.hosting", "unknown hosting \(quoted(h)) (one of: isolated, in-process)")
            }
            guard kind == .dylib else {
                throw WardenError.invalid("$.hosting", "only a dylib plugin has a hosting mode (kind is \(kind.rawValue))")
            }
            hosting = v
        }

        var timeoutMs: Int64 = 30_000
        if let t = r.value("timeout") {
            timeoutMs = try Quantity.durationMillis(t, field: "$.timeout")
            guard timeoutMs > 0 else { throw WardenError.invalid("$.timeout", "must be positive") }
        }

        var retry = RetryPolicy()
        if let rv = r.value("retry") { retry = try decodeRetry(rv, path: "$.retry") }

        let idempotent = try r.bool("idempotent") ?? false
        var concurrency = 8
        if let c = try r.int("concurrency") {
            guard c >= 1 && c <= 10_000 else { throw WardenError.invalid("$.concurrency", "must be between 1 and 10000, got \(c)") }
            concurrency = Int(c)
        }
        var approval = Approval.none
        if let a = try r.string("approval") {
            guard let v = Approval(rawValue: a) else {
                throw WardenError.invalid("$.approval", "unknown approval \(quoted(a)) (one of: none, required)")
            }
            approval = v
        }
        var rate: Rate?
        if let rl = try r.string("rateLimit") { rate = try Quantity.rate(rl, field: "$.rateLimit") }
        let cacheable = try r.bool("cacheable") ?? false
        let agent = try r.bool("agent") ?? false
        let config = r.value("config") ?? .object([:])
        try r.finish()

        switch kind {
        case .process:
            guard exec != nil || (!tools.isEmpty && tools.allSatisfy { $0.exec != nil }) else {
                throw WardenError.invalid("$.exec", "required for a process plugin (or an exec on every tool)")
            }
            guard library == nil else { throw WardenError.invalid("$.library", "only for a dylib plugin") }
            guard mcpCommand == nil else { throw WardenError.invalid("$.mcp", "only for an mcp plugin") }
        case .dylib:
            guard library != nil else { throw WardenError.invalid("$.library", "required for a dylib plugin") }
            guard exec == nil else { throw WardenError.invalid("$.exec", "only for a process plugin") }
            guard mcpCommand == nil else { throw WardenError.invalid("$.mcp", "only for an mcp plugin") }
        case .mcp:
            guard mcpCommand != nil else { throw WardenError.invalid("$.mcp.command", "required for an mcp plugin") }
            guard exec == nil else { throw WardenError.invalid("$.exec", "only for a process plugin") }
            guard library == nil else { throw WardenError.invalid("$.library", "only for a dylib plugin") }
        }
        if kind != .mcp && tools.isEmpty {
            throw WardenError.invalid("$.tools", "at least one tool is required (each with name, description and inputSchema)")
        }

        return PluginManifest(
            name: name, version: version, kind: kind, exec: exec, library: library, mcpCommand: mcpCommand,
            mcpEnv: mcpEnv, tools: tools, resources: resources, sandbox: sandbox, hosting: hosting,
            timeoutMs: timeoutMs, retry: retry, idempotent: idempotent, concurrency: concurrency, approval: approval,
            rateLimit: rate, cacheable: cacheable, agent: agent, config: config)
    }

    public static func decodeRetry(_ value: JSONValue, path: String) throws(WardenError) -> RetryPolicy {
        var rr = try JSONObjectReader(value, path: path)
        var retry = RetryPolicy()
        if let m = try rr.int("max") {
            guard m >= 0 && m <= 1000 else { throw WardenError.invalid("\(path).max", "must be between 0 and 1000, got \(m)") }
            retry.max = Int(m)
        }
        if let b = rr.value("initialBackoff") { retry.initialBackoffMs = try Quantity.durationMillis(b, field: "\(path).initialBackoff") }
        if let b = rr.value("maxBackoff") { retry.maxBackoffMs = try Quantity.durationMillis(b, field: "\(path).maxBackoff") }
        guard retry.maxBackoffMs >= retry.initialBackoffMs else {
            throw WardenError.invalid("\(path).maxBackoff", "must be at least initialBackoff")
        }
        try rr.finish()
        return retry
    }

    // MARK: validation helpers

    public static func isValidName(_ s: String) -> Bool {
        guard let first = s.utf8.first, s.utf8.count <= 64 else { return false }
        guard (first >= 97 && first <= 122) || (first >= 48 && first <= 57) else { return false }
        return s.utf8.allSatisfy { c in (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 45 || c == 95 }
    }

    public static func isValidToolName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64
            && s.utf8.allSatisfy { c in (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == 45 || c == 95 }
    }

    /// A path inside the plugin directory: relative, no `..`, no empty or NUL.
    public static func checkRelativePath(_ p: String, field: String) throws(WardenError) {
        if p.isEmpty { throw WardenError.invalid(field, "must not be empty") }
        if p.hasPrefix("/") { throw WardenError.invalid(field, "path \(quoted(p)) must be relative to the plugin directory") }
        if p.utf8.contains(0) { throw WardenError.invalid(field, "path contains a NUL byte") }
        if p.split(separator: "/").contains("..") {
            throw WardenError.invalid(field, "path \(quoted(p)) escapes the plugin directory ('..')")
        }
    }

    static func checkArgv(_ argv: [String], field: String) throws(WardenError) {
        guard let first = argv.first else { throw WardenError.invalid(field, "must not be empty") }
        if first.contains("/") { try checkRelativePath(first, field: "\(field)[0]") }
        if first.isEmpty { throw WardenError.invalid("\(field)[0]", "must not be empty") }
        for (i, a) in argv.enumerated() where a.utf8.contains(0) {
            throw WardenError.invalid("\(field)[\(i)]", "contains a NUL byte")
        }
    }
}

/// `SRC` or `SRC:DST` for extra binds (`--bind`, `readOnlyPaths`, `writablePaths`).
public struct BindSpec: Sendable, Hashable {
    public var source: String
    public var target: String

    public init(parsing text: String, field: String, code: ExitCode = .dataError) throws(WardenError) {
        try Self.validate(text, field: field, code: code)
        if let colon = text.firstIndex(of: ":") {
            source = String(text[..<colon])
            target = String(text[text.index(after: colon)...])
        } else {
            source = text
            target = text
        }
    }

    public init(source: String, target: String) {
        self.source = source
        self.target = target
    }

    public static func validate(_ text: String, field: String, code: ExitCode = .dataError) throws(WardenError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else {
            throw WardenError.invalid(field, "invalid bind \(quoted(text)) (expected SRC or SRC:DST)", code: code)
        }
        for p in parts {
            guard p.hasPrefix("/") else {
                throw WardenError.invalid(field, "invalid bind \(quoted(text)) (paths must be absolute)", code: code)
            }
            if p.split(separator: "/").contains("..") {
                throw WardenError.invalid(field, "invalid bind \(quoted(text)) ('..' is not allowed)", code: code)
            }
        }
    }
}

/// MAJOR.MINOR.PATCH with an optional `-prerelease`; ordered as semver orders them (numbers numerically).
public struct Version: Comparable, Sendable, Hashable, CustomStringConvertible {
    public let major: Int, minor: Int, patch: Int
    public let prerelease: String?
    public let description: String

    public init?(_ text: String) {
        let main: Substring
        var pre: String?
        if let dash = text.firstIndex(of: "-") {
            main = text[..<dash]
            pre = String(text[text.index(after: dash)...])
            if pre!.isEmpty { return nil }
        } else {
            main = Substring(text)
        }
        let nums = main.split(separator: ".", omittingEmptySubsequences: false)
        guard nums.count == 3, nums.allSatisfy({ !$0.isEmpty && $0.count <= 9 && $0.allSatisfy { $0.isASCII && $0.isNumber } })
        else { return nil }
        major = Int(nums[0])!
        minor = Int(nums[1])!
        patch = Int(nums[2])!
        prerelease = pre
        description = text
    }

    public static func < (a: Version, b: Version) -> Bool {
        if a.major != b.major { return a.major < b.major }
        if a.minor != b.minor { return a.minor < b.minor }
        if a.patch != b.patch { return a.patch < b.patch }
        switch (a.prerelease, b.prerelease) {
        case (nil, nil), (nil, _): return false
        case (_, nil): return true
        case (let x?, let y?): return x < y
        }
    }
}
