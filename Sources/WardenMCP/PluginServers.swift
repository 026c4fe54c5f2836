import Glibc
import WardenCore
import WardenPlugins
import WardenSandbox
import WardenStore
import WardenSystem

/// The mcp plugin kind (DESIGN §3): one long-lived MCP stdio server per plugin version, started in the
/// plugin's sandbox (`mcp.command`, cwd /plugin) the first time a call needs it and shared by every call
/// after that; Warden is its client. Calls are multiplexed over the one connection. When the server dies,
/// the calls in flight fail as retryable and the next call starts a new server, after a backoff that grows
/// with each consecutive failure (100 ms, 200 ms, … up to 30 s) and resets once a call succeeds.
public final class MCPPluginExecutor: ToolExecutor, @unchecked Sendable {
    /// How long starting a server (spawn + initialize) may take.
    public static let startTimeoutMs: Int64 = 20_000
    public static let maxBackoffMs: Int64 = 30_000

    let sandbox: Sandbox
    private var lock = pthread_mutex_t()
    private var slots: [String: Slot] = [:]

    public init(sandbox: Sandbox = .shared) {
        self.sandbox = sandbox
        pthread_mutex_init(&lock, nil)
    }

    /// One plugin version's server: at most one running at a time.
    final class Slot: @unchecked Sendable {
        let key: String
        var lock = pthread_mutex_t()
        var server: PluginServer?
        var failures = 0
        var notBefore: UInt64 = 0
        var lastFailure: String?

        init(key: String) {
            self.key = key
            pthread_mutex_init(&lock, nil)
        }

        static func backoffMs(failures: Int) -> Int64 {
            guard failures > 0 else { return 0 }
            return min(MCPPluginExecutor.maxBackoffMs, 100 << Int64(min(failures - 1, 20)))
        }
    }

    func slot(for plugin: PluginRecord) -> Slot {
        let key = "\(plugin.name)@\(plugin.version)"
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if let s = slots[key] { return s }
        let s = Slot(key: key)
        slots[key] = s
        return s
    }

    /// The running server of `plugin`, started (after any backoff) when there is none. Waits at most until
    /// `deadline` and gives up when `cancelled` turns true.
    func server(for plugin: PluginRecord, deadline: UInt64, cancelled: () -> Bool) -> Result<PluginServer, WardenError> {
        let s = slot(for: plugin)
        pthread_mutex_lock(&s.lock)
        defer { pthread_mutex_unlock(&s.lock) }
        if let srv = s.server {
            if srv.alive && srv.digest == plugin.digest { return .success(srv) }
            // Dead, or the plugin was re-registered with other files: replace it.
            s.server = nil
            srv.stop()
        }
        while Time.monotonicNs() < s.notBefore {
            if cancelled() { return .failure(WardenError(.failure, "canceled")) }
            if Time.monotonicNs() >= deadline {
                return .failure(WardenError(.tempFail, "the MCP server of \(plugin.name) is restarting after \(s.failures) failure(s)\(s.lastFailure.map { " (last: \($0))" } ?? ""); it was not back before the call's deadline"))
            }
            usleep(10_000)
        }
        // The server outlives this call: its start gets the full start-up allowance even when the call's own
        // deadline is shorter (that call then times out, and the next one finds the server warm).
        switch PluginServer.start(plugin, sandbox: sandbox, timeoutMs: Self.startTimeoutMs) {
        case .success(let srv):
            srv.onExit = { [weak s, weak srv] why in
                guard let s, let srv else { return }
                Self.noteFailure(s, srv, why)
            }
            s.server = srv
            return .success(srv)
        case .failure(let e):
            s.failures += 1
            s.lastFailure = e.message
            s.notBefore = Time.monotonicNs() + UInt64(Slot.backoffMs(failures: s.failures)) * 1_000_000
            return .failure(e)
        }
    }

    /// A server died: count it and hold the next start back.
    static func noteFailure(_ s: Slot, _ srv: PluginServer, _ why: String) {
        pthread_mutex_lock(&s.lock)
        defer { pthread_mutex_unlock(&s.lock) }
        guard !srv.stopping else { return }
        s.failures += 1
        s.lastFailure = why
        s.notBefore = Time.monotonicNs() + UInt64(Slot.backoffMs(failures: s.failures)) * 1_000_000
    }

    func succeeded(_ plugin: PluginRecord) {
        let s = slot(for: plugin)
        pthread_mutex_lock(&s.lock)
        s.failures = 0
        s.lastFailure = nil
        pthread_mutex_unlock(&s.lock)
    }

    // MARK: ToolExecutor

