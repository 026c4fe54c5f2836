import Glibc
import WardenCore
import WardenStore
import WardenSystem

/// A workflow as stored.
public struct WorkflowRecord: Sendable, Hashable {
    public var id: String
    public var name: String
    public var tenant: String
    public var state: String   // running, succeeded, failed, canceled
    public var spec: WorkflowSpec
    public var specJSON: JSONValue
    public var input: JSONValue
    public var reason: String?
    public var createdAt: Int64
    public var updatedAt: Int64
    public var traceparent: String?
    public var submitter: String?

    public var isTerminal: Bool { state != "running" }
}

/// Workflows are driven from their durable state: each step becomes a task when every step it runs after
/// has succeeded, submitted with the idempotency key `wf:<id>:<step>`. Advancing is therefore safe to repeat
/// and to resume after a crash: a step whose task exists is never submitted again, so a completed step is
/// never re-run.
extension Engine {
    static func decodeWorkflow(_ r: SQLRow) -> WorkflowRecord? {
        guard let sj = r.json("spec"), let spec = try? WorkflowSpec.decode(sj) else { return nil }
        return WorkflowRecord(id: r.text("id") ?? "", name: r.text("name") ?? "", tenant: r.text("tenant") ?? "", state: r.text("state") ?? "",
                              spec: spec, specJSON: sj, input: r.json("input") ?? .object([:]), reason: r.text("reason"),
                              createdAt: r.int("created_at") ?? 0, updatedAt: r.int("updated_at") ?? 0,
                              traceparent: r.text("traceparent"), submitter: r.text("submitter"))
    }

    public func workflow(_ id: String) throws(WardenError) -> WorkflowRecord? {
        try store.read { tx in try tx.queryOne("SELECT * FROM workflows WHERE id = ?", [.text(id)]).flatMap(Self.decodeWorkflow) }
    }

