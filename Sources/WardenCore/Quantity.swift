/// Exact parsing of the quantities of DESIGN §2: CPU (cores or millicores), memory (bytes with Kubernetes
/// suffixes), extended integer resources, durations and rates. Nothing is rounded: a value that cannot be
/// represented exactly is an error naming the field and the value.
public enum Quantity {
    // MARK: CPU

    /// `"2"`, `"0.5"`, `"500m"` (or a JSON number of cores) → millicores.
    public static func cpuMillis(_ text: String, field: String, code: ExitCode = .dataError) throws(WardenError) -> Int64 {
        let expected = "expected cores like \"2\" or \"0.5\", or millicores like \"500m\""
        func bad(_ why: String = "invalid CPU quantity") -> WardenError {
            WardenError.invalid(field, "\(why) \(quoted(text)) (\(expected))", code: code)
        }
        if text.hasSuffix("m") {
            guard let d = Decimal10(String(text.dropLast())), d.fraction.isEmpty else { throw bad() }
            // Found by fuzzing: a wrapped-around value used to come back as the number of millicores.
            guard !d.overflowed else { throw bad("CPU quantity out of range") }
            return d.integer
        }
        guard let d = Decimal10(text) else { throw bad() }
        switch d.scaled(by: 1000) {
        case .value(let millis): return millis
        case .overflow: throw bad("CPU quantity out of range")
        case .notWhole: throw bad("CPU quantity finer than 1m")
        }
    }

    public static func cpuMillis(_ value: JSONValue, field: String, code: ExitCode = .dataError) throws(WardenError) -> Int64 {
        try cpuMillis(try numberOrString(value, field: field, what: "a CPU quantity", code: code), field: field, code: code)
    }

    // MARK: Memory

    private static let memorySuffixes: [(String, Int64)] = [
        ("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40), ("Pi", 1 << 50), ("Ei", 1 << 60),
        ("k", 1_000), ("M", 1_000_000), ("G", 1_000_000_000), ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000), ("E", 1_000_000_000_000_000_000),
    ]

