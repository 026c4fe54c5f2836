import Foundation
import Glibc
import Testing

/// Runs `warden-probe` (Tests/Probe) bare and inside `warden sandbox exec`, and parses its one JSON line.
enum Probe {
    struct Result: CustomStringConvertible {
        var result = "none"     // allowed | blocked | error | none (no JSON line: the probe did not run)
        var errno = ""
        var detail = ""
        var status: Int32 = 0
        var stdout = ""
        var stderr = ""
        /// The sandbox result record (--report), for inside runs.
        var report: [String: Any] = [:]

        var allowed: Bool { result == "allowed" }
        var blocked: Bool { result == "blocked" }
        var reason: String? { report["reason"] as? String }
        var description: String {
            "\(result)\(errno.isEmpty ? "" : " \(errno)") (\(detail))\(result == "none" ? " status \(status), stderr: \(stderr.prefix(300))" : "")"
        }

        init(status: Int32, stdout: String, stderr: String) {
            self.status = status
            self.stdout = stdout
            self.stderr = stderr
            guard let line = stdout.split(separator: "\n").last(where: { $0.hasPrefix("{\"case\"") }),
                  let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return }
            result = obj["result"] as? String ?? "none"
            errno = obj["errno"] as? String ?? ""
            detail = obj["detail"] as? String ?? ""
        }
    }

    /// The built helper: next to the warden binary under test, else in .build/debug.
    static let built: String = {
        let besides = URL(fileURLWithPath: Warden.binary).deletingLastPathComponent().appendingPathComponent("warden-probe").path
        if FileManager.default.isExecutableFile(atPath: besides) { return besides }
        return "\(Warden.repo)/.build/debug/warden-probe"
    }()

    /// A copy of the helper in a directory of its own (mode 755), bound read-only at /plugin inside: only
    /// the probe goes in, and the bare control can write into the same directory. Named after the build
    /// (size, mtime), so runs reuse it instead of leaving a 10 MB copy behind each time.
    static let dir: String = {
        let attrs = try? FileManager.default.attributesOfItem(atPath: built)
        let size = (attrs?[.size] as? NSNumber)?.intValue ?? 0
        let mtime = Int((attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
        let d = NSTemporaryDirectory() + "warden-probe-\(size)-\(mtime)"
        if FileManager.default.isExecutableFile(atPath: "\(d)/warden-probe") { return d }
        // Made aside and renamed into place: test processes may race for it.
        let tmp = d + ".\(getpid())"
        try? FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        chmod(tmp, 0o755)
        try? FileManager.default.copyItem(atPath: built, toPath: "\(tmp)/warden-probe")
        if rename(tmp, d) != 0 { try? FileManager.default.removeItem(atPath: tmp) }
        return d
    }()
    static var path: String { "\(dir)/warden-probe" }
    static let inside = "/plugin/warden-probe"

    /// A unique word to find our own processes and files by.
    static func token() -> String { "wt\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))" }

    /// Bare: the probe as an ordinary process of this host (the control).
    static func bare(_ args: [String], env: [String: String] = [:]) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("warden-probe not found at \(built): build it with `swift build`")
        }
        let r = try Warden.run(args, env: env, executable: path)
        return Result(status: r.status, stdout: r.stdout, stderr: r.stderr)
    }

    /// Bare, through `sh -c SCRIPT sh ARGS…` (for fds and a parent whose command line we choose).
    static func bareShell(_ script: String, _ args: [String]) throws -> Result {
        let r = try Warden.run(["-c", script, "sh"] + args, executable: "/bin/sh")
        return Result(status: r.status, stdout: r.stdout, stderr: r.stderr)
    }

    /// Inside `warden sandbox exec --profile PROFILE [options] -- /plugin/warden-probe ARGS`.
    static func sandboxed(_ args: [String], profile: String, options: [String] = [], env: [String: String] = [:],
                          via shell: String? = nil) throws -> Result {
        let report = NSTemporaryDirectory() + "warden-report-\(UUID().uuidString.prefix(8)).json"
        defer { try? FileManager.default.removeItem(atPath: report) }
        let wardenArgs = ["sandbox", "exec", "--profile", profile, "--ro-bind", "\(dir):/plugin", "--report", report]
            + options + ["--", inside] + args
        let r: Warden.Result
        if let shell {
            r = try Warden.run(["-c", shell, "sh", Warden.binary] + wardenArgs, env: env, executable: "/bin/sh")
        } else {
            r = try Warden.run(wardenArgs, env: env)
        }
        var out = Result(status: r.status, stdout: r.stdout, stderr: r.stderr)
        if let data = FileManager.default.contents(atPath: report),
           let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            out.report = obj
        }
        return out
    }

    /// The control must show the thing works on this host. Here a refusal means the test itself is broken
    /// (these controls work on any Linux host Warden supports), so it fails, loudly. Cases that depend on
    /// kernel features go through `Controls` instead and are skipped when refused bare.
    static func requireControl(_ name: String, _ bare: Result, sourceLocation: SourceLocation = #_sourceLocation) throws {
        Log.line(name, "bare", bare)
        guard bare.allowed else {
            let note = "NOT PROVING ANYTHING: \(name) is already refused bare on this host: \(bare)"
            FileHandle.standardError.write(Data("\n*** \(note) ***\n".utf8))
            Issue.record(Comment(rawValue: note), sourceLocation: sourceLocation)
            throw TestFailure(note)
        }
    }
}

