import CWardenLinux
import Glibc
import WardenCore
import WardenSystem

/// What to run and how. Anything left nil comes from the profile.
public struct SandboxSpec: @unchecked Sendable {
    public enum Stdin: Sendable { case none, bytes([UInt8]), fd(Int32) }
    public enum Output: Sendable {
        /// Capture both streams (up to the output cap) into the outcome.
        case capture
        /// Copy both streams to these fds as they arrive (still counted against the cap).
        case stream(stdout: Int32, stderr: Int32)
    }

    public var argv: [String]
    public var env: [String: String] = [:]
    public var profile: ProfileLoader.Loaded
    /// Replaces the profile's OCI filter (`sandbox exec --seccomp FILE`). Mandatory rules still apply.
    public var seccompOverride: ProfileLoader.SeccompFilter?
    public var binds: [BindSpec] = []
    public var roBinds: [BindSpec] = []
    /// Mounted read-only at /plugin, which becomes the working directory.
    public var pluginDir: String?
    public var cwd: String?
    public var cpuMillis: Int64?
    public var memoryBytes: Int64?
    public var pids: Int64?
    public var wallMs: Int64?
    public var network: SandboxProfile.Network?
    public var stdin: Stdin = .none
    public var output: Output = .capture
    /// Becomes fd 3 inside (plugin-host socket, agent socket).
    public var extraFD: Int32 = -1
    /// Called with each complete stderr line (progress reporting); runs on the supervising thread.
    public var onStderrLine: (@Sendable ([UInt8]) -> Void)?

    public init(argv: [String], profile: ProfileLoader.Loaded) {
        self.argv = argv
        self.profile = profile
    }
}

/// The result record of DESIGN §4.
public struct SandboxReport: Sendable, Hashable {
    public var exitCode: Int32?
    public var signal: Int32?
    public var reason: String
    public var syscall: String?
    public var wallMs: Double = 0
    public var cpuMs: Double = 0
    public var maxRSSBytes: Int64 = 0
    public var stdoutBytes: Int64 = 0
    public var stderrBytes: Int64 = 0
    public var truncated = false
    /// For setup_failed: the failing step and errno, e.g. "pivot_root: EPERM (Operation not permitted)".
    public var error: String?
    public var killedBy: String?

    public init(reason: String) { self.reason = reason }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "exit_code": exitCode.map { .int(Int64($0)) } ?? .null, "signal": signal.map { .int(Int64($0)) } ?? .null,
            "reason": .string(reason), "syscall": .optional(syscall), "wall_ms": .double(round1(wallMs)),
            "cpu_ms": .double(round1(cpuMs)), "max_rss_bytes": .int(maxRSSBytes), "stdout_bytes": .int(stdoutBytes),
            "stderr_bytes": .int(stderrBytes), "truncated": .bool(truncated),
        ]
        if let error { o["error"] = .string(error) }
        if let killedBy { o["killed_by"] = .string(killedBy) }
        return .object(o)
    }

    /// The exit status a shell would show: the code, 128+N for signal N, 71 for a setup failure.
    public var shellStatus: Int32 {
        if reason == "setup_failed" { return ExitCode.osError.rawValue }
        if let s = signal { return 128 + s }
        return exitCode ?? 1
    }

    private func round1(_ v: Double) -> Double { (v * 10).rounded() / 10 }
}

public struct SandboxOutcome: Sendable {
    public var report: SandboxReport
    public var stdout: [UInt8] = []
    public var stderr: [UInt8] = []
    /// Set when setup failed: the message the CLI prints (exit 71).
    public var setupError: WardenError?
}

/// Lets another thread stop a running sandbox (cancel) and learn its host pid.
public final class SandboxControl: @unchecked Sendable {
    private var lock = pthread_mutex_t()
    private var cancelFD: Int32 = -1
    private var cancelled = false
    public private(set) var reasonForKill: String?

    public init() {
        pthread_mutex_init(&lock, nil)
    }

    func attach(_ fd: Int32) -> Bool {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        cancelFD = fd
        return cancelled
    }

    func detach() {
        pthread_mutex_lock(&lock)
        cancelFD = -1
        pthread_mutex_unlock(&lock)
    }

    /// Kills everything in the sandbox; the run returns promptly with `killed_by` set to `why`.
    public func cancel(_ why: String = "cancel") {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if cancelled { return }
        cancelled = true
        reasonForKill = why
        if cancelFD >= 0 {
            var one: UInt64 = 1
            _ = write(cancelFD, &one, 8)
        }
    }

    public var isCancelled: Bool {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return cancelled
    }
}

/// The launcher. One per process; thread-safe.
public final class Sandbox: @unchecked Sendable {
    public static let shared = Sandbox()

