import WardenCore

/// Online placement over a cluster of nodes: one instance per cluster, calls serialized by the caller.
///
/// `place` chooses the feasible node with the best score of the strategy (ties: the node added first), commits
/// the allocation and explains the decision: how many nodes fit and why the others did not, per reason and
/// resource. It does not look at every node: see `CapacityIndex.swift`.
public final class Placer {
    public let strategy: Strategy

    struct NodeEntry {
        var spec: NodeSpec
        var alloc: Vec
        var used: Vec
        var ready: Bool
        var live: Bool
        /// Grid of the node's pool (allocatable + labels) and of its shape (allocatable).
        var pool: Int32
        var shape: Int32
        /// The node's group in each grid, or -1 when the node is not in the index (not ready or removed).
        var group: Int32
        var shapeGroup: Int32
        var tasks: Int
    }

    struct Allocation {
        var node: Int32
        var demand: Vec
        var affinity: AffinityKey?
        /// The label value the task occupies, or nil when the node has no such label (the node is the domain).
        var domain: String?
        var reservation: Bool
    }

    struct AffinityKey: Hashable {
        var group: String
        var key: String
    }

    struct AffinityState {
        var domains: [String: Int] = [:]
        var hosts: [Int32: Int] = [:]
    }

    @exclusivity(unchecked) var dims = Dims()
    @exclusivity(unchecked) var nodes: [NodeEntry] = []
    @exclusivity(unchecked) var seqOf: [String: Int32] = [:]
    /// Every grid: pools and shapes. `labelPools` and `shapes` list which is which.
    @exclusivity(unchecked) var pools: [Grid] = []
    var poolOf: [PoolKey: Int32] = [:]
    var shapeOf: [Vec: Int32] = [:]
    @exclusivity(unchecked) var labelPools: [Int32] = []
    @exclusivity(unchecked) var shapes: [Int32] = []
    @exclusivity(unchecked) var groups: [Group] = []
    @exclusivity(unchecked) var spareGroups: [Int32] = []
    @exclusivity(unchecked) var allocations: [String: Allocation] = [:]
    @exclusivity(unchecked) var affinity: [AffinityKey: AffinityState] = [:]
    @exclusivity(unchecked) var liveNodes = 0
    /// Reservations held by waiting tasks (see `scheduleRound`).
    @exclusivity(unchecked) var holds = 0

    /// `expectedTasks`: how many tasks may be placed at once, a capacity hint (growing the task table costs a
    /// rehash of every task id).
    public init(strategy: Strategy = .binpack, expectedTasks: Int = 0) {
        self.strategy = strategy
        allocations.reserveCapacity(expectedTasks)
    }

    // MARK: nodes

    /// Adds a node, or updates its capacity, labels, reservation and readiness keeping its allocations and its
    /// place in the tie-break order.
    public func upsertNode(_ spec: NodeSpec, ready: Bool = true) {
        let alloc = dims.vec(spec.allocatable)
        if let seq = seqOf[spec.name] {
            let old = nodes[Int(seq)].spec.labels
            detach(seq)
            nodes[Int(seq)].spec = spec
            nodes[Int(seq)].alloc = alloc
            nodes[Int(seq)].ready = ready
            attach(seq)
            if old != spec.labels { redoAffinity(on: seq) }
        } else {
            let seq = Int32(nodes.count)
            nodes.append(NodeEntry(spec: spec, alloc: alloc, used: .zero, ready: ready, live: true, pool: -1, shape: -1, group: -1, shapeGroup: -1, tasks: 0))
            seqOf[spec.name] = seq
            liveNodes += 1
            attach(seq)
        }
    }

    public func setReady(_ name: String, _ ready: Bool) throws(WardenError) {
        let seq = try lookup(name)
        guard nodes[Int(seq)].ready != ready else { return }
        detach(seq)
        nodes[Int(seq)].ready = ready
        attach(seq)
    }

    /// Removes a node and releases what was placed on it; returns those task ids (sorted) for the caller to
    /// re-queue. Unknown names return [].
    @discardableResult
    public func removeNode(_ name: String) -> [String] {
        guard let seq = seqOf[name] else { return [] }
        let ids = allocations.filter { $0.value.node == seq }.map(\.key).sorted()
        for id in ids { _ = release(taskID: id) }
        detach(seq)
        nodes[Int(seq)].live = false
        seqOf[name] = nil
        liveNodes -= 1
        return ids
    }

    public func allocation(of name: String) -> Resources? {
        guard let seq = seqOf[name] else { return nil }
        return dims.resources(nodes[Int(seq)].used)
    }

    /// The node a task is placed (or reserved) on.
    public func node(of taskID: String) -> String? {
        allocations[taskID].map { nodes[Int($0.node)].spec.name }
    }

    /// Ids of the tasks placed on a node, sorted.
    public func tasks(on name: String) -> [String] {
        guard let seq = seqOf[name] else { return [] }
        return allocations.filter { $0.value.node == seq && !$0.value.reservation }.map(\.key).sorted()
    }

