import Testing
import WardenCore
@testable import WardenScheduler

private let gi: Int64 = 1 << 30

private func node(_ name: String, cpu: Int64, memGi: Int64, labels: [String: String] = [:], gpu: Int64 = 0,
                  reserved: Resources = .zero) -> NodeSpec {
    NodeSpec(name: name, capacity: Resources(cpuMillis: cpu * 1000, memoryBytes: memGi * gi, extended: gpu > 0 ? ["gpu": gpu] : [:]),
             labels: labels, reserved: reserved)
}

private func task(_ id: String, cpuMillis: Int64, mem: Int64, priority: Int = 0, constraints: [String: [String]] = [:],
                  anti: String? = nil, group: String? = nil, gpu: Int64 = 0) -> TaskDemand {
    TaskDemand(id: id, resources: Resources(cpuMillis: cpuMillis, memoryBytes: mem, extended: gpu > 0 ? ["gpu": gpu] : [:]),
               priority: priority, constraints: constraints, antiAffinity: anti, group: group)
}

@Suite struct PlacerTests {
    @Test func explanationNamesReasonsAndBestFree() {
        // The example of DESIGN §6: 12 nodes, none fits a 4-cpu 2Gi task.
        let p = Placer()
        for i in 0..<5 { p.upsertNode(node("c\(i)", cpu: 2, memGi: 8)) }       // cpu-short
        for i in 0..<7 { p.upsertNode(node("m\(i)", cpu: 8, memGi: 1)) }       // memory-short (1Gi)
        p.upsertNode(node("m6", cpu: 8, memGi: 2, reserved: Resources(memoryBytes: gi / 2)))  // 1.5Gi allocatable
        let d = p.place(task("big", cpuMillis: 4000, mem: 2 * gi))
        #expect(d.node == nil)
        #expect(d.explanation == "0/12 nodes fit: 7 insufficient memory (need 2Gi, best free 1.5Gi), 5 insufficient cpu (need 4, best free 2)")
        #expect(d.rejections == ["insufficient memory": 7, "insufficient cpu": 5])
    }

    @Test func binpackPrefersTheFullestFittingNodeAndExplainsTheRest() throws {
        let p = Placer(strategy: .binpack)
        p.upsertNode(node("a", cpu: 8, memGi: 32))
        p.upsertNode(node("b", cpu: 8, memGi: 32))
        p.upsertNode(node("c", cpu: 8, memGi: 32), ready: false)
        try p.allocate(node: "b", resources: Resources(cpuMillis: 6000, memoryBytes: 24 * gi))
        let d = p.place(task("t", cpuMillis: 1000, mem: 4 * gi))
        #expect(d.node == "b")
        #expect(d.explanation.hasPrefix("placed on b (binpack score "))
        #expect(d.explanation.hasSuffix("; 2/3 nodes fit; rejected: 1 not ready"))
        // 20 − (10^(1/8) + 10^(4/32)) for b.
        let expected = 20 - 2 * Scoring.p10(0.125)
        #expect(abs((d.score ?? 0) - expected) < 1e-9)
        #expect(p.allocation(of: "b") == Resources(cpuMillis: 7000, memoryBytes: 28 * gi))
    }

    @Test func spreadPrefersTheEmptiestNodeAndTiesGoToTheFirstAdded() {
        let p = Placer(strategy: .spread)
        for n in ["z", "y", "x"] { p.upsertNode(node(n, cpu: 4, memGi: 16)) }
        #expect(p.place(task("1", cpuMillis: 1000, mem: gi)).node == "z")   // all equal: first added
        #expect(p.place(task("2", cpuMillis: 1000, mem: gi)).node == "y")
        #expect(p.place(task("3", cpuMillis: 1000, mem: gi)).node == "x")
        #expect(p.place(task("4", cpuMillis: 1000, mem: gi)).node == "z")
    }

