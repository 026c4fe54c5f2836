import Foundation
import Glibc
import Testing

// The sandbox escape and hostile-code suite. Every case runs `warden-probe` bare first (the control: the
// thing must work on this host, or the case proves nothing and is cancelled, loudly) and then inside
// `warden sandbox exec --profile default` and `--profile strict`, where it must be contained.

let profiles = ["default", "strict"]

/// A case whose arguments are the same bare and inside.
struct EscapeCase: Sendable, CustomTestStringConvertible {
    let name: String
    let args: [String]
    /// The errno the refusal must carry inside, where it tells the mechanism apart (seccomp's EPERM for
    /// TIOCSTI on /dev/null, which bare answers ENOTTY).
    var insideErrno: String? = nil
    /// Text the inside detail must contain (e.g. "SIGSYS").
    var insideDetail: String? = nil

    init(_ name: String, _ args: [String], errno: String? = nil, detail: String? = nil) {
        self.name = name
        self.args = args
        insideErrno = errno
        insideDetail = detail
    }
    var testDescription: String { name }
}

/// Runs `args` bare (must be allowed) and inside both profiles (must be blocked).
func assertContained(_ name: String, bare bareArgs: [String], inside insideArgs: [String]? = nil,
                     options: [String] = [], env: [String: String] = [:], errno: String? = nil, detail: String? = nil,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
    let bare = try Probe.bare(bareArgs, env: env)
    try Probe.requireControl(name, bare, sourceLocation: sourceLocation)
    for profile in profiles {
        let r = try Probe.sandboxed(insideArgs ?? bareArgs, profile: profile, options: options, env: env)
        Log.line(name, profile, r)
        #expect(r.blocked, "\(name) escaped the \(profile) sandbox: \(r)", sourceLocation: sourceLocation)
        if let errno { #expect(r.errno == errno, "\(name) in \(profile): expected \(errno), got \(r)", sourceLocation: sourceLocation) }
        if let detail { #expect(r.detail.contains(detail), "\(name) in \(profile): expected '\(detail)' in \(r)", sourceLocation: sourceLocation) }
    }
}

/// One serialized suite for the whole zoo: the tests block on child processes, and run in parallel on a
/// two-core machine they starve each other past their time limits (and skew the timing checks).
@Suite("sandbox zoo", .serialized)
struct SandboxZoo {}

extension SandboxZoo {
@Suite("sandbox escape suite")
struct EscapeSuiteTests {
    static let syscallCases: [EscapeCase] = [
        EscapeCase("host file /etc/shadow", ["read", "/etc/shadow"]),
        EscapeCase("host dir /root", ["list", "/root"]),
        EscapeCase("write /usr", ["write", "/usr"]),
        EscapeCase("write /", ["write", "/"]),
        EscapeCase("write /etc", ["write", "/etc"]),
        EscapeCase("unshare(CLONE_NEWUSER)", ["unshare-user"]),
        EscapeCase("unshare(CLONE_NEWNS)", ["unshare-mount"]),
        EscapeCase("clone(CLONE_NEWUSER)", ["clone-newuser"], errno: "EPERM"),
        EscapeCase("clone3(CLONE_NEWUSER)", ["clone3-newuser"], errno: "ENOSYS"),
        EscapeCase("setns", ["setns"]),
        EscapeCase("mount tmpfs", ["mount"]),
        EscapeCase("pivot_root", ["pivot_root"], errno: "EPERM"),
        EscapeCase("fsopen (new mount API)", ["fsopen"]),
        EscapeCase("open_tree (new mount API)", ["open_tree"]),
        EscapeCase("io_uring_setup", ["io_uring_setup"]),
        EscapeCase("bpf", ["bpf"]),
        EscapeCase("keyctl", ["keyctl"]),
        EscapeCase("add_key", ["add_key"]),
        EscapeCase("request_key", ["request_key"], errno: "EPERM"),
        EscapeCase("userfaultfd", ["userfaultfd"]),
        EscapeCase("perf_event_open", ["perf_event_open"]),
        EscapeCase("ptrace(PTRACE_ATTACH)", ["ptrace-attach"]),
        EscapeCase("ptrace(PTRACE_TRACEME)", ["ptrace-traceme"]),
        EscapeCase("process_vm_readv", ["process_vm_readv"]),
        EscapeCase("open_by_handle_at", ["open_by_handle_at"]),
        EscapeCase("init_module", ["init_module"], errno: "EPERM"),
        EscapeCase("finit_module", ["finit_module"], errno: "EPERM"),
        EscapeCase("delete_module", ["delete_module"], errno: "EPERM"),
        EscapeCase("kexec_load", ["kexec_load"], errno: "EPERM"),
        EscapeCase("personality(ADDR_NO_RANDOMIZE)", ["personality"], errno: "EPERM"),
        // Bare, the tty layer answers ENOTTY for /dev/null; inside, seccomp's EPERM comes first.
        EscapeCase("ioctl TIOCSTI", ["tiocsti"], errno: "EPERM"),
        EscapeCase("ioctl TIOCSTI | 1<<32", ["tiocsti-high"], errno: "EPERM"),
        EscapeCase("ioctl TIOCLINUX", ["tioclinux"], errno: "EPERM"),
        EscapeCase("int 0x80 (ia32 ABI)", ["int80"], detail: "SIGSYS"),
        EscapeCase("x32 ABI", ["x32"], detail: "SIGSYS"),
        EscapeCase("capabilities and no_new_privs", ["caps"], detail: "CapPrm=0 CapEff=0 CapBnd=0"),
    ]

    @Test("contained", .timeLimit(.minutes(1)), arguments: Controls.proving(syscallCases))
    func contained(_ c: EscapeCase) throws {
        try requireSandbox()
        try assertContained(c.name, bare: c.args, errno: c.insideErrno, detail: c.insideDetail)
    }

    /// A report line, never a pass: always skipped; when it would run, it prints (loudly) the cases this host
    /// refuses bare. The condition is a closure so that runs of other tests do not run the controls.
    @Test("cases refused bare on this host (listed above the skip, if any: not proving anything)",
          .disabled(if: Controls.note(syscallCases + mandatoryCases)))
    func refusedBare() {}

    /// The probe works inside: writing to /tmp (the writable area) is allowed, so "blocked" above is the
    /// sandbox and not a broken probe.
    @Test(.timeLimit(.minutes(1)))
    func writableAreaStillWorks() throws {
        try requireSandbox()
        for profile in profiles {
            let r = try Probe.sandboxed(["write", "/tmp"], profile: profile)
            Log.line("write /tmp (allowed)", profile, r)
            #expect(r.allowed, "\(profile): \(r)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func hostOnlyMarkerIsInvisible() throws {
        try requireSandbox()
        let marker = "/var/tmp/warden-marker-\(Probe.token())"
        try "host only\n".write(toFile: marker, atomically: true, encoding: .utf8)
        chmod(marker, 0o644)
        defer { unlink(marker) }
        try assertContained("host-only marker \(marker)", bare: ["read", marker])
    }

    @Test(.timeLimit(.minutes(1)))
    func pluginDirIsReadOnly() throws {
        try requireSandbox()
        // Bare, the same directory on the host is writable; inside it is /plugin, bound read-only.
        try assertContained("write /plugin", bare: ["write", Probe.dir], inside: ["write", "/plugin"], errno: "EROFS")
    }

    @Test(.timeLimit(.minutes(1)))
    func hostProcessesInvisible() throws {
        try requireSandbox()
        try assertContained("host processes in /proc", bare: ["procs", "\(getpid())"])
    }

    @Test(.timeLimit(.minutes(1)))
    func signalsToHostPidsFail() throws {
        try requireSandbox()
        // A sacrificial host process per run: bare kills it; inside the same pid must not reach it.
        // SIGKILL: Foundation starts children with our blocked signal mask, so SIGTERM might never land.
        func victim() throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sleep")
            p.arguments = ["30"]
            try p.run()
            return p
        }
        let first = try victim()
        let bare = try Probe.bare(["kill", "\(first.processIdentifier)", "9"])
        try Probe.requireControl("kill a host pid", bare)
        first.waitUntilExit()
        #expect(first.terminationReason == .uncaughtSignal, "bare kill did not kill the victim")
        for profile in profiles {
            let v = try victim()
            defer { kill(v.processIdentifier, SIGKILL); v.waitUntilExit() }
            let r = try Probe.sandboxed(["kill", "\(v.processIdentifier)", "9"], profile: profile)
            Log.line("kill a host pid", profile, r)
            #expect(r.blocked, "\(profile): \(r)")
            #expect(v.isRunning, "\(profile): the host process died")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func noLeakedFileDescriptors() throws {
        try requireSandbox()
        // fd 7 is open without CLOEXEC in the process that starts warden (and the bare probe).
        let script = "exec 7</etc/passwd; exec \"$@\""
        let bare = try Probe.bareShell(script, [Probe.path, "fds"])
        try Probe.requireControl("leaked fds", bare)
        #expect(bare.detail.contains("7=/etc/passwd"), "control did not hold fd 7: \(bare)")
        for profile in profiles {
            let r = try Probe.sandboxed(["fds"], profile: profile, via: script)
            Log.line("leaked fds", profile, r)
            #expect(r.blocked, "\(profile): \(r)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func noLeakedEnvironment() throws {
        try requireSandbox()
        let env = ["WARDEN_TEST_SECRET": Probe.token()]
        try assertContained("warden's environment", bare: ["env", "WARDEN_TEST_SECRET"], env: env)
    }

    /// The init (pid 1 inside) is a fork of Warden. Bare, a process reads its parent's environ and memory;
    /// inside, its parent is that init and both must be unreadable.
    @Test(.timeLimit(.minutes(1)), arguments: ["environ", "mem"])
    func initIsUnreadable(_ file: String) throws {
        try requireSandbox()
        let bare = try Probe.bare(["proc1", file])
        try Probe.requireControl("parent's /proc/PID/\(file)", bare)
        for profile in profiles {
            let r = try Probe.sandboxed(["proc1", file], profile: profile)
            Log.line("/proc/1/\(file) of the init", profile, r)
            #expect(r.blocked, "\(profile): \(r)")
            #expect(r.detail.contains("/proc/1/"), "\(profile): the probe's parent is not pid 1: \(r)")
        }
    }

    /// /proc/PID/cmdline is readable whatever the dumpable flag: the init must not show Warden's arguments.
    @Test(.timeLimit(.minutes(1)))
    func initShowsNoWardenArguments() throws {
        try requireSandbox()
        let token = Probe.token()
        let bare = try Probe.bareShell("\"$1\" proc1 cmdline; true", [Probe.path, token])
        Log.line("parent's cmdline", "bare", bare)
        #expect(bare.detail.contains(token), "control: the parent's command line should show \(token): \(bare)")
        for profile in profiles {
            let r = try Probe.sandboxed(["proc1", "cmdline"], profile: profile, options: ["--env", "CANARY=\(token)"])
            Log.line("/proc/1/cmdline of the init", profile, r)
            #expect(r.result != "none", "\(profile): \(r)")
            #expect(!r.stdout.contains(token), "\(profile): Warden's command line leaks through /proc/1/cmdline: \(r)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func sysvIPCIsPrivate() throws {
        try requireSandbox()
        let key = String(format: "0x%08x", UInt32.random(in: 0x5700_0000...0x57ff_ffff))
        let made = try Probe.bare(["shm", key, "make"])
        #expect(made.allowed, "could not create the host segment: \(made)")
        defer { _ = try? Probe.bare(["shm", key, "rm"]) }
        try assertContained("host SysV shm segment", bare: ["shm", key])
    }

    // MARK: network

    /// A host TCP listener on 127.0.0.1 and a host abstract UNIX socket: reachable bare, unreachable inside
    /// with --network none and loopback (the sandbox's loopback is its own).
    @Test(.timeLimit(.minutes(1)), arguments: ["none", "loopback"])
    func hostListenersUnreachable(_ network: String) throws {
        try requireSandbox()
        let tcp = try Listener.tcp()
        defer { close(tcp.fd) }
        let name = "warden-zoo-\(Probe.token())"
        let unix = try Listener.abstractUnix(name)
        defer { close(unix) }
        try assertContained("tcp 127.0.0.1:\(tcp.port) (network \(network))", bare: ["tcp", "127.0.0.1", "\(tcp.port)"],
                            options: ["--network", network])
        try assertContained("abstract unix @\(name) (network \(network))", bare: ["unix-abstract", name],
                            options: ["--network", network])
    }

    // MARK: a real third-party seccomp file

    static let containersProfile = "/usr/share/containers/seccomp.json"
    static let mandatoryCases: [EscapeCase] = [
        EscapeCase("mount", ["mount"]), EscapeCase("unshare", ["unshare-user"]), EscapeCase("clone(NEWUSER)", ["clone-newuser"]),
        EscapeCase("setns", ["setns"]), EscapeCase("personality", ["personality"], errno: "EPERM"),
        EscapeCase("keyctl", ["keyctl"]), EscapeCase("add_key", ["add_key"]), EscapeCase("bpf", ["bpf"]),
        EscapeCase("io_uring_setup", ["io_uring_setup"]), EscapeCase("ptrace", ["ptrace-attach"]),
        EscapeCase("process_vm_readv", ["process_vm_readv"]), EscapeCase("TIOCSTI|1<<32", ["tiocsti-high"], errno: "EPERM"),
        EscapeCase("int 0x80", ["int80"], detail: "SIGSYS"), EscapeCase("clone3", ["clone3-newuser"], errno: "ENOSYS"),
    ]

    /// containers/common allows mount, unshare and personality; Warden's mandatory filter still denies them.
    @Test(.timeLimit(.minutes(1)), arguments: Controls.proving(mandatoryCases))
    func mandatoryDenialsHoldUnderContainersProfile(_ c: EscapeCase) throws {
        try requireSandbox()
        guard FileManager.default.fileExists(atPath: Self.containersProfile) else {
            Issue.record("\(Self.containersProfile) is missing (apt package golang-github-containers-common)")
            return
        }
        try assertContained("\(c.name) with --seccomp containers/common", bare: c.args,
                            options: ["--seccomp", Self.containersProfile], errno: c.insideErrno, detail: c.insideDetail)
    }

    @Test(.timeLimit(.minutes(1)))
    func profileCheckReportsWhatIsNotHonoured() throws {
        try requireSandbox()
        guard FileManager.default.fileExists(atPath: Self.containersProfile) else {
            Issue.record("\(Self.containersProfile) is missing (apt package golang-github-containers-common)")
            return
        }
        let r = try Warden.run(["profile", "check", Self.containersProfile])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("applies only with capabilities CAP_SYS_ADMIN"), "\(r.stdout)")
        #expect(r.stdout.contains("archMap"), "\(r.stdout)")
        let overridden = r.stdout.split(separator: "\n").first { $0.contains("overridden by Warden's mandatory filter") } ?? ""
        for name in ["mount", "unshare", "personality", "keyctl", "ptrace", "pivot_root"] {
            #expect(overridden.contains(name), "\(name) not reported as overridden: \(r.stdout)")
        }
    }

    /// An unknown syscall in a deny rule is an error (65, naming the path); in an allow rule it is skipped.
    @Test(.timeLimit(.minutes(1)))
    func unknownSyscallInDenyRuleIsAnError() throws {
        try requireSandbox()
        let dir = scratchDir(0o755)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let deny = "\(dir)/deny.json", allow = "\(dir)/allow.json"
        try #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount", "no_such_syscall_w"], "action": "SCMP_ACT_ERRNO"}]}"#
            .write(toFile: deny, atomically: true, encoding: .utf8)
        try #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["no_such_syscall_w"], "action": "SCMP_ACT_ALLOW"}]}"#
            .write(toFile: allow, atomically: true, encoding: .utf8)
        for args in [["sandbox", "exec", "--seccomp", deny, "--", "/bin/true"], ["profile", "check", deny]] {
            let r = try Warden.run(args)
            #expect(r.status == 65, "\(args): exit \(r.status), \(r.stderr)")
            #expect(r.stderr.contains(deny) && r.stderr.contains("$.syscalls[0].names"), "\(args): \(r.stderr)")
            #expect(r.stderr.contains("no_such_syscall_w"), "\(args): \(r.stderr)")
        }
        let ok = try Warden.run(["profile", "check", allow])
        #expect(ok.status == 0, "an unknown name in an allow rule must only be noted: \(ok.stderr)")
        #expect(ok.stdout.contains("no_such_syscall_w"), "\(ok.stdout)")
    }
}

}

/// Host-side listeners for the network cases.
enum Listener {
    static func tcp() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &sa) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                bind(fd, sp, len) == 0 && listen(fd, 16) == 0 && getsockname(fd, sp, &len) == 0
            }
        }
        guard ok else { close(fd); throw TestFailure("tcp listener: \(errno)") }
        return (fd, Int(UInt16(bigEndian: sa.sin_port)))
    }

    static func abstractUnix(_ name: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(name.utf8)
        withUnsafeMutableBytes(of: &sa.sun_path) { p in
            p[0] = 0   // the abstract namespace
            for (i, b) in bytes.enumerated() where i + 1 < p.count { p[i + 1] = b }
        }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + 1 + bytes.count)
        let ok = withUnsafePointer(to: &sa) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 16) == 0 }
        }
        guard ok else { close(fd); throw TestFailure("abstract listener: \(errno)") }
        return fd
    }
}
