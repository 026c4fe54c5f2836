import Testing
import WardenCore
import WardenPlugins
import WardenStore
@testable import WardenEngine

/// Leases and their epochs (DESIGN §5): an expired lease re-queues an idempotent task and parks a
/// non-idempotent one as `in_doubt`; every placement starts a new epoch, and an executor holding an older
/// epoch can neither record a result, nor fail the task, nor renew the lease.
@Suite struct LeaseTests {
    /// Long after every lease handed out in a test has expired.
    var later: Int64 { Time.nowMs() + 600_000 }

    @Test func aStaleExecutorCannotOverwriteTheNewerAttempt() throws {
        let h = try EngineHarness()
        try h.engine.registerNode()
        let t = try h.submit()   // kit: idempotent
        // Executor A takes the first attempt (epoch 1) and goes silent.
        let placedA = try #require(try h.engine.placeLocally(t.id).placed)
        #expect(placedA.leaseEpoch == 1)
        let runningA = try #require(try h.move(t.id, to: .running, expect: [.placed], epoch: placedA.leaseEpoch))
        // Its lease expires: idempotent, so re-queued, and executor B gets the second attempt (epoch 2).
        #expect(h.engine.sweep(now: later) == 1)
        let requeued = try h.task(t.id)
        #expect(requeued.state == .queued)
        #expect(requeued.reason?.contains("expired while running; idempotent, so re-queued") == true)
        let placedB = try #require(try h.engine.placeLocally(t.id).placed)
        #expect(placedB.leaseEpoch == 2)
        #expect(placedB.attempts == 2)
        let runningB = try #require(try h.move(t.id, to: .running, expect: [.placed], epoch: placedB.leaseEpoch))

        // A comes back with a result: refused, the task is B's.
        let afterA = h.engine.finish(runningA, ToolOutcome(status: .succeeded(["by": "A"])), startNs: Time.monotonicNs())
        #expect(afterA.state == .running)
        #expect(afterA.result == nil)
        #expect(afterA.leaseEpoch == 2)
        // Nor can A fail it into a retry or the DLQ.
        let failA = h.engine.finish(runningA, .failed("A crashed", retryable: true), startNs: Time.monotonicNs())
        #expect(failA.state == .running)
        #expect(failA.attempts == 2)
        // Nor keep the lease alive.
        let lease = try h.task(t.id).leaseExpires
        try h.store.renewLease(task: t.id, epoch: placedA.leaseEpoch, leaseMs: 3_600_000)
        #expect(try h.task(t.id).leaseExpires == lease)
        try h.store.renewLease(task: t.id, epoch: placedB.leaseEpoch, leaseMs: 3_600_000)
        #expect(try h.task(t.id).leaseExpires ?? 0 > lease ?? 0)

        // B's result is the one recorded, once.
        let afterB = h.engine.finish(runningB, ToolOutcome(status: .succeeded(["by": "B"])), startNs: Time.monotonicNs())
        #expect(afterB.state == .succeeded)
        #expect(afterB.result == ["by": "B"])
        // And a very late A still changes nothing.
        _ = h.engine.finish(runningA, ToolOutcome(status: .succeeded(["by": "A"])), startNs: Time.monotonicNs())
        #expect(try h.task(t.id).result == ["by": "B"])
        #expect(try h.store.history(t.id).filter { $0.to == .succeeded }.count == 1)
        #expect(try h.store.history(t.id).filter { $0.to == .failed }.isEmpty)
    }

    /// An executor that still holds the placement of an older epoch does not start the task: the tool never runs.
    @Test func aStalePlacementIsNeverStarted() throws {
        let h = try EngineHarness()
        try h.engine.registerNode()
        let t = try h.submit()
        let old = try #require(try h.engine.placeLocally(t.id).placed)
        #expect(h.engine.sweep(now: later) == 1)   // placed, never started: back to the queue
        let fresh = try #require(try h.engine.placeLocally(t.id).placed)
        #expect(fresh.leaseEpoch == old.leaseEpoch + 1)
        let r = h.engine.execute(old)
        #expect(r.state == .placed)
        #expect(r.leaseEpoch == fresh.leaseEpoch)
        #expect(h.executor.calls.isEmpty)
        // The current placement runs.
        #expect(h.engine.execute(fresh).state == .succeeded)
        #expect(h.executor.calls.count == 1)
    }

    @Test func aLostLeaseRequeuesWorkNotStartedAndParksNonIdempotentWorkInDoubt() throws {
        let h = try EngineHarness()
        try h.engine.registerNode()
        // Placed but never started: safe to run again, even if not idempotent; the attempt is not counted.
        let notStarted = try h.submit(plugin: "once")
        let p = try #require(try h.engine.placeLocally(notStarted.id).placed)
        #expect(p.attempts == 1)
        #expect(h.engine.sweep(now: later) == 1)
        let back = try h.task(notStarted.id)
        #expect(back.state == .queued)
        #expect(back.attempts == 0)
        #expect(back.node == nil)
        #expect(back.leaseOwner == nil)

        // Running, not idempotent: its side effects may have happened, so it is parked for an operator.
        let started = try h.submit(plugin: "once")
        let sp = try #require(try h.engine.placeLocally(started.id).placed)
        try h.move(started.id, to: .running, expect: [.placed], epoch: sp.leaseEpoch)
        h.engine.sweep(now: later)
        let parked = try h.task(started.id)
        #expect(parked.state == .inDoubt)
        #expect(parked.reason?.contains("not idempotent") == true)
        #expect(try h.store.history(started.id).last?.detail?["lease_lost"] == true)
        // Nothing re-runs it on its own…
        #expect(try h.engine.placeLocally(started.id).placed == nil)
        // …until an operator replays it.
        #expect(try h.engine.replay(started.id, actor: "ops").state == .queued)
        #expect(try h.runAttempt(started.id).state == .succeeded)
    }

    @Test func aLeaseThatIsHeartbeatNeverExpires() throws {
        let h = try EngineHarness()
        try h.engine.registerNode()
        let t = try h.submit(plugin: "once")
        let p = try #require(try h.engine.placeLocally(t.id).placed)
        try h.move(t.id, to: .running, expect: [.placed], epoch: p.leaseEpoch)
        // The sweep runs before the lease ends: nothing happens.
        #expect(h.engine.sweep(now: Time.nowMs()) == 0)
        // The executor heartbeats past the sweep's clock: still nothing.
        _ = try h.store.heartbeat(node: "local", owner: h.engine.config.instance, leaseMs: 3_600_000)
        #expect(h.engine.sweep(now: later) == 0)
        #expect(try h.task(t.id).state == .running)
    }
}
