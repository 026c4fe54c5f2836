import WardenCore

/// The naive placer: looks at every node for every task. Same model, same scores, same tie-break and same
/// explanation as `Placer`; it is the baseline of `warden bench schedule` and the oracle the tests compare the
/// index against. Hot fields are kept in flat arrays so the baseline is a fair one, not a strawman.
final class FullScanPlacer {
    let strategy: Strategy
    var dims = Dims()
    var names: [String] = []
    var labels: [[String: String]] = []
    var alloc: [Vec] = []
    var used: [Vec] = []
    var ready: [Bool] = []
    var live: [Bool] = []
    var freeCpu: [Int64] = []
    var freeMem: [Int64] = []
    var seqOf: [String: Int] = [:]
    var allocations: [String: (node: Int, demand: Vec, key: Placer.AffinityKey?, domain: String?)] = [:]
    var affinity: [Placer.AffinityKey: Placer.AffinityState] = [:]

    init(strategy: Strategy) {
        self.strategy = strategy
    }

    func upsertNode(_ spec: NodeSpec, ready isReady: Bool = true) {
        let a = dims.vec(spec.allocatable)
        let i: Int
        if let s = seqOf[spec.name] {
            i = s
            labels[i] = spec.labels
            alloc[i] = a
            ready[i] = isReady
        } else {
            i = names.count
            seqOf[spec.name] = i
            names.append(spec.name)
            labels.append(spec.labels)
            alloc.append(a)
            used.append(.zero)
            ready.append(isReady)
            live.append(true)
            freeCpu.append(0)
            freeMem.append(0)
        }
        refresh(i)
        // Re-derive the anti-affinity domains of the tasks on the node (its labels may have changed).
        for (id, x) in allocations where x.node == i {
            guard let key = x.key else { continue }
            unmark(key, node: i, domain: x.domain)
            let domain = labels[i][key.key]
            mark(key, node: i, domain: domain)
            allocations[id]?.domain = domain
        }
    }

    func allocate(node name: String, resources: Resources) {
        guard let i = seqOf[name] else { return }
        used[i] = used[i] + dims.vec(resources)
        refresh(i)
    }

    func setReady(_ name: String, _ isReady: Bool) {
        if let i = seqOf[name] { ready[i] = isReady }
    }

    @discardableResult
    func removeNode(_ name: String) -> [String] {
        guard let i = seqOf[name] else { return [] }
        let ids = allocations.filter { $0.value.node == i }.map(\.key).sorted()
        for id in ids { release(taskID: id) }
        live[i] = false
        seqOf[name] = nil
        return ids
    }

    private func refresh(_ i: Int) {
        let f = alloc[i] - used[i]
        freeCpu[i] = f.cpu
        freeMem[i] = f.mem
    }

    private func mark(_ key: Placer.AffinityKey, node: Int, domain: String?) {
        if let v = domain { affinity[key, default: .init()].domains[v, default: 0] += 1 }
        else { affinity[key, default: .init()].hosts[Int32(node), default: 0] += 1 }
    }

    private func unmark(_ key: Placer.AffinityKey, node: Int, domain: String?) {
        if let v = domain {
            affinity[key]?.domains[v, default: 1] -= 1
            if affinity[key]?.domains[v] == 0 { affinity[key]?.domains[v] = nil }
        } else {
            affinity[key]?.hosts[Int32(node), default: 1] -= 1
            if affinity[key]?.hosts[Int32(node)] == 0 { affinity[key]?.hosts[Int32(node)] = nil }
        }
    }

    @discardableResult
    func release(taskID: String) -> Bool {
        guard let x = allocations.removeValue(forKey: taskID) else { return false }
        if let key = x.key { unmark(key, node: x.node, domain: x.domain) }
        used[x.node] = used[x.node] - x.demand
        refresh(x.node)
        return true
    }

    func place(_ demand: TaskDemand) -> PlacementDecision {
        let d = dims.vec(demand.resources)
        let constraints = demand.constraints.sorted { $0.key < $1.key }
        let aff = demand.antiAffinity.flatMap { affinity[Placer.AffinityKey(group: demand.group, key: $0)] }
        var tally = Tally(extDims: d.hasExt ? dims.names.count : 0)
        var notReady = 0, anti = 0, total = 0
        var constraintCounts: [String: Int] = [:]
        var best = Candidate()
        let simple = !d.hasExt
        for i in 0..<names.count where live[i] {
            total += 1
            guard ready[i] else { notReady += 1; continue }
            if !constraints.isEmpty, let key = Placer.failingConstraint(constraints, labels[i]) {
                constraintCounts[key, default: 0] += 1
                continue
            }
            if simple {
                if d.cpu > 0 && freeCpu[i] < d.cpu { tally.note(0, 1, freeCpu[i]); continue }
                if d.mem > 0 && freeMem[i] < d.mem { tally.note(1, 1, freeMem[i]); continue }
            } else {
                let f = alloc[i] - used[i]
                if let s = d.firstShort(in: f) { tally.note(s, 1, f.dim(s)); continue }
            }
            if let key = demand.antiAffinity, let aff {
                if let v = labels[i][key] {
                    if aff.domains[v] != nil { anti += 1; continue }
                } else if aff.hosts[Int32(i)] != nil {
                    anti += 1
                    continue
                }
            }
            tally.fit += 1
            let a = alloc[i]
            let f = Vec(cpu: freeCpu[i], mem: freeMem[i], ext: [])
            best.offer(cost: Scoring.cost(strategy, free: f, demand: d, alloc: a), seq: Int32(i))
        }
        var reasons: [Rejection] = []
        if notReady > 0 { reasons.append(Rejection(reason: "not ready", count: notReady)) }
        for (key, n) in constraintCounts {
            reasons.append(Rejection(reason: "constraint \(key)", count: n, allowed: demand.constraints[key]))
        }
        reasons += tally.rejections(d, dims)
        if anti > 0, let key = demand.antiAffinity { reasons.append(Rejection(reason: "anti-affinity \(key)", count: anti)) }
        reasons.sort { $0.count != $1.count ? $0.count > $1.count : $0.reason < $1.reason }
        var decision = PlacementDecision(task: demand.id, node: nil, score: nil, strategy: strategy, nodesTotal: total,
                                         nodesFit: tally.fit, reasons: reasons)
        if best.found {
            let i = Int(best.seq)
            decision.node = names[i]
            decision.score = Scoring.score(strategy, cost: best.cost)
            var key: Placer.AffinityKey? = nil
            var domain: String? = nil
            if let k = demand.antiAffinity {
                key = Placer.AffinityKey(group: demand.group, key: k)
                domain = labels[i][k]
                mark(key!, node: i, domain: domain)
            }
            allocations[demand.id] = (i, d, key, domain)
            used[i] = used[i] + d
            refresh(i)
        }
        return decision
    }
}
