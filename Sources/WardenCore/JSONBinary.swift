/// A JSON value already parsed, written as tagged bytes so that it can be read back without parsing: what
/// the on-disk cache of profile files holds (see WardenSandbox `ParsedFileCache`). JSON text is only ever
/// parsed by Foundation; this is not JSON, and never read from anything but that private cache. A
/// one-shot `warden sandbox exec` spent half a millisecond in JSONDecoder (mostly instantiating generic
/// metadata on first use) for a 10 KB profile; reading it back from these bytes takes a few microseconds.
///
/// Layout: the magic "WJB1", then one value. A value is a tag byte and its payload, integers little-endian:
/// 0 null, 1 false, 2 true, 3 int (8 bytes), 4 double (8 bytes, IEEE bits), 5 string (u32 length, UTF-8),
/// 6 array (u32 count, values), 7 object (u32 count, then per member a u32-length key and a value).
extension JSONValue {
    public static let binaryMagic: [UInt8] = Array("WJB1".utf8)
    /// Deeper nesting than any profile needs; bounds the reader's recursion on a damaged file.
    static let binaryMaxDepth = 256

    public var binary: [UInt8] {
        var out = JSONValue.binaryMagic
        writeBinary(&out)
        return out
    }

    private func writeBinary(_ out: inout [UInt8]) {
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out += $0 } }
        func string(_ s: String) {
            let bytes = Array(s.utf8)
            u32(bytes.count)
            out += bytes
        }
        switch self {
        case .null: out.append(0)
        case .bool(let b): out.append(b ? 2 : 1)
        case .int(let i):
            out.append(3)
            withUnsafeBytes(of: i.littleEndian) { out += $0 }
        case .double(let d):
            out.append(4)
            withUnsafeBytes(of: d.bitPattern.littleEndian) { out += $0 }
        case .string(let s):
            out.append(5)
            string(s)
        case .array(let items):
            out.append(6)
            u32(items.count)
            for v in items { v.writeBinary(&out) }
        case .object(let members):
            out.append(7)
            u32(members.count)
            // Sorted, so that equal values give equal bytes.
            for (k, v) in members.sorted(by: { $0.key < $1.key }) {
                string(k)
                v.writeBinary(&out)
            }
        }
    }

    /// The value written by `binary`, or nil when the bytes are not exactly that (wrong magic, truncated,
    /// trailing bytes, invalid UTF-8, a count larger than what is left, nesting deeper than the limit).
    public init?(binary bytes: [UInt8]) {
        guard bytes.count >= 4, Array(bytes[0..<4]) == JSONValue.binaryMagic else { return nil }
        var reader = BinaryReader(bytes: bytes, offset: 4)
        guard let v = reader.value(depth: 0), reader.offset == bytes.count else { return nil }
        self = v
    }
}

private struct BinaryReader {
    let bytes: [UInt8]
    var offset: Int

    mutating func take(_ n: Int) -> ArraySlice<UInt8>? {
        guard n >= 0, n <= bytes.count - offset else { return nil }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    /// Little-endian, by hand: no generic algorithms on the path (each costs a one-shot process metadata).
    mutating func uint(_ width: Int) -> UInt64? {
        guard width <= bytes.count - offset else { return nil }
        var v: UInt64 = 0
        var i = offset + width
        while i > offset {
            i -= 1
            v = v << 8 | UInt64(bytes[i])
        }
        offset += width
        return v
    }

    mutating func u32() -> Int? { uint(4).map { Int($0) } }
    mutating func u64() -> UInt64? { uint(8) }

    mutating func string() -> String? {
        guard let n = u32(), let b = take(n) else { return nil }
        return b.withUnsafeBufferPointer { p in
            isWellFormedUTF8(p) ? String(decoding: p, as: UTF8.self) : nil
        }
    }

    mutating func value(depth: Int) -> JSONValue? {
        guard depth <= JSONValue.binaryMaxDepth, let tag = take(1)?.first else { return nil }
        switch tag {
        case 0: return .null
        case 1: return .bool(false)
        case 2: return .bool(true)
        case 3: return u64().map { .int(Int64(bitPattern: $0)) }
        case 4: return u64().map { .double(Double(bitPattern: $0)) }
        case 5: return string().map { .string($0) }
        case 6:
            // Every value takes at least one byte: a count beyond what is left is damage, not a reason to
            // reserve memory for it.
            guard let n = u32(), n <= bytes.count - offset else { return nil }
            var items: [JSONValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n {
                guard let v = value(depth: depth + 1) else { return nil }
                items.append(v)
            }
            return .array(items)
        case 7:
            guard let n = u32(), n <= (bytes.count - offset) / 5 else { return nil }
            var members: [String: JSONValue] = [:]
            members.reserveCapacity(n)
            for _ in 0..<n {
                guard let k = string(), members[k] == nil, let v = value(depth: depth + 1) else { return nil }
                members[k] = v
            }
            return .object(members)
        default: return nil
        }
    }
}

/// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), checked by hand:
/// the standard library's validating String initializer instantiates generic metadata on first use, which
/// cost a one-shot command 50 µs reading a profile back from the cache.
func isWellFormedUTF8(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
    var i = 0
    while i < b.count {
        let c = b[i]
        if c < 0x80 {
            i += 1
            continue
        }
        // Sequence length and the range of the second byte (narrower after E0, ED, F0, F4).
        var length = 0, low: UInt8 = 0x80, high: UInt8 = 0xBF
        switch c {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE, 0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: return false
        }
        guard b.count - i >= length, b[i + 1] >= low, b[i + 1] <= high else { return false }
        var k = 2
        while k < length {
            guard b[i + k] & 0xC0 == 0x80 else { return false }
            k += 1
        }
        i += length
    }
    return true
}
