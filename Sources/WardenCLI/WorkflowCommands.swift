import WardenCore
import WardenEngine
import WardenSystem

/// `workflow submit|status|cancel` and `explain`.
enum WorkflowCommands {
    static let all: [Command] = [
        Command(path: ["workflow", "submit"], synopsis: "warden workflow submit FILE [--input JSON|@FILE] [--tenant T] [--traceparent TP]",
                abstract: "Validate and record a workflow; print its id. A running serve drives it.",
                options: [.value("--input", "JSON|@FILE", "The workflow's input ({{input.…}} in step inputs)."),
                          .value("--tenant", "T", "Tenant (default: default)."), .value("--traceparent", "TP", "W3C trace context to continue.")],
                positionals: 1...1) { inv throws(WardenError) in
            let path = inv.positionals[0]
            guard FS.exists(path) else { throw WardenError.notFound("no such file \(quoted(path))") }
            let json: JSONValue
            do throws(WardenError) { json = try JSONValue.parse(try FS.readFile(path, limit: 4 << 20)) } catch { throw error.prefixed(path) }
            let input = try Parse.input(inv.value("--input"))
            let tenant = inv.value("--tenant") ?? FS.env("WARDEN_TENANT") ?? "default"
            if let tp = inv.value("--traceparent"), Tracer.parse(tp) == nil {
                throw WardenError.invalid("--traceparent", "invalid W3C traceparent \(quoted(tp))", code: .usage)
            }
            let wf: WorkflowRecord
            do throws(WardenError) {
                wf = try inv.ctx.engine().submitWorkflow(json, input: input, tenant: tenant, actor: inv.ctx.actor, traceparent: inv.value("--traceparent"))
            } catch {
                throw error.code == .dataError && error.message.hasPrefix("$") ? error.prefixed(path) : error
            }
            ControlClient.connect(stateDir: inv.ctx.absoluteState)?.wake()
            if inv.json { Out.json(try inv.ctx.engine().workflowJSON(wf)) } else { Out.print(wf.id) }
            return 0
        },
        Command(path: ["workflow", "status"], synopsis: "warden workflow status ID [--json]", abstract: "Show a workflow and its steps.",
                positionals: 1...1) { inv throws(WardenError) in
            let engine = try inv.ctx.engine()
            guard let wf = try engine.workflow(inv.positionals[0]) else { throw WardenError.notFound("unknown workflow \(quoted(inv.positionals[0]))") }
            let j = try engine.workflowJSON(wf)
            if inv.json { Out.json(j); return 0 }
            Out.print("workflow \(wf.id) \"\(wf.name)\" (tenant \(wf.tenant)) — \(wf.state)\(wf.reason.map { ": \($0)" } ?? "")")
            for s in j["steps"]?.arrayValue ?? [] {
                let after = (s["after"]?.arrayValue ?? []).compactMap(\.stringValue)
                Out.print("  " + TaskCommands.pad(s["id"]?.stringValue ?? "", 14) + TaskCommands.pad(s["state"]?.stringValue ?? "", 18)
                          + TaskCommands.pad(s["tool"]?.stringValue ?? "", 24) + (s["task"]?.stringValue ?? "")
                          + (after.isEmpty ? "" : "  after \(after.joined(separator: ","))"))
            }
            return wf.state == "failed" ? ExitCode.failure.rawValue : 0
        },
        Command(path: ["workflow", "cancel"], synopsis: "warden workflow cancel ID", abstract: "Cancel a workflow and its unfinished steps.",
                positionals: 1...1) { inv throws(WardenError) in
            let wf = try inv.ctx.engine().cancelWorkflow(inv.positionals[0], actor: inv.ctx.actor)
            ControlClient.connect(stateDir: inv.ctx.absoluteState)?.wake()
            Out.print("\(wf.id) canceled")
            return 0
        },
        Command(path: ["explain"], synopsis: "warden explain ID [--json]",
                abstract: "The whole story of a task or workflow: admission, approvals, attempts, children, audit.",
                positionals: 1...1) { inv throws(WardenError) in
            let (j, text) = try inv.ctx.engine().explain(inv.positionals[0])
            if inv.json { Out.json(j) } else { Out.print(text) }
            return 0
        },
    ]
}
