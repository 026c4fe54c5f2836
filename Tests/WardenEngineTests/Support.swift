import Glibc
import Synchronization
import Testing
import WardenCore
import WardenPlugins
import WardenSandbox
import WardenStore
import WardenSystem
@testable import WardenEngine

let mi: Int64 = 1 << 20
let gi: Int64 = 1 << 30

/// A fresh directory under /tmp, removed by the harness that made it.
func makeTempDir(_ name: String) -> String {
    var template = Array("/tmp/warden-engine-\(name)-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}

/// Stands in for the sandbox: answers each call from a script (in order), then echoes the input back as the
/// result. Records every call it received, so a test can prove a tool ran, or that it never did.
final class ScriptedExecutor: ToolExecutor {
    private struct State {
        var script: [ToolOutcome] = []
        var calls: [ToolCall] = []
    }

    private let state = Mutex(State())

    /// The next calls get these outcomes, in order.
    func then(_ outcomes: ToolOutcome...) {
        state.withLock { $0.script += outcomes }
    }

    var calls: [ToolCall] { state.withLock { $0.calls } }

    func execute(_ call: ToolCall, control: SandboxControl, progress: ProgressHandler?) -> ToolOutcome {
        state.withLock { s in
            s.calls.append(call)
            if s.script.isEmpty { return ToolOutcome(status: .succeeded(call.input)) }
            return s.script.removeFirst()
        }
    }
}

/// An engine over a real SQLite store in a temp dir, with two registered process plugins whose tools are
/// never spawned: `kit` (idempotent) and `once` (not idempotent), each with the tools `echo` (any object) and
/// `count` (`{"text": string}` required, nothing else allowed). Tasks run only when a test says so, through
/// `ScriptedExecutor`; no root, no namespaces.
final class EngineHarness {
    let dir: String
    let store: Store
    let engine: Engine
    let executor = ScriptedExecutor()

    init(capacity: Resources = Resources(cpuMillis: 4000, memoryBytes: 8 * gi)) throws {
        dir = makeTempDir("t")
        store = try Store.open(url: nil, stateDir: "\(dir)/state")
        var config = Engine.Config()
        config.node = "local"
        config.instance = "test-engine"
        config.capacity = capacity
        // Nodes stay ready for 30 s after their last heartbeat (staleMs), so a slow, loaded machine does not
        // turn a test's node stale mid-test; lease tests sweep with a clock far past every lease instead.
        config.leaseMs = 30_000
        engine = Engine(store: store, config: config)
        engine.executors[.process] = executor
        for (name, idempotent) in [("kit", true), ("once", false)] {
            let pdir = try Self.pluginDir("\(dir)/plugins/\(name)", manifest: """
                {"name": "\(name)", "version": "1.0.0", "kind": "process", "exec": ["bin/tool"],
                 "tools": [{"name": "echo", "description": "returns its input", "inputSchema": {"type": "object"}},
                           {"name": "count", "description": "counts words",
                            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}},
                                            "required": ["text"], "additionalProperties": false}}],
                 "resources": {"cpu": "100m", "memory": "32Mi"}, "timeout": "10s", "concurrency": 10000,
                 "idempotent": \(idempotent)}
                """)
            try engine.registry.register(pdir, trusted: false, actor: "test")
        }
    }

    /// A process plugin directory with `manifest` and a `bin/tool` that is never meant to run.
    static func pluginDir(_ pdir: String, manifest: String) throws -> String {
        try FS.mkdirs("\(pdir)/bin")
        try FS.writeFile("\(pdir)/bin/tool", Array("#!/bin/sh\nexit 1\n".utf8), mode: 0o755)
        try FS.writeFile("\(pdir)/warden-plugin.json", manifest)
        return pdir
    }

    deinit { FS.removeTree(dir) }

    // MARK: submitting

    static func spec(_ tool: String = "echo", plugin: String = "kit", tenant: String = "default",
                     input: JSONValue = [:], cpu: Int64? = nil, memory: Int64 = 32 * mi, priority: Int = 0) -> TaskSpec {
        var s = TaskSpec(plugin: plugin, tool: tool)
        s.tenant = tenant
        s.input = input
        s.priority = priority
        if let cpu { s.resources = Resources(cpuMillis: cpu, memoryBytes: memory) }
        return s
    }

    func submit(_ spec: TaskSpec) throws -> TaskRecord {
        try engine.submit(spec).task
    }

    func submit(_ tool: String = "echo", plugin: String = "kit", tenant: String = "default", input: JSONValue = [:],
                cpu: Int64? = nil, memory: Int64 = 32 * mi, priority: Int = 0) throws -> TaskRecord {
        try submit(Self.spec(tool, plugin: plugin, tenant: tenant, input: input, cpu: cpu, memory: memory, priority: priority))
    }

    /// The error a submission is refused with, or nil when it is admitted.
    func refusal(_ spec: TaskSpec) -> WardenError? {
        do throws(WardenError) {
            _ = try engine.submit(spec)
            return nil
        } catch {
            return error
        }
    }

    func setPolicy(_ json: JSONValue) throws {
        try store.setPolicy(json, actor: "test")
        engine.invalidatePolicy()
    }

    // MARK: reading

    func task(_ id: String) throws -> TaskRecord {
        try #require(try store.task(id), "task \(id) is not in the store")
    }

    func tasks(_ state: TaskState? = nil, tenant: String? = nil) throws -> [TaskRecord] {
        try store.tasks(state: state, tenant: tenant)
    }

    func counter(_ key: String) throws -> Int64 {
        try store.counters().first { $0.key == key }?.value ?? 0
    }

    func admissions(_ outcome: String) throws -> Int64 {
        try counter("warden_admissions_total{outcome=\"\(outcome)\"}")
    }

    func usage(_ tenant: String) throws -> Usage {
        try store.read { tx in try store.usage(tx, tenant: tenant) }
    }

    // MARK: driving

    /// A node with a fresh heartbeat, as a `serve` or `agent` elsewhere would register it.
    func addNode(_ name: String, cpu: Int64, memory: Int64) throws {
        try store.upsertNode(NodeRecord(name: name, capacity: Resources(cpuMillis: cpu, memoryBytes: memory), owner: "agent-\(name)"))
    }

    /// Moves a task the way an executor would, with no tool behind it (fenced by `epoch` when given).
    @discardableResult
    func move(_ id: String, to state: TaskState, expect: Set<TaskState>? = nil, epoch: Int64? = nil) throws -> TaskRecord? {
        try store.write { tx in try store.transition(tx, id, to: state, expect: expect, actor: "test-executor", epoch: epoch) }
    }

    /// A placed task's executor ran it to success (frees what it held on its node).
    func complete(_ id: String) throws {
        try move(id, to: .running, expect: [.placed])
        try move(id, to: .succeeded, expect: [.running])
    }

    /// Places a queued task on this engine's own node (registered by the caller) and runs one attempt
    /// through `ScriptedExecutor`.
    @discardableResult
    func runAttempt(_ id: String) throws -> TaskRecord {
        let placed = try #require(try engine.placeLocally(id).placed, "task \(id) was not placed")
        return engine.execute(placed)
    }

    /// "Time passes": the backoff of a queued task is over.
    func endBackoff(_ id: String) throws {
        try store.write { tx in _ = try tx.execute("UPDATE tasks SET not_before = 0 WHERE id = ?", [.text(id)]) }
    }

    /// A scheduler without threads or control socket: tests call `scheduleRound()` themselves.
    func scheduler() -> Server {
        var o = Server.Options()
        o.controlSocket = false
        o.execute = false
        return Server(engine: engine, options: o)
    }
}