    /// `"64Mi"`, `"1.5Gi"`, `"1G"`, `"1048576"` → bytes.
    public static func bytes(_ text: String, field: String, code: ExitCode = .dataError) throws(WardenError) -> Int64 {
        let expected = "expected bytes with a suffix Ki, Mi, Gi, Ti (binary) or k, M, G, T (decimal), like \"256Mi\""
        func bad(_ why: String = "invalid memory quantity") -> WardenError {
            WardenError.invalid(field, "\(why) \(quoted(text)) (\(expected))", code: code)
        }
        var number = Substring(text)
        var multiplier: Int64 = 1
        for (suffix, m) in memorySuffixes where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            multiplier = m
            break
        }
        guard let d = Decimal10(String(number)) else { throw bad() }
        switch d.scaled(by: multiplier) {
        case .value(let v): return v
        case .overflow: throw bad("memory quantity out of range")
        case .notWhole: throw bad("memory quantity is not a whole number of bytes")
        }
    }

    public static func bytes(_ value: JSONValue, field: String, code: ExitCode = .dataError) throws(WardenError) -> Int64 {
        try bytes(try numberOrString(value, field: field, what: "a memory quantity", code: code), field: field, code: code)
    }

    // MARK: Counts

    /// A non-negative integer (extended resources, pids, nofile…), as a JSON integer or a string of digits.
    public static func count(_ value: JSONValue, field: String, code: ExitCode = .dataError) throws(WardenError) -> Int64 {
        let text: String
        switch value {
        case .int(let i):
            guard i >= 0 else { throw WardenError.invalid(field, "must not be negative, got \(i)", code: code) }
            return i
        case .string(let s): text = s
        default:
            throw WardenError.invalid(field, "expected a non-negative integer, got \(value.typeName)", code: code)
        }
        return try count(text, field: field, code: code)
    }

    public static func count(_ text: String, field: String, code: ExitCode = .dataError) throws(WardenError) -> Int64 {
        guard let d = Decimal10(text), d.fraction.isEmpty else {
            throw WardenError.invalid(field, "invalid count \(quoted(text)) (expected a non-negative integer)", code: code)
        }
        guard !d.overflowed else { throw WardenError.invalid(field, "count out of range \(quoted(text))", code: code) }
        return d.integer
    }

    // MARK: Durations

    private static let durationUnits: [(String, Int64)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]

    /// `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"1m30s"`, `"1.5s"` → milliseconds.
    public static func durationMillis(_ text: String, field: String, code: ExitCode = .dataError) throws(WardenError) -> Int64 {
        func bad(_ why: String = "invalid duration") -> WardenError {
            WardenError.invalid(field, "\(why) \(quoted(text)) (expected a number with a unit ms, s, m or h, like \"30s\" or \"1m30s\")", code: code)
        }
        var rest = Substring(text)
        var total: Int64 = 0
        guard !rest.isEmpty else { throw bad() }
        while !rest.isEmpty {
            let numberEnd = rest.firstIndex(where: { !($0.isASCII && ($0.isNumber || $0 == ".")) }) ?? rest.endIndex
            let number = rest[rest.startIndex..<numberEnd]
            rest = rest[numberEnd...]
            let unitEnd = rest.firstIndex(where: { $0.isASCII && ($0.isNumber || $0 == ".") }) ?? rest.endIndex
            let unit = String(rest[rest.startIndex..<unitEnd])
            rest = rest[unitEnd...]
            guard let scale = durationUnits.first(where: { $0.0 == unit })?.1 else { throw bad() }
            guard let d = Decimal10(String(number)) else { throw bad() }
            let ms: Int64
            switch d.scaled(by: scale) {
            case .value(let v): ms = v
            case .overflow: throw bad("duration out of range")
            case .notWhole: throw bad("duration finer than 1ms")
            }
            let (sum, o) = total.addingReportingOverflow(ms)
            guard !o else { throw bad("duration out of range") }
            total = sum
        }
        return total
    }

    public static func durationMillis(_ value: JSONValue, field: String, code: ExitCode = .dataError) throws(WardenError) -> Int64 {
        guard case .string(let s) = value else {
            throw WardenError.invalid(field, "expected a duration string like \"30s\", got \(value.typeName)", code: code)
        }
        return try durationMillis(s, field: field, code: code)
    }

    // MARK: Rates

    /// `"50/s"`, `"600/m"`, `"1000/h"` → a token bucket refilling `perSecond` with room for `burst` tokens.
    public static func rate(_ text: String, field: String, code: ExitCode = .dataError) throws(WardenError) -> Rate {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        let units: [String: Double] = ["s": 1, "m": 60, "h": 3600]
        guard parts.count == 2, let d = Decimal10(String(parts[0])), d.fraction.isEmpty, !d.overflowed, d.integer > 0,
            let per = units[String(parts[1])]
        else {
            throw WardenError.invalid(field, "invalid rate \(quoted(text)) (expected a positive count per unit, like \"50/s\", \"600/m\" or \"1000/h\")", code: code)
        }
        return Rate(perSecond: Double(d.integer) / per, burst: d.integer, text: text)
    }

    static func numberOrString(_ value: JSONValue, field: String, what: String, code: ExitCode) throws(WardenError) -> String {
        switch value {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d):
            guard d.isFinite else { throw WardenError.invalid(field, "expected \(what), got \(d)", code: code) }
            return "\(d)"
        default:
            throw WardenError.invalid(field, "expected \(what) as a string like \"500m\", got \(value.typeName)", code: code)
        }
    }

    // MARK: Formatting

    /// 1500 → "1500m", 2000 → "2", 500 → "500m".
    public static func formatCPU(_ millis: Int64) -> String {
        millis % 1000 == 0 ? String(millis / 1000) : "\(millis)m"
    }

    /// Bytes in the largest binary unit that keeps one decimal exact enough: 1610612736 → "1.5Gi".
    /// Any Int64, Int64.min and "1E" (10^18) included: the tenths come from the remainder, never from
    /// bytes × 10 (which overflowed for values past 0.9Ei; found by fuzzing).
    public static func formatBytes(_ bytes: Int64) -> String {
        let units: [(String, UInt64)] = [("Ei", 1 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)]
        let sign = bytes < 0 ? "-" : ""
        let m = bytes.magnitude
        for (suffix, size) in units where m >= size {
            let whole = m / size, rest = m % size
            if rest == 0 { return "\(sign)\(whole)\(suffix)" }
            let tenth = UInt64((Double(rest) * 10 / Double(size)).rounded())
            if tenth == 10 { return "\(sign)\(whole + 1)\(suffix)" }
            return "\(sign)\(whole).\(tenth)\(suffix)"
        }
        return String(bytes)
    }

    /// 1500 → "1.5s", 120000 → "2m", 250 → "250ms".
    public static func formatDuration(_ ms: Int64) -> String {
        if ms % 3_600_000 == 0 && ms > 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 && ms > 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        if ms > 1000 { return "\(ms / 1000).\(String(format3(ms % 1000)).trimmingTrailingZeros)s" }
        return "\(ms)ms"
    }

    private static func format3(_ v: Int64) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, 3 - s.count)) + s
    }
}