    /// The `warden-sandbox` helper next to this binary (or `$WARDEN_SANDBOX_HELPER`). Without it, sandboxes
    /// are cloned straight out of this process (slower from a large one, and the init then holds a copy of it).
    public static let helperPath: String? = {
        if let h = FS.env("WARDEN_SANDBOX_HELPER"), FS.isExecutable(h) { return h }
        guard let exe = SelfExecutable.path else { return nil }
        let h = FS.dirname(exe) + "/warden-sandbox"
        if FS.isExecutable(h) { return h }
        let note = "warden: note: no warden-sandbox helper next to \(exe); launching sandboxes in-process\n"
        _ = note.withCString { write(2, $0, strlen($0)) }
        return nil
    }()
    static let debug = FS.env("WARDEN_DEBUG_SPAWN") != nil
    /// `WARDEN_NETNS_POOL=0` turns the pool off (for A/B measurements in Benchmarks/spawn.sh).
    static let poolNetns = FS.env("WARDEN_NETNS_POOL") != "0"

    public let cgroups: CgroupDriver
    /// Made on first use: only long-lived sandboxes need it, and a one-shot command should not pay a thread.
    static let spawnThread = SerialThread(name: "warden-spawn")
    /// Network namespaces made ahead of spawns (see NetnsPool).
    public let netns = NetnsPool()
    /// Clones the helpers, one per process (see SpawnServer); made on first use; nil without a helper.
    /// `WARDEN_SPAWN_SERVER=0` execs a helper per launch instead (for A/B measurements).
    static let spawnServer: SpawnServer? = Sandbox.helperPath.flatMap { FS.env("WARDEN_SPAWN_SERVER") == "0" ? nil : SpawnServer(helper: $0) }
    /// This process runs one sandbox and exits (`sandbox exec`). It then clones the sandbox itself instead of
    /// through the `warden-sandbox` helper (saving the helper's exec and start, about 0.6 ms here), and makes
    /// the network namespace in the clone instead of on a pool thread (for a single spawn the thread costs
    /// more than it hides: 4.75 vs 4.50 ms a command, measured with perf stat). Only for a small process that
    /// holds nothing its payload may not see: the sandbox's init keeps a copy of this process's memory
    /// (non-dumpable and capability-less, its argv and environment strings wiped, but a copy). Set before the
    /// first spawn.
    public var oneShot = false
    private var lock = pthread_mutex_t()
    /// Compiled OCI filters by their source (ProfileLoader.SeccompFilter.source).
    private var programCache: [String: SeccompCompiler.Program] = [:]
    private var mandatory: SeccompCompiler.Program?
    private var counter = 0

    public init(cgroups: CgroupDriver = Cgroups.detect()) {
        self.cgroups = cgroups
        pthread_mutex_init(&lock, nil)
    }

    /// Removes task cgroups left behind by Warden processes that died.
    @discardableResult public func sweep() -> Int { cgroups.sweep() }

    // MARK: run to completion

    /// Runs `spec` to completion: supervises output, limits and the deadline, then reports.
    public func run(_ spec: SandboxSpec, control: SandboxControl? = nil) -> SandboxOutcome {
        let start = Time.monotonicNs()
        var launched: Launched
        do throws(WardenError) {
            launched = try launch(spec)
        } catch {
            var r = SandboxReport(reason: "setup_failed")
            r.error = error.message
            r.wallMs = Double(Time.monotonicNs() - start) / 1e6
            return SandboxOutcome(report: r, setupError: error)
        }
        return supervise(&launched, spec: spec, start: start, control: control)
    }

    // MARK: long-lived processes

    /// A sandboxed process that keeps running (plugin-host worker, MCP server). The caller talks to it over
    /// the pipes / extra fd and must call `terminate()`.
    public final class Process: @unchecked Sendable {
        public let pid: pid_t
        public let stdinFD: Int32
        public let stdoutFD: Int32
        public let stderrFD: Int32
        let pidfd: Int32
        let statusFD: Int32
        let cgroup: TaskCgroup
        private var done = false
        /// terminate() has closed the descriptors: they must never be closed twice, because by then the numbers
        /// may belong to another thread's pipe or database file (found as EBADF in unrelated tests).
        private var released = false
        private var lock = pthread_mutex_t()

        /// Launched through the warden-sandbox helper (`statusFD` carries a warden_helper_final record).
        let viaHelper: Bool

        init(pid: pid_t, pidfd: Int32, statusFD: Int32, viaHelper: Bool, stdin: Int32, stdout: Int32, stderr: Int32, cgroup: TaskCgroup) {
            self.pid = pid
            self.pidfd = pidfd
            self.statusFD = statusFD
            self.viaHelper = viaHelper
            self.stdinFD = stdin
            self.stdoutFD = stdout
            self.stderrFD = stderr
            self.cgroup = cgroup
            pthread_mutex_init(&lock, nil)
        }

        /// True while the sandbox's first process has not exited.
        public var isAlive: Bool {
            var st: Int32 = 0
            pthread_mutex_lock(&lock)
            defer { pthread_mutex_unlock(&lock) }
            if done { return false }
            let r = warden_wait4_nohang(pid, &st, nil, nil, nil)
            if r == pid {
                done = true
                return false
            }
            return r == 0
        }

        public func stats() -> CgroupStats { cgroup.stats() }

