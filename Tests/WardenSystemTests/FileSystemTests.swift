import Glibc
import Testing
import WardenCore
@testable import WardenSystem

/// FS.readAll sizes its buffer from fstat when it can: these pin what it returns whatever the file says.
@Suite("file reading")
struct FileSystemTests {
    func tempFile(_ bytes: [UInt8]) throws -> String {
        var template = Array("/tmp/warden-fs-test-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        #expect(fd >= 0)
        try FS.writeAll(fd: fd, bytes)
        close(fd)
        return String(cString: template)
    }

    @Test func regularFilesComeBackWhole() throws {
        for size in [0, 1, 4095, 4096, 4097, 70_000] {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let path = try tempFile(bytes)
            defer { unlink(path) }
            #expect(try FS.readFile(path) == bytes, "size \(size)")
        }
    }

    @Test func theLimitIsExact() throws {
        let path = try tempFile([UInt8](repeating: 7, count: 100))
        defer { unlink(path) }
        #expect(try FS.readFile(path, limit: 100).count == 100)
        #expect(throws: WardenError.self) { try FS.readFile(path, limit: 99) }
    }

    /// procfs reports size 0 and pipes report nothing useful: the buffer has to grow.
    @Test func filesWithoutASizeGrow() throws {
        let mountinfo = try FS.readFile("/proc/self/mountinfo")
        #expect(!mountinfo.isEmpty && mountinfo.last == UInt8(ascii: "\n"))
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        let bytes = (0..<20_000).map { UInt8(truncatingIfNeeded: $0) }
        try FS.writeAll(fd: p[1], bytes)
        close(p[1])
        defer { close(p[0]) }
        #expect(try FS.readAll(fd: p[0]) == bytes)
    }

    @Test func aPipeOverTheLimitIsRefused() throws {
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        try FS.writeAll(fd: p[1], [UInt8](repeating: 1, count: 10_000))
        close(p[1])
        defer { close(p[0]) }
        #expect(throws: WardenError.self) { try FS.readAll(fd: p[0], limit: 9_999) }
    }
}
