import WardenCore

/// What `warden plan` reports: `json` (DESIGN §7 shape, more fields allowed), `text` for a terminal, `html` for a
/// browser. The CLI exits 0 when `allPlaced`, 1 otherwise.
public struct PlanReport: Sendable {
    public enum Mode: String, Sendable { case nodes, shape }

    public struct Placement: Sendable, Hashable {
        public var task: String
        public var node: String
    }

    public struct Unplaced: Sendable, Hashable {
        public var task: String
        public var reason: String
    }

    public struct NodeUse: Sendable, Hashable {
        public var spec: NodeSpec
        public var allocated: Resources
        public var tasks: [String]

        public var free: Resources { spec.allocatable - allocated }

        /// allocated / allocatable of a dimension (0 when the node has none of it).
        public func utilization(_ dim: String) -> Double {
            let a = spec.allocatable
            switch dim {
            case "cpu": return a.cpuMillis > 0 ? Double(allocated.cpuMillis) / Double(a.cpuMillis) : 0
            case "memory": return a.memoryBytes > 0 ? Double(allocated.memoryBytes) / Double(a.memoryBytes) : 0
            default:
                let c = a.extended[dim, default: 0]
                return c > 0 ? Double(allocated.extended[dim, default: 0]) / Double(c) : 0
            }
        }
    }

    /// Capacity no task of the input can use: free cpu on nodes whose free memory is less than the smallest
    /// memory demand, and free memory on nodes whose free cpu is less than the smallest cpu demand.
    public struct Stranded: Sendable, Hashable {
        public var cpuMillis: Int64 = 0
        public var memoryBytes: Int64 = 0
        public var cpuNodes = 0
        public var memoryNodes = 0
    }

    public var mode: Mode
    /// The online strategy (fixed cluster); nil for a shape.
    public var strategy: Strategy?
    public var placements: [Placement] = []
    public var unplaced: [Unplaced] = []
    public var nodes: [NodeUse] = []
    public var nodesUsed = 0
    public var lowerBound = 0
    /// Shape mode: nodes first-fit decreasing needs (the baseline).
    public var ffdNodes: Int?
    public var method = ""
    /// Shape mode: why the search stopped (`lower bound met`, `budget`, `time limit`, `proved optimal …`).
    public var stopped: String?
    var bounds: BoundReport?
    public var elapsedMs = 0.0
    /// Extended resource names, in the order reports show them.
    public var extNames: [String]
    public var utilization: [String: Double] = [:]
    public var stranded = Stranded()

    init(mode: Mode, strategy: Strategy?, extNames: [String]) {
        self.mode = mode
        self.strategy = strategy
        self.extNames = extNames.sorted()
    }

    public var allPlaced: Bool { unplaced.isEmpty }

    /// "cpu", "memory", then extended names.
    public var dimensions: [String] { ["cpu", "memory"] + extNames }

    mutating func finish(tasks: [TaskDemand], elapsed: Duration) {
        let c = elapsed.components
        elapsedMs = Double(c.seconds) * 1000 + Double(c.attoseconds) / 1e15
        for dim in dimensions {
            var used = 0.0, total = 0.0
            for n in nodes {
                let a = n.spec.allocatable
                switch dim {
                case "cpu": used += Double(n.allocated.cpuMillis); total += Double(a.cpuMillis)
                case "memory": used += Double(n.allocated.memoryBytes); total += Double(a.memoryBytes)
                default: used += Double(n.allocated.extended[dim, default: 0]); total += Double(a.extended[dim, default: 0])
                }
            }
            utilization[dim] = total > 0 ? used / total : 0
        }
        let minCpu = tasks.map(\.resources.cpuMillis).filter { $0 > 0 }.min()
        let minMem = tasks.map(\.resources.memoryBytes).filter { $0 > 0 }.min()
        var s = Stranded()
        for n in nodes {
            let f = n.free
            if let minMem, f.memoryBytes < minMem, f.cpuMillis > 0 {
                s.cpuMillis += f.cpuMillis
                s.cpuNodes += 1
            }
            if let minCpu, f.cpuMillis < minCpu, f.memoryBytes > 0 {
                s.memoryBytes += f.memoryBytes
                s.memoryNodes += 1
            }
        }
        stranded = s
    }

