/// Vector bin packing for `warden plan --shape`: how few nodes of one shape hold a set of tasks.
///
/// Items are integer vectors (cpu, memory, extended resources); a bin is the shape's allocatable vector. Items
/// of the same anti-affinity group may not share a bin (the shape's nodes have no labels, so each node is its
/// own domain). The method, cheapest first, stopping as soon as a solution meets the lower bound:
///   1. first-fit decreasing under several item orders (sum, max, product of normalized sizes, per dimension);
///      the sum order is the FFD baseline the report compares against;
///   2. best-fit decreasing through the online `Placer` (binpack and dot-product scores): the same scorer;
///   3. local search that empties the lightest node: its items go to a pending list and come back through
///      direct insertions, ejection chains and item swaps guided by tabu lists (in the spirit of consistent
///      neighbourhood search), with an iteration budget so the same input gives the same answer;
///   4. exact branch-and-bound on small instances, which also proves optimality when it completes.
struct PackProblem {
    let n: Int
    let dims: Int
    /// n × dims sizes, row-major.
    let size: [Int64]
    let cap: [Int64]
    /// Anti-affinity class of each item, or -1.
    let conflict: [Int32]
    let hasConflicts: Bool
    /// Σ_k size/cap: how much of a node an item takes.
    let weight: [Double]

    init(size: [Int64], dims: Int, cap: [Int64], conflict: [Int32]) {
        self.dims = dims
        self.n = dims == 0 ? 0 : size.count / dims
        self.size = size
        self.cap = cap
        self.conflict = conflict
        self.hasConflicts = conflict.contains { $0 >= 0 }
        var w: [Double] = []
        w.reserveCapacity(n)
        for i in 0..<n {
            var x = 0.0
            for k in 0..<dims where cap[k] > 0 { x += Double(size[i * dims + k]) / Double(cap[k]) }
            w.append(x)
        }
        self.weight = w
    }

    @inline(__always) func s(_ i: Int, _ k: Int) -> Int64 { size[i &* dims &+ k] }

    /// Items i and j can never share a bin.
    @inline(__always) func incompatible(_ i: Int, _ j: Int) -> Bool {
        if conflict[i] >= 0 && conflict[i] == conflict[j] { return true }
        for k in 0..<dims where s(i, k) + s(j, k) > cap[k] { return true }
        return false
    }

    /// Checks a solution: every item once, every bin within capacity and conflict-free.
    func isFeasible(_ bins: [[Int32]]) -> Bool {
        var seen = [Bool](repeating: false, count: n)
        for bin in bins {
            var load = [Int64](repeating: 0, count: dims)
            var classes = Set<Int32>()
            for i in bin {
                guard !seen[Int(i)] else { return false }
                seen[Int(i)] = true
                for k in 0..<dims { load[k] += s(Int(i), k) }
                if conflict[Int(i)] >= 0 && !classes.insert(conflict[Int(i)]).inserted { return false }
            }
            for k in 0..<dims where load[k] > cap[k] { return false }
        }
        return seen.allSatisfy { $0 }
    }

    // MARK: orders

    enum Order: CaseIterable {
        case sum, max, product, dim0, dim1, l2
    }

    /// Items in decreasing size under a measure; ties by index so the order is deterministic.
    func order(_ o: Order) -> [Int32] {
        func frac(_ i: Int, _ k: Int) -> Double { cap[k] > 0 ? Double(s(i, k)) / Double(cap[k]) : 0 }
        let key: [Double] = (0..<n).map { i in
            switch o {
            case .sum: return weight[i]
            case .max: return (0..<dims).map { frac(i, $0) }.max() ?? 0
            case .product: return (0..<dims).reduce(1.0) { $0 * (frac(i, $1) + 1e-9) }
            case .dim0: return frac(i, 0) * 1000 + weight[i]
            case .dim1: return (dims > 1 ? frac(i, 1) : 0) * 1000 + weight[i]
            case .l2: return (0..<dims).reduce(0.0) { $0 + frac(i, $1) * frac(i, $1) }
            }
        }
        return (0..<Int32(n)).sorted { key[Int($0)] != key[Int($1)] ? key[Int($0)] > key[Int($1)] : $0 < $1 }
    }

    // MARK: first fit

    /// First fit in the given order. A segment tree keeps each dimension's largest free amount per subtree, so
    /// finding the first bin that fits skips whole ranges of full bins: O(n log n) in practice.
    func firstFit(_ order: [Int32]) -> [[Int32]] {
        var leaves = 1
        while leaves < max(1, n) { leaves <<= 1 }
        var tree = [Int64](repeating: 0, count: 2 * leaves * dims)
        for node in 1..<(2 * leaves) { for k in 0..<dims { tree[node * dims + k] = cap[k] } }
        var bins: [[Int32]] = []
        var classes: [Set<Int32>] = []
        for item in order {
            let i = Int(item)
            // Leftmost leaf whose free vector covers the item (and holds no item of its anti-affinity class).
            var stack = [1]
            var found = -1
            while let node = stack.popLast() {
                var ok = true
                for k in 0..<dims where tree[node * dims + k] < s(i, k) { ok = false; break }
                if !ok { continue }
                if node >= leaves {
                    let b = node - leaves
                    if hasConflicts && conflict[i] >= 0 && b < classes.count && classes[b].contains(conflict[i]) { continue }
                    found = b
                    break
                }
                stack.append(2 * node + 1)
                stack.append(2 * node)
            }
            guard found >= 0 else { continue }  // cannot happen: items are checked to fit an empty bin
            if found == bins.count {
                bins.append([])
                classes.append([])
            }
            bins[found].append(item)
            if conflict[i] >= 0 { classes[found].insert(conflict[i]) }
            var node = found + leaves
            for k in 0..<dims { tree[node * dims + k] -= s(i, k) }
            node >>= 1
            while node >= 1 {
                for k in 0..<dims { tree[node * dims + k] = max(tree[2 * node * dims + k], tree[(2 * node + 1) * dims + k]) }
                node >>= 1
            }
        }
        return bins
    }

    // MARK: bin-centric packing

    /// Panigrahy et al.'s bin-centric dot product: fill one bin at a time with the fitting item whose size,
    /// weighted by the bin's remaining room, is largest. Quadratic, so only for moderate n.
    func binCentricDotProduct() -> [[Int32]] {
        var left = Array(order(.sum))
        var bins: [[Int32]] = []
        while !left.isEmpty {
            var room = cap
            var bin: [Int32] = []
            var classes = Set<Int32>()
            while true {
                var best = -1
                var bestScore = -1.0
                for (idx, item) in left.enumerated() {
                    let i = Int(item)
                    var fits = true
                    var score = 0.0
                    for k in 0..<dims {
                        if s(i, k) > room[k] { fits = false; break }
                        if cap[k] > 0 { score += Double(s(i, k)) * Double(room[k]) / (Double(cap[k]) * Double(cap[k])) }
                    }
                    if !fits || (conflict[i] >= 0 && classes.contains(conflict[i])) { continue }
                    if score > bestScore { bestScore = score; best = idx }
                }
                if best < 0 { break }
                let i = Int(left.remove(at: best))
                bin.append(Int32(i))
                if conflict[i] >= 0 { classes.insert(conflict[i]) }
                for k in 0..<dims { room[k] -= s(i, k) }
            }
            if bin.isEmpty { break }
            bins.append(bin)
        }
        return bins
    }
}