    /// Validates and records a workflow, then submits the steps that can start.
    public func submitWorkflow(_ json: JSONValue, input: JSONValue, tenant: String, actor: String, traceparent: String? = nil) throws(WardenError) -> WorkflowRecord {
        try Self.validateTenant(tenant)
        let spec = try WorkflowSpec.decode(json)
        for (i, s) in spec.steps.enumerated() {
            var ts = TaskSpec(plugin: s.plugin, version: s.version, tool: s.tool)
            ts.tenant = tenant
            do throws(WardenError) { _ = try resolve(ts) } catch {
                throw WardenError(.dataError, "$.steps[\(i)].tool: \(error.message)", hint: error.hint)
            }
        }
        let now = Time.nowMs()
        let wf = WorkflowRecord(id: TaskID.make(prefix: "w", now: now), name: spec.name, tenant: tenant, state: "running", spec: spec,
                                specJSON: json, input: input, reason: nil, createdAt: now, updatedAt: now,
                                traceparent: traceparent ?? Tracer.newTraceparent(), submitter: actor)
        try store.write { tx in
            try tx.execute("INSERT INTO workflows (id, name, tenant, state, spec, input, reason, created_at, updated_at, traceparent, submitter) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                           [.text(wf.id), .text(wf.name), .text(tenant), .text("running"), .text(json.canonical), .text(input.canonical),
                            .null, .int(now), .int(now), .opt(wf.traceparent), .text(actor)])
            try store.appendAudit(tx, actor: actor, tenant: tenant, task: wf.id, action: "workflow.submitted",
                                  detail: ["name": .string(spec.name), "steps": .int(Int64(spec.steps.count))])
        }
        _ = advance(wf.id)
        return try workflow(wf.id) ?? wf
    }

    /// Step tasks of a workflow, by step id (the latest task if a step has several).
    public func stepTasks(_ id: String) throws(WardenError) -> [String: TaskRecord] {
        var out: [String: TaskRecord] = [:]
        for t in try store.tasks(workflow: id, limit: 100_000).reversed() { if let s = t.step { out[s] = t } }
        return out
    }

    /// Moves every running workflow forward. Returns how many changed.
    @discardableResult
    public func advanceWorkflows() -> Int {
        let ids = (try? store.read { tx in try tx.query("SELECT id FROM workflows WHERE state = 'running'", []).compactMap { $0.text("id") } }) ?? []
        return ids.reduce(0) { $0 + (advance($1) ? 1 : 0) }
    }

    /// Submits the steps whose upstream steps all succeeded, and settles the workflow when nothing is left.
    @discardableResult
    func advance(_ id: String) -> Bool {
        guard let wf = try? workflow(id), !wf.isTerminal, let tasks = try? stepTasks(id) else { return false }
        var changed = false
        var results: [String: JSONValue] = [:]
        for (s, t) in tasks where t.state == .succeeded { results[s] = t.result ?? .null }
        var failure: String?
        for (s, t) in tasks.sorted(by: { $0.key < $1.key }) where t.state.isTerminal && t.state != .succeeded {
            failure = failure ?? "step \(s) \(t.state.rawValue): \(t.reason ?? "no reason")"
        }
        if failure == nil {
            for step in wf.spec.steps where tasks[step.id] == nil {
                guard step.after.allSatisfy({ tasks[$0]?.state == .succeeded }) else { continue }
                do throws(WardenError) {
                    var ts = TaskSpec(plugin: step.plugin, version: step.version, tool: step.tool)
                    ts.input = try Template.render(step.input, input: wf.input, results: results)
                    ts.tenant = wf.tenant
                    ts.priority = step.priority
                    ts.idempotencyKey = "wf:\(wf.id):\(step.id)"
                    ts.retry = step.retry   // a step's retry overrides its plugin's
                    ts.timeoutMs = step.timeoutMs
                    ts.approvalRequired = step.approval ? true : nil
                    ts.resources = step.resources
                    ts.workflow = wf.id
                    ts.step = step.id
                    ts.traceparent = Tracer.child(of: wf.traceparent)
                    ts.submitter = "workflow:\(wf.id)"
                    _ = try submit(ts)
                    changed = true
                } catch {
                    failure = "step \(step.id) could not be submitted: \(error.message)"
                    break
                }
            }
        }
        // Settle: failed once nothing of it still runs; succeeded when every step succeeded.
        let now = try? stepTasks(id)
        let active = (now ?? [:]).values.contains { !$0.state.isTerminal }
        var final: (String, String?)?
        if let failure, !active { final = ("failed", failure) }
        if failure == nil, let now, wf.spec.steps.allSatisfy({ now[$0.id]?.state == .succeeded }) { final = ("succeeded", nil) }
        if let (state, reason) = final {
            _ = try? store.write { tx in
                let n = try tx.execute("UPDATE workflows SET state = ?, reason = ?, updated_at = ? WHERE id = ? AND state = 'running'",
                                       [.text(state), .opt(reason), .int(Time.nowMs()), .text(id)])
                if n > 0 {
                    try store.appendAudit(tx, actor: "engine", tenant: wf.tenant, task: id, action: "workflow.\(state)",
                                          detail: reason.map { ["reason": .string($0)] })
                }
            }
            changed = true
            notify(id)
        }
        return changed
    }

    /// Cancels a workflow and every step task that has not ended.
    public func cancelWorkflow(_ id: String, actor: String) throws(WardenError) -> WorkflowRecord {
        guard let wf = try workflow(id) else { throw WardenError.notFound("unknown workflow \(quoted(id))") }
        guard !wf.isTerminal else { throw WardenError(.failure, "workflow \(id) already ended \(wf.state)") }
        try store.write { tx in
            try tx.execute("UPDATE workflows SET state = 'canceled', reason = ?, updated_at = ? WHERE id = ? AND state = 'running'",
                           [.text("canceled by \(actor)"), .int(Time.nowMs()), .text(id)])
            try store.appendAudit(tx, actor: actor, tenant: wf.tenant, task: id, action: "workflow.canceled")
        }
        for (_, t) in try stepTasks(id) where !t.state.isTerminal {
            _ = try? cancel(t.id, actor: actor, reason: "workflow \(id) canceled by \(actor)")
        }
        notify(id)
        return try workflow(id) ?? wf
    }

    public func workflowJSON(_ wf: WorkflowRecord) throws(WardenError) -> JSONValue {
        let tasks = try stepTasks(wf.id)
        var steps: [JSONValue] = []
        for s in wf.spec.steps {
            let t = tasks[s.id]
            var state = t?.state.rawValue ?? "pending"
            if t == nil && (wf.state != "running") { state = "skipped" }
            steps.append(["id": .string(s.id), "tool": .string("\(s.plugin)\(s.tool.map { ".\($0)" } ?? "")"),
                          "after": .array(s.after.map { .string($0) }), "state": .string(state), "task": .optional(t?.id),
                          "attempts": .int(Int64(t?.attempts ?? 0)), "reason": .optional(t?.reason), "result": .optional(t?.result)])
        }
        return ["id": .string(wf.id), "name": .string(wf.name), "tenant": .string(wf.tenant), "state": .string(wf.state),
                "reason": .optional(wf.reason), "created_at": .string(Time.iso8601(wf.createdAt)),
                "updated_at": .string(Time.iso8601(wf.updatedAt)), "traceparent": .optional(wf.traceparent),
                "input": wf.input, "steps": .array(steps)]
    }
}
