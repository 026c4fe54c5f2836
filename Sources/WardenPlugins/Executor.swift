import Glibc
import WardenCore
import WardenSandbox
import WardenStore
import WardenSystem

/// One call of one tool, as an executor sees it.
public struct ToolCall: Sendable {
    public var plugin: PluginRecord
    public var tool: String
    public var input: JSONValue
    public var taskID: String
    public var attempt: Int
    public var tenant: String
    public var traceparent: String?
    public var resources: Resources
    public var timeoutMs: Int64
    /// Extra environment for the tool (WARDEN_SOCKET for agents).
    public var env: [String: String] = [:]
    /// Extra read-write binds (the agent socket's directory).
    public var binds: [BindSpec] = []

    public init(plugin: PluginRecord, tool: String, input: JSONValue, taskID: String, attempt: Int, tenant: String,
                traceparent: String?, resources: Resources, timeoutMs: Int64)
    {
        self.plugin = plugin
        self.tool = tool
        self.input = input
        self.taskID = taskID
        self.attempt = attempt
        self.tenant = tenant
        self.traceparent = traceparent
        self.resources = resources
        self.timeoutMs = timeoutMs
    }
}

/// How a call ended. `retryable` failures may be retried per the manifest's retry policy.
public struct ToolOutcome: Sendable {
    public enum Status: Sendable, Equatable {
        case succeeded(JSONValue)
        case failed(reason: String, retryable: Bool)
    }

    public var status: Status
    public var report: SandboxReport?
    public var stderr: [UInt8] = []
    public var stdout: [UInt8] = []

    public init(status: Status, report: SandboxReport? = nil) {
        self.status = status
        self.report = report
    }

    public static func failed(_ reason: String, retryable: Bool = false, report: SandboxReport? = nil) -> ToolOutcome {
        ToolOutcome(status: .failed(reason: reason, retryable: retryable), report: report)
    }

    public var succeeded: Bool { if case .succeeded = status { return true }; return false }
}

/// Progress reports from a running tool: fraction (0…1) and a message.
public typealias ProgressHandler = @Sendable (Double, String) -> Void

/// Runs calls of one plugin kind. The engine holds one per kind; the MCP module provides the mcp kind's.
public protocol ToolExecutor: Sendable {
    func execute(_ call: ToolCall, control: SandboxControl, progress: ProgressHandler?) -> ToolOutcome
    /// Stops warm workers or servers of a plugin (on removal or shutdown).
    func shutdown()
}

extension ToolExecutor {
    public func shutdown() {}
}

/// Parses `warden:progress 0.4 message` lines (DESIGN §3).
public func parseProgressLine(_ line: [UInt8]) -> (Double, String)? {
    let prefix = Array("warden:progress ".utf8)
    guard line.count > prefix.count, Array(line.prefix(prefix.count)) == prefix else { return nil }
    let rest = String(decoding: line.dropFirst(prefix.count), as: UTF8.self)
    let parts = rest.split(separator: " ", maxSplits: 1)
    guard let f = parts.first.flatMap({ Double($0) }), f.isFinite else { return nil }
    return (min(1, max(0, f)), parts.count > 1 ? String(parts[1]) : "")
}

/// The sandbox spec for running something of `plugin` (its profile, network, binds, limits, /plugin).
public func sandboxSpec(for plugin: PluginRecord, argv: [String], call: ToolCall?) throws(WardenError) -> SandboxSpec {
    let m = plugin.manifest
    let profileRef = m.sandbox.profile.contains("/") ? FS.absolute(m.sandbox.profile, base: plugin.dir) : m.sandbox.profile
    let loaded = try ProfileLoader.load(profileRef)
    var spec = SandboxSpec(argv: argv, profile: loaded)
    spec.pluginDir = plugin.dir
    if let n = m.sandbox.network { spec.network = SandboxProfile.Network(rawValue: n) }
    spec.roBinds = m.sandbox.readOnlyPaths.compactMap { try? BindSpec(parsing: $0, field: "readOnlyPaths") }
    spec.binds = m.sandbox.writablePaths.compactMap { try? BindSpec(parsing: $0, field: "writablePaths") }
    let res = call?.resources ?? m.resources
    // The CPU request places the task; the sandbox's CPU cap is the profile's `limits.cpu` (a request of 10m
    // as a hard quota would throttle even the sandbox's own start-up to 1 ms per 100 ms). Memory is not
    // compressible: the request is the limit.
    if res.memoryBytes > 0 { spec.memoryBytes = res.memoryBytes }
    if let call {
        spec.wallMs = call.timeoutMs
        spec.env["WARDEN_TOOL"] = call.tool
        spec.env["WARDEN_TASK_ID"] = call.taskID
        spec.env["WARDEN_ATTEMPT"] = String(call.attempt)
        spec.env["WARDEN_TENANT"] = call.tenant
        if let tp = call.traceparent { spec.env["TRACEPARENT"] = tp }
        for (k, v) in call.env { spec.env[k] = v }
        spec.binds += call.binds
    }
    return spec
}

