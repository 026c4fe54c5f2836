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

    /// The key covers the filter: a changed rule is a different program.
    @Test func keyFollowsTheFilter() throws {
        func key(_ json: String) throws -> String {
            ProgramCache.key(try OCISeccomp.decode(try JSONValue.parse(json)).cacheDescription)
        }
        let base = try key(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#)
        #expect(try key(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#) == base)
        #expect(try key(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "mount"], "action": "SCMP_ACT_ALLOW"}]}"#) != base)
        #expect(try key(#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#) != base)
        #expect(try key(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#) != base)
    }
}
