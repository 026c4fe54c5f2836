import Foundation
import Glibc
import Testing
import WardenCore
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
