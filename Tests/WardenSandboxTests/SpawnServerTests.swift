import Glibc
import Testing
import WardenCore
@testable import WardenSandbox
import WardenSystem

/// Launches go through this process's spawn server, which clones each helper as *our* child: we wait for it
/// and hold its pidfd as for an exec'd helper. A server that dies takes no running sandbox with it and is
/// replaced on the next launch.
@Suite(.serialized, .enabled(if: geteuid() == 0 || FS.exists("/proc/sys/user/max_user_namespaces"), "needs namespaces"))
struct SpawnServerTests {
    func run(_ argv: [String]) throws -> SandboxReport {
        var spec = SandboxSpec(argv: argv, profile: try ProfileLoader.load("default"))
        spec.wallMs = 10_000
        return Sandbox.shared.run(spec).report
    }

    func parent(of pid: pid_t) -> pid_t? {
        guard let status = try? FS.readText("/proc/\(pid)/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }) else { return nil }
        return pid_t(line.dropFirst(5).trimmed)
    }

    /// Dead and not yet reaped (the server is our child: it stays a zombie until the next launch replaces it).
    func isZombie(_ pid: pid_t) -> Bool { ((try? FS.readText("/proc/\(pid)/stat")) ?? "").contains(") Z ") }

    @Test(.timeLimit(.minutes(1))) func aDeadServerIsReplacedAndTakesNoSandboxWithIt() throws {
        guard Sandbox.helperPath != nil, let server = Sandbox.spawnServer else {
            print("*** SKIPPED aDeadServerIsReplacedAndTakesNoSandboxWithIt: no warden-sandbox helper beside the test binary ***")
            return
        }
        #expect(try run(["/bin/true"]).exitCode == 0)
        let first = try #require(server.serverPID)
        #expect(parent(of: first) != nil)

        var spec = SandboxSpec(argv: ["/bin/sleep", "30"], profile: try ProfileLoader.load("default"))
        spec.wallMs = 30_000
        let long = try Sandbox.shared.start(spec)
        defer { long.terminate() }
        // The helper is ours, not the server's (CLONE_PARENT), so it outlives the server.
        #expect(parent(of: long.pid) == getpid())

        kill(first, SIGKILL)
        for _ in 0..<100 where !isZombie(first) { usleep(10_000) }
        #expect(try run(["/bin/sh", "-c", "exit 3"]).exitCode == 3)
        let second = try #require(server.serverPID)
        #expect(second != first)
        #expect(long.isAlive, "a running sandbox died with the spawn server")
    }
}
