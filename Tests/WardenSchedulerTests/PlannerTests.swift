import Testing
import WardenCore
@testable import WardenScheduler

/// Items (cpu millis, memory bytes) of the generator classes the quality script uses, built in Swift so the
/// tests need nothing else.
private func items(_ cls: String, n: Int, seed: UInt64) -> (items: [(Int64, Int64)], cap: (Int64, Int64)) {
    var rng = SplitMix64(seed: seed)
    func u(_ lo: Int, _ hi: Int) -> Int64 { Int64(lo + rng.below(hi - lo + 1)) }
    switch cls {
    case "ct1": return ((0..<n).map { _ in (u(100, 400), u(100, 400)) }, (1000, 1000))
    case "ct6": return ((0..<n).map { _ in (u(20, 100), u(20, 100)) }, (150, 150))
    case "ct8":
        return ((0..<n).map { _ in let w = u(20, 100); return (w, u(110 - Int(w), 130 - Int(w))) }, (150, 150))
    case "triplets":
        // Three items filling a bin exactly in both dimensions: the optimum is n/3.
        var out: [(Int64, Int64)] = []
        for _ in 0..<(n / 3) {
            let a1 = u(25, 50), b1 = u(25, 50), a2 = u(25, 50), b2 = u(25, 50)
            out += [(a1, a2), (b1, b2), (100 - a1 - b1, 100 - a2 - b2)]
        }
        for i in stride(from: out.count - 1, to: 0, by: -1) { out.swapAt(i, rng.below(i + 1)) }
        return (out, (100, 100))
    default: fatalError(cls)
    }
}

private func demands(_ items: [(Int64, Int64)]) -> [TaskDemand] {
    items.enumerated().map { TaskDemand(id: "i\($0.offset)", resources: Resources(cpuMillis: $0.element.0, memoryBytes: $0.element.1)) }
}

/// The optimum by exhaustive search over set partitions (tiny instances only).
private func bruteForceOptimum(_ items: [(Int64, Int64)], cap: (Int64, Int64), conflicts: [Int] = []) -> Int {
    var best = items.count
    var loads: [(Int64, Int64)] = []
    var members: [[Int]] = []
    func go(_ i: Int) {
        if loads.count >= best { return }
        if i == items.count { best = loads.count; return }
        for b in loads.indices where loads[b].0 + items[i].0 <= cap.0 && loads[b].1 + items[i].1 <= cap.1 {
            if !conflicts.isEmpty && conflicts[i] >= 0 && members[b].contains(where: { conflicts[$0] == conflicts[i] }) { continue }
            loads[b].0 += items[i].0; loads[b].1 += items[i].1; members[b].append(i)
            go(i + 1)
            loads[b].0 -= items[i].0; loads[b].1 -= items[i].1; members[b].removeLast()
        }
        loads.append(items[i]); members.append([i])
        go(i + 1)
        loads.removeLast(); members.removeLast()
    }
    go(0)
    return best
}

