import Testing
import WardenCore
import WardenStore
@testable import WardenEngine

/// The task state machine of DESIGN §5 as the store enforces it, and cancellation.
@Suite struct TaskStateTests {
    @Test func terminalStatesAreTheDesignedOnesAndOnlyTheDLQOnesMoveAgain() {
        let terminal = Set(TaskState.allCases.filter(\.isTerminal))
        #expect(terminal == [.succeeded, .dead, .rejected, .canceled, .inDoubt])
        for s in TaskState.allCases { #expect(TaskState.transitions[s] != nil, "no transition entry for \(s)") }
        // Finished for good.
        for s: TaskState in [.succeeded, .rejected, .canceled] {
            #expect(TaskState.transitions[s]?.isEmpty == true, "\(s) must not move")
        }
        // `dlq replay` re-queues dead and in_doubt tasks, and nothing else takes them anywhere but the DLQ.
        #expect(TaskState.dead.canTransition(to: .queued))
        #expect(TaskState.inDoubt.canTransition(to: .queued))
        #expect(!TaskState.dead.canTransition(to: .running))
        #expect(!TaskState.inDoubt.canTransition(to: .succeeded))
        // Every state a task rests in before it ends can be canceled.
        for s: TaskState in [.submitted, .awaitingApproval, .queued, .placed, .running, .failed] {
            #expect(s.canTransition(to: .canceled), "\(s) → canceled")
        }
        // No skipping the scheduler or the executor.
        #expect(!TaskState.queued.canTransition(to: .running))
        #expect(!TaskState.queued.canTransition(to: .succeeded))
        #expect(!TaskState.placed.canTransition(to: .succeeded))
        #expect(!TaskState.awaitingApproval.canTransition(to: .placed))
        // A failure is decided at once: retried (queued) or dead (or canceled, like any non-terminal state),
        // never succeeded.
        #expect(TaskState.transitions[.failed] == [.queued, .dead, .canceled])
    }

    /// Every (from, to) pair through the store: the legal ones are applied and recorded, every other one is
    /// refused with exit 1 and leaves the task, its history and the audit log as they were.
    @Test func theStoreAppliesExactlyTheTransitionsOfTheTable() throws {
        let h = try EngineHarness()
        var refused = 0, applied = 0
        try h.store.write { tx in
            for from in TaskState.allCases {
                for to in TaskState.allCases {
                    let t = TaskRecord(id: TaskID.make(), plugin: "kit", version: "1.0.0", tool: "echo", tenant: "default",
                                       state: from, createdAt: Time.nowMs())
                    try h.store.insertTask(tx, t, actor: "test", rule: nil)
                    let auditBefore = try tx.queryOne("SELECT seq FROM audit_head WHERE id = 1", [])?.int("seq")
                    if from.canTransition(to: to) {
                        let moved = try h.store.transition(tx, t.id, to: to, actor: "test")
                        #expect(moved?.state == to, "\(from) → \(to) should apply")
                        let events = try tx.query("SELECT from_state, to_state FROM task_events WHERE task = ? ORDER BY id", [.text(t.id)])
                        #expect(events.count == 2)
                        #expect(events.last?.text("from_state") == from.rawValue)
                        #expect(events.last?.text("to_state") == to.rawValue)
                        applied += 1
                    } else {
                        do {
                            try h.store.transition(tx, t.id, to: to, actor: "test")
                            Issue.record("\(from) → \(to) was applied; the table forbids it")
                        } catch let e as WardenError {
                            #expect(e.code == .failure)
                            #expect(e.message.contains("is \(from.rawValue); it cannot become \(to.rawValue)"))
                        }
                        // With `expect`, a refused move is a nil (someone else moved it first), not an error.
                        #expect(try h.store.transition(tx, t.id, to: to, expect: [from], actor: "test") == nil)
                        #expect(try h.store.task(tx, t.id)?.state == from)
                        let events = try tx.queryOne("SELECT COUNT(*) AS n FROM task_events WHERE task = ?", [.text(t.id)])?.int("n")
                        #expect(events == 1)
                        #expect(try tx.queryOne("SELECT seq FROM audit_head WHERE id = 1", [])?.int("seq") == auditBefore)
                        refused += 1
                    }
                }
            }
        }
        let n = TaskState.allCases.count
        #expect(applied + refused == n * n)
        #expect(applied == TaskState.transitions.values.reduce(0) { $0 + $1.count })
        #expect(try h.store.verifyAudit().problem == nil)
    }

    @Test func cancelingAQueuedTaskEndsItAndFreesItsPlace() throws {
        let h = try EngineHarness()
        try h.setPolicy(["tenants": ["t": ["quota": ["tasks": 1]]], "default": "allow"])
        let t = try h.submit(tenant: "t")
        #expect(try h.usage("t").queued == 1)
        let c = try h.engine.cancel(t.id, actor: "ops", reason: "not needed")
        #expect(c.state == .canceled)
        #expect(c.reason == "not needed")
        #expect(try h.usage("t").queued == 0)
        #expect(try h.usage("t").tasks == 0)
        #expect(try h.store.history(t.id).last?.to == .canceled)
        #expect(try h.store.auditRecords(task: t.id).last?.action == "task.canceled")
        // Its quota is free again.
        #expect(try h.submit(tenant: "t").state == .queued)

        // Canceling again is refused (exit 1) and changes nothing.
        do throws(WardenError) {
            _ = try h.engine.cancel(t.id, actor: "ops")
            Issue.record("a second cancel succeeded")
        } catch {
            #expect(error.code == .failure)
            #expect(error.message.contains("already ended canceled"))
        }
        #expect(try h.store.history(t.id).count == 2)
        // An unknown id is exit 66.
        do throws(WardenError) {
            _ = try h.engine.cancel("tnosuchtask", actor: "ops")
            Issue.record("canceled an unknown task")
        } catch {
            #expect(error.code == .noInput)
        }
    }

    @Test func aFinishedTaskCannotBeCanceled() throws {
        let h = try EngineHarness()
        try h.engine.registerNode()
        let t = try h.submit()
        #expect(try h.runAttempt(t.id).state == .succeeded)
        #expect(throws: WardenError.self) { try h.engine.cancel(t.id, actor: "ops") }
        #expect(try h.task(t.id).state == .succeeded)
    }

    /// DESIGN §5a: canceling the parent cancels its children (queued or already running); DESIGN §5: tasks
    /// that run `--after` it are canceled with the reason. Unrelated work is untouched.
    @Test func cancelingAParentCancelsItsChildrenAndItsDependents() throws {
        let h = try EngineHarness()
        try h.engine.registerNode()
        let parent = try h.submit()
        var childSpec = EngineHarness.spec()
        childSpec.parent = parent.id
        childSpec.submitter = "agent:\(parent.id)"
        let queuedChild = try h.submit(childSpec)
        let runningChild = try h.submit(childSpec)
        let placed = try #require(try h.engine.placeLocally(runningChild.id).placed)
        try h.move(runningChild.id, to: .running, expect: [.placed], epoch: placed.leaseEpoch)
        var depSpec = EngineHarness.spec()
        depSpec.after = [parent.id]
        let dependent = try h.submit(depSpec)
        let unrelated = try h.submit()

        #expect(try h.engine.cancel(parent.id, actor: "ops").state == .canceled)
        for c in [queuedChild, runningChild] {
            let t = try h.task(c.id)
            #expect(t.state == .canceled)
            #expect(t.reason == "parent \(parent.id) was canceled")
        }
        let d = try h.task(dependent.id)
        #expect(d.state == .canceled)
        #expect(d.reason == "dependency \(parent.id) was canceled")
        #expect(try h.task(unrelated.id).state == .queued)
        // What the running child held on the node is free again.
        #expect(try h.store.nodes().first { $0.name == "local" }?.allocated == .zero)
    }

    /// An agent's child may be an agent too: canceling the top cancels every generation below it, and the
    /// tasks that wait `--after` any of them.
    @Test func cancelingAParentCancelsGrandchildrenAndTheirDependents() throws {
        let h = try EngineHarness()
        let top = try h.submit()
        func submitChild(of p: TaskRecord) throws -> TaskRecord {
            var s = EngineHarness.spec()
            s.parent = p.id
            s.submitter = "agent:\(p.id)"
            return try h.submit(s)
        }
        let child = try submitChild(of: top)
        let grandchild = try submitChild(of: child)
        let greatGrandchild = try submitChild(of: grandchild)
        var depSpec = EngineHarness.spec()
        depSpec.after = [grandchild.id]
        let dependent = try h.submit(depSpec)

        try h.engine.cancel(top.id, actor: "ops")
        #expect(try h.task(child.id).reason == "parent \(top.id) was canceled")
        #expect(try h.task(grandchild.id).reason == "parent \(child.id) was canceled")
        #expect(try h.task(greatGrandchild.id).reason == "parent \(grandchild.id) was canceled")
        for t in [child, grandchild, greatGrandchild, dependent] { #expect(try h.task(t.id).state == .canceled) }
        #expect(try h.task(dependent.id).reason == "dependency \(grandchild.id) was canceled")
        #expect(try h.tasks(.queued).isEmpty)
    }

    @Test func aTaskSubmittedAfterAFailedDependencyIsCanceledAtOnce() throws {
        let h = try EngineHarness()
        let dep = try h.submit()
        try h.engine.cancel(dep.id, actor: "ops")
        var s = EngineHarness.spec()
        s.after = [dep.id]
        let t = try h.submit(s)
        #expect(t.state == .canceled)
        #expect(t.reason == "dependency \(dep.id) ended canceled")
        // An unknown dependency is exit 66, and nothing is recorded.
        s.after = ["tnosuchtask"]
        #expect(h.refusal(s)?.code == .noInput)
        #expect(try h.tasks().count == 2)
    }
}
