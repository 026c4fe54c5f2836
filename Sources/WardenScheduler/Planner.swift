import WardenCore

/// The offline planner behind `warden plan`: the online model on files, for capacity planners.
public enum Planner {
    /// Places the tasks on a fixed cluster with the online `Placer` (the same scorer as the engine): tasks in
    /// order of priority (larger first), then size (larger first, as the sum of their fractions of the largest
    /// node), then input order. Reports placements, unplaced tasks with the placer's explanation, per-node
    /// utilization and stranded capacity.
    public static func plan(tasks: [TaskDemand], nodes: [NodeSpec], strategy: Strategy = .binpack) -> PlanReport {
        let clock = ContinuousClock()
        let start = clock.now
        let placer = Placer(strategy: strategy, expectedTasks: tasks.count)
        for n in nodes { placer.upsertNode(n) }
        var dims = Dims()
        let vecs = tasks.map { dims.vec($0.resources) }
        let allocs = nodes.map { dims.vec($0.allocatable) }
        let ndims = 2 + dims.names.count
        var largest = [Int64](repeating: 0, count: ndims)
        for a in allocs { for k in 0..<ndims { largest[k] = max(largest[k], a.dim(k)) } }
        let size: [Double] = vecs.map { v in
            (0..<ndims).reduce(0.0) { $0 + (largest[$1] > 0 ? Double(v.dim($1)) / Double(largest[$1]) : 0) }
        }
        let order = tasks.indices.sorted { a, b in
            if tasks[a].priority != tasks[b].priority { return tasks[a].priority > tasks[b].priority }
            if size[a] != size[b] { return size[a] > size[b] }
            return a < b
        }
        var nodeOf = [String?](repeating: nil, count: tasks.count)
        var reasons: [Int: String] = [:]
        for i in order {
            let d = placer.place(tasks[i])
            if let node = d.node { nodeOf[i] = node } else { reasons[i] = d.explanation }
        }
        var byNode: [String: [String]] = [:]
        for (i, node) in nodeOf.enumerated() { if let node { byNode[node, default: []].append(tasks[i].id) } }
        var report = PlanReport(mode: .nodes, strategy: strategy, extNames: dims.names)
        for n in nodes {
            report.nodes.append(PlanReport.NodeUse(spec: n, allocated: placer.allocation(of: n.name) ?? .zero,
                                                   tasks: byNode[n.name] ?? []))
        }
        for (i, t) in tasks.enumerated() {
            if let node = nodeOf[i] { report.placements.append(.init(task: t.id, node: node)) }
            else { report.unplaced.append(.init(task: t.id, reason: reasons[i] ?? "not placed")) }
        }
        report.nodesUsed = report.nodes.filter { !$0.tasks.isEmpty }.count
        let placed = tasks.indices.filter { nodeOf[$0] != nil }.map { vecs[$0] }
        report.lowerBound = fixedClusterBound(demands: placed, allocs: allocs, dims: ndims)
        report.method = "online placer (\(strategy.rawValue)), tasks by priority then size"
        report.finish(tasks: tasks, elapsed: clock.now - start)
        return report
    }

    /// How many nodes of `shape` hold all the tasks: the fewest found and a proven lower bound. Tasks with
    /// constraints (a shape has no labels) or larger than an empty node are reported unplaced. Anti-affinity
    /// groups never share a node. See `PackProblem` for the method; `timeLimitSeconds` is a cutoff, the work is
    /// bounded by iteration budgets so that the same input gives the same answer.
    /// `trace` receives one line per stage (for a verbose mode).
    public static func minimumNodes(tasks: [TaskDemand], shape: NodeSpec, timeLimitSeconds: Double = 5,
                                    trace: ((String) -> Void)? = nil) -> PlanReport {
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = Deadline(seconds: timeLimitSeconds)
        var dims = Dims()
        let capVec = dims.vec(shape.allocatable)
        let vecs = tasks.map { dims.vec($0.resources) }
        let ndims = 2 + dims.names.count
        var report = PlanReport(mode: .shape, strategy: nil, extNames: dims.names)

        // Tasks that no node of the shape can take.
        var items: [Int] = []
        var reasons: [Int: String] = [:]
        for (i, t) in tasks.enumerated() {
            if let key = t.constraints.keys.sorted().first {
                reasons[i] = "constraint \(key): nodes of a --shape have no labels"
                continue
            }
            if let k = vecs[i].firstShort(in: capVec) {
                let name = dims.name(k)
                reasons[i] = "larger than an empty node of the shape: insufficient \(name) (need \(formatAmount(vecs[i].dim(k), name)), node has \(formatAmount(capVec.dim(k), name)))"
                continue
            }
            items.append(i)
        }
        var classes: [String: Int32] = [:]
        var conflict: [Int32] = []
        var size: [Int64] = []
        size.reserveCapacity(items.count * ndims)
        for i in items {
            for k in 0..<ndims { size.append(max(0, vecs[i].dim(k))) }
            if let key = tasks[i].antiAffinity {
                let c = "\(tasks[i].group)\u{0}\(key)"
                if classes[c] == nil { classes[c] = Int32(classes.count) }
                conflict.append(classes[c]!)
            } else {
                conflict.append(-1)
            }
        }
        let problem = PackProblem(size: size, dims: ndims, cap: (0..<ndims).map { capVec.dim($0) }, conflict: conflict)
        let result = solve(problem, shape: shape, deadline: deadline, log: trace)

        for (b, bin) in result.bins.enumerated() {
            let name = "node-\(b)"
            var spec = shape
            spec.name = name
            var alloc = Vec.zero
            for item in bin { alloc = alloc + vecs[items[Int(item)]] }
            report.nodes.append(PlanReport.NodeUse(spec: spec, allocated: dims.resources(alloc),
                                                   tasks: bin.map { tasks[items[Int($0)]].id }))
        }
        var nodeOf = [String?](repeating: nil, count: tasks.count)
        for (b, bin) in result.bins.enumerated() { for item in bin { nodeOf[items[Int(item)]] = "node-\(b)" } }
        for (i, t) in tasks.enumerated() {
            if let node = nodeOf[i] { report.placements.append(.init(task: t.id, node: node)) }
            else { report.unplaced.append(.init(task: t.id, reason: reasons[i] ?? "not placed")) }
        }
        report.nodesUsed = result.bins.count
        report.lowerBound = result.lowerBound
        report.ffdNodes = result.ffd
        report.method = result.method
        report.stopped = result.stopped
        report.bounds = result.bounds
        report.finish(tasks: tasks, elapsed: clock.now - start)
        return report
    }

