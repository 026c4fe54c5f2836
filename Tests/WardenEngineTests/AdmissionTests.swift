import Testing
import WardenCore
import WardenStore
@testable import WardenEngine

/// Admission (DESIGN §5): input schema, policy rules, tenant quotas, rate limits, queue depth, in that
/// order; each refusal has the exit code of DESIGN §7, is recorded (a `rejected` task, its audit record,
/// the admissions counter) and queues nothing.
@Suite struct AdmissionTests {
    /// The one rejected task of `tenant`, checked to be recorded the same way for every kind of refusal.
    func recordedRejection(_ h: EngineHarness, tenant: String = "default", rule: String) throws -> TaskRecord {
        let rejected = try h.tasks(.rejected, tenant: tenant)
        #expect(rejected.count == 1)
        let t = try #require(rejected.first)
        #expect(t.rule == rule)
        let audit = try h.store.auditRecords(task: t.id)
        #expect(audit.count == 1)
        #expect(audit.first?.action == "task.rejected")
        #expect(audit.first?.rule == rule)
        #expect(audit.first?.detail?["admission"] == "rejected")
        #expect(try h.store.verifyAudit().problem == nil)
        return t
    }

    @Test func invalidInputIsRefusedWith65NamingThePathAndQueuesNothing() throws {
        let h = try EngineHarness()
        let e = try #require(h.refusal(EngineHarness.spec("count", input: ["txt": "x"])))
        #expect(e.code == .dataError)
        #expect(e.code.rawValue == 65)
        #expect(e.message.contains("invalid input: $.input"))
        #expect(e.message.contains("text"))

        let t = try recordedRejection(h, rule: "schema")
        #expect(e.message.contains(t.id))
        #expect(t.reason?.hasPrefix("invalid input:") == true)
        #expect(try h.tasks(.queued).isEmpty)
        #expect(try h.usage("default").queued == 0)
        #expect(try h.usage("default").tasks == 0)
        #expect(try h.admissions("invalid") == 1)
        #expect(try h.admissions("admitted") == 0)

        // The same tool with input that matches its schema is admitted and queued.
        let ok = try h.submit("count", input: ["text": "a b c"])
        #expect(ok.state == .queued)
        #expect(try h.admissions("admitted") == 1)
    }

    @Test func aPolicyDenyIsRefusedWith77NamingItsRule() throws {
        let h = try EngineHarness()
        try h.setPolicy([
            "rules": [["id": "no-count-for-guests", "effect": "deny", "tenants": ["guest"], "tools": ["kit.count"]],
                      ["id": "allow-rest", "effect": "allow"]],
        ])
        let e = try #require(h.refusal(EngineHarness.spec("count", tenant: "guest", input: ["text": "x"])))
        #expect(e.code == .denied)
        #expect(e.code.rawValue == 77)
        #expect(e.message.contains("denied by policy rule \"no-count-for-guests\""))
        let t = try recordedRejection(h, tenant: "guest", rule: "no-count-for-guests")
        #expect(t.reason == "denied by policy rule \"no-count-for-guests\"")
        #expect(try h.tasks(.queued).isEmpty)
        #expect(try h.admissions("denied") == 1)

        // Another tenant, and another tool for the guest, are admitted by the rule that matched, which is recorded.
        let other = try h.submit("count", tenant: "staff", input: ["text": "x"])
        #expect(other.state == .queued)
        #expect(other.rule == "allow-rest")
        #expect(try h.store.auditRecords(task: other.id).first?.rule == "allow-rest")
        #expect(try h.submit("echo", tenant: "guest").rule == "allow-rest")
    }

    @Test func aCallNoRuleMatchesGetsTheDefaultDenyNamedDefault() throws {
        let h = try EngineHarness()
        try h.setPolicy(["rules": [["id": "only-once", "effect": "allow", "plugins": ["once"]]]])
        #expect(try h.submit("echo", plugin: "once").rule == "only-once")
        let e = try #require(h.refusal(EngineHarness.spec("echo", plugin: "kit")))
        #expect(e.code == .denied)
        #expect(e.message.contains("denied by policy rule \"default\""))
        _ = try recordedRejection(h, rule: "default")
    }

