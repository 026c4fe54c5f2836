import Foundation
import Glibc
import Testing

// Hostile code: fork bombs, memory hogs, CPU spinners, output floods, escaping grandchildren, and Warden
// itself dying mid-run. Each limit is shown bare first (the same probe gets what it asks for), then the
// sandbox's reason (--report) is checked. Serialized: these load the machine and some measure time.

extension SandboxZoo {
@Suite("hostile code")
struct HostileCodeTests {
    /// `profile` with some limits changed, as a profile file (loaded by path, so never "trusted").
    static func profileFile(_ profile: String, limits: [String: String]) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(Warden.repo)/sandbox-profiles/\(profile).json"))
        var obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var l = obj["limits"] as! [String: Any]
        for (k, v) in limits { l[k] = v }
        obj["limits"] = l
        obj["name"] = "\(profile)-test"
        let path = NSTemporaryDirectory() + "warden-profile-\(profile)-\(UUID().uuidString.prefix(8)).json"
        try JSONSerialization.data(withJSONObject: obj).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func cgroupLeftovers() -> [String] {
        // Task cgroups are named w<warden pid>-<n> under <hierarchy>/<own cgroup>/warden.
        var out: [String] = []
        let own = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
        for line in own.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            for c in parts[1].split(separator: ",") where ["memory", "pids", "cpu"].contains(String(c)) {
                let base = "/sys/fs/cgroup/\(parts[1])\(parts[2] == "/" ? "" : String(parts[2]))/warden"
                for n in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where n.hasPrefix("w") {
                    out.append("\(base)/\(n)")
                }
            }
        }
        return out
    }

