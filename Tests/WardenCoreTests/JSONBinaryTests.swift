import Foundation
import Testing
@testable import WardenCore

/// The cached form of parsed profile files: exact round trips, and damage is refused, never misread.
struct JSONBinaryTests {
    static let samples: [JSONValue] = [
        .null, .bool(true), .bool(false), .int(0), .int(Int64.min), .int(Int64.max), .double(-0.5),
        .double(1e300), .string(""), .string("ü ☃ \u{0} \"quoted\""), .array([]), .object([:]),
        .object(["a": .array([.int(1), .string("x"), .null, .object(["deep": .array([.bool(true)])])]),
                 "é": .double(2.25), "": .string("empty key")]),
    ]

    @Test func valuesRoundTrip() throws {
        for v in Self.samples { #expect(JSONValue(binary: v.binary) == v) }
    }

    @Test func shippedProfilesRoundTrip() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../sandbox-profiles").path
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".json") }
        #expect(files.count >= 4)
        for f in files {
            let v = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(f)"))))
            #expect(JSONValue(binary: v.binary) == v, "\(f)")
        }
    }

    /// Equal values, equal bytes (members are written sorted), whatever order the dictionary holds them in.
    @Test func encodingIsCanonical() throws {
        let a = try JSONValue.parse(#"{"b": 1, "a": 2, "c": {"z": [], "y": null}}"#)
        let b = try JSONValue.parse(#"{"c": {"y": null, "z": []}, "a": 2, "b": 1}"#)
        #expect(a.binary == b.binary)
    }

    @Test func everyTruncationIsRefused() throws {
        let bytes = Self.samples.last!.binary
        for n in 0..<bytes.count { #expect(JSONValue(binary: Array(bytes[0..<n])) == nil, "\(n) bytes") }
        #expect(JSONValue(binary: bytes + [0]) == nil, "trailing byte")
    }

    @Test func damageIsRefusedOrReadAsSomeOtherValueWithoutCrashing() throws {
        let bytes = Self.samples.last!.binary
        for i in 4..<bytes.count {
            for flip: UInt8 in [0x01, 0x80, 0xff] {
                var b = bytes
                b[i] ^= flip
                _ = JSONValue(binary: b)   // must return (nil or a value), never trap
            }
        }
        #expect(JSONValue(binary: Array("XJB1".utf8) + [0]) == nil, "magic")
        #expect(JSONValue(binary: JSONValue.binaryMagic + [9]) == nil, "unknown tag")
        #expect(JSONValue(binary: JSONValue.binaryMagic + [5, 2, 0, 0, 0, 0xc3, 0x28]) == nil, "invalid UTF-8")
        // An object with a repeated key is not something `binary` writes.
        let dup = JSONValue.binaryMagic + [7, 2, 0, 0, 0, 1, 0, 0, 0, 0x61, 0, 1, 0, 0, 0, 0x61, 0]
        #expect(JSONValue(binary: dup) == nil, "duplicate key")
    }

    @Test func hugeCountsAndDeepNestingAreRefused() throws {
        #expect(JSONValue(binary: JSONValue.binaryMagic + [6, 0xff, 0xff, 0xff, 0xff]) == nil)
        #expect(JSONValue(binary: JSONValue.binaryMagic + [7, 0xff, 0xff, 0xff, 0x7f]) == nil)
        var deep = JSONValue.null
        for _ in 0..<(JSONValue.binaryMaxDepth + 1) { deep = .array([deep]) }
        #expect(JSONValue(binary: deep.binary) == nil)
        var ok = JSONValue.null
        for _ in 0..<JSONValue.binaryMaxDepth { ok = .array([ok]) }
        #expect(JSONValue(binary: ok.binary) == ok)
    }
}

/// The cache's own UTF-8 check must say exactly what the standard library says.
@Suite("binary JSON UTF-8 check")
struct WellFormedUTF8Tests {
    func agrees(_ bytes: [UInt8]) -> Bool {
        let mine = bytes.withUnsafeBufferPointer { isWellFormedUTF8($0) }
        return mine == (String(validating: bytes, as: UTF8.self) != nil)
    }

    @Test func everyOneAndTwoByteSequence() {
        for a in 0...255 {
            #expect(agrees([UInt8(a)]), "\(a)")
            for b in 0...255 where !agrees([UInt8(a), UInt8(b)]) {
                Issue.record("disagrees on \(a) \(b)")
            }
        }
    }

    @Test func threeAndFourByteSequencesAroundTheEdges() {
        let leads: [UInt8] = [0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xC0, 0xC1, 0xC2, 0xDF, 0x80, 0xBF, 0xFF]
        let tails: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF]
        for l in leads {
            for b in tails {
                for c in tails {
                    #expect(agrees([l, b, c]), "\(l) \(b) \(c)")
                    for d in tails where !agrees([l, b, c, d]) { Issue.record("disagrees on \(l) \(b) \(c) \(d)") }
                }
            }
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let bytes = (0..<Int.random(in: 1...12, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(agrees(bytes), "\(bytes)")
        }
        #expect(agrees(Array("héllo wörld — 日本 🎉".utf8)))
    }
}