    @Test func constraintsAndAntiAffinityAreExplained() {
        let p = Placer()
        p.upsertNode(node("a1", cpu: 4, memGi: 16, labels: ["zone": "a"]))
        p.upsertNode(node("a2", cpu: 4, memGi: 16, labels: ["zone": "a"]))
        p.upsertNode(node("b1", cpu: 4, memGi: 16, labels: ["zone": "b"]))
        p.upsertNode(node("c1", cpu: 4, memGi: 16, labels: ["zone": "c"]))
        let first = p.place(task("w-0", cpuMillis: 500, mem: gi, constraints: ["zone": ["a", "b"]], anti: "zone", group: "w"))
        #expect(first.node == "a1")
        let second = p.place(task("w-1", cpuMillis: 500, mem: gi, constraints: ["zone": ["a", "b"]], anti: "zone", group: "w"))
        #expect(second.node == "b1")
        #expect(second.explanation.hasSuffix("1/4 nodes fit; rejected: 2 anti-affinity zone, 1 constraint zone (not in [a, b])"))
        let third = p.place(task("w-2", cpuMillis: 500, mem: gi, constraints: ["zone": ["a", "b"]], anti: "zone", group: "w"))
        #expect(third.node == nil)
        #expect(third.explanation == "0/4 nodes fit: 3 anti-affinity zone, 1 constraint zone (not in [a, b])")
        // Another group is not affected, and releasing frees the domain.
        #expect(p.place(task("v-0", cpuMillis: 500, mem: gi, anti: "zone", group: "v")).node == "a1")
        #expect(p.release(taskID: "w-0"))
        #expect(p.place(task("w-2", cpuMillis: 500, mem: gi, constraints: ["zone": ["a", "b"]], anti: "zone", group: "w")).node == "a1")
    }

    @Test func antiAffinityOnAMissingLabelMeansOnePerNode() {
        let p = Placer()
        for i in 0..<3 { p.upsertNode(node("n\(i)", cpu: 8, memGi: 8)) }
        let nodes = (0..<3).map { p.place(task("r-\($0)", cpuMillis: 100, mem: 1 << 20, anti: "host", group: "r")).node }
        #expect(nodes == ["n0", "n1", "n2"])
        let d = p.place(task("r-3", cpuMillis: 100, mem: 1 << 20, anti: "host", group: "r"))
        #expect(d.node == nil)
        #expect(d.explanation == "0/3 nodes fit: 3 anti-affinity host")
    }

    @Test func extendedResourcesAndReservedHeadroom() {
        let p = Placer()
        p.upsertNode(node("cpu", cpu: 16, memGi: 64))
        p.upsertNode(node("gpu", cpu: 16, memGi: 64, gpu: 2, reserved: Resources(cpuMillis: 12000)))
        let d = p.place(task("train", cpuMillis: 2000, mem: gi, gpu: 1))
        #expect(d.node == "gpu")
        #expect(d.explanation.hasSuffix("1/2 nodes fit; rejected: 1 insufficient gpu (need 1, best free 0)"))
        // 4 cpu allocatable on the gpu node: 2 left.
        let e = p.place(task("train2", cpuMillis: 3000, mem: gi, gpu: 1))
        #expect(e.explanation == "0/2 nodes fit: 1 insufficient cpu (need 3, best free 2), 1 insufficient gpu (need 1, best free 0)")
    }

    @Test func nodesComeAndGo() throws {
        let p = Placer()
        p.upsertNode(node("a", cpu: 4, memGi: 4))
        p.upsertNode(node("b", cpu: 4, memGi: 4))
        #expect(p.place(task("1", cpuMillis: 3000, mem: gi)).node == "a")
        try p.setReady("a", false)
        #expect(p.place(task("2", cpuMillis: 1000, mem: gi)).node == "b")
        #expect(p.removeNode("a") == ["1"])
        #expect(p.node(of: "1") == nil)
        #expect(throws: WardenError.self) { try p.setReady("a", true) }
        // Updating capacity keeps the allocation.
        p.upsertNode(node("b", cpu: 2, memGi: 4))
        #expect(p.allocation(of: "b") == Resources(cpuMillis: 1000, memoryBytes: gi))
        let d = p.place(task("3", cpuMillis: 1500, mem: gi))
        #expect(d.explanation == "0/1 nodes fit: 1 insufficient cpu (need 1.5, best free 1)")
    }