    public func execute(_ call: ToolCall, control: SandboxControl, progress: ProgressHandler?) -> ToolOutcome {
        let started = Time.monotonicNs()
        let deadline = started + UInt64(max(1, call.timeoutMs)) * 1_000_000
        let srv: PluginServer
        switch server(for: call.plugin, deadline: deadline, cancelled: { control.isCancelled }) {
        case .success(let s): srv = s
        case .failure(let e):
            if control.isCancelled { return .failed("killed (\(control.reasonForKill ?? "cancel"))") }
            // A server that cannot start may start next time (a crash loop is bounded by the retry policy).
            return .failed("MCP server of \(call.plugin.name) unavailable: \(e.message)", retryable: true)
        }
        var relay: MCPClient.Progress?
        if let progress {
            relay = { value, total, message in progress(Self.fraction(value, total), message ?? "") }
        }
        let left = Int64((deadline - min(deadline, Time.monotonicNs())) / 1_000_000)
        if left <= 0 {
            return .failed("timeout: the MCP server of \(call.plugin.name) took longer than the call's \(Quantity.formatDuration(call.timeoutMs)) to start")
        }
        let result = srv.client.callTool(call.tool, arguments: call.input, timeoutMs: left, progress: relay,
                                         isCancelled: { control.isCancelled })
        var outcome: ToolOutcome
        switch result {
        case .success(let r):
            succeeded(call.plugin)
            outcome = Self.interpret(r)
        case .failure(.cancelled):
            outcome = .failed("killed (\(control.reasonForKill ?? "cancel"))")
        case .failure(.timeout):
            outcome = .failed("timeout: the MCP server did not answer within \(Quantity.formatDuration(call.timeoutMs)); the call was canceled on the server")
        case .failure(.closed(let why)):
            outcome = .failed("the MCP server of \(call.plugin.name) died during the call: \(why)", retryable: true)
        case .failure(.rpc(let e)):
            outcome = .failed("the MCP server answered error \(e.code): \(e.message)")
        case .failure(.protocolViolation(let why)):
            outcome = .failed("the MCP server broke the protocol: \(why)")
        }
        outcome.stderr = srv.stderrTail()
        return outcome
    }

    /// A CallToolResult as a task outcome: `isError` fails the task with the text the server gave.
    static func interpret(_ r: JSONValue) -> ToolOutcome {
        let content = r["content"]?.arrayValue ?? []
        if r["isError"]?.boolValue == true {
            let text = content.compactMap { $0["text"]?.stringValue }.joined(separator: "\n")
            return .failed("the tool reported an error: \(text.isEmpty ? "(no message)" : String(text.prefix(2000)))")
        }
        var o: [String: JSONValue] = ["content": .array(content)]
        if let s = r["structuredContent"] { o["structuredContent"] = s }
        return ToolOutcome(status: .succeeded(.object(o)))
    }

    /// MCP progress (a count, maybe with a total) as the fraction Warden reports. Without a total the
    /// fraction still grows with the count: 1 − 1/(1+progress).
    static func fraction(_ progress: Double, _ total: Double?) -> Double {
        guard progress.isFinite else { return 0 }
        if let total, total > 0 { return min(1, max(0, progress / total)) }
        return progress <= 0 ? 0 : 1 - 1 / (1 + progress)
    }

    public func shutdown() {
        pthread_mutex_lock(&lock)
        let all = Array(slots.values)
        pthread_mutex_unlock(&lock)
        for s in all {
            pthread_mutex_lock(&s.lock)
            let srv = s.server
            s.server = nil
            pthread_mutex_unlock(&s.lock)
            srv?.stop()
        }
    }

    // MARK: registration probe

    /// The registry's probe for the mcp kind.
    @Sendable public static func discover(_ plugin: PluginRecord) throws(WardenError) -> [PluginManifest.Tool] {
        try probe(plugin, sandbox: .shared)
    }

    /// Discovery at `plugin register`: start the server in its sandbox, handshake, list its tools, stop it.
    public static func probe(_ plugin: PluginRecord, sandbox: Sandbox) throws(WardenError) -> [PluginManifest.Tool] {
        let srv: PluginServer
        switch PluginServer.start(plugin, sandbox: sandbox, timeoutMs: startTimeoutMs) {
        case .success(let s): srv = s
        case .failure(let e): throw WardenError(.dataError, "\(plugin.dir): the MCP server did not start: \(e.message)", hint: e.hint)
        }
        defer { srv.stop() }
        switch srv.client.listTools(timeoutMs: startTimeoutMs) {
        case .success(let tools):
            var out: [PluginManifest.Tool] = []
            for t in tools {
                guard PluginManifest.isValidToolName(t.name) else {
                    throw WardenError(.dataError, "\(plugin.dir): the MCP server offers a tool named \(quoted(t.name)), which cannot be re-exported as \(plugin.name).TOOL (letters, digits, '-' and '_')")
                }
                out.append(t)
            }
            if out.isEmpty { throw WardenError(.dataError, "\(plugin.dir): the MCP server offers no tools") }
            return out
        case .failure(let e):
            throw WardenError(.dataError, "\(plugin.dir): tools/list failed: \(e.description)\(srv.lastStderr.map { " (stderr: \($0))" } ?? "")")
        }
    }
}