    // MARK: JSON

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "mode": .string(mode.rawValue),
            "placements": .array(placements.map { .object(["task": .string($0.task), "node": .string($0.node)]) }),
            "unplaced": .array(unplaced.map { .object(["task": .string($0.task), "reason": .string($0.reason)]) }),
            "nodes_used": .int(Int64(nodesUsed)),
            "lower_bound": .int(Int64(lowerBound)),
            "utilization": .object(utilization.mapValues { .double(roundTo($0, 4)) }),
            "stranded": .object([
                "cpu": .string(Quantity.formatCPU(stranded.cpuMillis)),
                "memory": .string(Quantity.formatBytes(stranded.memoryBytes)),
                "cpu_nodes": .int(Int64(stranded.cpuNodes)),
                "memory_nodes": .int(Int64(stranded.memoryNodes)),
            ]),
            "nodes": .array(nodes.map(nodeJSON)),
            "tasks": .int(Int64(placements.count + unplaced.count)),
            "placed": .int(Int64(placements.count)),
            "method": .string(method),
            "elapsed_ms": .double(roundTo(elapsedMs, 1)),
        ]
        if let strategy { o["strategy"] = .string(strategy.rawValue) }
        if let ffdNodes { o["ffd_nodes"] = .int(Int64(ffdNodes)) }
        if let stopped { o["stopped"] = .string(stopped) }
        if let bounds { o["bounds"] = .object(["volume": .int(Int64(bounds.volume)), "clique": .int(Int64(bounds.clique))]) }
        if mode == .shape, let shape = nodes.first?.spec.capacity { o["shape"] = shape.json }
        return .object(o)
    }

    private func nodeJSON(_ n: NodeUse) -> JSONValue {
        var o: [String: JSONValue] = [
            "name": .string(n.spec.name),
            "cpu": .string(Quantity.formatCPU(n.spec.capacity.cpuMillis)),
            "memory": .string(Quantity.formatBytes(n.spec.capacity.memoryBytes)),
            "labels": .object(n.spec.labels.mapValues { .string($0) }),
            "allocated": n.allocated.json,
            "utilization": .object(Dictionary(uniqueKeysWithValues: dimensions.map { ($0, JSONValue.double(roundTo(n.utilization($0), 4))) })),
            "tasks": .array(n.tasks.map { .string($0) }),
        ]
        if !n.spec.capacity.extended.isEmpty { o["resources"] = .object(n.spec.capacity.extended.mapValues { .int($0) }) }
        if !n.spec.reserved.isZero { o["reserved"] = n.spec.reserved.json }
        return .object(o)
    }

    // MARK: text

    /// Percent with one decimal.
    static func pct(_ x: Double) -> String { "\(roundTo(x * 100, 1))%" }

    func amount(_ r: Resources, _ dim: String) -> String {
        switch dim {
        case "cpu": return formatCores(r.cpuMillis)
        case "memory": return Quantity.formatBytes(r.memoryBytes)
        default: return String(r.extended[dim, default: 0])
        }
    }

    public var text: String {
        var lines: [String] = []
        let total = placements.count + unplaced.count
        switch mode {
        case .nodes:
            lines.append("plan: \(placements.count)/\(total) tasks placed on \(nodesUsed) of \(nodes.count) nodes (\(strategy?.rawValue ?? "binpack"))")
            lines.append("nodes used: \(nodesUsed), lower bound \(lowerBound)\(unplaced.isEmpty ? "" : " for the placed tasks")")
        case .shape:
            let shape = nodes.first.map { "\(formatCores($0.spec.capacity.cpuMillis)) cpu, \(Quantity.formatBytes($0.spec.capacity.memoryBytes)) memory" } ?? "the shape"
            lines.append("plan: \(placements.count)/\(total) tasks fit on \(nodesUsed) nodes of \(shape)")
            var b = "nodes needed: \(nodesUsed), lower bound \(lowerBound)"
            b += !unplaced.isEmpty ? " for the tasks that fit" : nodesUsed == lowerBound ? " (optimal)" : " (at most \(nodesUsed - lowerBound) more than optimal)"
            if let ffdNodes { b += "; first-fit decreasing needs \(ffdNodes)" }
            lines.append(b)
            lines.append("method: \(method)\(stopped.map { "; stopped: \($0)" } ?? "")")
        }
        lines.append("utilization: " + dimensions.map { "\($0) \(PlanReport.pct(utilization[$0] ?? 0))" }.joined(separator: ", "))
        lines.append("stranded: \(formatCores(stranded.cpuMillis)) cpu on \(stranded.cpuNodes) nodes with too little memory for any task, "
            + "\(Quantity.formatBytes(stranded.memoryBytes)) memory on \(stranded.memoryNodes) nodes with too little cpu")
        if !nodes.isEmpty {
            lines.append("")
            var rows: [[String]] = [["NODE"] + dimensions.map { $0.uppercased() } + ["TASKS"]]
            for n in nodes.prefix(60) {
                rows.append([n.spec.name] + dimensions.map { "\(amount(n.allocated, $0))/\(amount(n.spec.allocatable, $0)) (\(PlanReport.pct(n.utilization($0))))" } + [String(n.tasks.count)])
            }
            let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
            for r in rows {
                lines.append(r.enumerated().map { $0.element.padding(to: widths[$0.offset]) }.joined(separator: "  ").trimmingSpaces)
            }
            if nodes.count > 60 { lines.append("… \(nodes.count - 60) more nodes (see --json or --html)") }
        }
        if !unplaced.isEmpty {
            lines.append("")
            lines.append("unplaced (\(unplaced.count)):")
            for u in unplaced.prefix(100) { lines.append("  \(u.task): \(u.reason)") }
            if unplaced.count > 100 { lines.append("  … \(unplaced.count - 100) more") }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension String {
    func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    var trimmingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

extension Placer {
    /// The live cluster as a report (`warden report placement`): every node with what is placed on it, the
    /// tasks still waiting with their reasons, utilization, stranded capacity and the lower bound on the nodes
    /// the placed tasks need. Render with `.text`, `.json` or `.html`.
    public func report(waiting: [(task: String, reason: String)] = []) -> PlanReport {
        var r = PlanReport(mode: .nodes, strategy: strategy, extNames: dims.names)
        var byNode: [Int32: [String]] = [:]
        var demands: [Vec] = []
        for (id, a) in allocations.sorted(by: { $0.key < $1.key }) where !a.reservation {
            byNode[a.node, default: []].append(id)
            demands.append(a.demand)
        }
        var allocs: [Vec] = []
        for (seq, n) in nodes.enumerated() where n.live {
            let tasks = byNode[Int32(seq)] ?? []
            r.nodes.append(PlanReport.NodeUse(spec: n.spec, allocated: dims.resources(n.used), tasks: tasks))
            for t in tasks { r.placements.append(.init(task: t, node: n.spec.name)) }
            if n.ready { allocs.append(n.alloc) }
        }
        r.unplaced = waiting.map { .init(task: $0.task, reason: $0.reason) }
        r.nodesUsed = r.nodes.filter { !$0.tasks.isEmpty }.count
        r.lowerBound = fixedClusterBound(demands: demands, allocs: allocs, dims: 2 + dims.names.count)
        r.method = "live cluster (\(strategy.rawValue))"
        // Stranding is judged against what is placed and what waits.
        let known = allocations.values.map { dims.resources($0.demand) }
        r.finish(tasks: known.enumerated().map { TaskDemand(id: String($0.offset), resources: $0.element) }, elapsed: .zero)
        return r
    }
}
