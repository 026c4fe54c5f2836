import FoundationEssentials

/// Any JSON value. Decoded and encoded with Foundation's JSONDecoder/JSONEncoder (no home-made parser).
/// Integers that fit in Int64 stay exact; other numbers are Doubles.
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Strings first (the most common value: no failed attempt), then containers, then the other scalars:
    /// each failed attempt throws, and DecodingErrors are not cheap (a 10 KB profile, mostly syscall names,
    /// parses in half the time this way).
    public init(from decoder: any Decoder) throws {
        if let s = try? decoder.singleValueContainer().decode(String.self) {
            self = .string(s)
            return
        }
        if let o = try? decoder.container(keyedBy: AnyKey.self) {
            var out: [String: JSONValue] = [:]
            out.reserveCapacity(o.allKeys.count)
            for k in o.allKeys { out[k.stringValue] = try o.decode(JSONValue.self, forKey: k) }
            self = .object(out)
            return
        }
        if var a = try? decoder.unkeyedContainer() {
            var out: [JSONValue] = []
            if let n = a.count { out.reserveCapacity(n) }
            while !a.isAtEnd { out.append(try a.decode(JSONValue.self)) }
            self = .array(out)
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value")
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    // MARK: parsing and printing

    /// Parses JSON text. Errors are one line: `invalid JSON: <why>`.
    public static func parse(_ data: some Sequence<UInt8>) throws(WardenError) -> JSONValue {
        let bytes = Data(data)
        do {
            return try JSONDecoder().decode(JSONValue.self, from: bytes)
        } catch {
            throw WardenError(.dataError, "invalid JSON: \(describe(decodingError: error))")
        }
    }

    public static func parse(_ text: String) throws(WardenError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    /// Canonical form: sorted keys, no whitespace, minimal escaping, integers as integers. Used for hashing,
    /// cache keys and storage, so it is written directly (it is on every hot path; JSONEncoder is ~20×
    /// slower); parsing always goes through Foundation's JSONDecoder.
    public var canonical: String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        writeCanonical(&out)
        return String(decoding: out, as: UTF8.self)
    }

    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        writeCanonical(&out)
        return out
    }

    func writeCanonical(_ out: inout [UInt8]) {
        switch self {
        case .null: out += "null".utf8
        case .bool(let b): out += (b ? "true" : "false").utf8
        case .int(let i): out += String(i).utf8
        case .double(let d):
            // Every integral double that fits in Int64 prints as an integer: parsing reads such text back as
            // `.int`, so any other spelling (4.4e+18) would not survive a parse and print (found by fuzzing).
            if d.isFinite && d == d.rounded() && abs(d) < 9.223372036854775808e18 {
                out += String(Int64(d)).utf8
            } else if d.isFinite { out += "\(d)".utf8 } else { out += "null".utf8 }
        case .string(let s): Self.writeString(s, &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.writeCanonical(&out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            // Keys sort by their UTF-8 bytes (the order JSONEncoder's .sortedKeys uses for ASCII keys).
            for (i, k) in o.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(k, &out)
                out.append(UInt8(ascii: ":"))
                o[k]!.writeCanonical(&out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ s: String, _ out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += [92, 34]
            case UInt8(ascii: "\\"): out += [92, 92]
            case 10: out += [92, 110]
            case 13: out += [92, 114]
            case 9: out += [92, 116]
            case 8: out += [92, 98]
            case 12: out += [92, 102]
            case 0..<32: out += [92, 117, 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]]
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Indented, sorted keys: what `--json` prints.
    public var pretty: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        return (try? String(decoding: enc.encode(self), as: UTF8.self)) ?? "null"
    }

    // MARK: access

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { return o }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 9.0e15: return Int64(d)
        default: return nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// A short name of the type for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, b in b }))
    }
    public init(nilLiteral: ()) { self = .null }
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JSONValue {
    /// `.string(s)` or `.null` for nil.
    public static func optional(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
    public static func optional(_ i: Int64?) -> JSONValue { i.map { .int($0) } ?? .null }
    public static func optional(_ v: JSONValue?) -> JSONValue { v ?? .null }
}

/// One line describing why JSONDecoder failed, without Swift type names.
public func describe(decodingError error: any Error) -> String {
    if let e = error as? DecodingError {
        switch e {
        case .dataCorrupted(let ctx):
            var why = ctx.debugDescription
            if let u = ctx.underlyingError { why = "\(u)" }
            return oneLine(why)
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx), .keyNotFound(_, let ctx):
            return oneLine(ctx.debugDescription)
        @unknown default:
            return oneLine("\(e)")
        }
    }
    return oneLine("\(error)")
}

func oneLine(_ s: String) -> String {
    let flat = s.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    return flat.count > 200 ? String(flat.prefix(200)) + "…" : flat
}

/// Reads one JSON object strictly: every key must be consumed, or `finish()` names the unknown one and the
/// keys that are allowed. Errors carry the JSON path (`$.tools[0].name`).
public struct JSONObjectReader {
    public let path: String
    public let dict: [String: JSONValue]
    private var seen: Set<String> = []
    private let code: ExitCode

    public init(_ value: JSONValue, path: String = "$", code: ExitCode = .dataError) throws(WardenError) {
        guard case .object(let o) = value else {
            throw WardenError.invalid(path, "expected an object, got \(value.typeName)", code: code)
        }
        self.path = path
        self.dict = o
        self.code = code
    }

    public func child(_ key: String) -> String { "\(path).\(key)" }

    public mutating func has(_ key: String) -> Bool { dict[key] != nil }

    /// The raw value (marked as consumed). `null` counts as absent.
    public mutating func value(_ key: String) -> JSONValue? {
        seen.insert(key)
        if let v = dict[key], v != .null { return v }
        return nil
    }

    public mutating func string(_ key: String) throws(WardenError) -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw typeError(key, "a string", v) }
        return s
    }

    public mutating func requiredString(_ key: String) throws(WardenError) -> String {
        guard let s = try string(key) else { throw WardenError.invalid(child(key), "required", code: code) }
        guard !s.isEmpty else { throw WardenError.invalid(child(key), "must not be empty", code: code) }
        return s
    }

    public mutating func bool(_ key: String) throws(WardenError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw typeError(key, "true or false", v) }
        return b
    }

    public mutating func int(_ key: String) throws(WardenError) -> Int64? {
        guard let v = value(key) else { return nil }
        guard let i = v.intValue, case .int = v else { throw typeError(key, "an integer", v) }
        return i
    }

    public mutating func object(_ key: String) throws(WardenError) -> JSONObjectReader? {
        guard let v = value(key) else { return nil }
        return try JSONObjectReader(v, path: child(key), code: code)
    }

    public mutating func array(_ key: String) throws(WardenError) -> [JSONValue]? {
        guard let v = value(key) else { return nil }
        guard case .array(let a) = v else { throw typeError(key, "an array", v) }
        return a
    }

    public mutating func stringArray(_ key: String) throws(WardenError) -> [String]? {
        guard let a = try array(key) else { return nil }
        var out: [String] = []
        for (i, v) in a.enumerated() {
            guard case .string(let s) = v else {
                throw WardenError.invalid("\(child(key))[\(i)]", "expected a string, got \(v.typeName)", code: code)
            }
            out.append(s)
        }
        return out
    }

    public mutating func stringMap(_ key: String) throws(WardenError) -> [String: String]? {
        guard let o = try object(key) else { return nil }
        var out: [String: String] = [:]
        for (k, v) in o.dict {
            guard case .string(let s) = v else {
                throw WardenError.invalid(o.child(k), "expected a string, got \(v.typeName)", code: code)
            }
            out[k] = s
        }
        return out
    }

    /// Throws if any key was not consumed.
    public func finish() throws(WardenError) {
        let unknown = dict.keys.filter { !seen.contains($0) }.sorted()
        if let first = unknown.first {
            let allowed = seen.sorted().joined(separator: ", ")
            throw WardenError.invalid(child(first), "unknown key (allowed here: \(allowed))", code: code)
        }
    }

    private func typeError(_ key: String, _ expected: String, _ got: JSONValue) -> WardenError {
        WardenError.invalid(child(key), "expected \(expected), got \(got.typeName)", code: code)
    }
}
