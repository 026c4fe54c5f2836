import Foundation
import Glibc
import Testing
import WardenCore
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
