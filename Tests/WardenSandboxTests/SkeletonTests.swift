import Foundation
import Glibc
import Testing
@testable import WardenSandbox

/// The skeleton directory becomes the sandbox's root; one that someone else can write is refused.
@Suite(.timeLimit(.minutes(1))) struct SkeletonTests {
    func dir(_ mode: mode_t) throws -> String {
        let d = NSTemporaryDirectory() + "warden-skel-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: false)
        chmod(d, mode)
        return d
    }

    @Test func ownPrivateDirectoryIsAccepted() throws {
        let d = try dir(0o755)
        defer { rmdir(d) }
        try Skeleton.checkPrivate(d)
    }

    @Test func writableByOthersIsRefused() throws {
        let d = try dir(0o777)
        defer { rmdir(d) }
        #expect(throws: (any Error).self) { try Skeleton.checkPrivate(d) }
    }

    @Test(.enabled(if: geteuid() == 0, "chown to another uid needs root (CI runs as root)"))
    func someoneElsesDirectoryIsRefused() throws {
        let d = try dir(0o755)
        defer { rmdir(d) }
        chown(d, 65534, 65534)   // what another local user's pre-made /tmp/warden-UID looks like
        #expect(throws: (any Error).self) { try Skeleton.checkPrivate(d) }
    }

    @Test func symlinkIsRefused() throws {
        let d = try dir(0o755)
        defer { rmdir(d) }
        let link = d + ".link"
        symlink(d, link)
        defer { unlink(link) }
        #expect(throws: (any Error).self) { try Skeleton.checkPrivate(link) }
    }
}