/// Checks a report against its input: every placed task once, no node over its allocatable, constraints and
/// anti-affinity respected.
private func checkFeasible(_ r: PlanReport, _ tasks: [TaskDemand]) {
    let byID = Dictionary(uniqueKeysWithValues: tasks.map { ($0.id, $0) })
    #expect(Set(r.placements.map(\.task)).count == r.placements.count)
    #expect(r.placements.count + r.unplaced.count == tasks.count)
    let nodeOf = Dictionary(uniqueKeysWithValues: r.placements.map { ($0.task, $0.node) })
    for n in r.nodes {
        var sum = Resources.zero
        var domains: [String: Set<String>] = [:]
        for id in n.tasks {
            let t = byID[id]!
            #expect(nodeOf[id] == n.spec.name)
            sum = sum + t.resources
            for (k, allowed) in t.constraints { #expect(allowed.contains(n.spec.labels[k] ?? "\u{0}")) }
            if let key = t.antiAffinity { #expect(domains[t.group, default: []].insert(key).inserted, "anti-affinity \(t.group) on \(n.spec.name)") }
        }
        #expect(sum == n.allocated)
        #expect(sum.fits(in: n.spec.allocatable), "\(n.spec.name) over capacity")
    }
}

@Suite struct PlannerTests {
    @Test func fixedClusterPlacesExplainsAndReports() throws {
        let nodes = [
            NodeSpec(name: "a", capacity: Resources(cpuMillis: 4000, memoryBytes: 8 << 30), labels: ["zone": "a"]),
            NodeSpec(name: "b", capacity: Resources(cpuMillis: 4000, memoryBytes: 8 << 30), labels: ["zone": "b"],
                     reserved: Resources(cpuMillis: 1000)),
        ]
        let tasks = try PlanInput.tasks(fromJSON: try JSONValue.parse("""
            [{"id": "web", "cpu": "1", "memory": "1Gi", "count": 3, "antiAffinity": "zone"},
             {"id": "db", "cpu": "2", "memory": "6Gi", "priority": 5, "constraints": {"zone": "b"}},
             {"id": "batch", "cpu": "500m", "memory": "512Mi", "count": 2}]
            """))
        let r = Planner.plan(tasks: tasks, nodes: nodes, strategy: .binpack)
        checkFeasible(r, tasks)
        #expect(!r.allPlaced)
        #expect(r.unplaced.map(\.task) == ["web-2"])
        // db takes zone b first (priority); web-0 packs next to it and fills b's cpu; web-1 goes to a; web-2
        // finds b full and zone a taken.
        #expect(r.unplaced[0].reason == "0/2 nodes fit: 1 anti-affinity zone, 1 insufficient cpu (need 1, best free 0)")
        #expect(r.placements.first { $0.task == "db" }?.node == "b")
        #expect(r.nodesUsed == 2 && r.lowerBound >= 1 && r.lowerBound <= r.nodesUsed)
        let json = r.json
        for key in ["placements", "unplaced", "nodes_used", "lower_bound", "utilization", "nodes", "stranded"] {
            #expect(json[key] != nil, "missing \(key)")
        }
        #expect(abs((json["utilization"]?["cpu"]?.doubleValue ?? 0) - 0.7143) < 1e-9)   // 5 of 7 allocatable cpu
        #expect(json["placements"]?.arrayValue?.first == ["task": "web-0", "node": "b"])
        #expect(r.text.contains("web-2: 0/2 nodes fit: 1 anti-affinity zone, 1 insufficient cpu (need 1, best free 0)"))
    }

    @Test func strandedCapacityIsReported() {
        // "m" packs onto mem-rich (the tighter fit) and leaves it 4Gi no task can use without cpu; "cpu-only"
        // has 4 cpu but less memory than the smallest task needs.
        let nodes = [NodeSpec(name: "cpu-rich", capacity: Resources(cpuMillis: 4000, memoryBytes: 4 << 30)),
                     NodeSpec(name: "mem-rich", capacity: Resources(cpuMillis: 1000, memoryBytes: 8 << 30)),
                     NodeSpec(name: "cpu-only", capacity: Resources(cpuMillis: 4000, memoryBytes: 1 << 30))]
        let tasks = [TaskDemand(id: "m", resources: Resources(cpuMillis: 1000, memoryBytes: 4 << 30)),
                     TaskDemand(id: "c", resources: Resources(cpuMillis: 1000, memoryBytes: 2 << 30))]
        let r = Planner.plan(tasks: tasks, nodes: nodes)
        #expect(r.allPlaced)
        #expect(r.placements == [.init(task: "m", node: "mem-rich"), .init(task: "c", node: "cpu-rich")])
        #expect(r.stranded == .init(cpuMillis: 4000, memoryBytes: 4 << 30, cpuNodes: 1, memoryNodes: 1))
        #expect(r.json["stranded"]?["cpu"] == "4")
        #expect(r.json["stranded"]?["memory"] == "4Gi")
    }

    /// On tiny random instances the planner finds the optimum (checked by brute force) and its lower bound
    /// never exceeds it.
    @Test func tinyInstancesAreSolvedOptimallyWithValidBounds() {
        var rng = SplitMix64(seed: 7)
        for round in 0..<40 {
            let n = 4 + rng.below(6)
            let cap: (Int64, Int64) = (100, 100)
            let its: [(Int64, Int64)] = (0..<n).map { _ in (Int64(10 + rng.below(70)), Int64(10 + rng.below(70))) }
            let conflicts: [Int] = (0..<n).map { _ in rng.below(4) == 0 ? rng.below(2) : -1 }
            var tasks = demands(its)
            for i in tasks.indices where conflicts[i] >= 0 {
                tasks[i].antiAffinity = "host"
                tasks[i].group = "g\(conflicts[i])"
            }
            let opt = bruteForceOptimum(its, cap: cap, conflicts: conflicts)
            let r = Planner.minimumNodes(tasks: tasks, shape: NodeSpec(name: "s", capacity: Resources(cpuMillis: cap.0, memoryBytes: cap.1)),
                                         timeLimitSeconds: 5)
            checkFeasible(r, tasks)
            #expect(r.lowerBound <= opt, "round \(round): bound \(r.lowerBound) > optimum \(opt)")
            #expect(r.nodesUsed == opt, "round \(round): \(r.nodesUsed) nodes, optimum \(opt)")
        }
    }

    /// The bounds alone, on larger random instances: never above a known feasible packing of the same items.
    @Test func lowerBoundsNeverExceedTheOptimumOnSmallInstances() {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<30 {
            let n = 6 + rng.below(4)
            let its: [(Int64, Int64)] = (0..<n).map { _ in (Int64(1 + rng.below(99)), Int64(1 + rng.below(99))) }
            let p = PackProblem(size: its.flatMap { [$0.0, $0.1] }, dims: 2, cap: [100, 100], conflict: Array(repeating: -1, count: n))
            let b = p.lowerBounds()
            #expect(b.bound <= bruteForceOptimum(its, cap: (100, 100)))
        }
    }

    @Test func tripletsReachTheKnownOptimum() {
        let (its, cap) = items("triplets", n: 60, seed: 3)
        let tasks = demands(its)
        let r = Planner.minimumNodes(tasks: tasks, shape: NodeSpec(name: "s", capacity: Resources(cpuMillis: cap.0, memoryBytes: cap.1)))
        checkFeasible(r, tasks)
        #expect(r.nodesUsed == 20)
        #expect(r.lowerBound == 20)
        #expect((r.ffdNodes ?? 0) > 20)   // the instance is hard for first fit
    }

    /// Literature classes: feasible, never worse than first-fit decreasing, bound below the answer, and the
    /// pair class (no three items fit a bin) solved exactly by matching.
    @Test(arguments: ["ct1", "ct6", "ct8"]) func classicClasses(cls: String) {
        let (its, cap) = items(cls, n: 60, seed: 5)
        let tasks = demands(its)
        let r = Planner.minimumNodes(tasks: tasks, shape: NodeSpec(name: "s", capacity: Resources(cpuMillis: cap.0, memoryBytes: cap.1)),
                                     timeLimitSeconds: 5)
        checkFeasible(r, tasks)
        #expect(r.allPlaced)
        #expect(r.nodesUsed <= r.ffdNodes ?? .max)
        #expect(r.lowerBound <= r.nodesUsed)
        if cls == "ct8" { #expect(r.nodesUsed == r.lowerBound) }
    }

    @Test func sameInputSameAnswer() {
        let (its, cap) = items("ct6", n: 36, seed: 9)
        let shape = NodeSpec(name: "s", capacity: Resources(cpuMillis: cap.0, memoryBytes: cap.1))
        let a = Planner.minimumNodes(tasks: demands(its), shape: shape, timeLimitSeconds: 120)
        let b = Planner.minimumNodes(tasks: demands(its), shape: shape, timeLimitSeconds: 120)
        #expect(a.placements == b.placements)
        #expect(a.lowerBound == b.lowerBound)
    }

    @Test func shapeModeReportsWhatCannotFit() {
        let tasks = [
            TaskDemand(id: "big", resources: Resources(cpuMillis: 32_000, memoryBytes: 1 << 30)),
            TaskDemand(id: "pinned", resources: Resources(cpuMillis: 1000), constraints: ["zone": ["a"]]),
            TaskDemand(id: "gpu", resources: Resources(cpuMillis: 1000, extended: ["gpu": 2])),
            TaskDemand(id: "ok", resources: Resources(cpuMillis: 1000, memoryBytes: 1 << 30)),
        ]
        let r = Planner.minimumNodes(tasks: tasks, shape: try! PlanInput.shape(parsing: "16,64Gi,gpu=1"))
        #expect(r.nodesUsed == 1 && !r.allPlaced)
        let reasons = Dictionary(uniqueKeysWithValues: r.unplaced.map { ($0.task, $0.reason) })
        #expect(reasons["big"] == "larger than an empty node of the shape: insufficient cpu (need 32, node has 16)")
        #expect(reasons["pinned"] == "constraint zone: nodes of a --shape have no labels")
        #expect(reasons["gpu"] == "larger than an empty node of the shape: insufficient gpu (need 2, node has 1)")
    }

    /// Anti-affinity groups are cliques: five replicas need five nodes, and the bound knows it.
    @Test func antiAffinityInShapeMode() {
        var tasks = (0..<5).map { TaskDemand(id: "r\($0)", resources: Resources(cpuMillis: 100, memoryBytes: 1 << 20), antiAffinity: "host", group: "r") }
        tasks += (0..<20).map { TaskDemand(id: "s\($0)", resources: Resources(cpuMillis: 100, memoryBytes: 1 << 20)) }
        let r = Planner.minimumNodes(tasks: tasks, shape: try! PlanInput.shape(parsing: "4,8Gi"))
        checkFeasible(r, tasks)
        #expect(r.nodesUsed == 5 && r.lowerBound == 5)
    }

    @Test func liveClusterReport() {
        let p = Placer()
        p.upsertNode(NodeSpec(name: "a", capacity: Resources(cpuMillis: 4000, memoryBytes: 8 << 30)))
        p.upsertNode(NodeSpec(name: "b", capacity: Resources(cpuMillis: 4000, memoryBytes: 8 << 30)), ready: false)
        #expect(p.place(TaskDemand(id: "t1", resources: Resources(cpuMillis: 3000, memoryBytes: 2 << 30))).node == "a")
        let waiting = p.explain(TaskDemand(id: "t2", resources: Resources(cpuMillis: 2000)))
        let r = p.report(waiting: [(waiting.task, waiting.explanation)])
        #expect(r.placements == [.init(task: "t1", node: "a")])
        #expect(r.unplaced == [.init(task: "t2", reason: "0/2 nodes fit: 1 insufficient cpu (need 2, best free 1), 1 not ready")])
        #expect(r.nodesUsed == 1 && r.lowerBound == 1)
        #expect(abs((r.utilization["cpu"] ?? 0) - 3.0 / 8.0) < 1e-9)
        #expect(r.html.contains("t2"))
    }

    @Test func htmlIsSelfContained() {
        let nodes = [NodeSpec(name: "n<1>", capacity: Resources(cpuMillis: 2000, memoryBytes: 2 << 30))]
        let tasks = [TaskDemand(id: "a&b", resources: Resources(cpuMillis: 1000, memoryBytes: 1 << 30)),
                     TaskDemand(id: "huge", resources: Resources(cpuMillis: 8000))]
        let html = Planner.plan(tasks: tasks, nodes: nodes).html
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<svg"))
        #expect(html.contains("n&lt;1&gt;"))
        // Larger tasks are placed first, so "huge" meets an empty node.
        #expect(html.contains("0/1 nodes fit: 1 insufficient cpu (need 8, best free 2)"))
        #expect(!html.contains("<script") && !html.contains("http://") && !html.contains("https://") && !html.contains("n<1>"))
    }

    /// Large inputs stay fast (5,000 tasks here in a debug build; 20,000 in release are in docs/SCHEDULING.md).
    @Test func largeInputsPlanQuickly() {
        var rng = SplitMix64(seed: 1)
        let tasks = (0..<5_000).map { i in
            TaskDemand(id: "t\(i)", resources: Resources(cpuMillis: Int64(100 * (1 + rng.below(40))), memoryBytes: Int64(1 + rng.below(16)) << 28))
        }
        let clock = ContinuousClock()
        let t0 = clock.now
        let r = Planner.minimumNodes(tasks: tasks, shape: try! PlanInput.shape(parsing: "16,64Gi"), timeLimitSeconds: 3)
        #expect(r.allPlaced && r.nodesUsed >= r.lowerBound && r.nodesUsed <= r.ffdNodes ?? 0)
        #expect(clock.now - t0 < .seconds(60))
    }
}
