import Foundation
import Glibc
import Testing
import WardenCore
import WardenSystem
@testable import WardenSandbox

/// Loaded profiles are kept per process (an executor loads its plugin's profile for every task), but a
/// profile edited on disk is what the next sandbox gets, and a file edited moments ago is never cached.
@Suite struct ProfileCacheTests {
    func writeProfile(_ path: String, hostname: String, age: Int) throws {
        let text = """
            {"name": "cached", "namespaces": ["user", "pid", "mount", "net"], "hostname": "\(hostname)",
             "rootfs": {"readOnly": ["/usr"], "proc": true, "dev": "minimal"}, "network": "none"}
            """
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        // Back-date the file so the load is cacheable (a file changed in the last two seconds is not).
        var times = [timespec(tv_sec: time(nil) - age, tv_nsec: 0), timespec(tv_sec: time(nil) - age, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
    }

    @Test func anEditedProfileIsLoadedAgain() throws {
        let path = NSTemporaryDirectory() + "warden-profile-\(UUID()).json"
        defer { unlink(path) }
        try writeProfile(path, hostname: "first", age: 60)
        #expect(try ProfileLoader.load(path).profile.hostname == "first")
        #expect(try ProfileLoader.load(path).profile.hostname == "first")
        try writeProfile(path, hostname: "second", age: 30)
        #expect(try ProfileLoader.load(path).profile.hostname == "second")
    }

    @Test func aProfileWrittenJustNowIsNotCached() throws {
        let path = NSTemporaryDirectory() + "warden-profile-\(UUID()).json"
        defer { unlink(path) }
        try writeProfile(path, hostname: "first", age: 0)
        #expect(try ProfileLoader.load(path).profile.hostname == "first")
        // Same size, same second: only a fresh read can tell the difference.
        try writeProfile(path, hostname: "after", age: 0)
        #expect(try ProfileLoader.load(path).profile.hostname == "after")
    }
}

/// Parsed profile files on disk, by the hash of their bytes: a fresh process reads them back without
/// JSONDecoder. A damaged or foreign entry is parsed again, never believed.
@Suite(.serialized) struct ParsedFileCacheTests {
    let text = #"{"name": "disk-cached", "namespaces": ["user"], "hostname": "h", "network": "none"}"#

    func entry(_ bytes: [UInt8]) -> String { "\(ParsedFileCache.dir)/\(SHA256.hex(bytes))" }

    @Test func aParsedFileIsStoredAndReadBack() throws {
        let bytes = Array((text + String(repeating: " ", count: Int.random(in: 1...500))).utf8)
        defer { unlink(entry(bytes)) }
        let first = try ParsedFileCache.json(bytes).value
        #expect(first == (try JSONValue.parse(bytes)))
        #expect(ParsedFileCache.load(SHA256.hex(bytes)) == first)
        #expect(try ParsedFileCache.json(bytes).value == first)
    }

    @Test func aDamagedEntryIsParsedAgainAndReplaced() throws {
        let bytes = Array((text + " \n" + String(repeating: " ", count: Int.random(in: 1...500))).utf8)
        defer { unlink(entry(bytes)) }
        _ = try ParsedFileCache.json(bytes).value
        // Same length, other bytes: what a torn or tampered write could leave.
        var damaged = try #require(FileManager.default.contents(atPath: entry(bytes)))
        damaged[damaged.count / 2] ^= 0xff
        try damaged.write(to: URL(fileURLWithPath: entry(bytes)))
        #expect(try ParsedFileCache.json(bytes).value == (try JSONValue.parse(bytes)))
        #expect(ParsedFileCache.load(SHA256.hex(bytes)) == (try JSONValue.parse(bytes)))
    }

    @Test func anEntryOthersCanWriteIsIgnored() throws {
        let bytes = Array((text + String(repeating: "\t", count: Int.random(in: 1...500))).utf8)
        defer { unlink(entry(bytes)) }
        _ = try ParsedFileCache.json(bytes).value
        chmod(entry(bytes), 0o666)
        #expect(ParsedFileCache.load(SHA256.hex(bytes)) == nil)
    }

    /// Another file's parsed value under this file's name is not what a lookup can return: the key is the
    /// hash of the bytes just read.
    @Test func aChangedFileMissesTheCache() throws {
        let a = Array((text + String(repeating: " ", count: Int.random(in: 501...900))).utf8)
        let b = Array(String(decoding: a, as: UTF8.self).replacingOccurrences(of: "\"h\"", with: "\"other\"").utf8)
        defer { unlink(entry(a)); unlink(entry(b)) }
        #expect(try ParsedFileCache.json(a).value["hostname"] == .string("h"))
        #expect(try ParsedFileCache.json(b).value["hostname"] == .string("other"))
    }
}
