/// Improving a packing: local search that empties bins, and exact branch-and-bound for small instances.

/// Tries to pack everything into one bin fewer. The lightest bin is emptied into a *pending* list, then each
/// step (1) inserts pending items where they fit (best fit), (2) tries an ejection chain: a pending item goes
/// into a bin once one of that bin's items moves to another bin where it fits, (3) otherwise swaps a pending
/// item with one or two items of a bin (or two pending items with one bin item) choosing the swap that lowers
/// the pending weight most, with a tabu list that forbids putting an item back into the bin it just left, and
/// (4) now and then repacks a pair of bins together with a pending item exactly. Randomness comes from a
/// seeded generator and the work from an iteration budget: same input, same result.
struct BinElimination {
    let p: PackProblem
    var bins: [[Int32]]
    var load: [[Int64]]
    var pending: [Int32] = []
    var tabuUntil: [Int: Int] = [:]
    var rng: SplitMix64
    var iteration = 0

    init(_ p: PackProblem, bins: [[Int32]], seed: UInt64) {
        self.p = p
        self.bins = bins
        self.load = bins.map { bin in
            (0..<p.dims).map { k in bin.reduce(Int64(0)) { $0 + p.s(Int($1), k) } }
        }
        self.rng = SplitMix64(seed: seed)
    }

    var binWeight: [Double] { bins.map { $0.reduce(0.0) { $0 + p.weight[Int($1)] } } }

    // MARK: feasibility

    @inline(__always) func conflicts(_ i: Int32, _ b: Int, ignoring: Int32 = -1, _ ignoring2: Int32 = -1) -> Bool {
        guard p.hasConflicts, p.conflict[Int(i)] >= 0 else { return false }
        let c = p.conflict[Int(i)]
        for x in bins[b] where x != ignoring && x != ignoring2 && p.conflict[Int(x)] == c { return true }
        return false
    }

    /// Bin `b` without `out1`/`out2` (-1: none) and with `in1`/`in2` (-1: none) is within capacity.
    @inline(__always) func fits(_ b: Int, in1: Int32, in2: Int32 = -1, out1: Int32 = -1, out2: Int32 = -1) -> Bool {
        for k in 0..<p.dims {
            var x = load[b][k]
            if in1 >= 0 { x += p.s(Int(in1), k) }
            if in2 >= 0 { x += p.s(Int(in2), k) }
            if out1 >= 0 { x -= p.s(Int(out1), k) }
            if out2 >= 0 { x -= p.s(Int(out2), k) }
            if x > p.cap[k] { return false }
        }
        if p.hasConflicts {
            if in1 >= 0 && conflicts(in1, b, ignoring: out1, out2) { return false }
            if in2 >= 0 && conflicts(in2, b, ignoring: out1, out2) { return false }
            if in1 >= 0 && in2 >= 0 && p.conflict[Int(in1)] >= 0 && p.conflict[Int(in1)] == p.conflict[Int(in2)] { return false }
        }
        return true
    }

    mutating func add(_ i: Int32, _ b: Int) {
        bins[b].append(i)
        for k in 0..<p.dims { load[b][k] += p.s(Int(i), k) }
    }

    mutating func remove(_ i: Int32, _ b: Int) {
        if let at = bins[b].firstIndex(of: i) { bins[b].remove(at: at) }
        for k in 0..<p.dims { load[b][k] -= p.s(Int(i), k) }
        tabuUntil[Int(i) &* 1_000_003 &+ b] = iteration + 7 + rng.below(7)
    }

    func isTabu(_ i: Int32, _ b: Int) -> Bool { (tabuUntil[Int(i) &* 1_000_003 &+ b] ?? -1) > iteration }

    /// Room left after adding `i` to `b`, summed over normalized dimensions (smaller is a tighter fit).
    func slack(_ b: Int, after i: Int32) -> Double {
        var x = 0.0
        for k in 0..<p.dims where p.cap[k] > 0 { x += Double(p.cap[k] - load[b][k] - p.s(Int(i), k)) / Double(p.cap[k]) }
        return x
    }

    // MARK: the search

    /// Removes bin `victim` and tries to place its items elsewhere within `budget` iterations. On success
    /// `bins` holds a packing with one bin fewer.
    mutating func eliminate(_ victim: Int, budget: Int, deadline: Deadline) -> Bool {
        pending = bins[victim]
        bins.remove(at: victim)
        load.remove(at: victim)
        tabuUntil.removeAll(keepingCapacity: true)
        let stop = iteration + budget
        while iteration < stop {
            iteration += 1
            insertPending()
            if pending.isEmpty { return true }
            if iteration % 32 == 0 && deadline.passed { return false }
            if ejectionChain() { continue }
            if iteration % 16 == 0 && pairRepack() { continue }
            swapMove()
        }
        return pending.isEmpty
    }