    /// Every node, in the order they were added.
    public func nodeStatuses() -> [NodeStatus] {
        nodes.filter(\.live).map {
            NodeStatus(spec: $0.spec, ready: $0.ready, allocated: dims.resources($0.used), tasks: $0.tasks)
        }
    }

    public var nodeCount: Int { liveNodes }

    // MARK: placing

    /// Chooses a node for the task and commits the allocation when there is one.
    public func place(_ demand: TaskDemand) -> PlacementDecision {
        decide(demand, commit: true)
    }

    /// The decision `place` would make now, without committing it.
    public func explain(_ demand: TaskDemand) -> PlacementDecision {
        decide(demand, commit: false)
    }

    /// Records a placement made earlier (e.g. recovered from the store), even if it overcommits the node.
    public func assign(_ demand: TaskDemand, to name: String) throws(WardenError) {
        let seq = try lookup(name)
        if allocations[demand.id] != nil { _ = release(taskID: demand.id) }
        commit(demand, dims.vec(demand.resources), on: seq, reservation: false)
    }

    /// Frees what a task holds (placement or reservation). False when the task is unknown.
    @discardableResult
    public func release(taskID: String) -> Bool {
        guard let a = allocations.removeValue(forKey: taskID) else { return false }
        if let key = a.affinity {
            if let v = a.domain {
                affinity[key]?.domains[v, default: 1] -= 1
                if affinity[key]?.domains[v] == 0 { affinity[key]?.domains[v] = nil }
            } else {
                affinity[key]?.hosts[a.node, default: 1] -= 1
                if affinity[key]?.hosts[a.node] == 0 { affinity[key]?.hosts[a.node] = nil }
            }
            if let s = affinity[key], s.domains.isEmpty, s.hosts.isEmpty { affinity[key] = nil }
        }
        adjust(a.node, by: a.demand, sign: -1)
        if a.reservation { holds -= 1 } else { nodes[Int(a.node)].tasks -= 1 }
        return true
    }

    /// Anonymous allocation (no task id), for callers that track tasks themselves.
    public func allocate(node name: String, resources: Resources) throws(WardenError) {
        let seq = try lookup(name)
        adjust(seq, by: dims.vec(resources), sign: 1)
    }

    /// Undoes `allocate(node:resources:)`.
    public func release(node name: String, resources: Resources) throws(WardenError) {
        let seq = try lookup(name)
        adjust(seq, by: dims.vec(resources), sign: -1)
    }

    // MARK: internals

    func lookup(_ name: String) throws(WardenError) -> Int32 {
        guard let seq = seqOf[name] else { throw WardenError.notFound("unknown node \(quoted(name))") }
        return seq
    }

    private func attach(_ seq: Int32) {
        let e = nodes[Int(seq)]
        let key = PoolKey(alloc: e.alloc, labels: e.spec.labels)
        let p: Int32
        if let existing = poolOf[key] {
            p = existing
        } else {
            p = Int32(pools.count)
            pools.append(Grid(id: p, alloc: e.alloc, labels: e.spec.labels))
            poolOf[key] = p
            labelPools.append(p)
        }
        let sh: Int32
        if let existing = shapeOf[e.alloc] {
            sh = existing
        } else {
            sh = Int32(pools.count)
            pools.append(Grid(id: sh, alloc: e.alloc, labels: nil))
            shapeOf[e.alloc] = sh
            shapes.append(sh)
        }
        nodes[Int(seq)].pool = p
        nodes[Int(seq)].shape = sh
        if e.ready {
            pools[Int(p)].ready += 1
            pools[Int(sh)].ready += 1
            if gridSize(for: pools[Int(p)].ready) > pools[Int(p)].g { regrid(p) }
            if gridSize(for: pools[Int(sh)].ready) > pools[Int(sh)].g { regrid(sh) }
            addToIndex(seq)
        } else {
            pools[Int(p)].notReady += 1
            pools[Int(sh)].notReady += 1
        }
    }

    private func detach(_ seq: Int32) {
        let e = nodes[Int(seq)]
        guard e.pool >= 0 else { return }
        if e.ready {
            removeFromIndex(seq)
            pools[Int(e.pool)].ready -= 1
            pools[Int(e.shape)].ready -= 1
        } else {
            pools[Int(e.pool)].notReady -= 1
            pools[Int(e.shape)].notReady -= 1
        }
        nodes[Int(seq)].pool = -1
        nodes[Int(seq)].shape = -1
    }

    private func adjust(_ seq: Int32, by v: Vec, sign: Int64) {
        let inIndex = nodes[Int(seq)].group >= 0
        if inIndex { removeFromIndex(seq) }
        nodes[Int(seq)].used = sign > 0 ? nodes[Int(seq)].used + v : nodes[Int(seq)].used - v
        if inIndex { addToIndex(seq) }
    }

