import Glibc
import WardenCore
import WardenEngine
import WardenPlugins
import WardenStore
import WardenSystem

enum TaskCommands {
    /// Builds the TaskSpec of `run` and `submit` from the command line.
    static func spec(_ inv: Invocation) throws(WardenError) -> TaskSpec {
        let target = try TaskSpec.parseTarget(inv.positionals[0])
        var spec = TaskSpec(plugin: target.plugin, version: target.version, tool: target.tool)
        spec.input = try Parse.input(inv.value("--input"))
        spec.tenant = inv.value("--tenant") ?? FS.env("WARDEN_TENANT") ?? "default"
        try Engine.validateTenant(spec.tenant)
        if let p = try Parse.int(inv, "--priority", range: -1_000_000...1_000_000) { spec.priority = Int(p) }
        if let k = inv.value("--idempotency-key") {
            guard !k.isEmpty && k.utf8.count <= 256 else { throw WardenError.invalid("--idempotency-key", "must be 1 to 256 bytes", code: .usage) }
            spec.idempotencyKey = k
        }
        spec.after = inv.values("--after")
        spec.locks = inv.values("--lock")
        for l in spec.locks where l.isEmpty { throw WardenError.invalid("--lock", "must not be empty", code: .usage) }
        spec.timeoutMs = try Parse.duration(inv, "--timeout")
        if let tp = inv.value("--traceparent") {
            guard Tracer.parse(tp) != nil else {
                throw WardenError.invalid("--traceparent", "invalid W3C traceparent \(quoted(tp)) (expected 00-<32 hex>-<16 hex>-<2 hex>)", code: .usage)
            }
            spec.traceparent = tp
        }
        if inv.has("--approval") { spec.approvalRequired = true }
        if let r = try Parse.int(inv, "--retries", range: 0...1000) {
            spec.retry = PluginManifest.RetryPolicy(max: Int(r))
        }
        let cpu = try inv.value("--cpu").map { v throws(WardenError) in try Quantity.cpuMillis(v, field: "--cpu", code: .usage) }
        let mem = try inv.value("--memory").map { v throws(WardenError) in try Quantity.bytes(v, field: "--memory", code: .usage) }
        if cpu != nil || mem != nil || spec.retry != nil {
            let (plugin, _) = try inv.ctx.engine().resolve(spec)
            var res = plugin.manifest.resources
            if let cpu { res.cpuMillis = cpu }
            if let mem { res.memoryBytes = mem }
            spec.resources = res
            if var r = spec.retry {
                r.initialBackoffMs = plugin.manifest.retry.initialBackoffMs
                r.maxBackoffMs = plugin.manifest.retry.maxBackoffMs
                spec.retry = r
            }
        }
        spec.submitter = inv.ctx.actor
        return spec
    }

    static func run(_ inv: Invocation) throws(WardenError) -> Int32 {
        let spec = try spec(inv)
        let engine = try inv.ctx.engine()
        let waitMs = try Parse.duration(inv, "--wait")
        let progress = ProgressLine()
        let sub = try engine.submit(spec)
        var task = sub.task
        if !task.state.isTerminal {
            let deadline = waitMs.map { Time.monotonicNs() + UInt64($0) * 1_000_000 }
            if let client = ControlClient.connect(stateDir: inv.ctx.absoluteState) {
                // A serve is running: it executes; we wait for the outcome.
                client.wake()
                progress.update("submitted \(task.id) to the running serve")
                task = try waitFor(task.id, engine: engine, client: client, deadline: deadline, progress: progress)
            } else if try clusterHasExecutors(engine) {
                // No local serve, but agents on a shared store: the leader places it, an agent runs it.
                progress.update("submitted \(task.id) to the cluster")
                task = try waitFor(task.id, engine: engine, client: nil, deadline: deadline, progress: progress)
            } else {
                task = try engine.drive(task.id, deadline: deadline) { progress.update($0) }
            }
        }
        progress.clear()
        return report(task, inv: inv)
    }

    /// True on PostgreSQL when some other node is ready to run work (then `run` does not execute here).
    static func clusterHasExecutors(_ engine: Engine) throws(WardenError) -> Bool {
        guard engine.store.db.dialect == .postgres else { return false }
        let now = Time.nowMs()
        return try engine.store.nodes().contains { $0.ready(now: now, staleMs: engine.staleMs) && $0.capacity.cpuMillis > 0 }
    }