    @Test func aTenantOverItsQuotaIsRefusedWith69UntilItsWorkFinishes() throws {
        let h = try EngineHarness()
        try h.setPolicy(["tenants": ["small": ["quota": ["cpu": "250m", "memory": "1Gi", "tasks": 2]]], "default": "allow"])
        let first = try h.submit(tenant: "small", cpu: 200)
        let e = try #require(h.refusal(EngineHarness.spec(tenant: "small", cpu: 100)))
        #expect(e.code == .unavailable)
        #expect(e.code.rawValue == 69)
        #expect(e.message.contains("quota: tenant small would use cpu 300m of its 250m"))
        let t = try recordedRejection(h, tenant: "small", rule: "quota")
        #expect(t.resources.cpuMillis == 100)
        #expect(try h.tasks(.queued, tenant: "small").map(\.id) == [first.id])
        #expect(try h.usage("small").queued == 1)
        #expect(try h.admissions("quota") == 1)

        // Memory counts too.
        let mem = try #require(h.refusal(EngineHarness.spec(tenant: "small", cpu: 10, memory: 1 * gi)))
        #expect(mem.code == .unavailable)
        #expect(mem.message.contains("memory"))

        // The quota is on unfinished work: once the first task ends, the same request is admitted.
        try h.engine.cancel(first.id, actor: "test")
        #expect(try h.submit(tenant: "small", cpu: 100).state == .queued)
        // And on the number of unfinished tasks (2).
        _ = try h.submit(tenant: "small", cpu: 10)
        let count = try #require(h.refusal(EngineHarness.spec(tenant: "small", cpu: 10)))
        #expect(count.code == .unavailable)
        #expect(count.message.contains("already has 2 unfinished tasks of its 2"))
    }

    @Test func aRateLimitedTenantIsRefusedWith69AndARetryAfter() throws {
        let h = try EngineHarness()
        try h.setPolicy(["tenants": ["chatty": ["rateLimit": "2/m"]], "default": "allow"])
        _ = try h.submit(tenant: "chatty")
        _ = try h.submit(tenant: "chatty")
        let e = try #require(h.refusal(EngineHarness.spec(tenant: "chatty")))
        #expect(e.code == .unavailable)
        #expect(e.message.contains("rate limit: tenant chatty is limited to 2/m; retry after"))
        let t = try recordedRejection(h, tenant: "chatty", rule: "rate-limit")
        #expect(t.idempotencyKey == nil)
        #expect(try h.tasks(.queued, tenant: "chatty").count == 2)
        #expect(try h.admissions("rate-limit") == 1)
        // Buckets are per tenant: another tenant is not limited by chatty's.
        #expect(try h.submit(tenant: "quiet").state == .queued)
    }

    @Test func aFullQueueIsRefusedWith69RatherThanGrowing() throws {
        let h = try EngineHarness()
        try h.setPolicy(["tenants": ["burst": ["maxQueued": 2]], "default": "allow"])
        _ = try h.submit(tenant: "burst")
        _ = try h.submit(tenant: "burst")
        let e = try #require(h.refusal(EngineHarness.spec(tenant: "burst")))
        #expect(e.code == .unavailable)
        #expect(e.message.contains("queue full: tenant burst has 2 queued tasks"))
        _ = try recordedRejection(h, tenant: "burst", rule: "queue-depth")
        #expect(try h.tasks(.queued, tenant: "burst").count == 2)
    }

    /// Each check runs only when the ones before it passed: a call that breaks several rules is refused by
    /// the first, and a refusal takes no rate-limit token.
    @Test func checksRunInTheDesignedOrderAndARefusalTakesNoToken() throws {
        let h = try EngineHarness()
        try h.setPolicy([
            "tenants": ["guest": ["quota": ["tasks": 1], "rateLimit": "2/m"]],
            "rules": [["id": "no-count-for-guests", "effect": "deny", "tenants": ["guest"], "tools": ["kit.count"]]],
            "default": "allow",
        ])
        // Invalid input and denied: the schema decides.
        #expect(h.refusal(EngineHarness.spec("count", tenant: "guest", input: ["nope": 1]))?.code == .dataError)
        // Valid input, denied: the policy decides.
        #expect(h.refusal(EngineHarness.spec("count", tenant: "guest", input: ["text": "x"]))?.code == .denied)
        // Allowed: admitted (token 1 of 2), which fills the quota of 1 task.
        let first = try h.submit(tenant: "guest")
        // Over quota (and a token left): the quota decides.
        let q = try #require(h.refusal(EngineHarness.spec(tenant: "guest")))
        #expect(q.message.hasPrefix("rejected (task ") && q.message.contains("quota:"))
        try h.engine.cancel(first.id, actor: "test")
        // Had any refusal above taken a token, this would be rate-limited: it is admitted with token 2.
        let second = try h.submit(tenant: "guest")
        try h.engine.cancel(second.id, actor: "test")
        let r = try #require(h.refusal(EngineHarness.spec(tenant: "guest")))
        #expect(r.message.contains("rate limit"))

        #expect(try h.tasks(.rejected, tenant: "guest").compactMap(\.rule).sorted()
                == ["no-count-for-guests", "quota", "rate-limit", "schema"])
        for outcome in ["invalid", "denied", "quota", "rate-limit"] { #expect(try h.admissions(outcome) == 1) }
        #expect(try h.admissions("admitted") == 2)
        #expect(try h.tasks(.queued).isEmpty)
    }

