import WardenCore

/// A task waiting to be placed, as the engine hands it to `scheduleRound`.
public struct PendingTask: Sendable, Hashable {
    public var demand: TaskDemand
    /// Scheduling rounds this task has already waited without being placed.
    public var waitedRounds: Int

    public init(demand: TaskDemand, waitedRounds: Int = 0) {
        self.demand = demand
        self.waitedRounds = waitedRounds
    }
}

/// What one scheduling round did.
public struct RoundOutcome: Sendable {
    /// Placed this round, in the order they were placed.
    public var placed: [PlacementDecision]
    /// Still waiting, with the reason (and the node held for them, if any).
    public var waiting: [PlacementDecision]
    /// Task id → node of every reservation held after this round.
    public var reservations: [String: String]
}

extension Placer {
    /// One pass over the pending queue.
    ///
    /// The rule:
    /// 1. Order: priority (larger first), then tasks that waited more rounds, then id.
    /// 2. Walk the whole queue. A task that does not fit is skipped and the tasks behind it are still tried
    ///    (backfill), so a big task at the head never blocks small ones: no head-of-line blocking.
    /// 3. A task that has waited `reserveAfter` rounds or more and still does not fit gets a reservation, while
    ///    fewer than `maxReservations` are held: the node with the smallest shortfall (ready, matching its
    ///    constraints and anti-affinity, large enough when empty) is held for it. The hold counts as allocated,
    ///    so later tasks only use what the big task does not need, and as tasks on that node finish the room
    ///    builds up until the big task fits: it is placed there in the first round it does. So large tasks are
    ///    not starved by a stream of small ones either.
    ///
    /// The caller increments `waitedRounds` of the tasks left in `waiting` before the next round.
    public func scheduleRound(_ pending: [PendingTask], reserveAfter: Int = 10, maxReservations: Int = 1) -> RoundOutcome {
        let order = pending.sorted {
            if $0.demand.priority != $1.demand.priority { return $0.demand.priority > $1.demand.priority }
            if $0.waitedRounds != $1.waitedRounds { return $0.waitedRounds > $1.waitedRounds }
            return $0.demand.id < $1.demand.id
        }
        var placed: [PlacementDecision] = []
        var waiting: [PlacementDecision] = []
        for p in order {
            if let a = allocations[p.demand.id], a.reservation {
                let n = nodes[Int(a.node)]
                let free = n.alloc - n.used
                if n.ready && n.live && roomFor(a.demand, free) {
                    allocations[p.demand.id]?.reservation = false
                    holds -= 1
                    nodes[Int(a.node)].tasks += 1
                    let cost = Scoring.cost(strategy, free: free + a.demand, demand: a.demand, alloc: n.alloc)
                    placed.append(PlacementDecision(task: p.demand.id, node: n.spec.name, score: Scoring.score(strategy, cost: cost),
                                                    strategy: strategy, nodesTotal: liveNodes, nodesFit: 1, reasons: []))
                } else {
                    var d = explain(p.demand)
                    d.reservedNode = n.spec.name
                    waiting.append(d)
                }
                continue
            }
            var d = place(p.demand)
            if d.placed {
                placed.append(d)
                continue
            }
            if p.waitedRounds >= reserveAfter && holds < maxReservations, let seq = reservationNode(for: p.demand) {
                commit(p.demand, dims.vec(p.demand.resources), on: seq, reservation: true)
                d.reservedNode = nodes[Int(seq)].spec.name
            }
            waiting.append(d)
        }
        var reservations: [String: String] = [:]
        for (id, a) in allocations where a.reservation { reservations[id] = nodes[Int(a.node)].spec.name }
        return RoundOutcome(placed: placed, waiting: waiting, reservations: reservations)
    }

    /// Restores a reservation (`RoundOutcome.reservations` of an earlier round) in a placer rebuilt from the
    /// store, so that a task keeps its hold across rounds. Replaces whatever the task held before.
    public func hold(_ demand: TaskDemand, on name: String) throws(WardenError) {
        let seq = try lookup(name)
        if allocations[demand.id] != nil { _ = release(taskID: demand.id) }
        commit(demand, dims.vec(demand.resources), on: seq, reservation: true)
    }

    /// With the hold already counted, the task fits once nothing it uses is overcommitted.
    private func roomFor(_ d: Vec, _ free: Vec) -> Bool {
        if d.cpu > 0 && free.cpu < 0 { return false }
        if d.mem > 0 && free.mem < 0 { return false }
        for k in 0..<d.ext.count where d.ext[k] > 0 && free.e(k) < 0 { return false }
        return true
    }

    /// The node to hold for a starving task: eligible, big enough when empty, not already holding a reservation,
    /// with the smallest shortfall (Σ missing amount / allocatable); ties to the node added first. A full scan,
    /// but it runs only when a task starts starving.
    func reservationNode(for demand: TaskDemand) -> Int32? {
        let d = dims.vec(demand.resources)
        let constraints = demand.constraints.sorted { $0.key < $1.key }
        let aff = demand.antiAffinity.flatMap { affinity[AffinityKey(group: demand.group, key: $0)] }
        var held = Set<Int32>()
        for a in allocations.values where a.reservation { held.insert(a.node) }
        var best: (Double, Int32)? = nil
        for (i, n) in nodes.enumerated() where n.live && n.ready && !held.contains(Int32(i)) {
            guard d.fits(in: n.alloc) else { continue }
            if Placer.failingConstraint(constraints, n.spec.labels) != nil { continue }
            if let key = demand.antiAffinity, let aff {
                if let v = n.spec.labels[key] { if aff.domains[v] != nil { continue } }
                else if aff.hosts[Int32(i)] != nil { continue }
            }
            let f = n.alloc - n.used
            var shortfall = 0.0
            for k in 0..<(2 + dims.names.count) where d.dim(k) > f.dim(k) {
                shortfall += Scoring.frac(d.dim(k) - max(0, f.dim(k)), n.alloc.dim(k))
            }
            if best == nil || shortfall < best!.0 { best = (shortfall, Int32(i)) }
        }
        return best?.1
    }
}
