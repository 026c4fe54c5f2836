import Glibc
import WardenCore
import WardenSandbox
import WardenStore
import WardenSystem

/// The warden binary that plugin-host workers and probes run, and what it needs to start inside a
/// sandbox: its own file, bound read-only at `insidePath` (a fixed path: its host path may lie under a
/// directory the profile covers with a tmpfs, such as /tmp), and the directories of shared libraries it
/// loaded from outside the system directories every profile shows (a debug build's Swift runtime under
/// /opt/swift), bound at the same paths so its absolute RUNPATH still resolves.
public struct HostBinary: Sendable, Hashable {
    public var path: String
    public var libraryDirs: [String]
    public static let insidePath = "/run/warden/warden"

    public init(path: String, libraryDirs: [String] = []) {
        self.path = path
        self.libraryDirs = libraryDirs
    }

    /// This process's executable, or the dynamic build next to it when this one is static (only that one
    /// can dlopen). Call it before any plugin library is loaded in-process, so that only the executable's
    /// own dependencies are listed.
    public static func current() -> HostBinary {
        let exe = SelfExecutable.path ?? "/proc/self/exe"
        if SelfExecutable.isStatic {
            // Its dependencies are system libraries; a missing twin fails each worker's load with the reason.
            return HostBinary(path: SelfExecutable.dynamic ?? exe, libraryDirs: [])
        }
        return HostBinary(path: exe, libraryDirs: libraryDirs(maps: (try? FS.readText("/proc/self/maps")) ?? "", exe: exe))
    }

    static func libraryDirs(maps: String, exe: String) -> [String] {
        var dirs: [String] = []
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = String(line[slash...])
            guard path != exe, path.contains(".so"), !path.hasSuffix(" (deleted)") else { continue }
            if ["/usr/", "/lib/", "/lib64/", "/lib32/"].contains(where: { path.hasPrefix($0) }) { continue }
            let dir = FS.dirname(path)
            if !dirs.contains(dir) { dirs.append(dir) }
        }
        return dirs
    }

    var binds: [BindSpec] {
        [BindSpec(source: path, target: Self.insidePath)] + libraryDirs.map { BindSpec(source: $0, target: $0) }
    }
}

/// The sandbox spec that runs `warden plugin-host ARGS` for `plugin`, in the plugin's profile and cgroup.
func pluginHostSpec(_ plugin: PluginRecord, host: HostBinary, args: [String]) throws(WardenError) -> SandboxSpec {
    var spec = try sandboxSpec(for: plugin, argv: [host.path, "plugin-host"] + args, call: nil)
    if spec.profile.profile.namespaces.contains(.mount) {
        spec.argv[0] = HostBinary.insidePath
        spec.roBinds += host.binds
    }
    // The runtime's crash backtracer would try to exec a helper the sandbox does not have.
    spec.env["SWIFT_BACKTRACE"] = "enable=no"
    return spec
}

/// Where the library is, as the sandboxed process sees it (the plugin dir is /plugin with a mount namespace).
func libraryPathInside(_ plugin: PluginRecord, spec: SandboxSpec) -> String {
    let rel = plugin.manifest.library ?? ""
    return spec.profile.profile.namespaces.contains(.mount) ? "/plugin/\(rel)" : "\(plugin.dir)/\(rel)"
}

// MARK: the executor

/// The dylib kind. `isolated` (the default): a warm pool of `warden plugin-host` workers per plugin version,
/// each in the plugin's sandbox and cgroup, at most `concurrency` of them, talking frames over a socketpair.
/// `in-process` (trusted plugins only): the library is loaded into this process and called directly.
public final class DylibExecutor: ToolExecutor, @unchecked Sendable {
    public let host: HostBinary
    let sandbox: Sandbox
    /// A worker idle for this long is stopped (checked when pools are used).
    public var idleMs: Int64 = 300_000
    /// How long a call that passed its deadline (or was canceled) may take to return before its worker is killed.
    public var graceMs: Int64 = 250
    private var lock = pthread_mutex_t()
    private var pools: [String: WorkerPool] = [:]
    private var loaded: [String: InProcessPlugin] = [:]

    public init(host: HostBinary, sandbox: Sandbox = .shared) {
        self.host = host
        self.sandbox = sandbox
        pthread_mutex_init(&lock, nil)
        DylibExecutor.track(self)
    }