/// Bare controls of the syscall cases, run once when the tests are planned. A case the host itself already
/// refuses (the kernel lacks kexec, modules or x32) proves nothing: it is left out of the parameterized test
/// and listed, loudly, in a test that is always skipped. Never a pass. (Test.cancel would print "passed" in
/// this toolchain's console.)
enum Controls {
    nonisolated(unsafe) private static var cache: [[String]: Probe.Result] = [:]
    private static let lock = NSLock()

    static func bare(_ args: [String]) -> Probe.Result {
        lock.lock()
        defer { lock.unlock() }
        if let r = cache[args] { return r }
        let r = (try? Probe.bare(args)) ?? Probe.Result(status: -1, stdout: "", stderr: "probe did not run")
        cache[args] = r
        return r
    }

    /// Refused bare: only an explicit "blocked". A probe that did not run at all stays in, so its test fails.
    static func refusedBare(_ c: EscapeCase) -> Bool { bare(c.args).blocked }

    static func proving(_ cases: [EscapeCase]) -> [EscapeCase] { cases.filter { !refusedBare($0) } }

    /// Prints the refused cases, loudly; always true (the report test is always skipped).
    static func note(_ cases: [EscapeCase]) -> Bool {
        let refused = cases.filter(refusedBare)
        var text = refused.isEmpty ? "every case's bare control works on this host\n" : ""
        for c in refused {
            text += "\n*** NOT PROVING ANYTHING: \(c.name) is already refused bare on this host: \(bare(c.args)) ***\n"
        }
        FileHandle.standardError.write(Data(text.utf8))
        return true
    }
}

/// One line per run, greppable (`ESCAPE-SUITE |`), so a log shows every case with its bare and inside outcome.
enum Log {
    static func line(_ name: String, _ where_: String, _ r: Probe.Result) {
        var s = "ESCAPE-SUITE | \(name) | \(where_) | \(r.result)"
        if !r.errno.isEmpty { s += " \(r.errno)" }
        if let reason = r.reason { s += " | reason=\(reason)" }
        s += " | \(r.detail.prefix(160))\n"
        FileHandle.standardError.write(Data(s.utf8))
    }
}

/// Gate for tests that need user namespaces: loud when skipped, and a failure (not a skip) under CI.
func requireSandbox(sourceLocation: SourceLocation = #_sourceLocation) throws {
    guard !Host.sandboxReady else { return }
    if ProcessInfo.processInfo.environment["CI"] != nil {
        Issue.record("CI must run the escape suite, but this host has no user namespaces", sourceLocation: sourceLocation)
    }
    try Test.cancel(Comment(rawValue: Host.skipNote("user namespaces for the sandbox suite")), sourceLocation: sourceLocation)
}

/// Host processes whose command line contains `word` (ours: probes started with a token argument).
func hostProcesses(containing word: String) -> [pid_t] {
    let me = getpid()
    return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name -> pid_t? in
        guard let pid = pid_t(name), pid != me,
              let data = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") else { return nil }
        let text = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
        return text.contains(word) ? pid : nil
    }
}

/// Waits up to `seconds` for `cond`.
func eventually(_ seconds: Double, _ cond: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if cond() { return true }
        usleep(20_000)
    }
    return cond()
}

/// A temporary directory (removed by the caller), mode 0777 so the sandbox user may write into it.
func scratchDir(_ mode: mode_t = 0o777) -> String {
    let d = NSTemporaryDirectory() + "warden-zoo-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    chmod(d, mode)
    return d
}

/// Starts a `warden` run without waiting (for killing Warden itself mid-run).
func startWarden(_ args: [String]) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: Warden.binary)
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    e["WARDEN_PROFILES"] = "\(Warden.repo)/sandbox-profiles"
    p.environment = e
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    p.standardInput = FileHandle.nullDevice
    try p.run()
    return p
}
