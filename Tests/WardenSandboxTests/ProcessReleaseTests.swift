import Glibc
import Testing
import WardenCore
import WardenSandbox
import WardenSystem

/// A long-lived sandboxed process (plugin-host worker, MCP server) is terminated explicitly and again when it
/// is released. The second time must not close its descriptor numbers again: by then they belong to someone
/// else (another thread's pipe, the store's database file).
@Suite(.enabled(if: geteuid() == 0 || FS.exists("/proc/sys/user/max_user_namespaces"), "needs namespaces"))
struct ProcessReleaseTests {
    @Test(.timeLimit(.minutes(1))) func terminatingTwiceClosesNothingTwice() throws {
        var spec = SandboxSpec(argv: ["/bin/sleep", "30"], profile: try ProfileLoader.load("default"))
        spec.wallMs = 30_000
        let p = try Sandbox.shared.start(spec)
        let numbers = [p.stdinFD, p.stdoutFD, p.stderrFD].filter { $0 >= 0 }
        #expect(!numbers.isEmpty)
        p.terminate()
        // Take the freed numbers back (open returns the lowest free one), as another thread would.
        var mine: [Int32] = []
        for _ in 0..<64 {
            let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
            mine.append(fd)
            if Set(numbers).isSubset(of: Set(mine)) { break }
        }
        defer { for fd in mine { close(fd) } }
        p.terminate()   // what deinit does after an explicit terminate
        for fd in mine { #expect(fcntl(fd, F_GETFD) >= 0, "fd \(fd) was closed by the second terminate") }
    }
}