        /// How the payload ended (exit code or signal), waiting up to `timeoutMs` for it; nil while it
        /// still runs. Call before `terminate()`. With a pid-namespace init the status comes from the init.
        public func waitForExit(timeoutMs: Int32) -> (exitCode: Int32?, signal: Int32?)? {
            pthread_mutex_lock(&lock)
            defer { pthread_mutex_unlock(&lock) }
            var status: Int32 = 0
            if statusFD >= 0 {
                var p = pollfd(fd: statusFD, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, timeoutMs) > 0 else { return nil }
                if viaHelper {
                    var fin = warden_helper_final()
                    let got = read(statusFD, &fin, MemoryLayout<warden_helper_final>.size)
                    if got != MemoryLayout<warden_helper_final>.size || fin.has_status == 0 { return (nil, SIGKILL) }
                    status = fin.status
                } else {
                    let got = read(statusFD, &status, 4)
                    // No status: the init itself was killed, and the payload with it.
                    if got != 4 { return (nil, SIGKILL) }
                }
            } else {
                let end = Time.monotonicNs() + UInt64(max(0, timeoutMs)) * 1_000_000
                while !done {
                    if warden_wait4_nohang(pid, &status, nil, nil, nil) == pid {
                        done = true
                        break
                    }
                    if Time.monotonicNs() >= end { return nil }
                    usleep(2000)
                }
            }
            if warden_wifexited(status) != 0 { return (warden_wexitstatus(status), nil) }
            if warden_wifsignaled(status) != 0 { return (nil, warden_wtermsig(status)) }
            return (nil, nil)
        }

        /// Kills everything in the sandbox, reaps it and removes its cgroup.
        public func terminate() {
            pthread_mutex_lock(&lock)
            defer { pthread_mutex_unlock(&lock) }
            if released { return }
            released = true
            if !done {
                if pidfd >= 0 { _ = warden_pidfd_send_signal(pidfd, SIGKILL) } else { kill(pid, SIGKILL) }
                cgroup.killAll()
                var st: Int32 = 0
                _ = warden_wait4(pid, &st, nil, nil, nil)
                done = true
            }
            for fd in [stdinFD, stdoutFD, stderrFD, statusFD, pidfd] where fd >= 0 { close(fd) }
            cgroup.destroy()
        }

        deinit { terminate() }
    }

    /// Starts `spec` and returns at once with pipes to its stdin, stdout and stderr.
    public func start(_ spec: SandboxSpec) throws(WardenError) -> Process {
        var s = spec
        s.stdin = .none
        let l = try launch(s, stdinPipe: true)
        return Process(pid: l.pid, pidfd: l.pidfd, statusFD: l.statusFD, viaHelper: l.viaHelper, stdin: l.stdinWrite, stdout: l.stdoutRead,
                       stderr: l.stderrRead, cgroup: l.cgroup)
    }

    // MARK: launch

    struct Launched {
        var pid: pid_t
        var pidfd: Int32
        var statusFD: Int32
        var stdoutRead: Int32
        var stderrRead: Int32
        var stdinWrite: Int32
        var cgroup: TaskCgroup
        var usesInit: Bool
        /// Launched through the warden-sandbox helper: `pid` is the helper's, the status comes as its record.
        var viaHelper: Bool
        var limits: SandboxProfile.Limits
        var executable: String
    }

    func nextCgroupName() -> String {
        pthread_mutex_lock(&lock)
        counter += 1
        let n = counter
        pthread_mutex_unlock(&lock)
        return Cgroups.taskName(n)
    }

    func programs(for spec: SandboxSpec) throws(WardenError) -> [SeccompCompiler.Program] {
        var out: [SeccompCompiler.Program] = []
        if let filter = spec.seccompOverride ?? spec.profile.seccomp {
            pthread_mutex_lock(&lock)
            let cached = programCache[filter.source]
            pthread_mutex_unlock(&lock)
            if let cached { out.append(cached) } else {
                let key = ProgramCache.key("source\u{0}" + filter.source)
                var p: SeccompCompiler.Program
                if let onDisk = ProgramCache.load(key) { p = onDisk } else {
                    do throws(WardenError) {
                        (p, _) = try SeccompCompiler.compile(filter.oci, path: filter.jsonPath)
                    } catch {
                        // A rule libseccomp cannot take (an unknown syscall in a deny rule…) is bad input: name the file.
                        throw error.prefixed(filter.file)
                    }
                    ProgramCache.store(key, p)
                }
                pthread_mutex_lock(&lock)
                programCache[filter.source] = p
                pthread_mutex_unlock(&lock)
                out.append(p)
            }
        }
        let lifted = spec.profile.profile.trusted && spec.profile.builtIn
        if !lifted {
            pthread_mutex_lock(&lock)
            let m = mandatory
            pthread_mutex_unlock(&lock)
            if let m { out.append(m) } else {
                let key = ProgramCache.key("mandatory")
                var p: SeccompCompiler.Program
                if let onDisk = ProgramCache.load(key) { p = onDisk } else {
                    p = try SeccompCompiler.mandatoryProgram()
                    ProgramCache.store(key, p)
                }
                pthread_mutex_lock(&lock)
                mandatory = p
                pthread_mutex_unlock(&lock)
                out.append(p)
            }
        }
        return out
    }