    struct Solution {
        var bins: [[Int32]]
        var lowerBound: Int
        var ffd: Int
        var method: String
        var stopped: String
        var bounds: BoundReport
    }

    /// The search of `minimumNodes` on integer items; also what the quality tests drive directly.
    static func solve(_ p: PackProblem, shape: NodeSpec? = nil, deadline: Deadline, log: ((String) -> Void)? = nil) -> Solution {
        let bounds = p.lowerBounds()
        log?("n \(p.n), bounds: volume \(bounds.volume), clique \(bounds.clique), best \(bounds.bound)")
        var lower = bounds.bound
        guard p.n > 0 else {
            return Solution(bins: [], lowerBound: 0, ffd: 0, method: "nothing to place", stopped: "lower bound met", bounds: bounds)
        }
        let ffd = p.firstFit(p.order(.sum))
        var best = ffd
        var method = "first-fit decreasing"
        func consider(_ bins: [[Int32]], _ name: String) {
            log?("\(name): \(bins.count)")
            if bins.count < best.count && p.isFeasible(bins) {
                best = bins
                method = name
            }
        }
        // 1. More orders, 2. best fit through the online placer, bin-centric dot product.
        for o in PackProblem.Order.allCases where o != .sum && best.count > lower {
            consider(p.firstFit(p.order(o)), "first-fit decreasing (\(o) order)")
        }
        for s in [Strategy.binpack, .dotproduct] where best.count > lower {
            for o in [PackProblem.Order.sum, .max] where best.count > lower {
                consider(bestFit(p, order: p.order(o), strategy: s, bins: best.count), "best-fit decreasing (\(s.rawValue) score, \(o) order)")
            }
        }
        if best.count > lower && p.n <= 2000 { consider(p.binCentricDotProduct(), "bin-centric dot product") }

        var stopped = best.count <= lower ? "lower bound met" : "budget"
        var proved = false
        // Exact answers where the structure allows: pairs only (maximum matching), or bins that must be nearly
        // full (bin completion against the waste the lower bound leaves).
        if best.count > lower && p.atMostTwoPerBin, let pairs = p.pairPacking(deadline: deadline) {
            consider(pairs, "maximum matching (at most two tasks fit a node)")
            lower = max(lower, pairs.count)
            proved = true
            log?("matching: optimal \(pairs.count)")
        }
        // Bin completion enumerates subsets of the remaining items for every bin: worth it for small instances.
        func complete(nodeLimit: Int) {
            while best.count > lower && p.n <= 400 && !deadline.passed {
                let (bins, done) = p.binCompletion(bins: lower, nodeLimit: nodeLimit, deadline: deadline)
                log?("bin completion into \(lower): \(bins.map { "found \($0.count)" } ?? (done ? "none exists" : "gave up"))")
                if let bins { consider(bins, "bin completion") }
                guard bins == nil, done else { return }
                lower += 1
                proved = true
            }
        }
        complete(nodeLimit: 200_000)
        func exhaustive(nodeLimit: Int) {
            guard best.count > lower && p.n <= 60 && !deadline.passed else { return }
            let (bins, done) = p.branchAndBound(upper: best.count, lower: lower, nodeLimit: nodeLimit, deadline: deadline)
            log?("branch and bound: \(bins.map { "found \($0.count)" } ?? "nothing better"), \(done ? "complete" : "gave up")")
            if let bins { consider(bins, "branch and bound") }
            if done {
                lower = best.count
                proved = true
            }
        }
        exhaustive(nodeLimit: 100_000)

        // 3. Local search: empty the lightest bin while budgets last.
        if best.count > lower {
            // Iterations per attempt: an iteration costs about n checks, so this bounds the work near 4M checks.
            let budget = max(200, min(50_000, 4_000_000 / max(1, p.n)))
            var ls = BinElimination(p, bins: best, seed: 0x9E3779B97F4A7C15)
            var improved = true
            outer: while improved && ls.bins.count > lower {
                improved = false
                let weights = ls.binWeight
                let victims = ls.bins.indices.sorted { weights[$0] != weights[$1] ? weights[$0] < weights[$1] : $0 < $1 }
                for victim in victims.prefix(3) {
                    var attempt = ls
                    let ok = attempt.eliminate(victim, budget: budget, deadline: deadline)
                    log?("local search from \(ls.bins.count) bins, victim \(victim): \(ok ? "done" : "failed") at iteration \(attempt.iteration)")
                    if ok {
                        ls = attempt
                        consider(ls.bins, "local search")
                        improved = true
                        break
                    }
                    ls.iteration = attempt.iteration
                    ls.rng = attempt.rng
                    if deadline.passed { break outer }
                }
            }
        }

        // 4. Exact search: a better packing, or a proof that ours is optimal.
        complete(nodeLimit: 1_000_000)
        exhaustive(nodeLimit: 2_000_000)
        if best.count <= lower { stopped = proved && best.count > bounds.bound ? "proved optimal (exhaustive search)" : "lower bound met" }
        else if deadline.passed { stopped = "time limit" }
        return Solution(bins: best, lowerBound: lower, ffd: ffd.count, method: method, stopped: stopped, bounds: bounds)
    }

