import Testing
import WardenCore
import WardenStore
@testable import WardenEngine

/// Workflows (DESIGN §5a) advance from their durable state: a step becomes a task once its upstream steps
/// succeeded, with its input rendered from their results, and a step is never submitted (or run) twice.
@Suite struct WorkflowTests {
    @Test func stepsRunInOrderWithRenderedInputsAndAreNeverRepeated() throws {
        let h = try EngineHarness()
        try h.engine.registerNode()
        let spec: JSONValue = [
            "name": "pipeline",
            "steps": [["id": "fetch", "tool": "kit.echo", "input": ["url": "{{input.url}}"]],
                      ["id": "summarize", "tool": "kit.echo", "after": ["fetch"],
                       "input": ["text": "{{steps.fetch.result.url}}", "note": "from {{input.url}}"]]],
        ]
        let wf = try h.engine.submitWorkflow(spec, input: ["url": "https://example.test/a"], tenant: "default", actor: "test")
        #expect(wf.state == "running")
        var steps = try h.engine.stepTasks(wf.id)
        #expect(Set(steps.keys) == ["fetch"])
        let fetch = try #require(steps["fetch"])
        #expect(fetch.idempotencyKey == "wf:\(wf.id):fetch")
        #expect(fetch.input == ["url": "https://example.test/a"])
        // Advancing again before the step ends submits nothing new.
        h.engine.advanceWorkflows()
        h.engine.advanceWorkflows()
        #expect(try h.tasks().count == 1)

        #expect(try h.runAttempt(fetch.id).state == .succeeded)
        h.engine.advanceWorkflows()
        steps = try h.engine.stepTasks(wf.id)
        let summarize = try #require(steps["summarize"])
        #expect(summarize.input == ["text": "https://example.test/a", "note": "from https://example.test/a"])
        #expect(try h.runAttempt(summarize.id).state == .succeeded)
        h.engine.advanceWorkflows()
        #expect(try h.engine.workflow(wf.id)?.state == "succeeded")
        // Advancing a finished workflow re-runs nothing.
        h.engine.advanceWorkflows()
        #expect(try h.tasks().count == 2)
        #expect(h.executor.calls.map(\.taskID) == [fetch.id, summarize.id])
    }

    @Test func aFailedStepFailsTheWorkflowAndLaterStepsNeverStart() throws {
        let h = try EngineHarness()
        try h.engine.registerNode()
        let spec: JSONValue = [
            "name": "two",
            "steps": [["id": "a", "tool": "kit.echo"], ["id": "b", "tool": "kit.echo", "after": ["a"]]],
        ]
        let wf = try h.engine.submitWorkflow(spec, input: [:], tenant: "default", actor: "test")
        let a = try #require(try h.engine.stepTasks(wf.id)["a"])
        h.executor.then(.failed("boom"))
        #expect(try h.runAttempt(a.id).state == .dead)
        h.engine.advanceWorkflows()
        let after = try #require(try h.engine.workflow(wf.id))
        #expect(after.state == "failed")
        #expect(after.reason == "step a dead: boom")
        #expect(try h.engine.stepTasks(wf.id)["b"] == nil)
    }
}