    public func execute(_ call: ToolCall, control: SandboxControl, progress: ProgressHandler?) -> ToolOutcome {
        let p = call.plugin
        guard p.manifest.library != nil else { return .failed("plugin \(p.name) has no library") }
        guard p.tools.contains(where: { $0.name == call.tool }) else {
            return .failed("plugin \(p.name) has no tool \(quoted(call.tool))")
        }
        if p.manifest.hosting == .inProcess && p.trusted {
            return executeInProcess(call, control: control, progress: progress)
        }
        let pool: WorkerPool
        do throws(WardenError) { pool = try self.pool(for: p) } catch {
            return .failed("plugin-host: \(error.description)", retryable: true)
        }
        return pool.run(call, control: control, progress: progress)
    }

    static func key(_ p: PluginRecord) -> String { "\(p.name)@\(p.version)#\(p.digest)" }

    func pool(for p: PluginRecord) throws(WardenError) -> WorkerPool {
        let key = Self.key(p)
        pthread_mutex_lock(&lock)
        if let existing = pools[key] {
            pthread_mutex_unlock(&lock)
            return existing
        }
        pthread_mutex_unlock(&lock)
        // Build the spec outside the lock (it reads the profile from disk).
        let template = try pluginHostSpec(p, host: host, args: [])
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if let existing = pools[key] { return existing }
        // A re-registered version gets a new pool; pools nobody used for a while go.
        let now = Time.monotonicNs()
        for (k, old) in pools where old.idleSince(now) > UInt64(idleMs) * 1_000_000 {
            old.shutdown()
            pools[k] = nil
        }
        let created = WorkerPool(record: p, template: template, host: host, sandbox: sandbox, executor: self)
        pools[key] = created
        return created
    }

    /// Live workers of a plugin version (tests and `bench`).
    public func workerCount(_ p: PluginRecord) -> Int {
        pthread_mutex_lock(&lock)
        let pool = pools[Self.key(p)]
        pthread_mutex_unlock(&lock)
        return pool?.liveCount ?? 0
    }

    public func shutdown() {
        pthread_mutex_lock(&lock)
        let all = Array(pools.values)
        pools = [:]
        pthread_mutex_unlock(&lock)
        for p in all { p.shutdown() }
    }

    // MARK: in-process

    func executeInProcess(_ call: ToolCall, control: SandboxControl, progress: ProgressHandler?) -> ToolOutcome {
        let p = call.plugin
        let key = Self.key(p)
        pthread_mutex_lock(&lock)
        var plugin = loaded[key]
        if plugin == nil {
            // Loading runs constructors and init in this process: only trusted plugins get here.
            do throws(WardenError) {
                let cap = try ProfileLoader.load(profileRef(p)).profile.limits.outputBytes ?? (8 << 20)
                let lib: DylibLibrary
                do throws(DylibError) {
                    lib = try DylibLibrary.open("\(p.dir)/\(p.manifest.library ?? "")")
                    plugin = InProcessPlugin(instance: try lib.instantiate(config: p.manifest.config.canonical, sink: StderrSink()),
                                             cap: Int(cap))
                } catch {
                    throw WardenError(.failure, "\(p.manifest.library ?? "") \(error.message)")
                }
                loaded[key] = plugin
            } catch {
                pthread_mutex_unlock(&lock)
                return .failed("in-process: \(error.description)")
            }
        }
        pthread_mutex_unlock(&lock)
        let instance = plugin!.instance
        let cap = plugin!.cap
        let deadline = Time.monotonicNs() + UInt64(max(0, call.timeoutMs)) * 1_000_000
        let sink = InProcessSink(control: control, deadlineNs: deadline, progress: progress)
        let raw = instance.invoke(tool: call.tool, input: call.input.canonicalBytes, cap: cap, sink: sink)
        var outcome: ToolOutcome
        if control.isCancelled {
            outcome = .failed("canceled")
        } else if Time.monotonicNs() > deadline {
            outcome = .failed("timeout: the tool ran past its \(Quantity.formatDuration(call.timeoutMs)) deadline", retryable: true)
        } else {
            outcome = DylibReply.interpret(raw, cap: cap).outcome(cap: cap)
        }
        outcome.stderr = sink.logs
        return outcome
    }

    func profileRef(_ p: PluginRecord) -> String {
        let prof = p.manifest.sandbox.profile
        return prof.contains("/") ? FS.absolute(prof, base: p.dir) : prof
    }

    // MARK: process exit

    nonisolated(unsafe) private static var live: [DylibExecutor] = []
    nonisolated(unsafe) private static var exitLock = pthread_mutex_t()
    nonisolated(unsafe) private static var hooked = false