extension String {
    fileprivate var trimmingTrailingZeros: String {
        var s = self
        while s.hasSuffix("0") { s.removeLast() }
        return s
    }
}

/// A token-bucket rate: refills `perSecond` tokens a second into a bucket of `burst`.
public struct Rate: Sendable, Hashable, Codable {
    public var perSecond: Double
    public var burst: Int64
    public var text: String
}

/// A non-negative decimal parsed exactly: digits, an optional single dot, more digits. No sign, no exponent,
/// no spaces. Used by every quantity parser so they agree on what a number is.
struct Decimal10 {
    var integer: Int64
    var fraction: [UInt8]   // digits after the dot, trailing zeros removed
    var overflowed = false

    init?(_ text: String) {
        guard !text.isEmpty else { return nil }
        var intPart: Int64 = 0
        var frac: [UInt8] = []
        var seenDot = false
        var digits = 0
        var overflow = false
        for c in text.utf8 {
            if c == UInt8(ascii: ".") {
                if seenDot { return nil }
                seenDot = true
                continue
            }
            guard c >= 48 && c <= 57 else { return nil }
            digits += 1
            if seenDot {
                frac.append(c - 48)
            } else {
                let (m, o1) = intPart.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(c - 48))
                if o1 || o2 { overflow = true }
                intPart = a
            }
        }
        guard digits > 0 else { return nil }
        while frac.last == 0 { frac.removeLast() }
        self.integer = intPart
        self.fraction = frac
        self.overflowed = overflow
    }

    enum Scaled { case value(Int64), overflow, notWhole }

    /// value × scale as an exact integer.
    func scaled(by scale: Int64) -> Scaled {
        guard !overflowed else { return .overflow }
        let (whole, o) = integer.multipliedReportingOverflow(by: scale)
        guard !o else { return .overflow }
        if fraction.isEmpty { return .value(whole) }
        guard fraction.count <= 18 else { return .notWhole }
        var num: Int64 = 0
        var den: Int64 = 1
        for d in fraction {
            num = num * 10 + Int64(d)
            den *= 10
        }
        // num/den < 1, so num × scale / den < scale: only the product can overflow.
        let (p, o2) = num.multipliedReportingOverflow(by: scale)
        if o2 {
            // Exactness check without overflow: scale must be a multiple of den / gcd(num, den).
            var a = num, b = den
            while b != 0 { (a, b) = (b, a % b) }
            let reduced = den / a
            guard scale % reduced == 0 else { return .notWhole }
            let (q, o4) = (num / a).multipliedReportingOverflow(by: scale / reduced)
            guard !o4 else { return .overflow }
            let (sum, o5) = whole.addingReportingOverflow(q)
            return o5 ? .overflow : .value(sum)
        }
        guard p % den == 0 else { return .notWhole }
        let (sum, o3) = whole.addingReportingOverflow(p / den)
        return o3 ? .overflow : .value(sum)
    }
}
