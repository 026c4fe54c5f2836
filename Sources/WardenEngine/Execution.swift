import Glibc
import WardenCore
import WardenPlugins
import WardenSandbox
import WardenStore
import WardenSystem

/// Why a queued task cannot be placed yet (shown by `status` and `explain`).
public struct Blocker: Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var until: Int64?
    public var description: String { reason }
}

extension Engine {
    static let activeStates: [SQLValue] = [.text("placed"), .text("running")]

    /// Nil when `t` may be placed now; else what it waits for. May cancel `t` (failed dependency).
    func blocker(_ tx: SQLExecutor, _ t: TaskRecord, now: Int64) throws -> Blocker? {
        if t.notBefore > now { return Blocker(reason: "backing off until \(Time.iso8601(t.notBefore))", until: t.notBefore) }
        for a in t.after {
            guard let dep = try store.task(tx, a) else { continue }
            if dep.state == .succeeded { continue }
            if dep.state.isTerminal {
                try store.transition(tx, t.id, to: .canceled, expect: [.queued], actor: "engine",
                                     reason: "dependency \(a) ended \(dep.state.rawValue)")
                try cancelDependents(tx, t.id, reason: "dependency \(t.id) was canceled")
                return Blocker(reason: "canceled: dependency \(a) ended \(dep.state.rawValue)")
            }
            return Blocker(reason: "waiting for dependency \(a) (\(dep.state.rawValue))")
        }
        for key in t.locks {
            if let holder = try tx.queryOne("SELECT task FROM locks WHERE key = ?", [.text(key)])?.text("task"), holder != t.id {
                return Blocker(reason: "waiting for lock \(quoted(key)) held by \(holder)")
            }
        }
        let plugin = try? self.plugin(t.plugin, version: t.version)
        if let limit = plugin?.manifest.concurrency {
            let n = try tx.queryOne("SELECT COUNT(*) AS n FROM tasks WHERE plugin = ? AND version = ? AND state IN (?, ?)",
                                    [.text(t.plugin), .text(t.version)] + Self.activeStates)?.int("n") ?? 0
            if n >= Int64(limit) {
                return Blocker(reason: "plugin \(t.plugin) is at its concurrency limit (\(limit) running)")
            }
        }
        return nil
    }

    /// queued → placed on `node`: takes the locks, a lease for the node's executor (`owner`) and a new epoch,
    /// and counts the attempt.
    func place(_ tx: SQLExecutor, _ t: TaskRecord, node: String, owner: String?, explanation: String, now: Int64) throws -> TaskRecord? {
        for key in t.locks {
            try tx.execute("INSERT INTO locks (key, task, at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING", [.text(key), .text(t.id), .int(now)])
            let holder = try tx.queryOne("SELECT task FROM locks WHERE key = ?", [.text(key)])?.text("task")
            if holder != t.id {
                // Not all of them: give back those just taken (a task that stays queued holds no lock).
                try releaseLocks(tx, t.id)
                return nil
            }
        }
        return try store.transition(tx, t.id, to: .placed, expect: [.queued], actor: "scheduler", reason: nil,
                                    set: ["node": .text(node), "lease_owner": .opt(owner ?? config.instance),
                                          "lease_expires": .int(now + config.leaseMs), "lease_epoch": .int(t.leaseEpoch + 1),
                                          "attempts": .int(Int64(t.attempts + 1)), "explanation": .text(explanation),
                                          "reason": .null],
                                    detail: ["node": .string(node), "explanation": .string(explanation), "attempt": .int(Int64(t.attempts + 1))],
                                    at: now)
    }

    func releaseLocks(_ tx: SQLExecutor, _ id: String) throws {
        try tx.execute("DELETE FROM locks WHERE task = ?", [.text(id)])
    }

    /// Cancels every unfinished task that depends on `id` (transitively), with `reason`.
    func cancelDependents(_ tx: SQLExecutor, _ id: String, reason: String) throws {
        var frontier = [id]
        var seen: Set<String> = [id]
        while let cur = frontier.popLast() {
            for r in try tx.query("SELECT task FROM deps WHERE after_id = ?", [.text(cur)]) {
                guard let dep = r.text("task"), seen.insert(dep).inserted, let t = try store.task(tx, dep) else { continue }
                if [.queued, .awaitingApproval, .submitted].contains(t.state) {
                    try store.transition(tx, dep, to: .canceled, actor: "engine", reason: reason)
                    frontier.append(dep)
                }
            }
        }
    }

