import WardenCore
import WardenPlugins
import WardenStore
import WardenSystem

/// The answer to a submission: the task (new, or the first one with the same idempotency key).
public struct Submission: Sendable {
    public var task: TaskRecord
    public var existing: Bool
}

extension Engine {
    public static func validateTenant(_ t: String, code: ExitCode = .usage) throws(WardenError) {
        let ok = !t.isEmpty && t.utf8.count <= 64 && t.utf8.allSatisfy { c in
            (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == 45 || c == 95 || c == 46
        }
        if !ok { throw WardenError.invalid("--tenant", "invalid tenant \(quoted(t)) (letters, digits, '-', '_', '.')", code: code) }
    }

    /// Resolves `plugin[@version]` and the tool (the only tool when the plugin has one).
    public func resolve(_ spec: TaskSpec) throws(WardenError) -> (PluginRecord, PluginManifest.Tool) {
        try resolve(spec, generationMaxAgeNs: 0).resolved
    }

    func resolve(_ spec: TaskSpec, generationMaxAgeNs: UInt64) throws(WardenError) -> (resolved: (PluginRecord, PluginManifest.Tool), generation: Int64) {
        let (found, generation) = try plugin(spec.plugin, version: spec.version, generationMaxAgeNs: generationMaxAgeNs)
        do throws(WardenError) {
            return (try resolve(spec, found), generation)
        } catch {
            // An unknown plugin or tool is only reported from fresh records.
            if generationMaxAgeNs > 0 { return try resolve(spec, generationMaxAgeNs: 0) }
            throw error
        }
    }

    private func resolve(_ spec: TaskSpec, _ found: PluginRecord?) throws(WardenError) -> (PluginRecord, PluginManifest.Tool) {
        guard let p = found else {
            let known = (try? store.plugins())?.map { "\($0.name)@\($0.version)" } ?? []
            throw WardenError.notFound("unknown plugin \(quoted(spec.plugin + (spec.version.map { "@\($0)" } ?? "")))",
                                       hint: known.isEmpty ? "no plugins are registered; see `warden plugin register`" : "registered: \(known.joined(separator: ", "))")
        }
        if let name = spec.tool {
            guard let t = p.tools.first(where: { $0.name == name }) else {
                throw WardenError.notFound("plugin \(p.name) has no tool \(quoted(name))", hint: "its tools: \(p.tools.map(\.name).joined(separator: ", "))")
            }
            return (p, t)
        }
        guard p.tools.count == 1 else {
            throw WardenError(.usage, "plugin \(p.name) has \(p.tools.count) tools; name one as \(p.name).TOOL",
                              hint: "its tools: \(p.tools.map(\.name).joined(separator: ", "))")
        }
        return (p, p.tools[0])
    }

    /// Admission (DESIGN §5): input schema, policy rules, tenant quotas, rate limits, queue depth — in that
    /// order — then one durable write. A rejected call is recorded as a `rejected` task naming its reason
    /// and rule, and thrown as an error with the matching exit code.
    @discardableResult
    public func submit(_ spec: TaskSpec) throws(WardenError) -> Submission {
        // The plugin comes from a cache whose generation may be a second old (no read per submission); the
        // write checks the generation, and a registration that changed in between means admitting again.
        for maxAge: UInt64 in [1_000_000_000, 0, 0] {
            if let s = try admit(spec, generationMaxAgeNs: maxAge) { return s }
        }
        throw WardenError(.unavailable, "plugin \(spec.plugin) is being re-registered; retry")
    }

    /// One admission; nil when the plugin generation changed between resolving and writing.
    private func admit(_ spec: TaskSpec, generationMaxAgeNs: UInt64) throws(WardenError) -> Submission? {
        try Self.validateTenant(spec.tenant)
        let started = Time.monotonicNs()
        let ((plugin, tool), generation) = try resolve(spec, generationMaxAgeNs: generationMaxAgeNs)
        let m = plugin.manifest
        let now = Time.nowMs()
        var t = TaskRecord(id: TaskID.make(now: now), plugin: plugin.name, version: plugin.version, tool: tool.name,
                           tenant: spec.tenant, state: .queued, priority: spec.priority, input: spec.input,
                           resources: spec.resources ?? m.resources, timeoutMs: spec.timeoutMs ?? m.timeoutMs, createdAt: now)
        let retry = spec.retry ?? m.retry
        t.maxRetries = retry.max
        t.retryInitialMs = retry.initialBackoffMs
        t.retryMaxMs = retry.maxBackoffMs
        t.idempotencyKey = spec.idempotencyKey
        t.idempotent = m.idempotent
        t.parent = spec.parent
        t.workflow = spec.workflow
        t.step = spec.step
        t.traceparent = spec.traceparent ?? Tracer.newTraceparent()
        t.locks = Array(Set(spec.locks)).sorted()
        t.after = spec.after
        t.submitter = spec.submitter

        // 1. Input schema. 2. Policy.
        var rejection: (code: ExitCode, reason: String, rule: String?)?
        do throws(WardenError) {
            try JSONSchema.validate(spec.input, schema: tool.inputSchema, path: "$.input")
        } catch {
            rejection = (.dataError, "invalid input: \(error.message)", "schema")
        }
        let policy = try self.policy()
        let decision = policy?.decide(tenant: spec.tenant, plugin: plugin.name, tool: tool.name) ?? Policy.none
        t.rule = decision.rule
        if rejection == nil && decision.effect == .deny {
            rejection = (.denied, "denied by policy rule \(quoted(decision.rule))", decision.rule)
        }
        // Agents' child calls: depth and fan-out budgets stop runaway recursion and fan-out.
        if rejection == nil, let parent = spec.parent {
            let maxDepth = policy?.maxDepth ?? 3, maxChildren = policy?.maxChildren ?? 20
            var depth = 1
            var cursor: String? = parent
            while let c = cursor, depth <= maxDepth + 1 {
                cursor = try store.task(c)?.parent
                if cursor != nil { depth += 1 }
            }
            let siblings = try store.read { tx in try tx.queryOne("SELECT COUNT(*) AS n FROM tasks WHERE parent = ? AND state <> 'rejected'", [.text(parent)])?.int("n") ?? 0 }
            if depth > maxDepth {
                rejection = (.denied, "agent depth budget: this call would be \(depth) levels below a top-level task (the policy allows \(maxDepth))", "agent-depth")
            } else if siblings >= Int64(maxChildren) {
                rejection = (.denied, "agent fan-out budget: task \(parent) already made \(siblings) calls (the policy allows \(maxChildren))", "agent-fanout")
            }
        }
        let needsApproval = decision.effect == .requireApproval || m.approval == .required || spec.approvalRequired == true
        let approvalRule = decision.effect == .requireApproval ? decision.rule : (m.approval == .required ? "manifest" : "request")
        let tenantConfig = policy?.tenant(spec.tenant) ?? Policy.Tenant()
        let maxQueuedTotal = config.maxQueuedTotal
        let spans = config.spans

        let store = self.store
        var stale = false
        let result: Result<Submission, WardenError>
        do throws(WardenError) {
          result = try self.store.write { tx in
            if try store.pluginGeneration(tx) != generation {
                stale = true
                return .failure(WardenError(.unavailable, "plugin generation changed"))
            }
            if let key = t.idempotencyKey, let first = try store.task(tx, tenant: t.tenant, idempotencyKey: key) {
                return .success(Submission(task: first, existing: true))
            }
            for a in t.after where try store.task(tx, a) == nil {
                return .failure(WardenError.notFound("--after: unknown task \(quoted(a))"))
            }
            var reject = rejection
            let q = tenantConfig.quota
            if reject == nil && (q.cpuMillis != nil || q.memoryBytes != nil || q.tasks != nil) {
                // 3. Quotas: the tenant's non-terminal work plus this task.
                let u = try store.usage(tx, tenant: t.tenant)
                if let cpu = q.cpuMillis, u.cpuMillis + t.resources.cpuMillis > cpu {
                    reject = (.unavailable, "quota: tenant \(t.tenant) would use cpu \(Quantity.formatCPU(u.cpuMillis + t.resources.cpuMillis)) of its \(Quantity.formatCPU(cpu))", "quota")
                } else if let mem = q.memoryBytes, u.memoryBytes + t.resources.memoryBytes > mem {
                    reject = (.unavailable, "quota: tenant \(t.tenant) would use memory \(Quantity.formatBytes(u.memoryBytes + t.resources.memoryBytes)) of its \(Quantity.formatBytes(mem))", "quota")
                } else if let n = q.tasks, u.tasks + 1 > n {
                    reject = (.unavailable, "quota: tenant \(t.tenant) already has \(u.tasks) unfinished tasks of its \(n)", "quota")
                }
            }
            if reject == nil, let rate = tenantConfig.rateLimit, let wait = try store.takeToken(tx, key: "tenant:\(t.tenant)", rate: rate, now: now) {
                reject = (.unavailable, "rate limit: tenant \(t.tenant) is limited to \(rate.text); retry after \(Quantity.formatDuration(wait))", "rate-limit")
            }
            if reject == nil, let rate = m.rateLimit, let wait = try store.takeToken(tx, key: "plugin:\(t.plugin)", rate: rate, now: now) {
                reject = (.unavailable, "rate limit: plugin \(t.plugin) is limited to \(rate.text); retry after \(Quantity.formatDuration(wait))", "rate-limit")
            }
            if reject == nil {
                // 5. Queue depth: refuse rather than grow without bound.
                if let maxQ = tenantConfig.maxQueued, try store.usage(tx, tenant: t.tenant).queued >= maxQ {
                    reject = (.unavailable, "queue full: tenant \(t.tenant) has \(maxQ) queued tasks; retry after 1s", "queue-depth")
                } else if try store.usage(tx, tenant: "*").queued >= maxQueuedTotal {
                    reject = (.unavailable, "queue full: \(maxQueuedTotal) tasks are queued; retry after 1s", "queue-depth")
                }
            }
            if let r = reject {
                let outcome = r.code == .denied ? "denied" : (r.code == .dataError ? "invalid" : (r.rule ?? "rejected"))
                try store.bump(tx, "warden_admissions_total", [("outcome", outcome)])
                var rejected = t
                rejected.state = .rejected
                rejected.reason = r.reason
                rejected.idempotencyKey = nil   // a rejection must not block a later retry with the same key
                rejected.rule = r.rule
                try store.insertTask(tx, rejected, actor: t.submitter, rule: r.rule,
                                     detail: ["admission": "rejected", "decided_by": .optional(r.rule)])
                return .failure(WardenError(r.code, "rejected (task \(t.id)): \(r.reason)"))
            }
            if needsApproval {
                t.state = .awaitingApproval
                t.approvalDeadline = now + (policy?.approvalTimeoutMs ?? 24 * 3_600_000)
                t.reason = "awaiting approval (rule \(approvalRule))"
            }
            try store.insertTask(tx, t, actor: t.submitter, rule: needsApproval ? approvalRule : decision.rule,
                                 detail: ["admission": needsApproval ? "approval_required" : "admitted",
                                          "traceparent": .optional(t.traceparent)])
            try store.bump(tx, "warden_admissions_total", [("outcome", needsApproval ? "approval_required" : "admitted")])
            if spans { try Tracer.insert(tx, name: "admit", task: t, startNs: started, endNs: Time.monotonicNs(), attributes: ["rule": t.rule ?? ""]) }
            // A dependency that already failed cancels the new task at once.
            for a in t.after {
                if let dep = try store.task(tx, a), dep.state.isTerminal && dep.state != .succeeded {
                    let canceled = try store.transition(tx, t.id, to: .canceled, actor: "engine",
                                                        reason: "dependency \(a) ended \(dep.state.rawValue)")
                    return .success(Submission(task: canceled ?? t, existing: false))
                }
            }
            return .success(Submission(task: t, existing: false))
          }
        } catch {
            // Two submissions with one key raced: the loser's insert hit the unique index. Return the winner.
            if let key = t.idempotencyKey,
               let first = try? store.read({ tx in try store.task(tx, tenant: t.tenant, idempotencyKey: key) }) {
                return Submission(task: first, existing: true)
            }
            throw error
        }
        if stale { return nil }
        switch result {
        case .success(let s):
            notify(s.task.id)
            return s
        case .failure(let e):
            throw e
        }
    }
}