    /// Best-fit decreasing with the online placer over `bins` empty nodes (more are added if it needs them).
    static func bestFit(_ p: PackProblem, order: [Int32], strategy: Strategy, bins: Int) -> [[Int32]] {
        let placer = Placer(strategy: strategy, expectedTasks: p.n)
        var capExt: [String: Int64] = [:]
        for k in 2..<max(2, p.dims) where p.cap[k] > 0 { capExt["d\(k)"] = p.cap[k] }
        let capacity = Resources(cpuMillis: p.cap[0], memoryBytes: p.dims > 1 ? p.cap[1] : 0, extended: capExt)
        var count = 0
        func open(_ n: Int) {
            for _ in 0..<n {
                placer.upsertNode(NodeSpec(name: String(count), capacity: capacity))
                count += 1
            }
        }
        open(bins)
        var out = [[Int32]](repeating: [], count: bins)
        for item in order {
            let i = Int(item)
            var ext: [String: Int64] = [:]
            for k in 2..<max(2, p.dims) where p.s(i, k) > 0 { ext["d\(k)"] = p.s(i, k) }
            let demand = TaskDemand(id: String(i), resources: Resources(cpuMillis: p.s(i, 0), memoryBytes: p.dims > 1 ? p.s(i, 1) : 0, extended: ext),
                                    antiAffinity: p.conflict[i] >= 0 ? "node" : nil, group: "c\(p.conflict[i])")
            var seq = placer.placeQuick(demand)
            if seq == nil {
                open(max(1, count / 4))
                out += Array(repeating: [], count: count - out.count)
                seq = placer.placeQuick(demand)
            }
            if let seq { out[Int(seq)].append(item) }
        }
        return out.filter { !$0.isEmpty }
    }
}

extension Placer {
    /// Placement without the explanation (the planner's inner loop): the node's sequence number, committed.
    func placeQuick(_ demand: TaskDemand) -> Int32? {
        let d = dims.vec(demand.resources)
        let aff = demand.antiAffinity.flatMap { affinity[AffinityKey(group: demand.group, key: $0)] }
        var best = Candidate()
        let constraints = demand.constraints.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let byShape = constraints.isEmpty && aff == nil
        for gi in byShape ? shapes : labelPools {
            let pool = pools[Int(gi)]
            if pool.ready == 0 { continue }
            if !constraints.isEmpty && Placer.failingConstraint(constraints, pool.labels ?? [:]) != nil { continue }
            var hosts: [Int32: Int]? = nil
            if let key = demand.antiAffinity, let aff {
                if let v = pool.labels?[key] { if aff.domains[v] != nil { continue } }
                else if !aff.hosts.isEmpty { hosts = aff.hosts }
            }
            search(pool, d, hosts: hosts, best: &best)
        }
        guard best.found else { return nil }
        commit(demand, d, on: best.seq, reservation: false)
        return best.seq
    }
}
