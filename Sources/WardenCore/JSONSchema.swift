/// The subset of JSON Schema (draft 2020-12 vocabulary) that tool input schemas use in practice: type,
/// properties, required, additionalProperties, items, enum, const, numeric and length bounds, pattern,
/// allOf/anyOf/oneOf/not. Unknown keywords (format, title, $schema, …) are annotations and ignored.
public enum JSONSchema {
    /// Validates `instance` against `schema`; the first violation is thrown with its path under `path`.
    public static func validate(_ instance: JSONValue, schema: JSONValue, path: String = "$") throws(WardenError) {
        if let error = firstViolation(instance, schema: schema, path: path) {
            throw WardenError(.dataError, error)
        }
    }

    /// Checks that a schema is an object whose `type`, `properties`, `required` and `items` are well formed.
    public static func validateSchema(_ schema: JSONValue, path: String) throws(WardenError) {
        guard case .object(let o) = schema else {
            if case .bool = schema { return }
            throw WardenError.invalid(path, "expected a schema object, got \(schema.typeName)")
        }
        if let t = o["type"] {
            let names: [String]
            switch t {
            case .string(let s): names = [s]
            case .array(let a): names = a.compactMap(\.stringValue)
            default: throw WardenError.invalid("\(path).type", "expected a type name or an array of them")
            }
            let known: Set<String> = ["object", "array", "string", "number", "integer", "boolean", "null"]
            for n in names where !known.contains(n) {
                throw WardenError.invalid("\(path).type", "unknown type \(quoted(n))")
            }
        }
        if let p = o["properties"] {
            guard case .object(let props) = p else { throw WardenError.invalid("\(path).properties", "expected an object") }
            for (k, v) in props { try validateSchema(v, path: "\(path).properties.\(k)") }
        }
        if let r = o["required"] {
            guard case .array(let a) = r, a.allSatisfy({ $0.stringValue != nil }) else {
                throw WardenError.invalid("\(path).required", "expected an array of property names")
            }
        }
        if let i = o["items"] { try validateSchema(i, path: "\(path).items") }
        if let pat = o["pattern"] {
            guard case .string(let s) = pat, (try? Regex(s)) != nil else {
                throw WardenError.invalid("\(path).pattern", "not a valid regular expression")
            }
        }
    }

    static func firstViolation(_ v: JSONValue, schema: JSONValue, path: String) -> String? {
        switch schema {
        case .bool(true): return nil
        case .bool(false): return "\(path): no value is allowed here"
        case .object(let s): return check(v, s, path)
        default: return nil
        }
    }

    private static func typeMatches(_ v: JSONValue, _ t: String) -> Bool {
        switch (t, v) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object): return true
        case ("number", .int), ("number", .double): return true
        case ("integer", .int): return true
        case ("integer", .double(let d)): return d == d.rounded()
        default: return false
        }
    }

    private static func check(_ v: JSONValue, _ s: [String: JSONValue], _ path: String) -> String? {
        if let t = s["type"] {
            let names = t.stringValue.map { [$0] } ?? t.arrayValue?.compactMap(\.stringValue) ?? []
            if !names.isEmpty && !names.contains(where: { typeMatches(v, $0) }) {
                return "\(path): expected \(names.joined(separator: " or ")), got \(v.typeName)"
            }
        }
        if let e = s["enum"]?.arrayValue, !e.contains(v) {
            return "\(path): must be one of \(e.map(\.canonical).joined(separator: ", "))"
        }
        if let c = s["const"], c != v { return "\(path): must be \(c.canonical)" }

        if let d = v.doubleValue, !(v.boolValue != nil) {
            if let m = s["minimum"]?.doubleValue, d < m { return "\(path): must be at least \(fmt(m)), got \(fmt(d))" }
            if let m = s["maximum"]?.doubleValue, d > m { return "\(path): must be at most \(fmt(m)), got \(fmt(d))" }
            if let m = s["exclusiveMinimum"]?.doubleValue, d <= m { return "\(path): must be greater than \(fmt(m))" }
            if let m = s["exclusiveMaximum"]?.doubleValue, d >= m { return "\(path): must be less than \(fmt(m))" }
        }
        if case .string(let str) = v {
            let n = str.count
            if let m = s["minLength"]?.intValue, n < m { return "\(path): must be at least \(m) characters long" }
            if let m = s["maxLength"]?.intValue, n > m { return "\(path): must be at most \(m) characters long" }
            if let p = s["pattern"]?.stringValue, let re = try? Regex(p), (try? re.firstMatch(in: str)) == nil {
                return "\(path): does not match pattern \(quoted(p))"
            }
        }
        if case .array(let a) = v {
            if let m = s["minItems"]?.intValue, a.count < m { return "\(path): must have at least \(m) items" }
            if let m = s["maxItems"]?.intValue, a.count > m { return "\(path): must have at most \(m) items" }
            if let items = s["items"] {
                for (i, x) in a.enumerated() {
                    if let e = firstViolation(x, schema: items, path: "\(path)[\(i)]") { return e }
                }
            }
        }
        if case .object(let o) = v {
            if let req = s["required"]?.arrayValue {
                for r in req.compactMap(\.stringValue) where o[r] == nil {
                    return "\(path).\(r): required"
                }
            }
            let props = s["properties"]?.objectValue ?? [:]
            for (k, x) in o.sorted(by: { $0.key < $1.key }) {
                if let ps = props[k] {
                    if let e = firstViolation(x, schema: ps, path: "\(path).\(k)") { return e }
                } else if let ap = s["additionalProperties"] {
                    if case .bool(false) = ap { return "\(path).\(k): unknown property" }
                    if let e = firstViolation(x, schema: ap, path: "\(path).\(k)") { return e }
                }
            }
        }
        if let all = s["allOf"]?.arrayValue {
            for sub in all { if let e = firstViolation(v, schema: sub, path: path) { return e } }
        }
        if let any = s["anyOf"]?.arrayValue, !any.contains(where: { firstViolation(v, schema: $0, path: path) == nil }) {
            return "\(path): does not match any of the allowed schemas"
        }
        if let one = s["oneOf"]?.arrayValue, one.filter({ firstViolation(v, schema: $0, path: path) == nil }).count != 1 {
            return "\(path): must match exactly one of the allowed schemas"
        }
        if let not = s["not"], firstViolation(v, schema: not, path: path) == nil {
            return "\(path): matches a schema it must not match"
        }
        return nil
    }

    private static func fmt(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)"
    }
}