/// The process kind: one sandboxed process per call; input JSON on stdin, result JSON on stdout, logs on
/// stderr (`warden:progress` lines reported), exit 0 success, 75 retryable, anything else failure.
public final class ProcessExecutor: ToolExecutor {
    let sandbox: Sandbox

    public init(sandbox: Sandbox = .shared) { self.sandbox = sandbox }

    public func execute(_ call: ToolCall, control: SandboxControl, progress: ProgressHandler?) -> ToolOutcome {
        let m = call.plugin.manifest
        guard let tool = call.plugin.tools.first(where: { $0.name == call.tool }) else {
            return .failed("plugin \(m.name) has no tool \(quoted(call.tool))")
        }
        guard let argv = tool.exec ?? m.exec else { return .failed("plugin \(m.name) has no exec for \(call.tool)") }
        var spec: SandboxSpec
        do throws(WardenError) { spec = try sandboxSpec(for: call.plugin, argv: argv, call: call) } catch {
            return .failed("sandbox: \(error.description)")
        }
        spec.stdin = .bytes(call.input.canonicalBytes)
        if let progress {
            spec.onStderrLine = { line in
                if let (f, msg) = parseProgressLine(line) { progress(f, msg) }
            }
        }
        let out = sandbox.run(spec, control: control)
        var outcome = Self.interpret(out)
        outcome.stderr = out.stderr
        outcome.stdout = out.stdout
        return outcome
    }

    /// Maps a finished sandbox to a tool outcome.
    static func interpret(_ out: SandboxOutcome) -> ToolOutcome {
        let r = out.report
        if let e = out.setupError { return .failed("sandbox setup failed: \(e.description)", report: r) }
        switch r.reason {
        case "exited":
            if r.exitCode == 0 {
                if out.stdout.allSatisfy({ $0 == 32 || $0 == 10 || $0 == 9 || $0 == 13 }) {
                    return ToolOutcome(status: .succeeded(.null), report: r)
                }
                do throws(WardenError) {
                    return ToolOutcome(status: .succeeded(try JSONValue.parse(out.stdout)), report: r)
                } catch {
                    return .failed("the tool exited 0 but its stdout is not JSON (\(error.message))", report: r)
                }
            }
            if r.exitCode == 75 { return .failed("the tool asked to be retried (exit 75)\(tail(out.stderr))", retryable: true, report: r) }
            return .failed("the tool exited with \(r.exitCode ?? -1)\(tail(out.stderr))", report: r)
        case "signaled":
            if r.killedBy != nil { return .failed("killed (\(r.killedBy!))", report: r) }
            return .failed("the tool was killed by signal \(r.signal ?? 0)\(tail(out.stderr))", report: r)
        case "timeout": return .failed("timeout: the tool ran past its \(Quantity.formatDuration(Int64(r.wallMs))) deadline and was killed", report: r)
        case "oom": return .failed("oom: the tool ran out of memory and was killed", report: r)
        case "pids": return .failed("pids: the tool hit its process limit\(tail(out.stderr))", report: r)
        case "cpu_time": return .failed("cpu_time: the tool used up its CPU time and was killed", report: r)
        case "output_limit": return .failed("output_limit: the tool wrote more than its output cap and was killed", report: r)
        case "seccomp": return .failed("seccomp: the tool made a forbidden system call\(r.syscall.map { " (\($0))" } ?? "") and was killed", report: r)
        default: return .failed("\(r.reason)\(r.error.map { ": \($0)" } ?? "")", report: r)
        }
    }

    /// The last line of stderr, to say why a tool failed.
    static func tail(_ stderr: [UInt8]) -> String {
        let lines = String(decoding: stderr.suffix(2048), as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("warden:progress") }
        guard let last = lines.last else { return "" }
        return ": " + String(last.prefix(300))
    }
}
