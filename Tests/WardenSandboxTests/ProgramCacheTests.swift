import Foundation
import Glibc
import Testing
import WardenCore
import WardenSystem
@testable import WardenSandbox

/// A cached seccomp program decides the sandbox's filter: only a whole-instruction file of ours that no one
/// else can write is used; anything else is compiled again.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ProgramCacheTests {
    let program = SeccompCompiler.Program(bytes: [UInt8](repeating: 6, count: 16))

    @Test func storedProgramIsLoaded() throws {
        let key = ProgramCache.key("test-\(UUID())")
        defer { unlink("\(ProgramCache.dir)/\(key)") }
        ProgramCache.store(key, program)
        #expect(ProgramCache.load(key) == program)
    }

    @Test func writableByOthersIsIgnored() throws {
        let key = ProgramCache.key("test-\(UUID())")
        defer { unlink("\(ProgramCache.dir)/\(key)") }
        ProgramCache.store(key, program)
        chmod("\(ProgramCache.dir)/\(key)", 0o666)
        #expect(ProgramCache.load(key) == nil)
    }

    @Test func partialInstructionIsIgnored() throws {
        let key = ProgramCache.key("test-\(UUID())")
        defer { unlink("\(ProgramCache.dir)/\(key)") }
        ProgramCache.store(key, SeccompCompiler.Program(bytes: [1, 2, 3]))
        #expect(ProgramCache.load(key) == nil)
    }

    @Test func symlinkIsIgnored() throws {
        let key = ProgramCache.key("test-\(UUID())"), other = ProgramCache.key("test-\(UUID())")
        defer { unlink("\(ProgramCache.dir)/\(key)"); unlink("\(ProgramCache.dir)/\(other)") }
        ProgramCache.store(other, program)
        symlink("\(ProgramCache.dir)/\(other)", "\(ProgramCache.dir)/\(key)")
        #expect(ProgramCache.load(key) == nil)
    }

    /// A compiled program is found by its filter's source (the file's bytes and the filter's place in it):
    /// the same rules in another file share it, any changed byte is another program.
    @Test func sourceFollowsTheBytes() throws {
        let dir = NSTemporaryDirectory() + "warden-source-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var n = 0
        func source(_ json: String) throws -> String {
            n += 1
            let path = "\(dir)/f\(n).json"
            try json.write(toFile: path, atomically: true, encoding: .utf8)
            return try ProfileLoader.loadOCI(path).source
        }
        let base = try source(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#)
        #expect(try source(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#) == base)
        #expect(try source(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "mount"], "action": "SCMP_ACT_ALLOW"}]}"#) != base)
        #expect(try source(#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#) != base)
        #expect(try source(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#) != base)
        // The same filter inline in a profile is at another place ($.seccomp): not confused with the file.
        let profile = "\(dir)/p.json"
        try #"{"name": "p", "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}}"#
            .write(toFile: profile, atomically: true, encoding: .utf8)
        let inline = try #require(try ProfileLoader.load(profile).seccomp)
        #expect(inline.jsonPath == "$.seccomp" && inline.source != base)
    }
}

/// The caches in /run/warden keep a bounded number of entries: the least recently written go first.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct PrivateCachePruneTests {
    @Test func oldestEntriesGoBeyondTheLimit() throws {
        let dir = "\(Skeleton.top)/test-prune-\(UUID().uuidString.prefix(8))"
        defer { FS.removeTree(dir) }
        for i in 0..<8 {
            PrivateCache.write(dir, "k\(i)", [UInt8(i)], keep: 5)
            // Distinct, increasing mtimes whatever the file system's timestamp granularity.
            var times = [timespec(tv_sec: 1_000_000 + i, tv_nsec: 0), timespec(tv_sec: 1_000_000 + i, tv_nsec: 0)]
            utimensat(AT_FDCWD, "\(dir)/k\(i)", &times, 0)
        }
        #expect(Set(try FS.list(dir)) == ["k3", "k4", "k5", "k6", "k7"])
        // A hit on an old entry refreshes it, so it outlives the ones written after it.
        #expect(PrivateCache.read(dir, "k3", limit: 16) == [3])
        PrivateCache.write(dir, "k8", [8], keep: 5)
        #expect(Set(try FS.list(dir)) == ["k3", "k5", "k6", "k7", "k8"])
    }
}