    /// Prints a finished (or abandoned) task as `run` does and returns the exit status.
    static func report(_ task: TaskRecord, inv: Invocation) -> Int32 {
        if inv.json { Out.json(task.json) }
        switch task.state {
        case .succeeded:
            if !inv.json { Out.print((task.result ?? .null).pretty) }
            return 0
        case _ where !task.state.isTerminal:
            Out.err("warden: task \(task.id) is still \(task.state.rawValue) (see `warden status \(task.id)`)")
            return ExitCode.tempFail.rawValue
        default:
            Out.err("warden: task \(task.id) \(task.state.rawValue): \(task.reason ?? "no reason recorded")")
            return task.state == .rejected ? ExitCode.denied.rawValue : ExitCode.failure.rawValue
        }
    }

    /// Waits for a terminal state: pushed by a running serve when there is one, else by polling the store.
    static func waitFor(_ id: String, engine: Engine, client: ControlClient?, deadline: UInt64?, progress: ProgressLine) throws(WardenError) -> TaskRecord {
        var delay: UInt32 = 5_000
        while true {
            guard let t = try engine.store.task(id) else { throw WardenError.notFound("unknown task \(quoted(id))") }
            if t.state.isTerminal { return t }
            if let deadline, Time.monotonicNs() > deadline { return t }
            progress.update("\(t.state.rawValue)\(t.node.map { " on \($0)" } ?? "") — \(id)")
            let left = deadline.map { Int64(($0 - min($0, Time.monotonicNs())) / 1_000_000) } ?? 1000
            if let client, client.waitChange(id, timeoutMs: min(1000, max(1, left))) { continue }
            usleep(delay)
            delay = min(delay * 2, 200_000)
        }
    }

    static func submit(_ inv: Invocation) throws(WardenError) -> Int32 {
        let spec = try spec(inv)
        let engine = try inv.ctx.engine()
        let sub = try engine.submit(spec)
        ControlClient.connect(stateDir: inv.ctx.absoluteState)?.wake()
        if inv.json { Out.json(sub.task.json) } else { Out.print(sub.task.id) }
        return 0
    }

    static func status(_ inv: Invocation) throws(WardenError) -> Int32 {
        let store = try inv.ctx.store()
        let id = inv.positionals[0]
        guard let t = try store.task(id) else { throw WardenError.notFound("unknown task \(quoted(id))") }
        let history = try store.history(id)
        if inv.json {
            guard case .object(var o) = t.json else { return 0 }
            o["explanation"] = .optional(t.explanation)
            o["history"] = .array(history.map(\.json))
            Out.json(.object(o))
            return 0
        }
        Out.print("task \(t.id)  \(t.plugin).\(t.tool)@\(t.version)  tenant \(t.tenant)  priority \(t.priority)")
        Out.print("state:     \(t.state.rawValue)\(t.reason.map { " — \($0)" } ?? "")")
        Out.print("attempts:  \(t.attempts) (retries allowed: \(t.maxRetries))\(t.node.map { "   node: \($0)" } ?? "")")
        Out.print("admitted:  rule \(t.rule ?? "?") by \(t.submitter)")
        if let e = t.explanation { Out.print("placement: \(e)") }
        if let k = t.idempotencyKey { Out.print("key:       \(k)") }
        if !t.after.isEmpty { Out.print("after:     \(t.after.joined(separator: ", "))") }
        if !t.locks.isEmpty { Out.print("locks:     \(t.locks.joined(separator: ", "))") }
        if let p = t.parent { Out.print("parent:    \(p)") }
        if let r = t.report { Out.print("sandbox:   \(r.canonical)") }
        if let r = t.result { Out.print("result:    \(r.canonical)") }
        Out.print("history:")
        for e in history {
            Out.print("  \(Time.iso8601(e.at))  \(e.from?.rawValue ?? "·") → \(e.to.rawValue)\(e.reason.map { "  (\($0))" } ?? "")  [\(e.actor ?? "?"), audit #\(e.auditSeq ?? 0)]")
        }
        return 0
    }

    static func wait(_ inv: Invocation) throws(WardenError) -> Int32 {
        let engine = try inv.ctx.engine()
        let id = inv.positionals[0]
        let timeout = try Parse.duration(inv, "--timeout")
        let progress = ProgressLine()
        let t = try waitFor(id, engine: engine, client: ControlClient.connect(stateDir: inv.ctx.absoluteState),
                            deadline: timeout.map { Time.monotonicNs() + UInt64($0) * 1_000_000 }, progress: progress)
        progress.clear()
        if inv.json { Out.json(t.json) } else { Out.print("\(t.id) \(t.state.rawValue)\(t.reason.map { ": \($0)" } ?? "")") }
        if !t.state.isTerminal { return ExitCode.tempFail.rawValue }
        return t.state == .succeeded ? 0 : ExitCode.failure.rawValue
    }