    @Test(.timeLimit(.minutes(1)))
    func forkBombHitsThePidsLimit() throws {
        try requireSandbox()
        let token = Probe.token()
        let bare = try Probe.bare(["forkbomb", "150", token])
        try Probe.requireControl("fork bomb (150 children)", bare)
        for profile in profiles {
            let r = try Probe.sandboxed(["forkbomb", "1000", token], profile: profile)
            Log.line("fork bomb", profile, r)
            #expect(r.blocked && r.errno == "EAGAIN", "\(profile): fork never failed: \(r)")
            #expect(r.reason == "pids", "\(profile): reason \(r.reason ?? "none"), report \(r.report)")
            #expect(eventually(2) { hostProcesses(containing: token).isEmpty }, "\(profile): fork bomb processes left over")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func memoryHogIsOOMKilled() throws {
        try requireSandbox()
        let bare = try Probe.bare(["memhog", "200"])
        try Probe.requireControl("memory hog (200 MiB)", bare)
        for profile in profiles {
            let r = try Probe.sandboxed(["memhog", "200"], profile: profile, options: ["--memory", "64Mi"])
            Log.line("memory hog --memory 64Mi", profile, r)
            #expect(r.reason == "oom", "\(profile): \(r), report \(r.report)")
            #expect(r.status == 137, "\(profile): exit \(r.status)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func cpuSpinnerHitsCpuTime() throws {
        try requireSandbox()
        let bare = try Probe.bare(["spin", "1.5"])
        try Probe.requireControl("CPU spinner (1.5 s)", bare)
        for profile in profiles {
            let file = try Self.profileFile(profile, limits: ["cpuTime": "1s", "cpu": "2"])
            defer { unlink(file) }
            let r = try Probe.sandboxed(["spin", "30"], profile: file, options: ["--timeout", "20s"])
            Log.line("CPU spinner cpuTime 1s", profile, r)
            #expect(r.reason == "cpu_time", "\(profile): \(r), report \(r.report)")
            #expect((r.report["wall_ms"] as? Double ?? 1e9) < 10_000, "\(profile): \(r.report)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func wallClockTimeout() throws {
        try requireSandbox()
        for profile in profiles {
            let start = Date()
            let r = try Probe.sandboxed(["spin", "30"], profile: profile, options: ["--timeout", "1s"])
            let took = Date().timeIntervalSince(start)
            Log.line("CPU spinner --timeout 1s", profile, r)
            #expect(r.reason == "timeout", "\(profile): \(r), report \(r.report)")
            let wall = r.report["wall_ms"] as? Double ?? 0
            // DESIGN §4: everything is killed at the deadline and the call returns within a second.
            #expect(wall >= 1000 && wall < 2000, "\(profile): wall_ms \(wall)")
            #expect(took < 3, "\(profile): the CLI took \(took) s")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func outputFloodIsCutAtTheCap() throws {
        try requireSandbox()
        let bare = try Probe.bare(["flood", "3000000"])
        #expect(bare.stdout.utf8.count == 3_000_000, "control wrote \(bare.stdout.utf8.count) bytes")
        for (profile, cap) in [("default", 8 << 20), ("strict", 1 << 20)] {
            let r = try Probe.sandboxed(["flood", "\(4 * cap)"], profile: profile)
            Log.line("output flood (cap \(cap))", profile, r)
            #expect(r.reason == "output_limit", "\(profile): report \(r.report)")
            #expect(r.report["truncated"] as? Bool == true, "\(profile): \(r.report)")
            #expect(r.stdout.utf8.count == cap, "\(profile): stdout \(r.stdout.utf8.count) bytes, cap \(cap)")
            #expect(r.report["stdout_bytes"] as? Int == cap, "\(profile): \(r.report)")
        }
    }

    /// setsid + double fork, writing a marker into a --bind directory: once the sandbox ends the marker
    /// stops changing and no such process exists on the host.
    @Test(.timeLimit(.minutes(1)))
    func escapingGrandchildrenDie() throws {
        try requireSandbox()
        let dir = scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let token = Probe.token()

        // Control: bare, the grandchild outlives the probe and keeps writing.
        let bare = try Probe.bare(["escape", "\(dir)/bare", "20", token])
        try Probe.requireControl("escaping grandchild", bare)
        defer { for p in hostProcesses(containing: token) { kill(p, SIGKILL) } }
        let a = try? String(contentsOfFile: "\(dir)/bare", encoding: .utf8)
        usleep(400_000)
        let b = try? String(contentsOfFile: "\(dir)/bare", encoding: .utf8)
        #expect(a != nil && a != b, "control: the bare grandchild stopped writing")
        #expect(!hostProcesses(containing: token).isEmpty, "control: no bare grandchild")
        for p in hostProcesses(containing: token) { kill(p, SIGKILL) }
        #expect(eventually(2) { hostProcesses(containing: token).isEmpty })

        for profile in profiles {
            let marker = "\(dir)/\(profile)"
            let r = try Probe.sandboxed(["escape", "/out/\(profile)", "20", token], profile: profile,
                                        options: ["--bind", "\(dir):/out"])
            Log.line("escaping grandchild", profile, r)
            #expect(r.allowed, "\(profile): the probe could not even start its grandchild: \(r)")
            let first = try? String(contentsOfFile: marker, encoding: .utf8)
            usleep(400_000)
            let second = try? String(contentsOfFile: marker, encoding: .utf8)
            #expect(first != nil, "\(profile): the grandchild never wrote its marker")
            #expect(first == second, "\(profile): the marker is still changing after the sandbox ended (\(first ?? "nil") → \(second ?? "nil"))")
            #expect(hostProcesses(containing: token).isEmpty, "\(profile): a grandchild survives on the host")
        }
    }

    /// Warden killed with SIGKILL mid-run: the sandbox dies with it (parent-death signal on the init, whose
    /// exit tears down the pid namespace).
    @Test(.timeLimit(.minutes(1)))
    func sandboxDiesWithWarden() throws {
        try requireSandbox()
        let dir = scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for profile in profiles {
            let token = Probe.token()
            let marker = "\(dir)/\(profile)"
            let w = try startWarden(["sandbox", "exec", "--profile", profile, "--ro-bind", "\(Probe.dir):/plugin",
                                     "--bind", "\(dir):/out", "--", Probe.inside, "tick", "/out/\(profile)", "20", token])
            #expect(eventually(10) { FileManager.default.fileExists(atPath: marker) }, "\(profile): the payload never ran")
            kill(w.processIdentifier, SIGKILL)
            w.waitUntilExit()
            #expect(eventually(2) { hostProcesses(containing: token).isEmpty }, "\(profile): the payload outlived Warden")
            let a = try? String(contentsOfFile: marker, encoding: .utf8)
            usleep(300_000)
            let b = try? String(contentsOfFile: marker, encoding: .utf8)
            #expect(a == b, "\(profile): the marker still changes after Warden died")
            // Its task cgroups are orphans now; `serve` sweeps them at start (see CgroupV1SweepTests).
            let orphan = "w\(w.processIdentifier)-"
            for path in Self.cgroupLeftovers() where path.contains("/\(orphan)") { rmdir(path) }
        }
    }

    /// With cgroup limits on, a finished sandbox leaves no task cgroup behind. The pids limit biting shows
    /// the cgroup existed; its name carries the warden pid (w<pid>-<n>), so parallel runs do not interfere.
    @Test(.timeLimit(.minutes(1)))
    func noCgroupLeftBehind() throws {
        try requireSandbox()
        for profile in profiles {
            let report = NSTemporaryDirectory() + "warden-report-\(UUID().uuidString.prefix(8)).json"
            defer { unlink(report) }
            let w = try startWarden(["sandbox", "exec", "--profile", profile, "--memory", "64Mi", "--pids", "20", "--cpu", "500m",
                                     "--report", report, "--ro-bind", "\(Probe.dir):/plugin", "--", Probe.inside, "forkbomb", "40"])
            w.waitUntilExit()
            let rec = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report)))) as? [String: Any] ?? [:]
            #expect(rec["reason"] as? String == "pids", "\(profile): the cgroup limit did not apply: \(rec)")
            let mine = Self.cgroupLeftovers().filter { $0.hasSuffix("/w\(w.processIdentifier)-1") }
            #expect(mine.isEmpty, "\(profile): task cgroups left behind: \(mine)")
        }
    }
}
}