    /// The index must make exactly the decisions of the full scan: same node, same score, same explanation,
    /// through a random history of placements, releases, readiness changes and node updates.
    /// Cluster sizes that exercise each grid resolution (16, 64 and 256 rows): 120 nodes in many pools, 700
    /// nodes in two shapes, 4500 nodes of one shape.
    @Test(arguments: [(Strategy.binpack, 120, 6000), (.dotproduct, 120, 6000), (.spread, 120, 6000),
                      (.binpack, 700, 4000), (.spread, 700, 3000), (.dotproduct, 4500, 1500), (.binpack, 4500, 2500)])
    func indexAgreesWithFullScan(strategy: Strategy, clusterSize: Int, steps: Int) {
        var rng = SplitMix64(seed: 42 &+ UInt64(strategy.rawValue.count) &+ UInt64(clusterSize))
        let fast = Placer(strategy: strategy)
        let slow = FullScanPlacer(strategy: strategy)
        let shapes: [(Int64, Int64, Int64)] = clusterSize > 1000 ? [(16, 64, 0)]
            : clusterSize > 200 ? [(4, 16, 0), (8, 64, 2)] : [(4, 16, 0), (8, 32, 0), (16, 64, 0), (8, 64, 2)]
        let zones = ["a", "b", "c"]
        func addNode(_ i: Int) {
            let s = shapes[rng.below(shapes.count)]
            var labels = ["zone": zones[rng.below(3)]]
            if rng.below(4) == 0 && clusterSize < 1000 { labels["pool"] = "hi" }
            let spec = node("n\(i)", cpu: s.0, memGi: s.1, labels: labels, gpu: s.2,
                            reserved: clusterSize < 200 && rng.below(3) == 0 ? Resources(cpuMillis: 500, memoryBytes: gi / 2) : .zero)
            fast.upsertNode(spec)
            slow.upsertNode(spec)
            // Big clusters start partly full, so that a few thousand steps see both outcomes.
            if clusterSize > 200 {
                let load = Resources(cpuMillis: Int64(rng.below(Int(s.0) * 1000)), memoryBytes: Int64(rng.below(Int(s.1))) * gi)
                try? fast.allocate(node: spec.name, resources: load)
                slow.allocate(node: spec.name, resources: load)
            }
        }
        for i in 0..<clusterSize { addNode(i) }
        var live: [String] = []
        var nextNode = clusterSize
        var placed = 0, failed = 0, withReasons = 0
        let scale: Int64 = clusterSize > 200 ? 2 : 1
        for step in 0..<steps {
            let op = rng.below(100)
            if op < 70 {
                let cpu = Int64([100, 250, 500, 1000, 1500, 2000, 4000, 7000][rng.below(8)]) * scale
                let mem = (Int64([64, 256, 512, 1024, 2048, 4096, 12_000][rng.below(7)]) << 20) * scale
                var constraints: [String: [String]] = [:]
                if rng.below(5) == 0 { constraints["zone"] = rng.below(2) == 0 ? ["a"] : ["b", "c"] }
                if rng.below(10) == 0 { constraints["pool"] = ["hi"] }
                let anti: String? = rng.below(6) == 0 ? (rng.below(2) == 0 ? "zone" : "host") : nil
                let t = task("t\(step)", cpuMillis: rng.below(20) == 0 ? 0 : cpu, mem: rng.below(20) == 0 ? 0 : mem,
                             constraints: constraints, anti: anti, group: "g\(rng.below(5))", gpu: rng.below(12) == 0 ? 1 : 0)
                let a = fast.place(t), b = slow.place(t)
                #expect(a == b, "step \(step): \(a.explanation) vs \(b.explanation)")
                if a != b { return }
                if a.placed { live.append(t.id); placed += 1 } else { failed += 1 }
                if a.placed && !a.reasons.isEmpty { withReasons += 1 }
            } else if op < 92, !live.isEmpty {
                let id = live.remove(at: rng.below(live.count))
                #expect(fast.release(taskID: id) == slow.release(taskID: id))
            } else if op < 96 {
                let name = "n\(rng.below(nextNode))"
                let ready = rng.below(2) == 0
                try? fast.setReady(name, ready)
                slow.setReady(name, ready)
            } else if op < 98 {
                let name = "n\(rng.below(nextNode))"
                let gone = fast.removeNode(name)
                #expect(gone == slow.removeNode(name))
                live.removeAll { gone.contains($0) }
            } else {
                addNode(nextNode)
                nextNode += 1
            }
        }
        // The history must have exercised both outcomes (a cluster neither empty nor full).
        #expect(placed > steps / 6 && failed > steps / 20 && withReasons > steps / 10, "placed \(placed), failed \(failed), explained \(withReasons)")
        #expect(fast.pools.map(\.g).max() == gridSize(for: clusterSize))
    }
}