    /// (1) Best fit of every pending item that fits somewhere, largest first.
    mutating func insertPending() {
        pending.sort { p.weight[Int($0)] != p.weight[Int($1)] ? p.weight[Int($0)] > p.weight[Int($1)] : $0 < $1 }
        var left: [Int32] = []
        for i in pending {
            var best = -1
            var bestSlack = Double.infinity
            for b in bins.indices where fits(b, in1: i) {
                let s = slack(b, after: i)
                if s < bestSlack { bestSlack = s; best = b }
            }
            if best >= 0 { add(i, best) } else { left.append(i) }
        }
        pending = left
    }

    /// The largest free amount of any bin, per dimension: an item larger in some dimension fits nowhere.
    func maxFree() -> [Int64] {
        var m = [Int64](repeating: 0, count: p.dims)
        for l in load { for k in 0..<p.dims { m[k] = max(m[k], p.cap[k] - l[k]) } }
        return m
    }

    /// (2) A pending item enters bin b once an item of b moves to another bin where it fits directly.
    mutating func ejectionChain() -> Bool {
        let start = rng.below(max(1, bins.count))
        let room = maxFree()
        for pi in pending.indices {
            let i = pending[pi]
            for off in 0..<bins.count {
                let b = (start + off) % bins.count
                if isTabu(i, b) { continue }
                for a in bins[b] where fits(b, in1: i, out1: a) {
                    var movable = true
                    for k in 0..<p.dims where p.s(Int(a), k) > room[k] { movable = false; break }
                    if !movable { continue }
                    for b2 in bins.indices where b2 != b && !isTabu(a, b2) && fits(b2, in1: a) {
                        remove(a, b)
                        add(a, b2)
                        add(i, b)
                        pending.remove(at: pi)
                        return true
                    }
                }
            }
        }
        return false
    }

    /// (3) The best swap for one pending item (taken in turn): the move that lowers the pending weight most,
    /// ties broken at random, tabu moves excluded.
    mutating func swapMove() {
        guard !pending.isEmpty else { return }
        let pi = iteration % pending.count
        let i = pending[pi]
        let wi = p.weight[Int(i)]
        var bestGain = -Double.infinity
        var best: (b: Int, out1: Int32, out2: Int32, in2: Int)? = nil
        var ties = 0
        func offer(_ gain: Double, _ m: (b: Int, out1: Int32, out2: Int32, in2: Int)) {
            if gain > bestGain + 1e-12 {
                bestGain = gain
                best = m
                ties = 1
            } else if abs(gain - bestGain) <= 1e-12 {
                ties += 1
                if rng.below(ties) == 0 { best = m }
            }
        }
        for b in bins.indices where !isTabu(i, b) {
            let items = bins[b]
            for (x, a) in items.enumerated() {
                let wa = p.weight[Int(a)]
                if fits(b, in1: i, out1: a) { offer(wi - wa, (b, a, -1, -1)) }
                for c in items[(x + 1)...] where fits(b, in1: i, out1: a, out2: c) {
                    offer(wi - wa - p.weight[Int(c)], (b, a, c, -1))
                }
                for (qi, q) in pending.enumerated() where qi != pi && !isTabu(q, b) && fits(b, in1: i, in2: q, out1: a) {
                    offer(wi + p.weight[Int(q)] - wa, (b, a, -1, qi))
                }
            }
        }
        guard let m = best else {
            // Nothing fits even by swapping: move a random item of a random bin out to shake things up.
            if !bins.isEmpty {
                let b = rng.below(bins.count)
                if !bins[b].isEmpty {
                    let a = bins[b][rng.below(bins[b].count)]
                    remove(a, b)
                    pending.append(a)
                }
            }
            return
        }
        remove(m.out1, m.b)
        pending.append(m.out1)
        if m.out2 >= 0 {
            remove(m.out2, m.b)
            pending.append(m.out2)
        }
        add(i, m.b)
        var drop = [pi]
        if m.in2 >= 0 {
            add(pending[m.in2], m.b)
            drop.append(m.in2)
        }
        for idx in drop.sorted(by: >) { pending.remove(at: idx) }
    }

    /// (4) A pending item and two bins repacked exactly into two bins (small bins only).
    mutating func pairRepack() -> Bool {
        guard bins.count >= 2, let i = pending.first else { return false }
        for _ in 0..<min(64, bins.count * (bins.count - 1) / 2) {
            let b1 = rng.below(bins.count)
            var b2 = rng.below(bins.count - 1)
            if b2 >= b1 { b2 += 1 }
            let items = bins[b1] + bins[b2] + [i]
            guard items.count <= 14 else { continue }
            if let first = splitInTwo(items) {
                let second = items.filter { !first.contains($0) }
                bins[b1] = []
                bins[b2] = []
                load[b1] = Array(repeating: 0, count: p.dims)
                load[b2] = Array(repeating: 0, count: p.dims)
                for x in first { add(x, b1) }
                for x in second { add(x, b2) }
                pending.removeFirst()
                return true
            }
        }
        return false
    }

