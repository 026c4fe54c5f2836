/// A workflow (DESIGN §5a): a DAG of steps, each one task. Step inputs are JSON with `{{…}}` references to
/// the workflow input and to upstream steps' results; everything is checked at submit time.
public struct WorkflowSpec: Sendable, Hashable {
    public struct Step: Sendable, Hashable {
        public var id: String
        public var plugin: String
        public var tool: String?
        public var version: String?
        public var input: JSONValue
        public var after: [String]
        public var retry: PluginManifest.RetryPolicy?
        public var timeoutMs: Int64?
        public var approval: Bool
        public var priority: Int
        public var resources: Resources?
    }

    public var name: String
    public var steps: [Step]

    public func step(_ id: String) -> Step? { steps.first { $0.id == id } }

    /// Steps that `id` transitively runs after.
    public func upstream(of id: String) -> Set<String> {
        var seen: Set<String> = []
        var frontier = step(id)?.after ?? []
        while let s = frontier.popLast() {
            if seen.insert(s).inserted { frontier += step(s)?.after ?? [] }
        }
        return seen
    }

    public static func decode(_ json: JSONValue) throws(WardenError) -> WorkflowSpec {
        var r = try JSONObjectReader(json)
        let name = try r.requiredString("name")
        guard let list = try r.array("steps"), !list.isEmpty else { throw WardenError.invalid("$.steps", "required (a non-empty array of steps)") }
        _ = r.value("description")
        try r.finish()
        var steps: [Step] = []
        var ids: Set<String> = []
        for (i, v) in list.enumerated() {
            let p = "$.steps[\(i)]"
            var s = try JSONObjectReader(v, path: p)
            let id = try s.requiredString("id")
            guard PluginManifest.isValidToolName(id) else { throw WardenError.invalid("\(p).id", "invalid step id \(quoted(id)) (letters, digits, '-', '_')") }
            guard ids.insert(id).inserted else { throw WardenError.invalid("\(p).id", "duplicate step id \(quoted(id))") }
            let target = try TaskSpec.parseTarget(try s.requiredString("tool"), code: .dataError)
            let input = s.value("input") ?? .object([:])
            guard case .object = input else { throw WardenError.invalid("\(p).input", "expected an object, got \(input.typeName)") }
            let after = try s.stringArray("after") ?? []
            var retry: PluginManifest.RetryPolicy?
            if let rv = s.value("retry") { retry = try PluginManifest.decodeRetry(rv, path: "\(p).retry") }
            var timeout: Int64?
            if let t = s.value("timeout") { timeout = try Quantity.durationMillis(t, field: "\(p).timeout") }
            var approval = false
            if let a = try s.string("approval") {
                guard a == "required" || a == "none" else { throw WardenError.invalid("\(p).approval", "expected \"required\" or \"none\", got \(quoted(a))") }
                approval = a == "required"
            }
            let priority = Int(try s.int("priority") ?? 0)
            var resources: Resources?
            if var rr = try s.object("resources") {
                resources = try Resources.read(from: &rr)
                try rr.finish()
            }
            _ = s.value("description")
            try s.finish()
            steps.append(Step(id: id, plugin: target.plugin, tool: target.tool, version: target.version, input: input, after: after,
                              retry: retry, timeoutMs: timeout, approval: approval, priority: priority, resources: resources))
        }
        let spec = WorkflowSpec(name: name, steps: steps)
        for (i, s) in steps.enumerated() {
            for (j, a) in s.after.enumerated() where !ids.contains(a) {
                throw WardenError.invalid("$.steps[\(i)].after[\(j)]", "unknown step \(quoted(a))")
            }
            if spec.upstream(of: s.id).contains(s.id) {
                throw WardenError.invalid("$.steps[\(i)].after", "step \(quoted(s.id)) depends on itself (a cycle)")
            }
            let up = spec.upstream(of: s.id)
            for ref in Template.references(in: s.input, path: "$.steps[\(i)].input") {
                switch ref.root {
                case .input: continue
                case .step(let other, let path):
                    guard ids.contains(other) else { throw WardenError.invalid(path, "reference to unknown step \(quoted(other))") }
                    guard up.contains(other) else {
                        throw WardenError.invalid(path, "step \(quoted(other)) is not upstream of \(quoted(s.id)) (add it to \"after\")")
                    }
                case .invalid(let text, let path):
                    throw WardenError.invalid(path, "invalid reference \(quoted(text)) (expected {{input.…}} or {{steps.STEP.result…}})")
                }
            }
        }
        return spec
    }
}