    /// Workers die with this process anyway (PR_SET_PDEATHSIG); stopping them at exit also removes their cgroups.
    private static func track(_ e: DylibExecutor) {
        pthread_mutex_lock(&exitLock)
        live.append(e)
        if !hooked {
            hooked = true
            atexit {
                pthread_mutex_lock(&DylibExecutor.exitLock)
                let all = DylibExecutor.live
                DylibExecutor.live = []
                pthread_mutex_unlock(&DylibExecutor.exitLock)
                for e in all { e.shutdown() }
            }
        }
        pthread_mutex_unlock(&exitLock)
    }
}

final class InProcessPlugin: @unchecked Sendable {
    let instance: DylibInstance
    let cap: Int
    init(instance: DylibInstance, cap: Int) {
        self.instance = instance
        self.cap = cap
    }
}

/// Callbacks of an in-process call: straight to the engine's progress handler and the task log.
final class InProcessSink: DylibCallSink {
    let control: SandboxControl
    let deadlineNs: UInt64
    let progressHandler: ProgressHandler?
    var logs: [UInt8] = []

    init(control: SandboxControl, deadlineNs: UInt64, progress: ProgressHandler?) {
        self.control = control
        self.deadlineNs = deadlineNs
        progressHandler = progress
    }

    func log(level: Int32, message: String) {
        guard logs.count < WorkerPool.logCap else { return }
        logs.append(contentsOf: "[\(DylibLog.name(level))] \(message)\n".utf8)
    }

    func progress(_ fraction: Double, _ message: String) { progressHandler?(fraction, message) }

    func cancelled() -> Bool { control.isCancelled || Time.monotonicNs() >= deadlineNs }
}

// MARK: the pool

/// The warm workers of one plugin version: at most `concurrency` of them, each serving one call at a time.
final class WorkerPool: @unchecked Sendable {
    /// What is kept of a call's stderr and log lines for the task log.
    static let logCap = 64 << 10

    let record: PluginRecord
    let template: SandboxSpec
    let host: HostBinary
    let sandbox: Sandbox
    unowned let executor: DylibExecutor
    let limit: Int
    let cap: Int
    private var lock = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var idle: [Worker] = []
    private var live = 0
    private var lastUsed = Time.monotonicNs()
    private var closed = false

    init(record: PluginRecord, template: SandboxSpec, host: HostBinary, sandbox: Sandbox, executor: DylibExecutor) {
        self.record = record
        self.template = template
        self.host = host
        self.sandbox = sandbox
        self.executor = executor
        limit = max(1, record.manifest.concurrency)
        cap = Int(template.profile.profile.limits.outputBytes ?? (8 << 20))
        pthread_mutex_init(&lock, nil)
        initMonotonicCondition(&cond)
    }

    var liveCount: Int {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return live
    }

    func idleSince(_ now: UInt64) -> UInt64 {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return idle.count == live && now > lastUsed ? now - lastUsed : 0
    }

    func run(_ call: ToolCall, control: SandboxControl, progress: ProgressHandler?) -> ToolOutcome {
        let deadline = Time.monotonicNs() + UInt64(max(0, call.timeoutMs)) * 1_000_000
        let worker: Worker
        switch checkout(deadlineNs: deadline) {
        case .success(let w): worker = w
        case .failure(let f): return .failed(f.reason, retryable: true)
        }
        let (outcome, keep) = worker.call(call, control: control, progress: progress, deadlineNs: deadline,
                                          graceNs: UInt64(executor.graceMs) * 1_000_000, cap: cap)
        checkin(worker, keep: keep)
        return outcome
    }

    struct Failure: Error { let reason: String }

    func checkout(deadlineNs: UInt64) -> Result<Worker, Failure> {
        pthread_mutex_lock(&lock)
        while true {
            if closed {
                pthread_mutex_unlock(&lock)
                return .failure(Failure(reason: "plugin-host: the executor is shutting down"))
            }
            if let w = idle.popLast() {
                pthread_mutex_unlock(&lock)
                if w.isHealthy() {
                    return .success(w)
                }
                w.stop()
                pthread_mutex_lock(&lock)
                live -= 1
                continue
            }
            if live < limit {
                live += 1
                pthread_mutex_unlock(&lock)
                let started = Worker.start(self, deadlineNs: deadlineNs)
                if case .failure = started {
                    pthread_mutex_lock(&lock)
                    live -= 1
                    pthread_cond_signal(&cond)
                    pthread_mutex_unlock(&lock)
                }
                return started
            }
            // Every worker is busy: wait for one, until the call's deadline.
            var ts = timespec(tv_sec: Int(deadlineNs / 1_000_000_000), tv_nsec: Int(deadlineNs % 1_000_000_000))
            if pthread_cond_timedwait(&cond, &lock, &ts) == ETIMEDOUT && idle.isEmpty && live >= limit {
                pthread_mutex_unlock(&lock)
                return .failure(Failure(reason: "timeout: all \(limit) workers of \(record.name) stayed busy until the call's deadline"))
            }
        }
    }