    /// The seccomp programs `spec` runs under, in load order (the profile's filter, then the mandatory one),
    /// as raw `struct sock_filter` arrays: what `bwrap --add-seccomp-fd` takes, for comparisons.
    public func seccompPrograms(for spec: SandboxSpec) throws(WardenError) -> [[UInt8]] {
        try programs(for: spec).map(\.bytes)
    }

    /// The effective limits: the profile's, overridden by the spec.
    static func limits(_ spec: SandboxSpec) -> SandboxProfile.Limits {
        var l = spec.profile.profile.limits
        if let c = spec.cpuMillis { l.cpuMillis = c }
        if let m = spec.memoryBytes { l.memoryBytes = m }
        if let p = spec.pids { l.pids = p }
        if let w = spec.wallMs { l.wallMs = w }
        return l
    }

    /// Whether spawns take their network namespace from the pool (not in a one-shot process: see `oneShot`).
    var poolsNetns: Bool { Sandbox.poolNetns && !oneShot }

    /// Starts making what a spawn of `spec` will need ahead of time (its network namespace) on another core,
    /// while the caller goes on with the rest of its setup. Cheap and idempotent.
    func prepare(_ spec: SandboxSpec) {
        let network = spec.network ?? spec.profile.profile.network
        if network != .host && poolsNetns { netns.prepare(loopback: network == .loopback) }
    }

