/// The admission policy of DESIGN §5 (`warden policy set FILE`): tenants with quotas and rate limits, and
/// ordered rules where the first match decides. Pure data and matching; the engine applies it.
public struct Policy: Sendable, Hashable {
    public enum Effect: String, Sendable, Hashable { case allow, deny, requireApproval = "require_approval" }

    public struct Quota: Sendable, Hashable {
        public var cpuMillis: Int64?
        public var memoryBytes: Int64?
        public var tasks: Int64?
        public init(cpuMillis: Int64? = nil, memoryBytes: Int64? = nil, tasks: Int64? = nil) {
            self.cpuMillis = cpuMillis
            self.memoryBytes = memoryBytes
            self.tasks = tasks
        }
    }

    public struct Tenant: Sendable, Hashable {
        public var quota = Quota()
        public var rateLimit: Rate?
        public var maxQueued: Int64?
        public init() {}
    }

    public struct Rule: Sendable, Hashable {
        public var id: String
        public var effect: Effect
        public var tenants: [String]?
        public var plugins: [String]?
        public var tools: [String]?

        public func matches(tenant: String, plugin: String, tool: String) -> Bool {
            if let t = tenants, !t.contains(where: { Glob.match($0, tenant) }) { return false }
            if let p = plugins, !p.contains(where: { Glob.match($0, plugin) }) { return false }
            if let t = tools, !t.contains(where: { Glob.match($0, "\(plugin).\(tool)") }) { return false }
            return true
        }
    }

    public struct Decision: Sendable, Hashable {
        public var effect: Effect
        /// The rule id that decided, `default` when none matched, `no-policy` when no policy is set.
        public var rule: String
    }

    public var tenants: [String: Tenant] = [:]
    public var rules: [Rule] = []
    public var defaultEffect = Effect.deny
    public var maxDepth = 3
    public var maxChildren = 20
    public var approvalTimeoutMs: Int64 = 24 * 3_600_000
    public var source: JSONValue = .object([:])

    public init() {}

    /// Settings for a tenant: its own entry, else the `*` entry, else no limits.
    public func tenant(_ name: String) -> Tenant { tenants[name] ?? tenants["*"] ?? Tenant() }

    public func decide(tenant: String, plugin: String, tool: String) -> Decision {
        for r in rules where r.matches(tenant: tenant, plugin: plugin, tool: tool) {
            return Decision(effect: r.effect, rule: r.id)
        }
        return Decision(effect: defaultEffect, rule: "default")
    }

    public static let none = Decision(effect: .allow, rule: "no-policy")

    /// Names of `plugin.tool` pairs a tenant may call (for agent sockets): allow or require_approval.
    public func allows(tenant: String, plugin: String, tool: String) -> Bool {
        decide(tenant: tenant, plugin: plugin, tool: tool).effect != .deny
    }

    public static func decode(_ json: JSONValue) throws(WardenError) -> Policy {
        var r = try JSONObjectReader(json)
        var p = Policy()
        p.source = json
        if let ts = try r.object("tenants") {
            for (name, v) in ts.dict.sorted(by: { $0.key < $1.key }) {
                let tp = ts.child(name)
                var tr = try JSONObjectReader(v, path: tp)
                var t = Tenant()
                if var q = try tr.object("quota") {
                    if let c = q.value("cpu") { t.quota.cpuMillis = try Quantity.cpuMillis(c, field: q.child("cpu")) }
                    if let m = q.value("memory") { t.quota.memoryBytes = try Quantity.bytes(m, field: q.child("memory")) }
                    if let n = q.value("tasks") { t.quota.tasks = try Quantity.count(n, field: q.child("tasks")) }
                    try q.finish()
                }
                if let rl = try tr.string("rateLimit") { t.rateLimit = try Quantity.rate(rl, field: tr.child("rateLimit")) }
                if let mq = tr.value("maxQueued") { t.maxQueued = try Quantity.count(mq, field: tr.child("maxQueued")) }
                try tr.finish()
                p.tenants[name] = t
            }
        }
        var ids: Set<String> = []
        if let rules = try r.array("rules") {
            for (i, v) in rules.enumerated() {
                let rp = "$.rules[\(i)]"
                var rr = try JSONObjectReader(v, path: rp)
                let id = try rr.requiredString("id")
                guard ids.insert(id).inserted else { throw WardenError.invalid("\(rp).id", "duplicate rule id \(quoted(id))") }
                guard id != "default" && id != "no-policy" else { throw WardenError.invalid("\(rp).id", "\(quoted(id)) is reserved") }
                let e = try rr.requiredString("effect")
                guard let effect = Effect(rawValue: e) else {
                    throw WardenError.invalid("\(rp).effect", "unknown effect \(quoted(e)) (one of: allow, deny, require_approval)")
                }
                let rule = Rule(id: id, effect: effect, tenants: try rr.stringArray("tenants"),
                                plugins: try rr.stringArray("plugins"), tools: try rr.stringArray("tools"))
                _ = rr.value("comment")
                try rr.finish()
                p.rules.append(rule)
            }
        }
        if let d = try r.string("default") {
            guard let e = Effect(rawValue: d) else {
                throw WardenError.invalid("$.default", "unknown effect \(quoted(d)) (one of: allow, deny, require_approval)")
            }
            p.defaultEffect = e
        }
        if var a = try r.object("agents") {
            if let d = try a.int("maxDepth") {
                guard d >= 0 && d <= 100 else { throw WardenError.invalid(a.child("maxDepth"), "must be between 0 and 100") }
                p.maxDepth = Int(d)
            }
            if let c = try a.int("maxChildren") {
                guard c >= 0 && c <= 100_000 else { throw WardenError.invalid(a.child("maxChildren"), "must be between 0 and 100000") }
                p.maxChildren = Int(c)
            }
            try a.finish()
        }
        if let t = r.value("approvalTimeout") {
            p.approvalTimeoutMs = try Quantity.durationMillis(t, field: "$.approvalTimeout")
        }
        try r.finish()
        return p
    }
}

/// `*` matches any run of characters (including dots); everything else is literal.
public enum Glob {
    public static func match(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.utf8), t = Array(text.utf8)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && p[pi] != UInt8(ascii: "*") && p[pi] == t[ti] {
                pi += 1
                ti += 1
            } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