    static func list(_ inv: Invocation) throws(WardenError) -> Int32 {
        let store = try inv.ctx.store()
        let state = try inv.value("--state").map { s throws(WardenError) in try TaskState.parse(s) }
        let limit = Int(try Parse.int(inv, "--limit", range: 1...1_000_000) ?? 50)
        let tasks = try store.tasks(state: state, tenant: inv.value("--tenant"), limit: limit)
        if inv.json {
            Out.json(.array(tasks.map(\.json)))
            return 0
        }
        printTable(tasks)
        return 0
    }

    static func printTable(_ tasks: [TaskRecord]) {
        if tasks.isEmpty { Out.print("no tasks"); return }
        Out.print(pad("ID", 20) + pad("STATE", 18) + pad("TOOL", 26) + pad("TENANT", 12) + pad("ATT", 5) + "UPDATED")
        for t in tasks {
            Out.print(pad(t.id, 20) + pad(t.state.rawValue, 18) + pad("\(t.plugin).\(t.tool)", 26) + pad(t.tenant, 12)
                      + pad(String(t.attempts), 5) + Time.iso8601(t.updatedAt))
        }
    }

    static func pad(_ s: String, _ n: Int) -> String {
        s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
    }

    static func cancel(_ inv: Invocation) throws(WardenError) -> Int32 {
        let engine = try inv.ctx.engine()
        let id = inv.positionals[0]
        let t = try engine.cancel(id, actor: inv.ctx.actor, reason: inv.value("--reason") ?? "canceled by \(inv.ctx.actor)")
        ControlClient.connect(stateDir: inv.ctx.absoluteState)?.cancel(id)
        if inv.json { Out.json(t.json) } else { Out.print("\(t.id) canceled") }
        return 0
    }

    static func logs(_ inv: Invocation) throws(WardenError) -> Int32 {
        let store = try inv.ctx.store()
        let id = inv.positionals[0]
        guard try store.task(id) != nil else { throw WardenError.notFound("unknown task \(quoted(id))") }
        for (attempt, stream, data) in try store.logs(id) {
            if inv.json {
                Out.json(["attempt": .int(Int64(attempt)), "stream": .string(stream), "data": .string(String(decoding: data, as: UTF8.self))])
            } else {
                Out.print("--- attempt \(attempt) \(stream) ---")
                Out.raw(data)
                if data.last != 10 { Out.print() }
            }
        }
        return 0
    }

    static func approve(_ inv: Invocation) throws(WardenError) -> Int32 {
        let t = try inv.ctx.engine().approve(inv.positionals[0], actor: inv.ctx.actor, reason: inv.value("--reason"))
        ControlClient.connect(stateDir: inv.ctx.absoluteState)?.wake()
        if inv.json { Out.json(t.json) } else { Out.print("\(t.id) approved; now \(t.state.rawValue)") }
        return 0
    }

    static func deny(_ inv: Invocation) throws(WardenError) -> Int32 {
        let t = try inv.ctx.engine().deny(inv.positionals[0], actor: inv.ctx.actor, reason: inv.value("--reason"))
        ControlClient.connect(stateDir: inv.ctx.absoluteState)?.wake()
        if inv.json { Out.json(t.json) } else { Out.print("\(t.id) denied; now \(t.state.rawValue)") }
        return 0
    }

    static func dlqList(_ inv: Invocation) throws(WardenError) -> Int32 {
        let store = try inv.ctx.store()
        let tasks = try store.tasks(state: .dead, limit: 100_000) + store.tasks(state: .inDoubt, limit: 100_000)
        if inv.json { Out.json(.array(tasks.map(\.json))); return 0 }
        if tasks.isEmpty { Out.print("the dead-letter queue is empty"); return 0 }
        for t in tasks {
            Out.print(pad(t.id, 20) + pad(t.state.rawValue, 10) + pad("\(t.plugin).\(t.tool)", 26) + (t.reason ?? ""))
        }
        return 0
    }

    static func dlqReplay(_ inv: Invocation) throws(WardenError) -> Int32 {
        let engine = try inv.ctx.engine()
        var failed = false
        for id in inv.positionals {
            do throws(WardenError) {
                let t = try engine.replay(id, actor: inv.ctx.actor)
                Out.print("\(t.id) re-queued")
            } catch {
                Out.err("warden: \(error.description)")
                failed = true
            }
        }
        ControlClient.connect(stateDir: inv.ctx.absoluteState)?.wake()
        return failed ? ExitCode.failure.rawValue : 0
    }
}