    /// `stdinPipe`: a long-lived process (`start`) that is talked to over its stdin. Those are cloned from the
    /// spawn thread, which never exits (the parent-death signal follows the creating thread); a sandbox run to
    /// completion (`run`) ends before its caller's thread and is cloned right here, so spawns run in parallel.
    /// (Through the spawn server every helper's parent is the spawn thread anyway, whoever asks.)
    func launch(_ spec: SandboxSpec, stdinPipe: Bool = false) throws(WardenError) -> Launched {
        guard !spec.argv.isEmpty else { throw WardenError(.usage, "nothing to run: the command is empty") }
        let profile = spec.profile.profile
        prepare(spec)
        let limits = Self.limits(spec)

        // Refuse limits the host cannot enforce, unless the profile says they are best effort.
        let cgLimits = CgroupLimits(cpuMillis: limits.cpuMillis, memoryBytes: limits.memoryBytes, pids: limits.pids)
        let missing = cgLimits.requested.subtracting(cgroups.enforceable).subtracting(limits.bestEffort)
        if !missing.isEmpty {
            throw WardenError(.osError, "cannot enforce the \(missing.sorted().joined(separator: ", ")) limit on this host: no usable cgroup \(cgroups.version == .none ? "hierarchy" : "controller") (\(cgroups.version.rawValue))",
                              hint: "mark it \"bestEffort\" in the profile's limits to run without it")
        }
        let enforced = CgroupLimits(
            cpuMillis: cgroups.enforceable.contains("cpu") ? limits.cpuMillis : nil,
            memoryBytes: cgroups.enforceable.contains("memory") ? limits.memoryBytes : nil,
            pids: cgroups.enforceable.contains("pids") ? limits.pids : nil)

        let programs = try programs(for: spec)
        let plan = try MountPlan.build(spec, limits: limits)
        let env = Self.environment(spec)
        let exe = try plan.resolveExecutable(spec.argv[0], cwd: plan.cwd, path: env["PATH"] ?? "/usr/bin:/bin")

        let cgroup = try cgroups.create(name: nextCgroupName(), limits: enforced)
        var ok = false
        defer { if !ok { cgroup.destroy() } }

        // Pipes: parent ends O_CLOEXEC; child ends become 0/1/2 through dup2 (which clears O_CLOEXEC).
        var outP: [Int32] = [-1, -1], errP: [Int32] = [-1, -1], inP: [Int32] = [-1, -1]
        guard warden_pipe_cloexec(&outP) == 0, warden_pipe_cloexec(&errP) == 0 else { throw Errno.current.error("pipe2") }
        var stdinFD: Int32 = -1
        var closeStdin = false
        if stdinPipe {
            guard warden_pipe_cloexec(&inP) == 0 else { throw Errno.current.error("pipe2") }
            stdinFD = inP[0]
            closeStdin = true
        } else {
            switch spec.stdin {
            case .none:
                stdinFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
                closeStdin = true
            case .fd(let fd): stdinFD = fd
            case .bytes(let b):
                stdinFD = warden_memfd("stdin")
                guard stdinFD >= 0 else { throw Errno.current.error("memfd_create") }
                try FS.writeAll(fd: stdinFD, b)
                lseek(stdinFD, 0, SEEK_SET)
                closeStdin = true
            }
        }

        var flags: UInt64 = 0
        let ns = profile.namespaces
        let userNS = ns.contains(.user)
        if userNS { flags |= WARDEN_CLONE_NEWUSER }
        if ns.contains(.pid) { flags |= WARDEN_CLONE_NEWPID }
        if ns.contains(.mount) { flags |= WARDEN_CLONE_NEWNS }
        let network = spec.network ?? profile.network
        if network != .host { flags |= WARDEN_CLONE_NEWNET }
        if ns.contains(.ipc) { flags |= WARDEN_CLONE_NEWIPC }
        if ns.contains(.uts) { flags |= WARDEN_CLONE_NEWUTS }

        let root = geteuid() == 0
        let hostUID = root ? UInt32(65534) : UInt32(geteuid())
        let hostGID = root ? UInt32(65534) : UInt32(getegid())

        var rlimits: [warden_rlimit] = [warden_rlimit(resource: Int32(RLIMIT_CORE.rawValue), soft: 0, hard: 0)]
        if let n = limits.nofile { rlimits.append(warden_rlimit(resource: Int32(RLIMIT_NOFILE.rawValue), soft: UInt64(n), hard: UInt64(n))) }
        if let f = limits.fileSizeBytes { rlimits.append(warden_rlimit(resource: Int32(RLIMIT_FSIZE.rawValue), soft: UInt64(f), hard: UInt64(f))) }
        if let c = limits.cpuTimeMs {
            let secs = UInt64(max(1, (c + 999) / 1000))
            rlimits.append(warden_rlimit(resource: Int32(RLIMIT_CPU.rawValue), soft: secs, hard: secs + 1))
        }

        let arena = CArena()
        defer { arena.free() }
        let (mounts, mountIndex) = plan.cMounts(arena)
        var bpf: [[sock_filter]] = programs.map { p in
            p.bytes.withUnsafeBytes { raw in Array(raw.bindMemory(to: sock_filter.self)) }
        }
        var progs: [sock_fprog] = []
        for i in bpf.indices {
            bpf[i].withUnsafeMutableBufferPointer { buf in
                progs.append(sock_fprog(len: UInt16(buf.count), filter: buf.baseAddress))
            }
        }
        let procsFDs = cgroup.procsFDs
        let selfFDs = cgroup.selfAttachFDs
        let usesInit = ns.contains(.pid)
        var result = warden_spawn_result()

        var cspec = warden_spawn_spec()
        cspec.path = arena.cString(exe)
        cspec.argv = arena.cArray(spec.argv)
        cspec.envp = arena.cArray(env.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" })
        cspec.cwd = arena.cString(plan.cwd)
        cspec.clone_flags = flags
        cspec.new_cgroup_ns = ns.contains(.cgroup) ? 1 : 0
        cspec.cgroup_dir_fd = cgroup.dirFD
        cspec.uid_map = userNS ? arena.cString("\(profile.uid) \(hostUID) 1\n") : nil
        cspec.gid_map = userNS ? arena.cString("\(profile.gid) \(hostGID) 1\n") : nil
        cspec.deny_setgroups = userNS && !root ? 1 : 0
        cspec.uid = profile.uid
        cspec.gid = profile.gid
        cspec.set_ids = (userNS || root) ? 1 : 0
        cspec.root_dir = ns.contains(.mount) ? arena.cString(plan.skeleton) : nil
        cspec.root_read_only = 1
        cspec.hostname = ns.contains(.uts) ? arena.cString(profile.hostname) : nil
        cspec.loopback_up = network == .loopback ? 1 : 0
        cspec.netns_fd = -1
        if network != .host && poolsNetns, let fd = netns.take(loopback: network == .loopback) {
            cspec.netns_fd = fd   // made with `lo` in the state this sandbox wants
            cspec.loopback_up = 0
        }
        defer { if cspec.netns_fd >= 0 { close(cspec.netns_fd) } }
        cspec.no_new_privs = 1
        cspec.drop_caps = 1
        cspec.stdin_fd = stdinFD
        cspec.stdout_fd = outP[1]
        cspec.stderr_fd = errP[1]
        cspec.extra_fd = spec.extraFD
        cspec.use_init = usesInit ? 1 : 0
        let scrub = Self.argvEnvRanges
        cspec.scrub_arg_start = scrub.0
        cspec.scrub_arg_end = scrub.1
        cspec.scrub_env_start = scrub.2
        cspec.scrub_env_end = scrub.3
        cspec.die_with_parent = 1

        // Through the helper (spawn server, else exec'd) unless this one-shot process clones it itself.
        let helper = oneShot ? nil : Sandbox.helperPath
        let rc: Int32 = mounts.withUnsafeBufferPointer { mb in
            rlimits.withUnsafeBufferPointer { rb in
                progs.withUnsafeBufferPointer { pb in
                    procsFDs.withUnsafeBufferPointer { fb in selfFDs.withUnsafeBufferPointer { sb in
                        cspec.mounts = mb.baseAddress
                        cspec.n_mounts = Int32(mb.count)
                        cspec.rlimits = rb.baseAddress
                        cspec.n_rlimits = Int32(rb.count)
                        cspec.filters = pb.baseAddress
                        cspec.n_filters = Int32(pb.count)
                        cspec.cgroup_procs_fds = fb.baseAddress
                        cspec.n_cgroup_procs_fds = Int32(fb.count)
                        cspec.cgroup_self_fds = sb.baseAddress
                        cspec.n_cgroup_self_fds = Int32(sb.count)
                        // The parent-death signal fires when the *thread* that cloned the child exits (see
                        // launch's comment for which thread that is).
                        let specCopy = cspec
                        nonisolated(unsafe) var res = warden_spawn_result()
                        let queued = Time.monotonicNs()
                        let server = helper == nil ? nil : Sandbox.spawnServer
                        let spawn = { () -> Int32 in
                            var s = specCopy
                            let t0 = Time.monotonicNs()
                            let r = helper.map { h in server?.spawn(&s, &res) ?? warden_spawn_helper(h, &s, &res) }
                                ?? warden_spawn(&s, &res)
                            if Sandbox.debug {
                                let msg = "warden-debug: spawn waited \((t0 - queued) / 1000) us, clone-to-exec \((Time.monotonicNs() - t0) / 1000) us\n"
                                _ = msg.withCString { write(2, $0, strlen($0)) }
                            }
                            return r
                        }
                        let r = (!stdinPipe || warden_is_main_thread() == 1) ? spawn() : Sandbox.spawnThread.run(spawn)
                        result = res
                        return r
                    } }
                }
            }
        }
        close(outP[1])
        close(errP[1])
        if closeStdin { close(stdinFD) }
        if rc != 0 {
            close(outP[0])
            close(errP[0])
            if stdinPipe { close(inP[1]) }
            throw Self.setupError(result.error, plan: plan, mountIndex: mountIndex, exe: exe)
        }
        ok = true
        return Launched(pid: result.pid, pidfd: result.pidfd, statusFD: result.status_fd, stdoutRead: outP[0],
                        stderrRead: errP[0], stdinWrite: stdinPipe ? inP[1] : -1, cgroup: cgroup, usesInit: usesInit,
                        viaHelper: helper != nil, limits: limits, executable: exe)
    }

    static func setupError(_ e: warden_child_error, plan: MountPlan, mountIndex: [Int], exe: String) -> WardenError {
        let step = String(cString: warden_step_name(e.step))
        let errno = Errno(e.err)
        var what = step
        if e.index >= 0, e.index < mountIndex.count, ["bind_mount", "remount_readonly", "mount_tmpfs", "mount_proc"].contains(step) {
            let m = plan.entries[mountIndex[Int(e.index)]]
            what += " \(m.source.map { "\($0) → " } ?? "")\(m.target)"
        }
        if step == "execve" { what += " \(exe)" }
        var hint: String?
        switch (step, e.err) {
        case ("clone", EPERM), ("clone", ENOSPC), ("clone", EUSERS):
            hint = "user namespaces may be disabled: check /proc/sys/user/max_user_namespaces and kernel.unprivileged_userns_clone"
        case ("uid_map", _), ("gid_map", _): hint = "the uid/gid map was refused; run as root or map only your own id"
        case ("pivot_root", EPERM), ("mount_private", EPERM), ("mount_root", EPERM):
            hint = "mounting needs CAP_SYS_ADMIN in the sandbox's user namespace; is the user namespace enabled?"
        case ("mount_proc", EPERM): hint = "procfs can only be mounted in a new pid namespace with /proc fully visible"
        case ("execve", ENOENT): hint = "the command does not exist inside the sandbox; bind its directory with --ro-bind"
        case ("execve", EACCES): hint = "the command is not executable by the sandbox user (uid 65534)"
        case ("cgroup_attach", _): hint = "the cgroup could not take the process; check the cgroup hierarchy"
        case ("seccomp", EINVAL): hint = "the kernel rejected the seccomp program"
        default: hint = nil
        }
        return WardenError(.osError, "sandbox setup failed at \(what): \(errno)", hint: hint)
    }

    /// Where this process's argv and environment strings live (what /proc/self/stat fields 48-51 say), for
    /// the init to wipe its copy of them; zeros when unknown. At exec the kernel puts the argv and envp
    /// arrays on the stack, then the argv strings, the environment strings and the executable's name
    /// (AT_EXECFN) one after the other, and setenv replaces `environ`, never that envp array: so when
    /// CommandLine's argv is that array (on the stack just below AT_EXECFN) the ranges are read from there and
    /// checked for that shape; otherwise from /proc/self/stat (which the kernel formats field by field: 50 µs).
    static let argvEnvRanges: (UInt, UInt, UInt, UInt) = {
        let argc = Int(CommandLine.argc), argv = CommandLine.unsafeArgv
        let execfn = UInt(warden_execfn()), base = UInt(bitPattern: argv)
        if argc > 0, execfn > base, execfn - base < 1 << 20,
           let first = argv[0], let lastArg = argv[argc - 1], argv[argc] == nil {
            let envp = argv + argc + 1
            var n = 0
            while envp[n] != nil { n += 1 }
            let argStart = UInt(bitPattern: first), argEnd = UInt(bitPattern: lastArg) + UInt(strlen(lastArg)) + 1
            if n == 0 {
                if base < argStart && argStart < argEnd && argEnd == execfn { return (argStart, argEnd, 0, 0) }
            } else {
                let envStart = UInt(bitPattern: envp[0]!), lastEnv = envp[n - 1]!
                let envEnd = UInt(bitPattern: lastEnv) + UInt(strlen(lastEnv)) + 1
                if base < argStart && argStart < argEnd && argEnd == envStart && envStart < envEnd && envEnd == execfn {
                    return (argStart, argEnd, envStart, envEnd)
                }
            }
        }
        guard let stat = try? FS.readText("/proc/self/stat"), let close = stat.lastIndex(of: ")") else { return (0, 0, 0, 0) }
        // Fields after the command name start at field 3; arg_start is field 48.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count >= 50 else { return (0, 0, 0, 0) }
        let v = fields[45...48].map { UInt($0) ?? 0 }
        return (v[0], v[1], v[2], v[3])
    }()

    /// The sandbox's environment: only the profile's kept and set variables, then the spec's. Kept variables
    /// are read one by one: no copy of the rest of the environment is made (see `oneShot`).
    static func environment(_ spec: SandboxSpec) -> [String: String] {
        var env: [String: String] = [:]
        for k in spec.profile.profile.envKeep { if let v = FS.env(k) { env[k] = v } }
        for (k, v) in spec.profile.profile.envSet { env[k] = v }
        for (k, v) in spec.env { env[k] = v }
        if env["PATH"] == nil { env["PATH"] = "/usr/bin:/bin" }
        return env
    }

    // MARK: supervise

    func supervise(_ l: inout Launched, spec: SandboxSpec, start: UInt64, control: SandboxControl?) -> SandboxOutcome {
        var report = SandboxReport(reason: "exited")
        let cap = Int(l.limits.outputBytes ?? Int64(Int.max / 2))
        var out: [UInt8] = [], err: [UInt8] = []
        var outCount = 0, errCount = 0
        var lineBuf: [UInt8] = []
        var killedFor: String?
        let deadline: UInt64? = l.limits.wallMs.map { start + UInt64($0) * 1_000_000 }
        let cancelFD = warden_eventfd()
        if let control, control.attach(cancelFD) { killedFor = control.reasonForKill ?? "cancel" }
        defer {
            control?.detach()
            close(cancelFD)
        }
        var stdoutOpen = true, stderrOpen = true, exited = false
        // Not zeroed: read() fills what it returns, and a short-lived sandbox never touches most of it.
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
        defer { buf.deallocate() }

        func killAll() {
            if l.pidfd >= 0 { _ = warden_pidfd_send_signal(l.pidfd, SIGKILL) } else { kill(l.pid, SIGKILL) }
            l.cgroup.killAll()
        }
        if killedFor != nil { killAll() }

        func consume(_ fd: Int32, isOut: Bool) -> Bool {
            let n = read(fd, buf.baseAddress, buf.count)
            if n < 0 { return errno == EINTR || errno == EAGAIN }
            if n == 0 { return false }
            let chunk = UnsafeRawBufferPointer(rebasing: buf[0..<n])
            let count = isOut ? outCount : errCount
            let room = max(0, cap - count)
            let keep = chunk.prefix(room)
            switch spec.output {
            case .capture:
                if isOut { out.append(contentsOf: keep) } else { err.append(contentsOf: keep) }
            case .stream(let so, let se):
                _ = try? FS.writeAll(fd: isOut ? so : se, Array(keep))
            }
            if !isOut, let cb = spec.onStderrLine {
                for b in keep {
                    if b == 10 { cb(lineBuf); lineBuf.removeAll(keepingCapacity: true) } else if lineBuf.count < 4096 { lineBuf.append(b) }
                }
            }
            if isOut { outCount += n } else { errCount += n }
            if count + n > cap && killedFor == nil {
                killedFor = "output_limit"
                report.truncated = true
                killAll()
            }
            return true
        }

        var drainDeadline: UInt64?
        while stdoutOpen || stderrOpen || !exited {
            var fds: [pollfd] = []
            if stdoutOpen { fds.append(pollfd(fd: l.stdoutRead, events: Int16(POLLIN), revents: 0)) }
            if stderrOpen { fds.append(pollfd(fd: l.stderrRead, events: Int16(POLLIN), revents: 0)) }
            if !exited && l.pidfd >= 0 { fds.append(pollfd(fd: l.pidfd, events: Int16(POLLIN), revents: 0)) }
            fds.append(pollfd(fd: cancelFD, events: Int16(POLLIN), revents: 0))
            var timeout: Int32 = exited ? 100 : (l.pidfd >= 0 ? -1 : 50)
            let now = Time.monotonicNs()
            if let d = deadline, !exited, killedFor == nil {
                if now >= d {
                    killedFor = "timeout"
                    killAll()
                    continue
                }
                let ms = Int32(min(UInt64(Int32.max), (d - now) / 1_000_000 + 1))
                timeout = timeout < 0 ? ms : min(timeout, ms)
            }
            if exited {
                if drainDeadline == nil { drainDeadline = now + 2_000_000_000 }
                if now > drainDeadline! {
                    // Something outside a pid namespace still holds the pipes: stop it, stop reading.
                    l.cgroup.killAll()
                    break
                }
            }
            let n = poll(&fds, nfds_t(fds.count), timeout)
            if n < 0 && errno != EINTR { break }
            for f in fds where f.revents != 0 {
                if f.fd == l.stdoutRead { stdoutOpen = consume(f.fd, isOut: true) }
                else if f.fd == l.stderrRead { stderrOpen = consume(f.fd, isOut: false) }
                else if f.fd == cancelFD {
                    var v: UInt64 = 0
                    _ = read(cancelFD, &v, 8)
                    if killedFor == nil { killedFor = control?.reasonForKill ?? "cancel" }
                    killAll()
                }
                else if f.fd == l.pidfd { exited = true }
            }
            if l.pidfd < 0 && !exited {
                var st: Int32 = 0
                // Without a pidfd we learn of the exit by polling; the status is collected below.
                if warden_wait4_nohang(l.pid, &st, nil, nil, nil) == l.pid {
                    exited = true
                    l.pidfd = -2
                    report.exitCode = st
                }
            }
        }
        if !lineBuf.isEmpty { spec.onStderrLine?(lineBuf) }

        // Reap the first process (the init) and learn the payload's status.
        var status: Int32 = 0
        var ut = 0, stime = 0, rss = 0
        if l.pidfd == -2 {
            status = report.exitCode ?? 0
        } else {
            _ = warden_wait4(l.pid, &status, &ut, &stime, &rss)
        }
        if l.viaHelper {
            // The helper waited for the sandbox and wrote what it saw; nothing when it was killed with it.
            var fin = warden_helper_final()
            let got = l.statusFD >= 0 ? read(l.statusFD, &fin, MemoryLayout<warden_helper_final>.size) : -1
            if got == MemoryLayout<warden_helper_final>.size {
                status = fin.has_status != 0 ? fin.status : Int32(SIGKILL)
                ut = Int(fin.utime_us)
                stime = Int(fin.stime_us)
                rss = Int(fin.maxrss_kb)
            } else {
                status = Int32(SIGKILL)
            }
        } else if l.usesInit && l.statusFD >= 0 {
            var payload: Int32 = 0
            let got = read(l.statusFD, &payload, 4)
            // No status: the init itself was killed (timeout, cancel, cgroup OOM of the init) — so was the payload.
            status = got == 4 ? payload : Int32(SIGKILL)
        }
        let stats = l.cgroup.stats()
        l.cgroup.destroy()
        for fd in [l.stdoutRead, l.stderrRead, l.statusFD, l.pidfd] where fd >= 0 { close(fd) }

        report.wallMs = Double(Time.monotonicNs() - start) / 1e6
        let rusageCPU = Double(ut + stime) / 1000
        report.cpuMs = max(rusageCPU, Double(stats.cpuUsageNs ?? 0) / 1e6)
        report.maxRSSBytes = stats.memoryPeakBytes ?? Int64(rss) * 1024
        report.stdoutBytes = Int64(min(outCount, cap))
        report.stderrBytes = Int64(min(errCount, cap))
        report.exitCode = nil
        if warden_wifexited(status) != 0 {
            report.exitCode = warden_wexitstatus(status)
        } else if warden_wifsignaled(status) != 0 {
            report.signal = warden_wtermsig(status)
        } else {
            report.signal = status   // raw signal number written by a killed init path
        }
        let failed = report.signal != nil || (report.exitCode ?? 0) != 0
        if let k = killedFor {
            switch k {
            case "timeout": report.reason = "timeout"
            case "output_limit": report.reason = "output_limit"
            default:
                report.reason = report.signal != nil ? "signaled" : "exited"
                report.killedBy = k
            }
        } else if stats.oomKills > 0 && failed {
            report.reason = "oom"
        } else if report.signal == SIGSYS {
            report.reason = "seccomp"
            report.syscall = KernelLog.lastSeccompKill(since: start, executable: l.executable)
        } else if report.signal == SIGXCPU || (report.signal == SIGKILL && l.limits.cpuTimeMs.map { report.cpuMs >= Double($0) } == true) {
            report.reason = "cpu_time"
        } else if stats.pidsLimitHits > 0 && failed {
            report.reason = "pids"
        } else {
            report.reason = report.signal != nil ? "signaled" : "exited"
        }
        return SandboxOutcome(report: report, stdout: out, stderr: err)
    }
}

/// Keeps C strings and arrays alive for one warden_spawn call.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []
    private var arrays: [UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>] = []

    func cString(_ s: String) -> UnsafePointer<CChar> {
        let p = strdup(s)!
        blocks.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }

    func cArray(_ items: [String]) -> UnsafePointer<UnsafeMutablePointer<CChar>?> {
        let arr = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: items.count + 1)
        for (i, s) in items.enumerated() {
            let p = strdup(s)!
            blocks.append(UnsafeMutableRawPointer(p))
            arr[i] = p
        }
        arr[items.count] = nil
        arrays.append(arr)
        return UnsafePointer(arr)
    }

    func free() {
        for b in blocks { Glibc.free(b) }
        for a in arrays { a.deallocate() }
        blocks = []
        arrays = []
    }
}

