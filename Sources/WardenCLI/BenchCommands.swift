import Glibc
import WardenCore
import WardenSandbox
import WardenSystem

/// `warden bench …`: microbenchmarks. Each subcommand is one entry of `all`; they share `Bench.report`, which
/// prints `{"name", "n", "median_ms", "p90_ms", "per_second", …}` with --json and one line without.
enum BenchCommands {
    static let all: [Command] = [spawn, seccompBPF]

    static let spawn = Command(
        path: ["bench", "spawn"], synopsis: "warden bench spawn [--n N] [--profile P] [--json]",
        abstract: "Time in-process sandbox spawn-to-exit of /bin/true (all namespaces, seccomp, a cgroup).",
        discussion: "Each run is a full sandbox: user/pid/mount/net/ipc/uts/cgroup namespaces, pivot_root, both seccomp filters, a task cgroup with the profile's cpu, memory and pids limits, and the reap. The first run (which makes the root skeleton and compiles the filters) is a warm-up and not counted.",
        options: [.value("--n", "N", "Runs to time (default 200)."), .value("--profile", "P", "Profile (default: default).")],
        usesStore: false, run: BenchCommands.runSpawn)

    static func runSpawn(_ inv: Invocation) throws(WardenError) -> Int32 {
        let n = Int(try Parse.int(inv, "--n", range: 1...1_000_000) ?? 200)
        let profile = try ProfileLoader.load(inv.value("--profile") ?? "default")
        var spec = SandboxSpec(argv: ["/bin/true"], profile: profile)
        spec.output = .capture
        let sandbox = Sandbox.shared
        func once() throws(WardenError) -> UInt64 {
            let t0 = Time.monotonicNs()
            let out = sandbox.run(spec)
            let t1 = Time.monotonicNs()
            if let e = out.setupError { throw e }
            guard out.report.reason == "exited", out.report.exitCode == 0 else {
                throw WardenError(.failure, "bench spawn: /bin/true did not exit 0 in the sandbox (reason \(out.report.reason))")
            }
            return t1 - t0
        }
        let first = try once()   // warm-up, reported apart: skeleton, seccomp programs, first fork of this process
        var samples: [UInt64] = []
        samples.reserveCapacity(n)
        for _ in 0..<n { samples.append(try once()) }
        let limits = profile.profile.limits
        let cg = sandbox.cgroups
        let enforced = ["cpu": limits.cpuMillis != nil, "memory": limits.memoryBytes != nil, "pids": limits.pids != nil]
            .filter { $0.value && cg.enforceable.contains($0.key) }.keys.sorted()
        Bench.report("spawn", samples: samples, inv: inv, extra: [
            "profile": .string(profile.profile.name),
            "namespaces": .array(profile.profile.namespaces.map(\.rawValue).sorted().map { .string($0) }),
            "cgroup": .string(cg.version.rawValue),
            "cgroup_limits": .array(enforced.map { .string($0) }),
            "seccomp_filters": .int(profile.profile.trusted ? 1 : 2),
            "first_ms": .double((Double(first) / 1e3).rounded() / 1e3),
        ])
        return 0
    }
}

extension BenchCommands {
    static let seccompBPF = Command(
        path: ["bench", "seccomp-bpf"], synopsis: "warden bench seccomp-bpf [--profile P] [--seccomp FILE] --out PREFIX",
        abstract: "Write the seccomp programs a sandbox loads, for peers (bwrap --add-seccomp-fd) in comparisons.",
        discussion: "Writes PREFIX.0.bpf (the profile's filter, or --seccomp FILE's) and PREFIX.1.bpf (Warden's mandatory filter), raw struct sock_filter arrays in load order, and prints their paths.",
        options: [.value("--profile", "P", "Profile (default: default)."), .value("--seccomp", "FILE", "OCI seccomp file replacing the profile's filter."),
                  .value("--out", "PREFIX", "Path prefix of the files to write.")],
        usesStore: false, run: BenchCommands.runSeccompBPF)

    static func runSeccompBPF(_ inv: Invocation) throws(WardenError) -> Int32 {
        guard let prefix = inv.value("--out") else {
            throw WardenError(.usage, "bench seccomp-bpf: --out PREFIX is required")
        }
        var spec = SandboxSpec(argv: ["/bin/true"], profile: try ProfileLoader.load(inv.value("--profile") ?? "default"))
        if let f = inv.value("--seccomp") {
            spec.seccompOverride = try ProfileLoader.loadOCI(FS.absolute(f))
        }
        for (i, bytes) in try Sandbox.shared.seccompPrograms(for: spec).enumerated() {
            let path = "\(prefix).\(i).bpf"
            try FS.writeFile(path, bytes)
            Out.print(path)
        }
        return 0
    }
}

/// Shared by the bench subcommands: statistics of per-iteration samples and their output.
enum Bench {
    static func report(_ name: String, samples: [UInt64], inv: Invocation, extra: [String: JSONValue] = [:]) {
        let ms = samples.map { Double($0) / 1e6 }.sorted()
        func pct(_ p: Double) -> Double {
            guard !ms.isEmpty else { return 0 }
            return ms[min(ms.count - 1, Int((p * Double(ms.count - 1)).rounded()))]
        }
        let total = ms.reduce(0, +)
        let r3 = { (v: Double) in (v * 1000).rounded() / 1000 }
        var o: [String: JSONValue] = [
            "name": .string(name), "n": .int(Int64(ms.count)), "median_ms": .double(r3(pct(0.5))),
            "p90_ms": .double(r3(pct(0.9))), "p99_ms": .double(r3(pct(0.99))), "min_ms": .double(r3(ms.first ?? 0)),
            "max_ms": .double(r3(ms.last ?? 0)), "mean_ms": .double(r3(ms.isEmpty ? 0 : total / Double(ms.count))),
            "per_second": .double(((total > 0 ? Double(ms.count) / (total / 1000) : 0) * 10).rounded() / 10),
        ]
        for (k, v) in extra { o[k] = v }
        if inv.json {
            Out.json(.object(o))
        } else {
            Out.print("\(name): n=\(ms.count) median \(r3(pct(0.5))) ms, p90 \(r3(pct(0.9))) ms, min \(r3(ms.first ?? 0)) ms, \(o["per_second"]!.doubleValue ?? 0)/s")
        }
    }
}
