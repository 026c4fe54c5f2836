import WardenCore

/// Reading `warden plan`'s inputs (DESIGN §7). Every error is one line naming the JSON path and the value.
public enum PlanInput {
    /// Largest `count` of one entry, and of a whole file after expansion: a typo must not exhaust memory.
    public static let maxCount: Int64 = 1_000_000

    /// TASKS.json: `[{"id": "t1", "cpu": "500m", "memory": "256Mi", "resources": {"gpu": 1}, "count": 1,
    /// "priority": 0, "labels": {}, "constraints": {"pool": "std", "zone": ["a", "b"]}, "antiAffinity": "zone"}]`.
    /// `count` N > 1 expands to `t1-0` … `t1-(N-1)`, all in anti-affinity group `t1`.
    public static func tasks(fromJSON json: JSONValue) throws(WardenError) -> [TaskDemand] {
        guard case .array(let items) = json else {
            throw WardenError.invalid("$", "expected an array of tasks, got \(json.typeName)")
        }
        var out: [TaskDemand] = []
        var seen: Set<String> = []
        for (i, item) in items.enumerated() {
            var r = try JSONObjectReader(item, path: "$[\(i)]")
            let id = try r.requiredString("id")
            let resources = try Resources.read(from: &r)
            let count = try readCount(&r)
            let priority = try r.int("priority") ?? 0
            guard let prio = Int(exactly: priority), abs(priority) <= 1_000_000_000 else {
                throw WardenError.invalid(r.child("priority"), "priority out of range \(priority)")
            }
            let labels = try r.stringMap("labels") ?? [:]
            var constraints: [String: [String]] = [:]
            if let c = try r.object("constraints") {
                for (key, v) in c.dict.sorted(by: { $0.key < $1.key }) {
                    switch v {
                    case .string(let s): constraints[key] = [s]
                    case .array(let a):
                        var values: [String] = []
                        for (k, x) in a.enumerated() {
                            guard case .string(let s) = x else {
                                throw WardenError.invalid("\(c.child(key))[\(k)]", "expected a string, got \(x.typeName)")
                            }
                            values.append(s)
                        }
                        guard !values.isEmpty else {
                            throw WardenError.invalid(c.child(key), "expected at least one allowed value, got []")
                        }
                        constraints[key] = values
                    default:
                        throw WardenError.invalid(c.child(key), "expected a string or an array of strings, got \(v.typeName)")
                    }
                }
            }
            let anti = try r.string("antiAffinity")
            if let anti, anti.isEmpty { throw WardenError.invalid(r.child("antiAffinity"), "must not be empty") }
            try r.finish()
            for k in 0..<Int(count) {
                let tid = count == 1 ? id : "\(id)-\(k)"
                guard seen.insert(tid).inserted else {
                    throw WardenError.invalid(r.child("id"), "duplicate task id \(quoted(tid))")
                }
                out.append(TaskDemand(id: tid, resources: resources, priority: prio, constraints: constraints,
                                      antiAffinity: anti, labels: labels, group: id))
            }
            guard out.count <= maxCount else {
                throw WardenError.invalid(r.child("count"), "more than \(maxCount) tasks in the file")
            }
        }
        return out
    }

