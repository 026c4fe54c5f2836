/// Lower bounds on the number of bins: no packing can do with fewer, so `nodes_used − lower_bound` bounds how
/// far from optimal an answer can be.
struct BoundReport: Sendable {
    /// The best bound found.
    var bound: Int
    /// max over dimensions of ⌈Σ size / capacity⌉.
    var volume: Int
    /// The largest set of pairwise incompatible items found (no two fit together, or same anti-affinity group).
    var clique: Int
}

extension PackProblem {
    /// Volume, clique and clique-plus-volume bounds.
    ///
    /// The clique-plus-volume bound generalizes Martello and Toth's L2 to vectors: for a clique K (items that
    /// pairwise cannot share a bin) each item of K needs its own bin; in dimension k, items of size ≥ α outside
    /// K can only use the room r_j = cap − s_jk left next to a clique item j when r_j ≥ α; what does not fit
    /// there needs more bins: L = |K| + ⌈(Σ_{i∉K, s_ik ≥ α} s_ik − Σ_{j∈K, r_j ≥ α} r_j) / cap_k⌉ for every α.
    func lowerBounds(maxCandidates: Int = 3000) -> BoundReport {
        guard n > 0 else { return BoundReport(bound: 0, volume: 0, clique: 0) }
        var volume = 0
        for k in 0..<dims where cap[k] > 0 {
            var sum: Int64 = 0
            for i in 0..<n { sum += s(i, k) }
            volume = max(volume, Int((sum + cap[k] - 1) / cap[k]))
        }
        let cliques = findCliques(maxCandidates: maxCandidates)
        var best = max(volume, 1)
        var largest = 1
        for k in cliques {
            largest = max(largest, k.count)
            best = max(best, cliqueVolumeBound(k))
        }
        return BoundReport(bound: best, volume: volume, clique: largest)
    }

    /// Greedy cliques of the incompatibility graph from several starting orders. Only items larger than half
    /// the bin in some dimension, or in an anti-affinity group, can be in a clique of more than one small item,
    /// so those are the candidates (the largest `maxCandidates` of them).
    func findCliques(maxCandidates: Int) -> [[Int]] {
        var candidates: [Int] = []
        for i in 0..<n {
            var big = conflict[i] >= 0
            for k in 0..<dims where 2 * s(i, k) > cap[k] { big = true }
            if big { candidates.append(i) }
        }
        func frac(_ i: Int, _ k: Int) -> Double { cap[k] > 0 ? Double(s(i, k)) / Double(cap[k]) : 0 }
        let maxFrac: [Double] = (0..<n).map { i in (0..<dims).map { frac(i, $0) }.max() ?? 0 }
        candidates.sort { maxFrac[$0] != maxFrac[$1] ? maxFrac[$0] > maxFrac[$1] : $0 < $1 }
        if candidates.count > maxCandidates { candidates.removeLast(candidates.count - maxCandidates) }
        // One item that is small in every dimension may still join a clique of big ones: try the largest few.
        var isCandidate = [Bool](repeating: false, count: n)
        for i in candidates { isCandidate[i] = true }
        let extras = (0..<n).filter { !isCandidate[$0] }
            .sorted { weight[$0] != weight[$1] ? weight[$0] > weight[$1] : $0 < $1 }.prefix(200)
        var orders: [[Int]] = [candidates]
        for k in 0..<dims {
            orders.append(candidates.sorted { frac($0, k) != frac($1, k) ? frac($0, k) > frac($1, k) : $0 < $1 })
        }
        orders.append(candidates.sorted { weight[$0] != weight[$1] ? weight[$0] > weight[$1] : $0 < $1 })
        var out: [[Int]] = []
        for order in orders {
            var k: [Int] = []
            for i in order + extras where !k.contains(i) {
                if k.allSatisfy({ incompatible(i, $0) }) { k.append(i) }
            }
            out.append(k)
        }
        // Each anti-affinity group is a clique; grow it with items incompatible with all of it.
        var groups: [Int32: [Int]] = [:]
        for i in 0..<n where conflict[i] >= 0 { groups[conflict[i], default: []].append(i) }
        for (_, members) in groups.sorted(by: { $0.key < $1.key }).prefix(20) {
            var k = members
            for i in candidates where !k.contains(i) && k.allSatisfy({ incompatible(i, $0) }) { k.append(i) }
            out.append(k)
        }
        return out
    }

    /// The clique-plus-volume bound for clique `clique`, over every dimension and every threshold α.
    func cliqueVolumeBound(_ clique: [Int]) -> Int {
        var inClique = [Bool](repeating: false, count: n)
        for j in clique { inClique[j] = true }
        var best = clique.count
        for k in 0..<dims where cap[k] > 0 {
            let residuals = clique.map { cap[k] - s($0, k) }.sorted(by: >)
            var others: [Int64] = []
            for i in 0..<n where !inClique[i] && s(i, k) > 0 { others.append(s(i, k)) }
            others.sort(by: >)
            var jsum: Int64 = 0, rsum: Int64 = 0
            var r = 0
            for (idx, alpha) in others.enumerated() {
                jsum += alpha
                if idx + 1 < others.count && others[idx + 1] == alpha { continue }
                while r < residuals.count && residuals[r] >= alpha {
                    rsum += residuals[r]
                    r += 1
                }
                let need = jsum - rsum
                if need > 0 { best = max(best, clique.count + Int((need + cap[k] - 1) / cap[k])) }
            }
        }
        return best
    }
}

/// A lower bound on how many of the given (different) nodes the tasks need: per dimension, the fewest nodes
/// whose allocatable adds up to the demand (largest first); and the number of tasks no two of which fit on one
/// node together (a pair is incompatible if its sum exceeds the largest allocatable in some dimension).
func fixedClusterBound(demands: [Vec], allocs: [Vec], dims: Int) -> Int {
    guard !demands.isEmpty, !allocs.isEmpty else { return 0 }
    var bound = 1
    var maxAlloc = [Int64](repeating: 0, count: dims)
    for k in 0..<dims {
        let total = demands.reduce(Int64(0)) { $0 + max(0, $1.dim(k)) }
        let caps = allocs.map { max(0, $0.dim(k)) }.sorted(by: >)
        maxAlloc[k] = caps.first ?? 0
        var sum: Int64 = 0
        var count = 0
        while sum < total && count < caps.count {
            sum += caps[count]
            count += 1
        }
        bound = max(bound, count)
    }
    // Greedy clique among tasks larger than half the largest node in some dimension.
    var big = demands.indices.filter { i in (0..<dims).contains { 2 * demands[i].dim($0) > maxAlloc[$0] } }
    big.sort { a, b in
        let fa = (0..<dims).map { maxAlloc[$0] > 0 ? Double(demands[a].dim($0)) / Double(maxAlloc[$0]) : 0 }.max() ?? 0
        let fb = (0..<dims).map { maxAlloc[$0] > 0 ? Double(demands[b].dim($0)) / Double(maxAlloc[$0]) : 0 }.max() ?? 0
        return fa != fb ? fa > fb : a < b
    }
    var clique: [Int] = []
    for i in big.prefix(3000) {
        if clique.allSatisfy({ j in (0..<dims).contains { demands[i].dim($0) + demands[j].dim($0) > maxAlloc[$0] } }) {
            clique.append(i)
        }
    }
    return max(bound, clique.count)
}