    /// A subset of `items` such that it and its complement each fit one bin, or nil.
    func splitInTwo(_ items: [Int32]) -> [Int32]? {
        let n = items.count
        var total = [Int64](repeating: 0, count: p.dims)
        for x in items { for k in 0..<p.dims { total[k] += p.s(Int(x), k) } }
        for k in 0..<p.dims where total[k] > 2 * p.cap[k] { return nil }
        // The first item goes into the first bin (symmetry).
        for mask in 0..<(1 << (n - 1)) {
            let m = (mask << 1) | 1
            var ok = true
            for k in 0..<p.dims {
                var x: Int64 = 0
                for j in 0..<n where m & (1 << j) != 0 { x += p.s(Int(items[j]), k) }
                if x > p.cap[k] || total[k] - x > p.cap[k] { ok = false; break }
            }
            guard ok else { continue }
            let first = (0..<n).filter { m & (1 << $0) != 0 }.map { items[$0] }
            let second = (0..<n).filter { m & (1 << $0) == 0 }.map { items[$0] }
            if p.hasConflicts && (hasClash(first) || hasClash(second)) { continue }
            return first
        }
        return nil
    }

    func hasClash(_ items: [Int32]) -> Bool {
        var seen = Set<Int32>()
        for x in items where p.conflict[Int(x)] >= 0 { if !seen.insert(p.conflict[Int(x)]).inserted { return true } }
        return false
    }
}

/// A wall-clock cutoff (only a safety net: budgets, not time, decide results in normal runs).
struct Deadline {
    let end: ContinuousClock.Instant
    init(seconds: Double) {
        end = ContinuousClock.now.advanced(by: .milliseconds(Int64(max(0, seconds) * 1000)))
    }
    var passed: Bool { ContinuousClock.now >= end }
}

extension PackProblem {
    /// Exact depth-first search over assignments (items largest first, each into an open bin or one new bin),
    /// pruned by the bins already open plus the volume the remaining items need beyond the open bins' room.
    /// Returns a packing with fewer than `upper` bins if one exists, and whether the search finished within
    /// `nodeLimit` nodes: a finished search proves its answer optimal.
    func branchAndBound(upper: Int, lower: Int, nodeLimit: Int, deadline: Deadline) -> (bins: [[Int32]]?, complete: Bool) {
        func frac(_ i: Int, _ k: Int) -> Double { cap[k] > 0 ? Double(s(i, k)) / Double(cap[k]) : 0 }
        let order = (0..<n).sorted { a, b in
            let fa = (0..<dims).map { frac(a, $0) }.max() ?? 0, fb = (0..<dims).map { frac(b, $0) }.max() ?? 0
            return fa != fb ? fa > fb : a < b
        }
        // Remaining volume from position idx on.
        var rest = [Int64](repeating: 0, count: (n + 1) * dims)
        for idx in stride(from: n - 1, through: 0, by: -1) {
            for k in 0..<dims { rest[idx * dims + k] = rest[(idx + 1) * dims + k] + s(order[idx], k) }
        }
        var best = upper
        var bestBins: [[Int32]]? = nil
        var loads: [[Int64]] = []
        var items: [[Int32]] = []
        var nodes = 0
        var aborted = false

        func dfs(_ idx: Int) {
            if aborted || best <= lower { return }
            nodes += 1
            if nodes > nodeLimit || (nodes & 4095 == 0 && deadline.passed) { aborted = true; return }
            if idx == n {
                best = items.count
                bestBins = items
                return
            }
            var need = 0
            for k in 0..<dims where cap[k] > 0 {
                var room: Int64 = 0
                for l in loads { room += cap[k] - l[k] }
                let extra = rest[idx * dims + k] - room
                if extra > 0 { need = max(need, Int((extra + cap[k] - 1) / cap[k])) }
            }
            if items.count + need >= best { return }
            let i = order[idx]
            var tried: [[Int64]] = []
            for b in items.indices {
                var ok = true
                for k in 0..<dims where loads[b][k] + s(i, k) > cap[k] { ok = false; break }
                if !ok { continue }
                if conflict[i] >= 0 && items[b].contains(where: { conflict[Int($0)] == conflict[i] }) { continue }
                // Bins with the same load are interchangeable (without anti-affinity): try one of them.
                if !hasConflicts {
                    if tried.contains(loads[b]) { continue }
                    tried.append(loads[b])
                }
                for k in 0..<dims { loads[b][k] += s(i, k) }
                items[b].append(Int32(i))
                dfs(idx + 1)
                items[b].removeLast()
                for k in 0..<dims { loads[b][k] -= s(i, k) }
                if aborted || best <= lower { return }
            }
            if items.count + 1 < best {
                loads.append((0..<dims).map { s(i, $0) })
                items.append([Int32(i)])
                dfs(idx + 1)
                items.removeLast()
                loads.removeLast()
            }
        }
        dfs(0)
        return (bestBins, !aborted)
    }
}
