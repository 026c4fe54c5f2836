#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import WardenCore

/// `warden bench schedule`: online placements per second on a synthetic cluster, with the full-scan placer as
/// the baseline in the same run.
public enum ScheduleBench {
    /// A cluster of `nodes` nodes (four shapes, three zones, two pools, 1% not ready) and `tasks` tasks (100m…4
    /// cpu, 1…8 Gi per core, 10% constrained to a zone, 5% with zone anti-affinity), both from a fixed seed.
    public static func workload(nodes: Int, tasks: Int) -> (nodes: [(NodeSpec, Bool)], tasks: [TaskDemand]) {
        var rng = SplitMix64(seed: 0x5EED)
        let shapes: [(Int64, Int64, Int)] = [(4, 16, 15), (8, 32, 40), (16, 64, 30), (32, 128, 15)]
        let zones = ["a", "b", "c"]
        var ns: [(NodeSpec, Bool)] = []
        for i in 0..<nodes {
            var pick = rng.below(100)
            var shape = shapes[0]
            for s in shapes { if pick < s.2 { shape = s; break }; pick -= s.2 }
            let labels = ["zone": zones[rng.below(3)], "pool": rng.below(10) == 0 ? "batch" : "std"]
            let spec = NodeSpec(name: "node-\(i)", capacity: Resources(cpuMillis: shape.0 * 1000, memoryBytes: shape.1 << 30),
                                labels: labels)
            ns.append((spec, rng.below(100) != 0))
        }
        let cpus: [(Int64, Int)] = [(100, 20), (250, 20), (500, 25), (1000, 20), (2000, 10), (4000, 5)]
        var ts: [TaskDemand] = []
        ts.reserveCapacity(tasks)
        for i in 0..<tasks {
            var pick = rng.below(100)
            var cpu: Int64 = 100
            for c in cpus { if pick < c.1 { cpu = c.0; break }; pick -= c.1 }
            let perCore = Int64([1, 2, 4, 8][rng.below(4)]) << 30
            let mem = max(64 << 20, cpu * perCore / 1000 + Int64(rng.below(8)) * (128 << 20))
            var t = TaskDemand(id: "task-\(i)", resources: Resources(cpuMillis: cpu, memoryBytes: mem),
                               priority: rng.below(3))
            if rng.below(10) == 0 { t.constraints["zone"] = [zones[rng.below(3)]] }
            if rng.below(20) == 0 {
                t.antiAffinity = "zone"
                t.group = "svc-\(rng.below(max(1, tasks / 60)))"
            }
            ts.append(t)
        }
        return (ns, ts)
    }

    public static func run(nodes: Int, tasks: Int, strategy: Strategy = .binpack) -> JSONValue {
        let w = workload(nodes: nodes, tasks: tasks)
        let clock = ContinuousClock()

        let placer = Placer(strategy: strategy, expectedTasks: tasks)
        for (spec, ready) in w.nodes { placer.upsertNode(spec, ready: ready) }
        let batch = 1000
        var batchMs: [Double] = []
        var decisions: [String?] = []
        decisions.reserveCapacity(tasks)
        var placed = 0
        let cpu0 = threadCPUSeconds()
        let start = clock.now
        var i = 0
        while i < w.tasks.count {
            let end = min(i + batch, w.tasks.count)
            let t0 = clock.now
            for t in w.tasks[i..<end] {
                let d = placer.place(t)
                if d.placed { placed += 1 }
                decisions.append(d.node)
            }
            batchMs.append(ms(clock.now - t0) * Double(batch) / Double(end - i))
            i = end
        }
        let total = ms(clock.now - start)
        let cpuSeconds = threadCPUSeconds() - cpu0

        // The baseline on a prefix of the same workload (a full scan per task is slow), from the same start.
        let baselineN = min(tasks, 20_000)
        let naive = FullScanPlacer(strategy: strategy)
        for (spec, ready) in w.nodes { naive.upsertNode(spec, ready: ready) }
        var agree = true
        let b0 = clock.now
        for (k, t) in w.tasks.prefix(baselineN).enumerated() where naive.place(t).node != decisions[k] { agree = false }
        let baselineMs = ms(clock.now - b0)

        batchMs.sort()
        let perSecond = total > 0 ? Double(tasks) / (total / 1000) : 0
        let baselinePerSecond = baselineMs > 0 ? Double(baselineN) / (baselineMs / 1000) : 0
        return .object([
            "name": "schedule", "n": .int(Int64(tasks)), "nodes": .int(Int64(nodes)), "strategy": .string(strategy.rawValue),
            "batch": .int(Int64(batch)),
            "median_ms": .double(roundTo(percentile(batchMs, 0.5), 3)),
            "p90_ms": .double(roundTo(percentile(batchMs, 0.9), 3)),
            "total_ms": .double(roundTo(total, 1)),
            "per_second": .double(perSecond.rounded()),
            // CPU time of the placing thread: the same figure when the machine is shared with other work.
            "per_second_cpu": .double(cpuSeconds > 0 ? (Double(tasks) / cpuSeconds).rounded() : 0),
            "baseline": "full scan of every node per task",
            "baseline_n": .int(Int64(baselineN)),
            "baseline_per_second": .double(baselinePerSecond.rounded()),
            "ratio": .double(roundTo(baselinePerSecond > 0 ? perSecond / baselinePerSecond : 0, 1)),
            "placed": .int(Int64(placed)), "unplaced": .int(Int64(tasks - placed)),
            "pools": .int(Int64(placer.labelPools.count)), "shapes": .int(Int64(placer.shapes.count)),
            "agree_with_baseline": .bool(agree),
        ])
    }

    static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func ms(_ d: Duration) -> Double {
        let c = d.components
        return Double(c.seconds) * 1000 + Double(c.attoseconds) / 1e15
    }

    static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let idx = min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))
        return sorted[idx]
    }
}
