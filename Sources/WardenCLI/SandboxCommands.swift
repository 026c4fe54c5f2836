import Glibc
import WardenCore
import WardenSandbox
import WardenSystem

enum SandboxCommands {
    static func exec(_ inv: Invocation) throws(WardenError) -> Int32 {
        guard !inv.rest.isEmpty else {
            throw WardenError(.usage, "sandbox exec: no command given", hint: "usage: warden sandbox exec [options] -- CMD ARG…")
        }
        let profile = try ProfileLoader.load(inv.value("--profile") ?? "default")
        var spec = SandboxSpec(argv: inv.rest, profile: profile)
        if let s = inv.value("--seccomp") {
            spec.seccompOverride = try ProfileLoader.loadOCI(FS.absolute(s))
        }
        spec.cpuMillis = try inv.value("--cpu").map { v throws(WardenError) in try Quantity.cpuMillis(v, field: "--cpu", code: .usage) }
        spec.memoryBytes = try inv.value("--memory").map { v throws(WardenError) in try Quantity.bytes(v, field: "--memory", code: .usage) }
        spec.pids = try Parse.int(inv, "--pids", range: 1...1_000_000)
        spec.wallMs = try Parse.duration(inv, "--timeout")
        if let n = inv.value("--network") {
            guard let mode = SandboxProfile.Network(rawValue: n) else {
                throw WardenError.invalid("--network", "unknown mode \(quoted(n)) (one of: none, loopback, host)", code: .usage)
            }
            spec.network = mode
        }
        // One sandbox, then exit; this process holds only what the payload gets anyway (its argv, the profile,
        // the kept variables), so the sandbox is cloned straight from here.
        Sandbox.shared.oneShot = true
        spec.binds = try inv.values("--bind").map { b throws(WardenError) in try BindSpec(parsing: b, field: "--bind", code: .usage) }
        spec.roBinds = try inv.values("--ro-bind").map { b throws(WardenError) in try BindSpec(parsing: b, field: "--ro-bind", code: .usage) }
        spec.cwd = inv.value("--chdir")
        for e in inv.values("--env") {
            let kv = e.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, !kv[0].isEmpty else { throw WardenError.invalid("--env", "expected K=V, got \(quoted(e))", code: .usage) }
            spec.env[String(kv[0])] = String(kv[1])
        }
        // Our stdin goes in as it is unless it is a terminal (a tty handed to untrusted code invites TIOCSTI games).
        spec.stdin = isatty(0) == 1 ? .none : .fd(0)
        spec.output = .stream(stdout: 1, stderr: 2)
        Out.flush()
        let outcome = Sandbox.shared.run(spec)
        if let path = inv.value("--report") {
            try FS.writeFile(path, outcome.report.json.pretty + "\n")
        }
        if let e = outcome.setupError {
            Out.err("warden: \(e.description)")
            // Bad input found while preparing (a seccomp rule, a missing bind source) keeps its own code (65,
            // 66, 64); everything else is a setup failure (71).
            return [.dataError, .noInput, .usage].contains(e.code) ? e.code.rawValue : ExitCode.osError.rawValue
        }
        let r = outcome.report
        if r.reason != "exited" && r.reason != "signaled" {
            Out.err("warden: sandbox: \(r.reason)\(r.syscall.map { " (\($0))" } ?? "")")
        }
        return r.shellStatus
    }

    static func list(_ inv: Invocation) throws(WardenError) -> Int32 {
        let names = ProfileLoader.list()
        if inv.json { Out.json(.array(names.map { .string($0) })); return 0 }
        for n in names {
            let d = (try? ProfileLoader.load(n))?.profile.description ?? ""
            Out.print(TaskCommands.pad(n, 10) + d)
        }
        return 0
    }

    static func show(_ inv: Invocation) throws(WardenError) -> Int32 {
        let loaded = try ProfileLoader.load(inv.positionals[0])
        Out.json(try JSONValue.parse(try FS.readFile(loaded.path)))
        return 0
    }

    static func check(_ inv: Invocation) throws(WardenError) -> Int32 {
        let path = inv.positionals[0]
        guard FS.exists(path) else { throw WardenError.notFound("no such file \(quoted(path))") }
        let loaded = try ProfileLoader.load(FS.absolute(path))
        var notes: [String] = []
        var applied = 0
        if let filter = loaded.seccomp {
            let n: SeccompCompiler.Notes
            do throws(WardenError) {
                (_, n) = try SeccompCompiler.compile(filter.oci, path: filter.jsonPath)
            } catch {
                throw error.prefixed(filter.file)
            }
            notes += n.ignored
            applied = n.rulesApplied
        } else {
            notes.append("no seccomp filter: only Warden's mandatory filter applies")
        }
        if loaded.profile.trusted { notes.append("trusted: Warden's mandatory denials are lifted (shipped profile only)") }
        // Mandatory rules the file tries to relax.
        if let oci = loaded.seccomp?.oci {
            let mandatory = Set(SeccompCompiler.mandatoryDenied + ["clone3", "personality"])
            var relaxed: Set<String> = []
            for r in oci.syscalls where r.action == "SCMP_ACT_ALLOW" || r.action == "SCMP_ACT_LOG" {
                for n in r.names where mandatory.contains(n) && r.includes.caps.isEmpty { relaxed.insert(n) }
            }
            if oci.defaultAction == "SCMP_ACT_ALLOW" { notes.append("defaultAction SCMP_ACT_ALLOW: Warden's mandatory denials still apply") }
            if !relaxed.isEmpty && !loaded.profile.trusted {
                notes.append("allows \(relaxed.sorted().joined(separator: ", ")): overridden by Warden's mandatory filter (denied anyway)")
            }
        }
        let profile = loaded.profile
        let driver = Sandbox.shared.cgroups
        let limits = [("cpu", profile.limits.cpuMillis != nil), ("memory", profile.limits.memoryBytes != nil), ("pids", profile.limits.pids != nil)]
        for (name, set) in limits where set && !driver.enforceable.contains(name) {
            notes.append("limit \(name): this host cannot enforce it (\(driver.version.rawValue)); \(profile.limits.bestEffort.contains(name) ? "best effort, runs without it" : "runs are refused")")
        }
        if inv.json {
            Out.json(["file": .string(loaded.path), "profile": .string(profile.name), "rules_applied": .int(Int64(applied)),
                      "not_honoured": .array(notes.map { .string($0) })])
            return 0
        }
        Out.print("\(loaded.path): loads as profile \(profile.name); \(applied) seccomp rules applied")
        if notes.isEmpty { Out.print("everything in it is honoured") } else {
            Out.print("not honoured as written:")
            for n in notes { Out.print("  - \(n)") }
        }
        return 0
    }
}
