import Testing
import WardenCore
import WardenPlugins
import WardenStore
@testable import WardenEngine

/// Retries (DESIGN §5): exponential backoff with full jitter, `retry.max` retries (attempts = max + 1), then
/// the DLQ (`dead`); `dlq replay` re-queues the same task with a fresh attempt budget.
@Suite struct RetryTests {
    @Test func backoffIsFullJitterUnderAnExponentialCap() {
        for attempt in 1...8 {
            let cap = min(5000, Int64(100) << (attempt - 1))
            let samples = (0..<400).map { _ in Engine.backoffMs(attempt: attempt, initial: 100, max: 5000) }
            #expect(samples.allSatisfy { $0 >= 0 && $0 <= cap }, "attempt \(attempt): outside [0, \(cap)]")
            // Full jitter: spread over the whole range, not a fixed delay (400 draws: these fail with p < 1e-40).
            #expect(Set(samples).count > 20 || cap < 40)
            #expect(samples.contains { $0 > cap / 2 })
            #expect(samples.contains { $0 < cap / 2 })
        }
        // Huge attempt counts neither overflow nor exceed the maximum; a zero backoff is zero.
        #expect((0..<100).allSatisfy { _ in (0...60_000).contains(Engine.backoffMs(attempt: 500, initial: 1000, max: 60_000)) })
        #expect(Engine.backoffMs(attempt: 3, initial: 0, max: 0) == 0)
        #expect((0..<100).allSatisfy { _ in (0...1000).contains(Engine.backoffMs(attempt: 0, initial: 1000, max: 60_000)) })
    }

    @Test func retryableFailuresBackOffThenGoToTheDLQAndReplayRunsThemAgain() throws {
        let h = try EngineHarness()
        try h.engine.registerNode()
        var s = EngineHarness.spec()
        s.retry = PluginManifest.RetryPolicy(max: 2, initialBackoffMs: 10_000, maxBackoffMs: 15_000)
        let t = try h.submit(s)
        let flaky = ToolOutcome.failed("flaky", retryable: true)
        h.executor.then(flaky, flaky, flaky)

        for attempt in 1...2 {
            let after = try h.runAttempt(t.id)
            #expect(after.state == .queued)
            #expect(after.attempts == attempt)
            #expect(after.node == nil)
            #expect(after.reason?.hasPrefix("retry \(attempt) of 2 after ") == true)
            #expect(after.reason?.hasSuffix(": flaky") == true)
            // The attempt failed, then was re-queued with a delay drawn in [0, min(max, initial·2^(n−1))].
            let events = try h.store.history(t.id).suffix(2).map(\.to)
            #expect(events == [.failed, .queued])
            let delay = try #require(h.store.history(t.id).last?.detail?["backoff_ms"]?.intValue)
            #expect(delay >= 0 && delay <= min(15_000, 10_000 << (attempt - 1)))
            #expect(after.notBefore - after.updatedAt == delay)
            // While backing off it is not placed.
            try h.store.write { tx in
                _ = try tx.execute("UPDATE tasks SET not_before = ? WHERE id = ?", [.int(Time.nowMs() + 60_000), .text(t.id)])
            }
            let wait = try h.engine.placeLocally(t.id)
            #expect(wait.placed == nil)
            #expect(wait.waiting?.hasPrefix("backing off until ") == true)
            try h.endBackoff(t.id)
        }
        // The third failure is past retry.max = 2: dead, in the DLQ, with why.
        let dead = try h.runAttempt(t.id)
        #expect(dead.state == .dead)
        #expect(dead.attempts == 3)
        #expect(dead.reason == "flaky (no retries left after 3 attempts)")
        #expect(try h.tasks(.dead).map(\.id) == [t.id])
        #expect(h.executor.calls.map(\.attempt) == [1, 2, 3])
        #expect(try h.counter("warden_task_attempts_total{result=\"queued\"}") == 2)
        #expect(try h.counter("warden_task_attempts_total{result=\"dead\"}") == 1)

        // dlq replay: the same id, queued again with a fresh budget; this time the tool succeeds.
        let replayed = try h.engine.replay(t.id, actor: "ops")
        #expect(replayed.state == .queued)
        #expect(replayed.attempts == 0)
        #expect(replayed.notBefore == 0)
        #expect(replayed.reason == "replayed from the DLQ by ops")
        #expect(try h.tasks(.dead).isEmpty)
        let done = try h.runAttempt(t.id)
        #expect(done.state == .succeeded)
        #expect(done.attempts == 1)
        #expect(done.result == [:])
        #expect(h.executor.calls.count == 4)
        #expect(try h.store.verifyAudit().problem == nil)
    }

    @Test func aNonRetryableFailureIsDeadAtOnceAndCancelsItsDependents() throws {
        let h = try EngineHarness()
        try h.engine.registerNode()
        var s = EngineHarness.spec()
        s.retry = PluginManifest.RetryPolicy(max: 5, initialBackoffMs: 1, maxBackoffMs: 1)
        let t = try h.submit(s)
        var d = EngineHarness.spec()
        d.after = [t.id]
        let dependent = try h.submit(d)
        // The dependent waits for its dependency and says so.
        #expect(try h.engine.placeLocally(dependent.id).waiting == "waiting for dependency \(t.id) (queued)")

        h.executor.then(.failed("exit 1: bad input", retryable: false))
        let dead = try h.runAttempt(t.id)
        #expect(dead.state == .dead)
        #expect(dead.attempts == 1)
        #expect(dead.reason == "exit 1: bad input")
        let dep = try h.task(dependent.id)
        #expect(dep.state == .canceled)
        #expect(dep.reason == "dependency \(t.id) failed: exit 1: bad input")
    }

    @Test func onlyDeadAndInDoubtTasksAreReplayed() throws {
        let h = try EngineHarness()
        try h.engine.registerNode()
        let queued = try h.submit()
        do throws(WardenError) {
            _ = try h.engine.replay(queued.id, actor: "ops")
            Issue.record("replayed a queued task")
        } catch {
            #expect(error.code == .failure)
            #expect(error.message.contains("only dead and in_doubt tasks are replayed"))
        }
        let done = try h.runAttempt(queued.id)
        #expect(done.state == .succeeded)
        #expect(throws: WardenError.self) { try h.engine.replay(done.id, actor: "ops") }
        #expect(try h.task(done.id).state == .succeeded)
        do throws(WardenError) {
            _ = try h.engine.replay("tnosuchtask", actor: "ops")
            Issue.record("replayed an unknown task")
        } catch {
            #expect(error.code == .noInput)
        }
    }
}