    func checkin(_ w: Worker, keep: Bool) {
        if !keep { w.stop() }
        pthread_mutex_lock(&lock)
        lastUsed = Time.monotonicNs()
        if keep && !closed {
            idle.append(w)
        } else {
            live -= 1
            if keep { w.stop() }
        }
        pthread_cond_signal(&cond)
        pthread_mutex_unlock(&lock)
    }

    func shutdown() {
        pthread_mutex_lock(&lock)
        closed = true
        let all = idle
        idle = []
        live -= all.count
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&lock)
        for w in all { w.stop(gracefully: true) }
    }
}

// MARK: one worker

/// One `warden plugin-host` process in the plugin's sandbox, and the host end of its frame channel.
final class Worker {
    let process: Sandbox.Process
    let fd: Int32
    let reader: FrameReader
    private var nextID: Int64 = 1
    private var stopped = false

    init(process: Sandbox.Process, fd: Int32, maxFrame: Int) {
        self.process = process
        self.fd = fd
        reader = FrameReader(fd: fd, maxFrame: maxFrame)
    }

    /// Spawns a worker, sends `init` and waits for `ready` (or the reason it cannot start).
    static func start(_ pool: WorkerPool, deadlineNs: UInt64) -> Result<Worker, WorkerPool.Failure> {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            return .failure(.init(reason: "plugin-host: socketpair: \(Errno.current)"))
        }
        var spec = pool.template
        spec.argv = [spec.argv[0], "plugin-host", "--library", libraryPathInside(pool.record, spec: spec)]
        spec.extraFD = pair[1]
        // A worker lives for many calls: each call is bounded by its own deadline instead of the profile's
        // cumulative CPU-time rlimit, which would eventually kill a healthy warm worker.
        spec.profile.profile.limits.cpuTimeMs = nil
        let process: Sandbox.Process
        do throws(WardenError) { process = try pool.sandbox.start(spec) } catch {
            close(pair[0])
            close(pair[1])
            return .failure(.init(reason: "plugin-host: \(error.description)"))
        }
        close(pair[1])
        for f in [pair[0], process.stdoutFD, process.stderrFD] { _ = fcntl(f, F_SETFL, fcntl(f, F_GETFL) | O_NONBLOCK) }
        // A result carries up to `cap` bytes of output escaped as a JSON string: at worst 6 bytes each (\u00XX).
        let w = Worker(process: process, fd: pair[0], maxFrame: 6 * pool.cap + (1 << 20))
        var initFrame = HostFrame("init")
        initFrame.config = pool.record.manifest.config.canonical
        initFrame.maxOutput = Int64(pool.cap)
        // Startup (exec, dlopen, init) gets at least 10 s, whatever the call's own deadline.
        let startDeadline = max(deadlineNs, Time.monotonicNs() + 10_000_000_000)
        if FrameWriter.send(w.fd, FrameCodec.encode(initFrame), deadlineNs: startDeadline) != nil {
            let why = w.diagnose(during: "while starting")
            w.stop()
            return .failure(.init(reason: why))
        }
        var logs: [UInt8] = []
        while true {
            switch w.awaitFrame(until: { startDeadline }, logs: &logs) {
            case .frame(let f) where f.t == "ready":
                return .success(w)
            case .frame(let f) where f.t == "fatal":
                w.stop()
                return .failure(.init(reason: "plugin-host: the library \(f.message ?? "cannot be used") (\(f.stage ?? "load"))"))
            case .frame(let f) where f.t == "log":
                continue
            case .frame(let f):
                w.stop()
                return .failure(.init(reason: "plugin-host: the worker sent \(quoted(f.t)) before ready; it was killed"))
            case .garbage(let why):
                w.stop()
                return .failure(.init(reason: "plugin-host: the worker wrote \(why) on its channel while starting; it was killed"))
            case .eof:
                let why = w.diagnose(during: "while starting")
                w.stop()
                return .failure(.init(reason: why + (ProcessExecutor.tail(logs))))
            case .timedOut:
                w.stop()
                return .failure(.init(reason: "timeout: the plugin host did not start within the deadline"))
            }
        }
    }

    enum Wait { case frame(HostFrame), garbage(String), eof, timedOut }

    /// The next frame, draining the worker's stdout and stderr into `logs` meanwhile. `tick` runs at least
    /// every 50 ms and may move the deadline (`until` is asked again each time).
    func awaitFrame(until deadlineNs: () -> UInt64, logs: inout [UInt8], tick: () -> Void = {}) -> Wait {
        while true {
            if let e = reader.next() {
                switch e {
                case .frame(let f): return .frame(f)
                case .garbage(let g): return .garbage(g)
                case .eof: return .eof
                }
            }
            tick()
            let now = Time.monotonicNs()
            let deadline = deadlineNs()
            if now >= deadline { return .timedOut }
            let ms = Int32(min(50, (deadline - now) / 1_000_000 + 1))
            var fds = (pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: process.stdoutFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: process.stderrFD, events: Int16(POLLIN), revents: 0))
            let ready = withUnsafeMutableBytes(of: &fds) { poll($0.baseAddress!.assumingMemoryBound(to: pollfd.self), 3, ms) }
            if ready <= 0 { continue }
            if fds.1.revents != 0 { drain(process.stdoutFD, into: &logs) }
            if fds.2.revents != 0 { drain(process.stderrFD, into: &logs) }
            if fds.0.revents != 0 {
                switch reader.fill() {
                case .data, .wouldBlock: continue
                case .eof, .error:
                    if reader.hasBuffered { continue }
                    drain(process.stderrFD, into: &logs)
                    return .eof
                }
            }
        }
    }

    private var scratch = [UInt8](repeating: 0, count: 16384)

    /// Reads what is there (non-blocking); keeps up to the log cap and discards the rest.
    func drain(_ pipe: Int32, into logs: inout [UInt8]) {
        for _ in 0..<64 {
            let n = scratch.withUnsafeMutableBytes { read(pipe, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            let room = max(0, WorkerPool.logCap - logs.count)
            logs.append(contentsOf: scratch[0..<min(n, room)])
        }
    }

    /// An idle worker is healthy when it has not died and has sent nothing it should not have.
    func isHealthy() -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) > 0 else { return !stopped }
        if reader.fill() != .data { return false }
        while let e = reader.next() {
            // Only log lines may arrive between calls (a plugin thread logging); anything else is a fault.
            guard case .frame(let f) = e, f.t == "log" else { return false }
        }
        return true
    }

    /// One call: returns the outcome and whether the worker may serve again.
    func call(_ c: ToolCall, control: SandboxControl, progress: ProgressHandler?, deadlineNs: UInt64, graceNs: UInt64,
              cap: Int) -> (ToolOutcome, Bool)
    {
        let id = nextID
        nextID += 1
        let frame = FrameCodec.encodeCall(id: id, tool: c.tool, input: c.input.canonicalBytes, timeoutMs: c.timeoutMs)
        var logs: [UInt8] = []
        var ended: String?   // "timeout" or "cancel", once decided
        var killAt = UInt64.max

        // After a result the pipes need no extra read: whatever the plugin wrote to them was in the pipe before
        // the result was on the socket, so the poll that saw the result saw it too and drained it.
        func finish(_ o: ToolOutcome, keep: Bool, drainPipes: Bool = true) -> (ToolOutcome, Bool) {
            var o = o
            if drainPipes && !stopped {   // a stopped worker's pipes are closed, their numbers maybe reused
                drain(process.stdoutFD, into: &logs)
                drain(process.stderrFD, into: &logs)
            }
            o.stderr = logs
            return (o, keep)
        }
        func endedOutcome(_ why: String, killed: Bool) -> ToolOutcome {
            let stats = killed ? process.stats() : CgroupStats()
            if stats.pidsLimitHits > 0 {
                return .failed("pids: the plugin hit its process limit; its worker was killed and replaced", retryable: true)
            }
            if why == "cancel" { return .failed("canceled") }
            return .failed("timeout: the tool ran past its \(Quantity.formatDuration(c.timeoutMs)) deadline\(killed ? "; its worker was killed and replaced" : "")",
                           retryable: true)
        }

        if FrameWriter.send(fd, frame, deadlineNs: deadlineNs) != nil {
            let why = diagnose(during: "before the call started")
            stop()
            return finish(.failed(why, retryable: true), keep: false)
        }
        // Past the deadline or canceled: ask the plugin to stop (its `cancelled()` turns true), then kill.
        func tick() {
            guard ended == nil else { return }
            if control.isCancelled {
                ended = "cancel"
            } else if Time.monotonicNs() >= deadlineNs {
                ended = "timeout"
            } else {
                return
            }
            killAt = Time.monotonicNs() + graceNs
            _ = FrameWriter.send(fd, FrameCodec.encode(HostFrame("cancel", id: id)), deadlineNs: killAt)
        }
        while true {
            switch awaitFrame(until: { ended == nil ? deadlineNs : killAt }, logs: &logs, tick: tick) {
            case .frame(let f) where f.id == id && f.t == "log":
                if logs.count < WorkerPool.logCap {
                    logs.append(contentsOf: "[\(DylibLog.name(f.level ?? 1))] \(f.message ?? "")\n".utf8)
                }
            case .frame(let f) where f.id == id && f.t == "progress":
                if let fr = f.fraction, fr.isFinite { progress?(min(1, max(0, fr)), f.message ?? "") }
            case .frame(let f) where f.id == id && f.t == "result":
                if let why = ended { return finish(endedOutcome(why, killed: false), keep: true) }
                return finish(Self.outcome(f, cap: cap), keep: true, drainPipes: false)
            case .frame(let f):
                stop()
                return finish(.failed("plugin-host: the worker sent an unexpected \(quoted(f.t)) frame; it was killed and replaced", retryable: true), keep: false)
            case .garbage(let why):
                stop()
                return finish(.failed("plugin-host: the worker wrote \(why) on its channel; it was killed and replaced", retryable: true), keep: false)
            case .eof:
                let why = diagnose(during: "during the call")
                stop()
                return finish(.failed(why, retryable: true), keep: false)
            case .timedOut:
                tick()
                if Time.monotonicNs() < killAt { continue }
                let o = endedOutcome(ended ?? "timeout", killed: true)
                drain(process.stdoutFD, into: &logs)
                drain(process.stderrFD, into: &logs)
                stop()
                return finish(o, keep: false)
            }
        }
    }

    /// The task outcome of a result frame: interpreted exactly as an in-process call's result.
    static func outcome(_ f: HostFrame, cap: Int) -> ToolOutcome {
        let raw = DylibRawResult(rc: f.rc ?? 1, output: f.problem == "output_limit" ? nil : Array((f.output ?? "").utf8),
                                 length: Int(f.length ?? 0))
        return DylibReply.interpret(raw, cap: cap).outcome(cap: cap)
    }

    /// Why the worker is gone: out of memory, process limit, a signal, or an exit.
    func diagnose(during when: String) -> String {
        let end = process.waitForExit(timeoutMs: 1000)
        let stats = process.stats()
        if stats.oomKills > 0 {
            return "oom: the plugin ran out of memory \(when) and its worker was killed; it will be replaced"
        }
        if stats.pidsLimitHits > 0 {
            return "pids: the plugin hit its process limit \(when); its worker was replaced"
        }
        if let sig = end?.signal {
            return "the plugin crashed \(when) (signal \(sig), \(signalName(sig))); its worker was replaced"
        }
        if let code = end?.exitCode {
            return "the plugin host exited with \(code) \(when); it will be replaced"
        }
        return "the plugin host closed its channel \(when); it was killed and will be replaced"
    }

    /// Kills the sandbox (gracefully: a shutdown frame first, for idle workers being retired).
    func stop(gracefully: Bool = false) {
        guard !stopped else { return }
        stopped = true
        if gracefully {
            _ = FrameWriter.send(fd, FrameCodec.encode(HostFrame("shutdown")), deadlineNs: Time.monotonicNs() + 100_000_000)
            _ = process.waitForExit(timeoutMs: 200)
        }
        process.terminate()
        close(fd)
    }
}

func signalName(_ s: Int32) -> String {
    switch s {
    case SIGSEGV: "SIGSEGV"
    case SIGABRT: "SIGABRT"
    case SIGBUS: "SIGBUS"
    case SIGILL: "SIGILL"
    case SIGFPE: "SIGFPE"
    case SIGKILL: "SIGKILL"
    case SIGTERM: "SIGTERM"
    case SIGSYS: "SIGSYS, a forbidden system call"
    case SIGXCPU: "SIGXCPU"
    case SIGTRAP: "SIGTRAP"
    default: "signal \(s)"
    }
}