extension SandboxZoo {
/// `warden bench spawn` and `bench seccomp-bpf`, as a user (and Benchmarks/spawn.sh) reads them.
@Suite("bench commands")
struct BenchCommandTests {
    @Test(.timeLimit(.minutes(1)))
    func spawnPrintsTheRecord() throws {
        try requireSandbox()
        let r = try Warden.run(["bench", "spawn", "--n", "5", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = r.json as? [String: Any] ?? [:]
        #expect(o["name"] as? String == "spawn" && o["n"] as? Int == 5, "\(r.stdout)")
        let median = o["median_ms"] as? Double ?? 0, p90 = o["p90_ms"] as? Double ?? 0
        #expect(median > 0 && median <= p90, "\(r.stdout)")
        #expect((o["per_second"] as? Double ?? 0) > 0, "\(r.stdout)")
        #expect(Set(o["namespaces"] as? [String] ?? []) == ["user", "pid", "mount", "net", "ipc", "uts", "cgroup"], "\(r.stdout)")
        #expect(o["seccomp_filters"] as? Int == 2, "\(r.stdout)")
    }

    @Test(.timeLimit(.minutes(1)))
    func seccompBPFWritesTheLoadedPrograms() throws {
        try requireSandbox()
        let dir = scratchDir(0o755)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Warden.run(["bench", "seccomp-bpf", "--out", "\(dir)/f"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n") == ["\(dir)/f.0.bpf", "\(dir)/f.1.bpf"], "\(r.stdout)")
        for f in ["f.0.bpf", "f.1.bpf"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: "\(dir)/\(f)")[.size] as? Int) ?? 0
            #expect(size > 0 && size % 8 == 0, "\(f): \(size) bytes is not a sock_filter array")
        }
    }
}
}