/// One running MCP server: its sandboxed process, the client on its stdio, its stderr drained.
final class PluginServer: @unchecked Sendable {
    let process: Sandbox.Process
    let client: MCPClient
    let digest: String
    private var lock = pthread_mutex_t()
    private var tail: [String] = []
    private(set) var stopping = false
    /// Called when the server exits on its own (not by `stop`).
    var onExit: (@Sendable (String) -> Void)?

    /// The client and the stderr drain work on duplicates of the process's pipes: `terminate()` closes the
    /// originals while their threads may still be reading, and a closed number can be reused at once.
    private init(process: Sandbox.Process, digest: String) {
        self.process = process
        self.digest = digest
        self.client = MCPClient(readFD: Self.dup(process.stdoutFD), writeFD: Self.dup(process.stdinFD))
        pthread_mutex_init(&lock, nil)
    }

    static func dup(_ fd: Int32) -> Int32 { fcntl(fd, F_DUPFD_CLOEXEC, 0) }

    static func start(_ plugin: PluginRecord, sandbox: Sandbox, timeoutMs: Int64) -> Result<PluginServer, WardenError> {
        guard let argv = plugin.manifest.mcpCommand else {
            return .failure(WardenError(.dataError, "plugin \(plugin.name) has no mcp.command"))
        }
        var spec: SandboxSpec
        let process: Sandbox.Process
        do throws(WardenError) {
            spec = try sandboxSpec(for: plugin, argv: argv, call: nil)
            for (k, v) in plugin.manifest.mcpEnv { spec.env[k] = v }
            // A server lives across calls: no per-call wall-clock limit applies to it.
            spec.wallMs = nil
            process = try sandbox.start(spec)
        } catch {
            return .failure(error)
        }
        let srv = PluginServer(process: process, digest: plugin.digest)
        srv.client.closeDetail = { [weak srv] in srv?.exitDetail() ?? "" }
        srv.client.onClose = { [weak srv] why in
            guard let srv, !srv.isStopping else { return }
            srv.onExit?(why)
            srv.process.terminate()   // reap it and remove its cgroup now, not at the next call
        }
        let errFD = dup(process.stderrFD)
        startThread { [weak srv] in
            let reader = LineReader(fd: errFD, maxLine: 4096)
            while let line = reader.next() {
                guard case .line(let bytes) = line else { continue }
                srv?.remember(String(decoding: bytes, as: UTF8.self))
            }
            close(errFD)
        }
        switch srv.client.initialize(clientVersion: "0.1.0", timeoutMs: timeoutMs) {
        case .success: return .success(srv)
        case .failure(let e):
            srv.stop()
            var why = "initialize failed: \(e.description)"
            if case .closed = e {} else if let last = srv.lastStderr { why += " (stderr: \(last))" }
            return .failure(WardenError(.failure, why))
        }
    }

    var alive: Bool { !client.isClosed && process.isAlive }

    var isStopping: Bool {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return stopping
    }

    func stop() {
        pthread_mutex_lock(&lock)
        stopping = true
        pthread_mutex_unlock(&lock)
        process.terminate()
    }

    private func remember(_ line: String) {
        pthread_mutex_lock(&lock)
        tail.append(String(line.prefix(500)))
        if tail.count > 20 { tail.removeFirst(tail.count - 20) }
        pthread_mutex_unlock(&lock)
    }

    var lastStderr: String? {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return tail.last { !$0.trimmedSpaces().isEmpty }
    }

    func stderrTail() -> [UInt8] {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return Array(tail.joined(separator: "\n").utf8)
    }

    /// Why the server's stdout closed: its exit, and the last thing it said on stderr.
    func exitDetail() -> String {
        // Give the process a moment to finish exiting and its stderr to drain.
        for _ in 0..<50 where process.isAlive { usleep(2_000) }
        var parts: [String] = []
        if !process.isAlive { parts.append("the server process exited") }
        usleep(5_000)
        if let last = lastStderr { parts.append("last stderr: \(last)") }
        return parts.joined(separator: "; ")
    }
}

extension String {
    func trimmedSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
