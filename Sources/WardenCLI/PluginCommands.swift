import WardenCore
import WardenEngine
import WardenPlugins
import WardenStore
import WardenSystem

enum PluginCommands {
    static func register(_ inv: Invocation) throws(WardenError) -> Int32 {
        let engine = try inv.ctx.engine()
        let record = try engine.registry.register(inv.positionals[0], trusted: inv.has("--trust"), actor: inv.ctx.actor)
        if inv.json { Out.json(record.json) } else {
            Out.print("registered \(record.name)@\(record.version) (\(record.manifest.kind.rawValue), \(record.tools.count) tool\(record.tools.count == 1 ? "" : "s"): \(record.tools.map(\.name).joined(separator: ", ")))")
            Out.print("pinned \(record.files.count) file\(record.files.count == 1 ? "" : "s"), digest sha256:\(record.digest)")
        }
        return 0
    }

    static func list(_ inv: Invocation) throws(WardenError) -> Int32 {
        let plugins = try inv.ctx.store().plugins()
        if inv.json { Out.json(.array(plugins.map(\.json))); return 0 }
        if plugins.isEmpty { Out.print("no plugins registered (see `warden plugin register DIR`)"); return 0 }
        Out.print(TaskCommands.pad("NAME@VERSION", 28) + TaskCommands.pad("KIND", 9) + TaskCommands.pad("HOSTING", 12) + TaskCommands.pad("DIGEST", 14) + "TOOLS")
        for p in plugins {
            Out.print(TaskCommands.pad("\(p.name)@\(p.version)", 28) + TaskCommands.pad(p.manifest.kind.rawValue, 9)
                      + TaskCommands.pad(p.manifest.kind == .dylib ? p.manifest.hosting.rawValue : "isolated", 12)
                      + TaskCommands.pad(String(p.digest.prefix(12)), 14) + p.tools.map(\.name).joined(separator: ", "))
        }
        return 0
    }

    static func parseRef(_ text: String) throws(WardenError) -> (String, String?) {
        let t = try TaskSpec.parseTarget(text)
        guard t.tool == nil else { throw WardenError.invalid("NAME", "expected NAME[@VERSION], got \(quoted(text))", code: .usage) }
        return (t.plugin, t.version)
    }

    static func show(_ inv: Invocation) throws(WardenError) -> Int32 {
        let (name, version) = try parseRef(inv.positionals[0])
        guard let p = try inv.ctx.store().plugin(name, version: version) else {
            throw WardenError.notFound("unknown plugin \(quoted(inv.positionals[0]))")
        }
        if inv.json {
            guard case .object(var o) = p.json else { return 0 }
            o["manifest"] = p.manifestJSON
            o["file_digests"] = .object(p.files.mapValues { .string($0) })
            Out.json(.object(o))
            return 0
        }
        let m = p.manifest
        Out.print("\(p.name)@\(p.version)  (\(m.kind.rawValue)\(m.kind == .dylib ? ", \(m.hosting.rawValue)" : ""))")
        Out.print("directory: \(p.dir)")
        Out.print("digest:    sha256:\(p.digest) over \(p.files.count) files\(p.trusted ? " (trusted)" : "")")
        Out.print("sandbox:   profile \(m.sandbox.profile), network \(m.sandbox.network ?? "profile default")")
        Out.print("resources: \(m.resources.summary); timeout \(Quantity.formatDuration(m.timeoutMs)); retries \(m.retry.max); concurrency \(m.concurrency)")
        Out.print("flags:     idempotent \(m.idempotent), cacheable \(m.cacheable), approval \(m.approval.rawValue)\(m.rateLimit.map { ", rate \($0.text)" } ?? "")\(m.agent ? ", agent" : "")")
        Out.print("tools:")
        for t in p.tools { Out.print("  \(p.name).\(t.name) — \(t.description)") }
        return 0
    }

    static func remove(_ inv: Invocation) throws(WardenError) -> Int32 {
        let (name, version) = try parseRef(inv.positionals[0])
        let n = try inv.ctx.store().removePlugin(name, version: version, actor: inv.ctx.actor)
        guard n > 0 else { throw WardenError.notFound("unknown plugin \(quoted(inv.positionals[0]))") }
        Out.print("removed \(n) version\(n == 1 ? "" : "s") of \(name)")
        return 0
    }
}

enum PolicyCommands {
    static func set(_ inv: Invocation) throws(WardenError) -> Int32 {
        let path = inv.positionals[0]
        guard FS.exists(path) else { throw WardenError.notFound("no such file \(quoted(path))") }
        let json: JSONValue
        do throws(WardenError) {
            json = try JSONValue.parse(try FS.readFile(path, limit: 4 << 20))
            _ = try Policy.decode(json)
        } catch {
            throw error.with(code: .dataError).prefixed(path)
        }
        try inv.ctx.store().setPolicy(json, actor: inv.ctx.actor)
        let p = try Policy.decode(json)
        Out.print("policy set: \(p.rules.count) rule\(p.rules.count == 1 ? "" : "s"), \(p.tenants.count) tenant\(p.tenants.count == 1 ? "" : "s"), default \(p.defaultEffect.rawValue)")
        return 0
    }

    static func show(_ inv: Invocation) throws(WardenError) -> Int32 {
        guard let j = try inv.ctx.store().policyJSON() else {
            if inv.json { Out.json(.null) } else { Out.print("no policy set: every tenant may call every tool") }
            return 0
        }
        Out.json(j)
        return 0
    }

    static func audit(_ inv: Invocation) throws(WardenError) -> Int32 {
        let store = try inv.ctx.store()
        if inv.has("--verify") {
            let (count, problem) = try store.verifyAudit()
            if let p = problem {
                if inv.json { Out.json(["ok": false, "records": .int(count), "broken_at": .int(p.seq), "why": .string(p.why)]) }
                Out.err("warden: audit chain broken at record \(p.seq): \(p.why)")
                return ExitCode.failure.rawValue
            }
            if inv.json { Out.json(["ok": true, "records": .int(count)]) } else { Out.print("audit chain intact: \(count) records verified") }
            return 0
        }
        let records = try store.auditRecords(task: inv.value("--task"))
        if inv.json { Out.json(.array(records.map(\.json))); return 0 }
        for r in records {
            Out.print("#\(r.seq) \(Time.iso8601(r.at)) \(r.actor) \(r.action)\(r.task.map { " task=\($0)" } ?? "")\(r.tenant.map { " tenant=\($0)" } ?? "")\(r.rule.map { " rule=\($0)" } ?? "") \(r.detail?.canonical ?? "")")
        }
        return 0
    }
}