/// `{{input.a.b}}` and `{{steps.S.result.x[0]}}` in step inputs. A string that is exactly one reference is
/// replaced by the referenced JSON value (any type); references inside longer strings are replaced by text.
public enum Template {
    public enum Root: Hashable { case input, step(String, path: String), invalid(String, path: String) }
    public struct Reference: Hashable { public var root: Root; public var path: [String] }

    static func parse(_ expr: String, at jsonPath: String) -> Reference {
        let parts = expr.trimmed.split(separator: ".", omittingEmptySubsequences: false).flatMap { seg -> [String] in
            // a[0] → "a", "0"
            var out: [String] = []
            var rest = Substring(seg)
            if let b = rest.firstIndex(of: "[") {
                out.append(String(rest[..<b]))
                rest = rest[b...]
                while rest.hasPrefix("["), let e = rest.firstIndex(of: "]") {
                    out.append(String(rest[rest.index(after: rest.startIndex)..<e]))
                    rest = rest[rest.index(after: e)...]
                }
                return out
            }
            return [String(seg)]
        }
        if parts.first == "input" { return Reference(root: .input, path: Array(parts.dropFirst())) }
        if parts.count >= 3, parts[0] == "steps", parts[2] == "result" {
            return Reference(root: .step(parts[1], path: jsonPath), path: Array(parts.dropFirst(3)))
        }
        return Reference(root: .invalid(expr, path: jsonPath), path: [])
    }

    /// Every `{{…}}` in a value, with the JSON path where it occurs.
    public static func references(in v: JSONValue, path: String) -> [Reference] {
        switch v {
        case .string(let s): return expressions(s).map { parse($0, at: path) }
        case .array(let a): return a.enumerated().flatMap { references(in: $1, path: "\(path)[\($0)]") }
        case .object(let o): return o.sorted(by: { $0.key < $1.key }).flatMap { references(in: $1, path: "\(path).\($0)") }
        default: return []
        }
    }

    static func expressions(_ s: String) -> [String] {
        var out: [String] = []
        var rest = Substring(s)
        while let open = rest.firstRange(of: "{{"), let close = rest[open.upperBound...].firstRange(of: "}}") {
            out.append(String(rest[open.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return out
    }

    /// Replaces references using the workflow input and the results of finished steps.
    public static func render(_ v: JSONValue, input: JSONValue, results: [String: JSONValue]) throws(WardenError) -> JSONValue {
        switch v {
        case .string(let s):
            let exprs = expressions(s)
            if exprs.isEmpty { return v }
            if exprs.count == 1, s.trimmed == "{{\(exprs[0])}}" { return try resolve(exprs[0], input: input, results: results) }
            var out = s
            for e in exprs {
                let value = try resolve(e, input: input, results: results)
                let text: String
                if case .string(let str) = value { text = str } else { text = value.canonical }
                out = out.split(separatorString: "{{\(e)}}").joined(separator: text)
            }
            return .string(out)
        case .array(let a): return .array(try a.map { x throws(WardenError) in try render(x, input: input, results: results) })
        case .object(let o):
            var out: [String: JSONValue] = [:]
            for (k, x) in o { out[k] = try render(x, input: input, results: results) }
            return .object(out)
        default: return v
        }
    }

    static func resolve(_ expr: String, input: JSONValue, results: [String: JSONValue]) throws(WardenError) -> JSONValue {
        let ref = parse(expr, at: "")
        var cur: JSONValue
        switch ref.root {
        case .input: cur = input
        case .step(let s, _):
            guard let r = results[s] else { throw WardenError(.dataError, "{{\(expr)}}: step \(s) has no result") }
            cur = r
        case .invalid: throw WardenError(.dataError, "invalid reference {{\(expr)}}")
        }
        for key in ref.path {
            switch cur {
            case .object(let o):
                guard let next = o[key] else { throw WardenError(.dataError, "{{\(expr)}}: no key \(quoted(key))") }
                cur = next
            case .array(let a):
                guard let i = Int(key), i >= 0, i < a.count else { throw WardenError(.dataError, "{{\(expr)}}: no index \(key)") }
                cur = a[i]
            default:
                throw WardenError(.dataError, "{{\(expr)}}: \(quoted(key)) of \(cur.typeName)")
            }
        }
        return cur
    }
}