    func commit(_ demand: TaskDemand, _ v: Vec, on seq: Int32, reservation: Bool) {
        var a = Allocation(node: seq, demand: v, affinity: nil, domain: nil, reservation: reservation)
        if let key = demand.antiAffinity {
            let ak = AffinityKey(group: demand.group, key: key)
            a.affinity = ak
            if let value = nodes[Int(seq)].spec.labels[key] {
                a.domain = value
                affinity[ak, default: AffinityState()].domains[value, default: 0] += 1
            } else {
                affinity[ak, default: AffinityState()].hosts[seq, default: 0] += 1
            }
        }
        allocations[demand.id] = a
        adjust(seq, by: v, sign: 1)
        if reservation { holds += 1 } else { nodes[Int(seq)].tasks += 1 }
    }

    /// After a node's labels change, the anti-affinity domains its tasks occupy change with them.
    private func redoAffinity(on seq: Int32) {
        for (id, a) in allocations where a.node == seq && a.affinity != nil {
            guard let key = a.affinity else { continue }
            if let v = a.domain {
                affinity[key]?.domains[v, default: 1] -= 1
                if affinity[key]?.domains[v] == 0 { affinity[key]?.domains[v] = nil }
            } else {
                affinity[key]?.hosts[seq, default: 1] -= 1
                if affinity[key]?.hosts[seq] == 0 { affinity[key]?.hosts[seq] = nil }
            }
            var b = a
            b.domain = nodes[Int(seq)].spec.labels[key.key]
            if let v = b.domain {
                affinity[key, default: AffinityState()].domains[v, default: 0] += 1
            } else {
                affinity[key, default: AffinityState()].hosts[seq, default: 0] += 1
            }
            allocations[id] = b
        }
    }

    /// The first constraint key (sorted) the labels do not satisfy.
    static func failingConstraint(_ constraints: [(String, [String])], _ labels: [String: String]) -> String? {
        for (key, allowed) in constraints {
            guard let v = labels[key], allowed.contains(v) else { return key }
        }
        return nil
    }

    func decide(_ demand: TaskDemand, commit doCommit: Bool) -> PlacementDecision {
        if let existing = allocations[demand.id], !existing.reservation {
            let name = nodes[Int(existing.node)].spec.name
            return PlacementDecision(task: demand.id, node: name, score: nil, strategy: strategy, nodesTotal: liveNodes,
                                     nodesFit: 0, reasons: [])
        }
        let d = dims.vec(demand.resources)
        let constraints = demand.constraints.isEmpty ? [] : demand.constraints.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let affKey = demand.antiAffinity.map { AffinityKey(group: demand.group, key: $0) }
        let aff = affKey.flatMap { affinity[$0] }
        var total = Tally(extDims: d.hasExt ? dims.names.count : 0)
        var notReady = 0, antiCount = 0
        var constraintCounts: [String: Int] = [:]
        var best = Candidate()
        // With nothing that depends on labels, the shape grids answer alone (fewer grids to look at).
        let byShape = constraints.isEmpty && aff == nil
        for gi in byShape ? shapes : labelPools {
            let pool = pools[Int(gi)]
            notReady += pool.notReady
            if pool.ready == 0 { continue }
            let labels = pool.labels ?? [:]
            if !constraints.isEmpty, let key = Placer.failingConstraint(constraints, labels) {
                constraintCounts[key, default: 0] += pool.ready
                continue
            }
            let t = tally(pool, d, extDims: d.hasExt ? dims.names.count : 0)
            var fit = t.fit
            total.merge(t)
            var hosts: [Int32: Int]? = nil
            if let key = demand.antiAffinity, let aff {
                if let v = labels[key] {
                    if aff.domains[v] != nil {
                        antiCount += fit
                        continue
                    }
                } else if !aff.hosts.isEmpty {
                    hosts = aff.hosts
                    for (seq, _) in aff.hosts where nodes[Int(seq)].pool == pool.id && nodes[Int(seq)].ready
                        && d.fits(in: nodes[Int(seq)].alloc - nodes[Int(seq)].used)
                    {
                        antiCount += 1
                        fit -= 1
                    }
                }
            }
            total.fit += fit
            if fit > 0 { search(pool, d, hosts: hosts, best: &best) }
        }

        var reasons: [Rejection] = []
        if notReady > 0 { reasons.append(Rejection(reason: "not ready", count: notReady)) }
        for (key, n) in constraintCounts {
            reasons.append(Rejection(reason: "constraint \(key)", count: n, allowed: demand.constraints[key]))
        }
        reasons += total.rejections(d, dims)
        if antiCount > 0, let key = demand.antiAffinity {
            reasons.append(Rejection(reason: "anti-affinity \(key)", count: antiCount))
        }
        reasons.sort { $0.count != $1.count ? $0.count > $1.count : $0.reason < $1.reason }

        var decision = PlacementDecision(task: demand.id, node: nil, score: nil, strategy: strategy,
                                         nodesTotal: liveNodes, nodesFit: total.fit, reasons: reasons)
        if best.found {
            decision.node = nodes[Int(best.seq)].spec.name
            decision.score = Scoring.score(strategy, cost: best.cost)
            if doCommit {
                if allocations[demand.id] != nil { _ = release(taskID: demand.id) }
                commit(demand, d, on: best.seq, reservation: false)
            }
        }
        return decision
    }
}