    /// Exponential backoff with full jitter: uniform in [0, min(max, initial·2^(attempt−1))].
    static func backoffMs(attempt: Int, initial: Int64, max maxMs: Int64) -> Int64 {
        let exp = min(30, max(0, attempt - 1))
        let cap = min(maxMs, initial.multipliedReportingOverflow(by: Int64(1) << exp).overflow ? maxMs : initial << exp)
        guard cap > 0 else { return 0 }
        return Int64.random(in: 0...cap)
    }

    // MARK: one attempt

    /// Runs a placed task on this node: placed → running, the tool in its sandbox, then the outcome.
    /// Returns the task as it stands after the attempt.
    @discardableResult
    public func execute(_ placed: TaskRecord) -> TaskRecord {
        let store = self.store
        let epoch = placed.leaseEpoch
        let startNs = Time.monotonicNs()
        let queuedSpanStart = Tracer.monotonic(fromWallMs: placed.createdAt)
        guard let running = try? store.write({ tx -> TaskRecord? in
            let r = try store.transition(tx, placed.id, to: .running, expect: [.placed], actor: config.instance,
                                         set: ["lease_expires": .int(Time.nowMs() + config.leaseMs)], epoch: epoch)
            if config.spans, let r {
                try Tracer.insert(tx, name: "queue", task: r, startNs: queuedSpanStart, endNs: startNs, attributes: [:])
                try Tracer.insert(tx, name: "place", task: r, startNs: startNs, endNs: startNs, attributes: ["node": r.node ?? "", "explanation": r.explanation ?? ""])
            }
            return r
        }) ?? nil else {
            return (try? store.task(placed.id)) ?? placed
        }
        notify(running.id)
        // Keep this attempt's lease alive while it runs, whoever else heartbeats (a `run` without a serve has
        // no other heartbeat; a long tool must not lose its lease to a sweep elsewhere).
        let keeper = LeaseKeeper(store: store, task: running.id, epoch: running.leaseEpoch,
                                 leaseMs: config.leaseMs, everyMs: config.heartbeatMs)
        defer { keeper.stop() }

        let outcome: ToolOutcome
        var cached = false
        let plugin: PluginRecord
        do throws(WardenError) {
            plugin = try pinnedPlugin(running.plugin, running.version)
        } catch {
            return finish(running, ToolOutcome.failed(error.description), startNs: startNs)
        }
        let cacheKey = plugin.manifest.cacheable ? Self.cacheKey(plugin: plugin, tool: running.tool, input: running.input) : nil
        if let key = cacheKey, let hit = try? store.read({ tx in try tx.queryOne("SELECT result FROM cache WHERE key = ?", [.text(key)]) })?.json("result") {
            var o = ToolOutcome(status: .succeeded(hit))
            var r = SandboxReport(reason: "cached")
            r.exitCode = 0
            o.report = r
            outcome = o
            cached = true
        } else if let executor = executors[plugin.manifest.kind] {
            let control = SandboxControl()
            register(running.id, control)
            var call = ToolCall(plugin: plugin, tool: running.tool, input: running.input, taskID: running.id,
                                attempt: running.attempts, tenant: running.tenant, traceparent: running.traceparent,
                                resources: running.resources, timeoutMs: running.timeoutMs)
            if plugin.manifest.agent, let agents = agentGateway { agents.prepare(&call, task: running) }
            let id = running.id
            let progress: ProgressHandler = { [weak self] f, msg in self?.onProgress?(id, f, msg) }
            outcome = executor.execute(call, control: control, progress: progress)
            unregister(running.id)
            if plugin.manifest.agent { agentGateway?.finished(running.id) }
        } else {
            outcome = .failed("no executor for \(plugin.manifest.kind.rawValue) plugins in this process")
        }
        var final = finish(running, outcome, startNs: startNs)
        if cached { final.explanation = final.explanation.map { "\($0); result from cache" } }
        if let key = cacheKey, !cached, final.state == .succeeded, let result = final.result {
            _ = try? store.write { tx in
                try tx.execute("INSERT INTO cache (key, result, task, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                               [.text(key), .text(result.canonical), .text(final.id), .int(Time.nowMs())])
            }
        }
        return final
    }

    public static func cacheKey(plugin: PluginRecord, tool: String, input: JSONValue) -> String {
        SHA256.hex("\(plugin.digest)\u{0}\(tool)\u{0}\(input.canonical)")
    }

    /// Records an attempt's outcome, fenced by the lease epoch: succeeded; or failed → queued (retryable
    /// with retries left, after a jittered backoff) or dead. Logs go to the task log.
    func finish(_ t: TaskRecord, _ outcome: ToolOutcome, startNs: UInt64) -> TaskRecord {
        let store = self.store
        let now = Time.nowMs()
        let report = outcome.report?.json
        let endNs = Time.monotonicNs()
        let runSeconds = Double(endNs - startNs) / 1e9
        let result: TaskRecord? = try? store.write { tx in
            try store.appendLog(tx, task: t.id, attempt: t.attempts, stream: "stderr", data: outcome.stderr)
            var next: TaskRecord?
            switch outcome.status {
            case .succeeded(let value):
                next = try store.transition(tx, t.id, to: .succeeded, expect: [.running], actor: config.instance,
                                            set: ["result": .json(value), "report": .json(report), "lease_owner": .null, "lease_expires": .null, "reason": .null],
                                            detail: ["attempt": .int(Int64(t.attempts)), "report": report ?? .null], epoch: t.leaseEpoch, at: now)
            case .failed(let reason, let retryable):
                guard let failed = try store.transition(tx, t.id, to: .failed, expect: [.running], actor: config.instance, reason: reason,
                                                        set: ["report": .json(report), "lease_owner": .null, "lease_expires": .null],
                                                        detail: ["retryable": .bool(retryable), "attempt": .int(Int64(t.attempts)), "report": report ?? .null],
                                                        epoch: t.leaseEpoch, at: now)
                else { break }
                if retryable && failed.attempts <= failed.maxRetries {
                    let delay = Self.backoffMs(attempt: failed.attempts, initial: failed.retryInitialMs, max: failed.retryMaxMs)
                    next = try store.transition(tx, t.id, to: .queued, actor: "engine",
                                                reason: "retry \(failed.attempts) of \(failed.maxRetries) after \(Quantity.formatDuration(delay)): \(reason)",
                                                set: ["not_before": .int(now + delay), "node": .null],
                                                detail: ["backoff_ms": .int(delay)], at: now)
                } else {
                    let why = retryable ? "\(reason) (no retries left after \(failed.attempts) attempts)" : reason
                    next = try store.transition(tx, t.id, to: .dead, actor: "engine", reason: why, at: now)
                    try cancelDependents(tx, t.id, reason: "dependency \(t.id) failed: \(reason)")
                }
            }
            if next != nil { try releaseLocks(tx, t.id) }
            let current = try next ?? store.task(tx, t.id)
            if let r = outcome.report, r.reason != "exited" && r.reason != "cached" {
                try store.bump(tx, "warden_sandbox_kills_total", [("reason", r.reason)])
            }
            try store.bump(tx, "warden_task_attempts_total", [("result", current?.state.rawValue ?? "unknown")])
            if config.spans, let n = current {
                var attrs = ["outcome": n.state.rawValue, "attempt": String(t.attempts)]
                if let r = outcome.report { attrs["reason"] = r.reason; attrs["wall_ms"] = String(r.wallMs) }
                try Tracer.insert(tx, name: "run", task: n, startNs: startNs, endNs: endNs, attributes: attrs)
            }
            return current
        } ?? nil
        metrics.observe("warden_task_run_seconds", runSeconds)
        let final = result ?? ((try? store.task(t.id)) ?? t)
        // An agent's attempt is over: whatever it started and did not wait for stops with it.
        if final.state != .running && final.state != .placed {
            for child in (try? store.tasks(parent: t.id, limit: 100_000)) ?? [] where !child.state.isTerminal {
                _ = try? cancel(child.id, actor: "engine", reason: "parent \(t.id) ended \(final.state.rawValue)")
            }
        }
        if final.state.isTerminal {
            metrics.observe("warden_task_latency_seconds", Double(max(0, final.updatedAt - final.createdAt)) / 1000)
        }
        notify(t.id)
        return final
    }

    // MARK: operator actions

    /// Cancels a task and its dependents. A running task's sandbox is killed (here, or by the serve that runs it).
    @discardableResult
    public func cancel(_ id: String, actor: String, reason: String = "canceled by operator") throws(WardenError) -> TaskRecord {
        let store = self.store
        var descendants: [String] = []
        let t: TaskRecord = try store.write { tx in
            guard let cur = try store.task(tx, id) else { throw WardenError.notFound("unknown task \(quoted(id))") }
            if cur.state.isTerminal {
                throw WardenError(.failure, "task \(id) already ended \(cur.state.rawValue); nothing to cancel")
            }
            var fields: [String: SQLValue] = ["lease_owner": .null, "lease_expires": .null]
            if cur.state == .failed { fields["not_before"] = .int(0) }
            guard let c = try store.transition(tx, id, to: .canceled, actor: actor, reason: reason, set: fields) else {
                throw WardenError(.failure, "task \(id) cannot be canceled from \(cur.state.rawValue)")
            }
            try releaseLocks(tx, id)
            try cancelDependents(tx, id, reason: "dependency \(id) was canceled")
            descendants = try cancelDescendants(tx, of: id, actor: actor)
            return c
        }
        killLocal(id, why: "cancel")
        for d in descendants { killLocal(d, why: "cancel") }
        notify(id)
        return t
    }

    /// Children of an agent task die with it, and theirs with them, each canceled dependency taking its own
    /// dependents along. Returns the ids canceled, so the sandboxes running here can be killed after commit.
    func cancelDescendants(_ tx: SQLExecutor, of id: String, actor: String) throws -> [String] {
        var canceled: [String] = []
        var frontier = [id]
        while let parent = frontier.popLast() {
            for child in try store.tasks(tx, parent: parent, limit: 100_000) where !child.state.isTerminal {
                guard try store.transition(tx, child.id, to: .canceled, actor: actor, reason: "parent \(parent) was canceled") != nil else { continue }
                try releaseLocks(tx, child.id)
                try cancelDependents(tx, child.id, reason: "dependency \(child.id) was canceled")
                canceled.append(child.id)
                frontier.append(child.id)
            }
        }
        return canceled
    }

    public func approve(_ id: String, actor: String, reason: String?) throws(WardenError) -> TaskRecord {
        try decideApproval(id, approve: true, actor: actor, reason: reason)
    }

    public func deny(_ id: String, actor: String, reason: String?) throws(WardenError) -> TaskRecord {
        try decideApproval(id, approve: false, actor: actor, reason: reason)
    }

    func decideApproval(_ id: String, approve: Bool, actor: String, reason: String?) throws(WardenError) -> TaskRecord {
        let store = self.store
        let t: TaskRecord = try store.write { tx in
            guard let cur = try store.task(tx, id) else { throw WardenError.notFound("unknown task \(quoted(id))") }
            guard cur.state == .awaitingApproval else {
                throw WardenError(.failure, "task \(id) is \(cur.state.rawValue), not awaiting approval")
            }
            let why = approve ? "approved by \(actor)\(reason.map { ": \($0)" } ?? "")" : "denied by \(actor)\(reason.map { ": \($0)" } ?? "")"
            guard let next = try store.transition(tx, id, to: approve ? .queued : .rejected, actor: actor, reason: why,
                                                  rule: approve ? "approval" : "approval-denied",
                                                  detail: ["approval": .string(approve ? "approved" : "denied"), "by": .string(actor),
                                                           "comment": .optional(reason)])
            else { throw WardenError(.failure, "task \(id) changed meanwhile") }
            if !approve { try cancelDependents(tx, id, reason: "dependency \(id) was denied") }
            return next
        }
        notify(id)
        return t
    }

    /// Housekeeping one pass: approvals past their deadline are rejected; leases that expired are handled
    /// by the lease rules (placed → queued; running → queued if idempotent, else in_doubt).
    @discardableResult
    public func sweep(now: Int64 = Time.nowMs(), onlyOwner: String? = nil) -> Int {
        let store = self.store
        var changed = 0
        let expiredApprovals = (try? store.read { tx in
            try tx.query("SELECT id FROM tasks WHERE state = 'awaiting_approval' AND approval_deadline < ?", [.int(now)]).compactMap { $0.text("id") }
        }) ?? []
        for id in expiredApprovals {
            let rejected: Bool? = try? store.write { tx -> Bool in
                guard try store.transition(tx, id, to: .rejected, expect: [.awaitingApproval], actor: "engine",
                                           reason: "approval timed out", rule: "approval-timeout") != nil else { return false }
                try cancelDependents(tx, id, reason: "dependency \(id) was rejected (approval timed out)")
                return true
            }
            if rejected == true { changed += 1 }
            notify(id)
        }
        let expired: [TaskRecord] = (try? store.read { tx -> [TaskRecord] in
            var sql = "SELECT \(Store.taskColumns) FROM tasks WHERE state IN ('placed', 'running') AND lease_expires < ?"
            var params: [SQLValue] = [.int(now)]
            if let onlyOwner {
                sql = "SELECT \(Store.taskColumns) FROM tasks WHERE state IN ('placed', 'running') AND (lease_expires < ? OR lease_owner = ?)"
                params.append(.text(onlyOwner))
            }
            return try tx.query(sql, params).map(Store.decodeTask)
        }) ?? []
        for t in expired {
            let handled: Bool? = try? store.write { tx -> Bool in
                try handleLostLease(tx, t, now: now)
                return true
            }
            if handled == true { changed += 1 }
            notify(t.id)
        }
        return changed
    }

    /// The lease rules of DESIGN §5 for a task whose executor is gone.
    func handleLostLease(_ tx: SQLExecutor, _ t: TaskRecord, now: Int64) throws {
        let clear: [String: SQLValue] = ["lease_owner": .null, "lease_expires": .null, "node": .null]
        if t.state == .placed {
            // Never started: safe to run again, idempotent or not.
            _ = try store.transition(tx, t.id, to: .queued, expect: [.placed], actor: "engine",
                                     reason: "lease of \(t.leaseOwner ?? "?") expired before the task started; re-queued",
                                     set: clear.merging(["attempts": .int(Int64(max(0, t.attempts - 1)))]) { a, _ in a }, epoch: t.leaseEpoch, at: now)
        } else if t.idempotent && t.attempts <= t.maxRetries + 10 {
            _ = try store.transition(tx, t.id, to: .queued, expect: [.running], actor: "engine",
                                     reason: "lease of \(t.leaseOwner ?? "?") expired while running; idempotent, so re-queued",
                                     set: clear, detail: ["lease_lost": true], epoch: t.leaseEpoch, at: now)
        } else {
            let why = t.idempotent ? "lease expired again after \(t.attempts) attempts; parked" :
                "lease of \(t.leaseOwner ?? "?") expired while running; not idempotent, so it is parked for an operator (its side effects may or may not have happened)"
            _ = try store.transition(tx, t.id, to: .inDoubt, expect: [.running], actor: "engine", reason: why,
                                     set: clear, detail: ["lease_lost": true], epoch: t.leaseEpoch, at: now)
        }
        try releaseLocks(tx, t.id)
    }

    /// `dlq replay`: dead (or in_doubt) tasks go back to the queue with a fresh attempt budget.
    public func replay(_ id: String, actor: String) throws(WardenError) -> TaskRecord {
        let store = self.store
        let t: TaskRecord = try store.write { tx in
            guard let cur = try store.task(tx, id) else { throw WardenError.notFound("unknown task \(quoted(id))") }
            guard cur.state == .dead || cur.state == .inDoubt else {
                throw WardenError(.failure, "task \(id) is \(cur.state.rawValue); only dead and in_doubt tasks are replayed")
            }
            guard let next = try store.transition(tx, id, to: .queued, actor: actor, reason: "replayed from the DLQ by \(actor)",
                                                  set: ["attempts": .int(0), "not_before": .int(0), "node": .null, "result": .null])
            else { throw WardenError(.failure, "task \(id) changed meanwhile") }
            return next
        }
        notify(id)
        return t
    }
}

/// Renews one attempt's lease every heartbeat until stopped.
final class LeaseKeeper: @unchecked Sendable {
    private let done = Signal()

    init(store: Store, task: String, epoch: Int64, leaseMs: Int64, everyMs: Int64) {
        let done = self.done
        startThread {
            while !done.wait(timeoutMs: everyMs) {
                try? store.renewLease(task: task, epoch: epoch, leaseMs: leaseMs)
            }
        }
    }

    func stop() { done.signal() }
}
