import WardenCore
import WardenStore

/// `warden explain ID`: the whole story of a task or a workflow, from the durable record — who asked, the
/// rule that admitted it, approvals, each attempt with its placement and sandbox record, retries and their
/// causes, child tasks, and the audit sequence numbers behind every step (checkable with `audit --verify`).
extension Engine {
    public func explain(_ id: String) throws(WardenError) -> (json: JSONValue, text: String) {
        if let wf = try workflow(id) { return try explainWorkflow(wf) }
        guard let t = try store.task(id) else { throw WardenError.notFound("unknown task or workflow \(quoted(id))") }
        let j = try explainTask(t, depth: 0)
        var lines: [String] = []
        render(j, indent: "", into: &lines)
        return (j, lines.joined(separator: "\n"))
    }

    func explainTask(_ t: TaskRecord, depth: Int) throws(WardenError) -> JSONValue {
        let events = try store.history(t.id)
        let audit = try store.auditRecords(task: t.id)
        var attempts: [[String: JSONValue]] = []
        var approvals: [JSONValue] = []
        var notes: [JSONValue] = []
        var admission: JSONValue = .null
        for e in events {
            let d = e.detail?.objectValue ?? [:]
            let seq = JSONValue.optional(e.auditSeq)
            if e.from == nil {
                admission = ["state": .string(e.to.rawValue), "rule": .optional(t.rule), "by": .optional(e.actor),
                             "at": .string(Time.iso8601(e.at)), "decision": d["admission"] ?? .null, "reason": .optional(e.reason), "audit_seq": seq]
                continue
            }
            if let a = d["approval"] {
                approvals.append(["decision": a, "by": d["by"] ?? .optional(e.actor), "comment": d["comment"] ?? .null,
                                  "at": .string(Time.iso8601(e.at)), "audit_seq": seq])
                continue
            }
            switch e.to {
            case .placed:
                attempts.append(["attempt": d["attempt"] ?? .int(Int64(attempts.count + 1)), "node": d["node"] ?? .null,
                                 "placement": d["explanation"] ?? .null, "placed_at": .string(Time.iso8601(e.at)),
                                 "audit_seqs": .array([seq])])
            case .running, .succeeded, .failed:
                guard !attempts.isEmpty else { break }
                var a = attempts[attempts.count - 1]
                if e.to == .running { a["started_at"] = .string(Time.iso8601(e.at)); a["executor"] = .optional(e.actor) }
                else {
                    a["ended_at"] = .string(Time.iso8601(e.at))
                    a["outcome"] = .string(e.to.rawValue)
                    a["reason"] = .optional(e.reason)
                    if let r = d["report"], r != .null { a["sandbox"] = r }
                    if let r = d["retryable"] { a["retryable"] = r }
                }
                a["audit_seqs"] = .array((a["audit_seqs"]?.arrayValue ?? []) + [seq])
                attempts[attempts.count - 1] = a
            default:
                notes.append(["at": .string(Time.iso8601(e.at)), "from": .optional(e.from?.rawValue), "to": .string(e.to.rawValue),
                              "reason": .optional(e.reason), "by": .optional(e.actor), "audit_seq": seq])
            }
        }
        var children: [JSONValue] = []
        if depth < 4 {
            for c in try store.tasks(parent: t.id, limit: 1000).reversed() { children.append(try explainTask(c, depth: depth + 1)) }
        }
        return [
            "kind": "task", "id": .string(t.id), "tool": .string("\(t.plugin).\(t.tool)"), "version": .string(t.version),
            "tenant": .string(t.tenant), "state": .string(t.state.rawValue), "reason": .optional(t.reason),
            "submitted_by": .string(t.submitter), "submitted_at": .string(Time.iso8601(t.createdAt)),
            "parent": .optional(t.parent), "workflow": .optional(t.workflow), "step": .optional(t.step),
            "traceparent": .optional(t.traceparent), "input": t.input, "admission": admission,
            "approvals": .array(approvals), "attempts": .array(attempts.map { .object($0) }), "events": .array(notes),
            "children": .array(children), "result": .optional(t.result),
            "audit_seqs": .array(audit.map { .int($0.seq) }),
        ]
    }

    func explainWorkflow(_ wf: WorkflowRecord) throws(WardenError) -> (json: JSONValue, text: String) {
        let tasks = try stepTasks(wf.id)
        var steps: [JSONValue] = []
        for s in wf.spec.steps {
            if let t = tasks[s.id] {
                guard case .object(var o) = try explainTask(t, depth: 0) else { continue }
                o["step_id"] = .string(s.id)
                o["after"] = .array(s.after.map { .string($0) })
                steps.append(.object(o))
            } else {
                steps.append(["kind": "step", "step_id": .string(s.id), "tool": .string("\(s.plugin)\(s.tool.map { ".\($0)" } ?? "")"),
                              "after": .array(s.after.map { .string($0) }), "state": .string(wf.isTerminal ? "skipped" : "pending")])
            }
        }
        let audit = try store.auditRecords(task: wf.id)
        let j: JSONValue = ["kind": "workflow", "id": .string(wf.id), "name": .string(wf.name), "tenant": .string(wf.tenant),
                            "state": .string(wf.state), "reason": .optional(wf.reason), "submitted_by": .optional(wf.submitter),
                            "submitted_at": .string(Time.iso8601(wf.createdAt)), "traceparent": .optional(wf.traceparent),
                            "input": wf.input, "steps": .array(steps), "audit_seqs": .array(audit.map { .int($0.seq) })]
        var lines = ["workflow \(wf.id) \"\(wf.name)\" (tenant \(wf.tenant)) — \(wf.state)\(wf.reason.map { ": \($0)" } ?? "")",
                     "├─ submitted by \(wf.submitter ?? "?") at \(Time.iso8601(wf.createdAt)) [audit \(seqList(audit.map(\.seq)))]"]
        for (i, s) in steps.enumerated() {
            let last = i == steps.count - 1
            let head = last ? "└─ " : "├─ "
            let pad = last ? "   " : "│  "
            let after = (s["after"]?.arrayValue ?? []).compactMap(\.stringValue)
            let suffix = after.isEmpty ? "" : " (after \(after.joined(separator: ", ")))"
            if s["kind"]?.stringValue == "step" {
                lines.append(head + "step \(s["step_id"]?.stringValue ?? "?"): \(s["tool"]?.stringValue ?? "") — \(s["state"]?.stringValue ?? "")\(suffix)")
                continue
            }
            var sub: [String] = []
            render(s, indent: "", into: &sub)
            lines.append(head + "step \(s["step_id"]?.stringValue ?? "?")\(suffix): " + (sub.first ?? ""))
            for l in sub.dropFirst() { lines.append(pad + l) }
        }
        return (j, lines.joined(separator: "\n"))
    }