    /// NODES.json: `[{"name": "n1", "cpu": "16", "memory": "64Gi", "resources": {"gpu": 2}, "count": 1,
    /// "labels": {}, "reserved": {"cpu": "500m", "memory": "1Gi"}}]`; `count` N > 1 makes `n1-0` … `n1-(N-1)`.
    /// `reserved` (headroom kept for the system) is optional.
    public static func nodes(fromJSON json: JSONValue) throws(WardenError) -> [NodeSpec] {
        guard case .array(let items) = json else {
            throw WardenError.invalid("$", "expected an array of nodes, got \(json.typeName)")
        }
        var out: [NodeSpec] = []
        var seen: Set<String> = []
        for (i, item) in items.enumerated() {
            var r = try JSONObjectReader(item, path: "$[\(i)]")
            let name = try r.requiredString("name")
            for key in ["cpu", "memory"] where (r.dict[key] ?? .null) == .null {
                throw WardenError.invalid(r.child(key), "required (the node's capacity)")
            }
            let capacity = try Resources.read(from: &r)
            let count = try readCount(&r)
            let labels = try r.stringMap("labels") ?? [:]
            var reserved = Resources.zero
            if var rr = try r.object("reserved") {
                reserved = try Resources.read(from: &rr)
                try rr.finish()
                for (dim, have, want) in [("cpu", capacity.cpuMillis, reserved.cpuMillis), ("memory", capacity.memoryBytes, reserved.memoryBytes)]
                where want > have {
                    throw WardenError.invalid(rr.child(dim), "reserved \(formatAmount(want, dim)) exceeds the capacity \(formatAmount(have, dim))")
                }
                for (k, v) in reserved.extended.sorted(by: { $0.key < $1.key }) where v > capacity.extended[k, default: 0] {
                    throw WardenError.invalid("\(rr.child("resources")).\(k)", "reserved \(v) exceeds the capacity \(capacity.extended[k, default: 0])")
                }
            }
            try r.finish()
            for k in 0..<Int(count) {
                let n = count == 1 ? name : "\(name)-\(k)"
                guard seen.insert(n).inserted else {
                    throw WardenError.invalid(r.child("name"), "duplicate node name \(quoted(n))")
                }
                out.append(NodeSpec(name: n, capacity: capacity, labels: labels, reserved: reserved))
            }
            guard out.count <= maxCount else {
                throw WardenError.invalid(r.child("count"), "more than \(maxCount) nodes in the file")
            }
        }
        return out
    }

    /// `--shape CPU,MEMORY[,NAME=N…]`, e.g. `16,64Gi` or `8,32Gi,gpu=1`. Errors exit 64 (a flag's value).
    public static func shape(parsing text: String) throws(WardenError) -> NodeSpec {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2 else {
            throw WardenError.invalid("--shape", "expected CPU,MEMORY[,NAME=N…] like \"16,64Gi\" or \"8,32Gi,gpu=1\", got \(quoted(text))", code: .usage)
        }
        let cpu = try Quantity.cpuMillis(parts[0], field: "--shape cpu", code: .usage)
        let mem = try Quantity.bytes(parts[1], field: "--shape memory", code: .usage)
        guard cpu > 0, mem > 0 else {
            throw WardenError.invalid("--shape", "cpu and memory must be positive, got \(quoted(text))", code: .usage)
        }
        var ext: [String: Int64] = [:]
        for part in parts.dropFirst(2) {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard kv.count == 2, isResourceName(kv[0]) else {
                throw WardenError.invalid("--shape", "expected NAME=N (a lowercase resource name and a count) in \(quoted(part))", code: .usage)
            }
            guard ext[kv[0]] == nil else {
                throw WardenError.invalid("--shape", "resource \(quoted(kv[0])) given twice", code: .usage)
            }
            ext[kv[0]] = try Quantity.count(kv[1], field: "--shape \(kv[0])", code: .usage)
        }
        return NodeSpec(name: "node", capacity: Resources(cpuMillis: cpu, memoryBytes: mem, extended: ext))
    }

    private static func readCount(_ r: inout JSONObjectReader) throws(WardenError) -> Int64 {
        guard let v = r.value("count") else { return 1 }
        let n = try Quantity.count(v, field: r.child("count"))
        guard n >= 1 else { throw WardenError.invalid(r.child("count"), "must be at least 1, got \(n)") }
        guard n <= maxCount else { throw WardenError.invalid(r.child("count"), "count out of range \(n) (at most \(maxCount))") }
        return n
    }

    /// The extended resource names Resources accepts: lowercase letters, digits, '-', '_', '.', '/'.
    static func isResourceName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 63 && s != "cpu" && s != "memory"
            && s.utf8.allSatisfy { c in (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 45 || c == 95 || c == 46 || c == 47 }
    }
}