    @Test func aRequireApprovalRuleParksTheTaskUntilSomeoneDecides() throws {
        let h = try EngineHarness()
        try h.setPolicy(["rules": [["id": "approve-echo", "effect": "require_approval", "tools": ["kit.echo"]]],
                         "default": "allow", "approvalTimeout": "1h"])
        let a = try h.submit()
        #expect(a.state == .awaitingApproval)
        #expect(a.reason == "awaiting approval (rule approve-echo)")
        #expect(try h.admissions("approval_required") == 1)
        #expect(try h.engine.approve(a.id, actor: "ops", reason: "fine").state == .queued)

        let d = try h.submit()
        let denied = try h.engine.deny(d.id, actor: "ops", reason: "no")
        #expect(denied.state == .rejected)
        #expect(denied.reason == "denied by ops: no")

        // An approval nobody gives before the deadline is rejected by the sweep.
        let late = try h.submit()
        #expect(h.engine.sweep(now: Time.nowMs() + 2 * 3_600_000) >= 1)
        let expired = try h.task(late.id)
        #expect(expired.state == .rejected)
        #expect(expired.reason == "approval timed out")
        // Approving something that is not waiting is an error, not a silent re-queue.
        #expect(throws: WardenError.self) { try h.engine.approve(expired.id, actor: "ops", reason: nil) }
    }

    // MARK: idempotency keys

    @Test func theSameIdempotencyKeyReturnsTheFirstTask() throws {
        let h = try EngineHarness()
        var s = EngineHarness.spec(input: ["n": 1])
        s.idempotencyKey = "order-42"
        let first = try h.engine.submit(s)
        #expect(!first.existing)
        let again = try h.engine.submit(s)
        #expect(again.existing)
        #expect(again.task.id == first.task.id)

        // DESIGN §5: a submission with the same key returns the first task, whatever its input: the new input
        // is not recorded and nothing new is queued.
        s.input = ["n": 2]
        let changed = try h.engine.submit(s)
        #expect(changed.existing)
        #expect(changed.task.id == first.task.id)
        #expect(changed.task.input == ["n": 1])
        #expect(try h.tasks().count == 1)
        #expect(try h.admissions("admitted") == 1)

        // Keys are per tenant.
        s.tenant = "other"
        let otherTenant = try h.engine.submit(s)
        #expect(!otherTenant.existing)
        #expect(otherTenant.task.id != first.task.id)

        // The key keeps answering after the task has ended.
        try h.engine.cancel(first.task.id, actor: "test")
        s.tenant = "default"
        #expect(try h.engine.submit(s).task.id == first.task.id)
    }

    @Test func aRejectedSubmissionDoesNotTakeItsIdempotencyKey() throws {
        let h = try EngineHarness()
        var bad = EngineHarness.spec("count", input: ["txt": "x"])
        bad.idempotencyKey = "k1"
        #expect(h.refusal(bad)?.code == .dataError)
        var good = bad
        good.input = ["text": "x"]
        let s = try h.engine.submit(good)
        #expect(!s.existing)
        #expect(s.task.state == .queued)
        #expect(try h.engine.submit(good).task.id == s.task.id)
    }

    /// Admission resolves plugins from a per-process cache and checks the registration generation inside its
    /// write: a plugin re-registered or removed by another process a moment ago is seen at once.
    @Test func aRegistrationChangedByAnotherProcessIsSeenByTheNextSubmission() throws {
        let h = try EngineHarness()
        #expect(try h.submit("echo").version == "1.0.0")   // fills this engine's cache
        let other = Engine(store: h.store)
        let pdir = try EngineHarness.pluginDir("\(h.dir)/plugins/kit2", manifest: """
            {"name": "kit", "version": "2.0.0", "kind": "process", "exec": ["bin/tool"],
             "tools": [{"name": "echo", "description": "returns its input", "inputSchema": {"type": "object"}},
                       {"name": "shout", "description": "new in 2.0.0", "inputSchema": {"type": "object"}}],
             "resources": {"cpu": "100m", "memory": "32Mi"}, "timeout": "10s"}
            """)
        try other.registry.register(pdir, trusted: false, actor: "test")
        #expect(try h.submit("echo").version == "2.0.0")
        #expect(try h.submit("shout").version == "2.0.0")
        _ = try h.store.removePlugin("kit", version: nil, actor: "test")
        let e = try #require(h.refusal(EngineHarness.spec("echo")))
        #expect(e.code == .noInput)
        #expect(e.message.contains("unknown plugin \"kit\""))
    }
}
