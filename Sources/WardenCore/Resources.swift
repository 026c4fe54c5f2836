/// A resource vector: CPU in millicores, memory in bytes, and extended integer resources (`gpu`, `disk`, …),
/// each one more dimension for the scheduler.
public struct Resources: Sendable, Hashable, Codable {
    public var cpuMillis: Int64
    public var memoryBytes: Int64
    public var extended: [String: Int64]

    public init(cpuMillis: Int64 = 0, memoryBytes: Int64 = 0, extended: [String: Int64] = [:]) {
        self.cpuMillis = cpuMillis
        self.memoryBytes = memoryBytes
        self.extended = extended.filter { $0.value != 0 }
    }

    public static let zero = Resources()

    public var isZero: Bool { cpuMillis == 0 && memoryBytes == 0 && extended.values.allSatisfy { $0 == 0 } }

    public static func + (a: Resources, b: Resources) -> Resources {
        var e = a.extended
        for (k, v) in b.extended { e[k, default: 0] += v }
        return Resources(cpuMillis: a.cpuMillis + b.cpuMillis, memoryBytes: a.memoryBytes + b.memoryBytes, extended: e)
    }

    public static func - (a: Resources, b: Resources) -> Resources {
        var e = a.extended
        for (k, v) in b.extended { e[k, default: 0] -= v }
        return Resources(cpuMillis: a.cpuMillis - b.cpuMillis, memoryBytes: a.memoryBytes - b.memoryBytes, extended: e)
    }

    /// Every dimension of `self` is at most the same dimension of `capacity`.
    public func fits(in capacity: Resources) -> Bool {
        guard cpuMillis <= capacity.cpuMillis, memoryBytes <= capacity.memoryBytes else { return false }
        for (k, v) in extended where v > capacity.extended[k, default: 0] { return false }
        return true
    }

    /// Names of the extended dimensions in either vector, sorted.
    public static func extendedNames(_ vectors: Resources...) -> [String] {
        Set(vectors.flatMap { $0.extended.keys }).sorted()
    }

    /// `{"cpu": "500m", "memory": "64Mi", "resources": {"gpu": 1}}` (resources only when non-empty).
    public var json: JSONValue {
        var o: [String: JSONValue] = ["cpu": .string(Quantity.formatCPU(cpuMillis)), "memory": .string(Quantity.formatBytes(memoryBytes))]
        if !extended.isEmpty { o["resources"] = .object(extended.mapValues { .int($0) }) }
        return .object(o)
    }

    public var summary: String {
        var parts = ["cpu \(Quantity.formatCPU(cpuMillis))", "memory \(Quantity.formatBytes(memoryBytes))"]
        for k in extended.keys.sorted() { parts.append("\(k) \(extended[k]!)") }
        return parts.joined(separator: ", ")
    }

    /// Reads `cpu`, `memory` and `resources` (extended integers) from an object being read strictly.
    /// Any other key is left for the caller's `finish()` to reject, so a typo like `memroy` is an error.
    public static func read(from r: inout JSONObjectReader) throws(WardenError) -> Resources {
        var res = Resources()
        if let v = r.value("cpu") { res.cpuMillis = try Quantity.cpuMillis(v, field: r.child("cpu")) }
        if let v = r.value("memory") { res.memoryBytes = try Quantity.bytes(v, field: r.child("memory")) }
        if let ext = try r.object("resources") {
            for (name, v) in ext.dict.sorted(by: { $0.key < $1.key }) {
                try validateExtendedName(name, field: ext.child(name))
                res.extended[name] = try Quantity.count(v, field: ext.child(name))
            }
            res.extended = res.extended.filter { $0.value != 0 }
        }
        return res
    }

    static func validateExtendedName(_ name: String, field: String) throws(WardenError) {
        let ok = !name.isEmpty && name.utf8.count <= 63 && name.utf8.allSatisfy { c in
            (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 45 || c == 95 || c == 46 || c == 47
        }
        if !ok || name == "cpu" || name == "memory" {
            throw WardenError.invalid(field, "invalid extended resource name \(quoted(name)) (lowercase letters, digits, '-', '_', '.', '/'; not cpu or memory)")
        }
    }
}