    func seqList(_ seqs: [Int64]) -> String {
        seqs.isEmpty ? "none" : "#" + seqs.map(String.init).joined(separator: ", #")
    }

    /// The readable tree of one task explanation.
    func render(_ j: JSONValue, indent: String, into lines: inout [String]) {
        let s = { (k: String) -> String in j[k]?.stringValue ?? "" }
        lines.append("\(indent)task \(s("id")) \(s("tool"))@\(s("version")) (tenant \(s("tenant"))) — \(s("state"))\(j["reason"]?.stringValue.map { ": \($0)" } ?? "")")
        var items: [(String, [String])] = []
        let adm = j["admission"] ?? .null
        let admSeq = adm["audit_seq"]?.intValue.map { " [audit #\($0)]" } ?? ""
        items.append(("submitted by \(s("submitted_by")) at \(s("submitted_at"))\(j["parent"]?.stringValue.map { " as a child of \($0)" } ?? "")", []))
        let rule = adm["rule"]?.stringValue ?? "?"
        let decision = adm["decision"]?.stringValue ?? adm["state"]?.stringValue ?? "?"
        let why = adm["reason"]?.stringValue.map { ": \($0)" } ?? ""
        items.append(("admission: \(decision) by rule \(rule)\(why)\(admSeq)", []))
        for a in j["approvals"]?.arrayValue ?? [] {
            items.append(("approval: \(a["decision"]?.stringValue ?? "?") by \(a["by"]?.stringValue ?? "?")\(a["comment"]?.stringValue.map { " (\"\($0)\")" } ?? "") [audit #\(a["audit_seq"]?.intValue ?? 0)]", []))
        }
        // Attempts and other transitions (retries, lease losses, cancels) in the order they happened.
        var timed: [(String, String, [String])] = []
        for a in j["attempts"]?.arrayValue ?? [] {
            var sub: [String] = []
            if let p = a["placement"]?.stringValue { sub.append("placement: \(p)") }
            if let r = a["sandbox"], r != .null {
                let exit = r["exit_code"]?.intValue.map { "exit \($0)" } ?? (r["signal"]?.intValue.map { "signal \($0)" } ?? "")
                sub.append("sandbox: \(r["reason"]?.stringValue ?? "?") \(exit), wall \(r["wall_ms"]?.doubleValue ?? 0) ms, cpu \(r["cpu_ms"]?.doubleValue ?? 0) ms, peak memory \(Quantity.formatBytes(r["max_rss_bytes"]?.intValue ?? 0))\(r["syscall"]?.stringValue.map { ", syscall \($0)" } ?? "")")
            }
            let seqs = (a["audit_seqs"]?.arrayValue ?? []).compactMap(\.intValue)
            let outcome = a["outcome"]?.stringValue ?? "running"
            let reason = a["reason"]?.stringValue.map { ": \($0)" } ?? ""
            timed.append((a["placed_at"]?.stringValue ?? "", "attempt \(a["attempt"]?.intValue ?? 0) on \(a["node"]?.stringValue ?? "?"): \(outcome)\(reason) [audit \(seqList(seqs))]", sub))
        }
        for e in j["events"]?.arrayValue ?? [] {
            timed.append((e["at"]?.stringValue ?? "", "\(e["from"]?.stringValue ?? "·") → \(e["to"]?.stringValue ?? "")\(e["reason"]?.stringValue.map { ": \($0)" } ?? "") (by \(e["by"]?.stringValue ?? "?")) [audit #\(e["audit_seq"]?.intValue ?? 0)]", []))
        }
        for (_, line, sub) in timed.enumerated().sorted(by: { a, b in a.element.0 != b.element.0 ? a.element.0 < b.element.0 : a.offset < b.offset }).map(\.element) {
            items.append((line, sub))
        }
        let children = j["children"]?.arrayValue ?? []
        if let r = j["result"], r != .null {
            let text = r.canonical
            items.append(("result: \(text.count > 160 ? String(text.prefix(160)) + "…" : text)", []))
        }
        for (i, (head, sub)) in items.enumerated() {
            let last = i == items.count - 1 && children.isEmpty
            lines.append(indent + (last ? "└─ " : "├─ ") + head)
            for (k, l) in sub.enumerated() { lines.append(indent + (last ? "   " : "│  ") + (k == sub.count - 1 ? "└─ " : "├─ ") + l) }
        }
        for (i, c) in children.enumerated() {
            let last = i == children.count - 1
            var sub: [String] = []
            render(c, indent: "", into: &sub)
            lines.append(indent + (last ? "└─ " : "├─ ") + "child " + (sub.first ?? ""))
            for l in sub.dropFirst() { lines.append(indent + (last ? "   " : "│  ") + l) }
        }
    }
}
