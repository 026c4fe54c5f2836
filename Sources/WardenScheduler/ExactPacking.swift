/// Exact methods for `PackProblem`: maximum matching when no bin can hold three items, and bin completion.

extension PackProblem {
    /// True when no three items fit in one bin: in some dimension the three smallest items overflow it, or the
    /// three lightest items add up to more than all dimensions can hold. Then bins hold one or two items and
    /// the optimum is n − (maximum matching of the "fit together" graph).
    var atMostTwoPerBin: Bool {
        guard n >= 3 else { return true }
        for k in 0..<dims {
            let three = (0..<n).map { s($0, k) }.sorted().prefix(3).reduce(Int64(0), +)
            if three > cap[k] { return true }
        }
        let lightest = weight.sorted().prefix(3).reduce(0.0, +)
        return lightest > Double(cap.filter { $0 > 0 }.count) + 1e-9
    }

    /// The optimal packing when `atMostTwoPerBin`: Edmonds' blossom algorithm for a maximum matching in the
    /// graph whose edges join items that fit in one bin together. O(n³); nil above `maxItems`.
    func pairPacking(maxItems: Int = 1500, deadline: Deadline) -> [[Int32]]? {
        guard n <= maxItems else { return nil }
        var adj = [[Int]](repeating: [], count: n)
        for i in 0..<n {
            for j in (i + 1)..<n where !incompatible(i, j) {
                adj[i].append(j)
                adj[j].append(i)
            }
        }
        var match = [Int](repeating: -1, count: n)
        // A greedy start: most constrained items first.
        let degree = adj.map(\.count)
        let byDegree = (0..<n).sorted { (a: Int, b: Int) -> Bool in degree[a] != degree[b] ? degree[a] < degree[b] : a < b }
        for v in byDegree where match[v] < 0 {
            var u = -1
            for w in adj[v] where match[w] < 0 && (u < 0 || degree[w] < degree[u]) { u = w }
            if u >= 0 {
                match[u] = v
                match[v] = u
            }
        }
        var parent = [Int](repeating: -1, count: n)
        var base = Array(0..<n)
        var used = [Bool](repeating: false, count: n)
        var blossom = [Bool](repeating: false, count: n)

        func lca(_ a0: Int, _ b0: Int) -> Int {
            var seen = [Bool](repeating: false, count: n)
            var a = a0
            while true {
                a = base[a]
                seen[a] = true
                if match[a] < 0 { break }
                a = parent[match[a]]
            }
            var b = b0
            while true {
                b = base[b]
                if seen[b] { return b }
                b = parent[match[b]]
            }
        }
        func markPath(_ v0: Int, _ b: Int, _ child0: Int) {
            var v = v0, child = child0
            while base[v] != b {
                blossom[base[v]] = true
                blossom[base[match[v]]] = true
                parent[v] = child
                child = match[v]
                v = parent[match[v]]
            }
        }
        func findPath(_ root: Int) -> Int {
            for i in 0..<n { used[i] = false; parent[i] = -1; base[i] = i }
            used[root] = true
            var queue = [root]
            var head = 0
            while head < queue.count {
                let v = queue[head]
                head += 1
                for to in adj[v] {
                    if base[v] == base[to] || match[v] == to { continue }
                    if to == root || (match[to] >= 0 && parent[match[to]] >= 0) {
                        let cur = lca(v, to)
                        for i in 0..<n { blossom[i] = false }
                        markPath(v, cur, to)
                        markPath(to, cur, v)
                        for i in 0..<n where blossom[base[i]] {
                            base[i] = cur
                            if !used[i] {
                                used[i] = true
                                queue.append(i)
                            }
                        }
                    } else if parent[to] < 0 {
                        parent[to] = v
                        if match[to] < 0 { return to }
                        used[match[to]] = true
                        queue.append(match[to])
                    }
                }
            }
            return -1
        }
        for v in 0..<n where match[v] < 0 {
            if deadline.passed { return nil }
            var u = findPath(v)
            while u >= 0 {
                let pv = parent[u], ppv = match[pv]
                match[u] = pv
                match[pv] = u
                u = ppv
            }
        }
        var bins: [[Int32]] = []
        for v in 0..<n {
            if match[v] < 0 { bins.append([Int32(v)]) }
            else if v < match[v] { bins.append([Int32(v), Int32(match[v])]) }
        }
        return bins
    }

    /// Looks for a packing into exactly `k` bins by bin completion (after Korf): the largest remaining item
    /// opens a bin, which is completed with a *maximal* subset of the remaining items (a bin that could still
    /// take a later item is never needed: moving that item in keeps any packing feasible), fullest completions
    /// first. The room all k bins may leave empty, per dimension k·cap − Σ sizes, prunes completions that
    /// waste too much. Returns the packing, or nil with `complete` true when none exists (so k + 1 is a lower
    /// bound), or nil with `complete` false when the node budget ran out.
    func binCompletion(bins k: Int, nodeLimit: Int, deadline: Deadline) -> (bins: [[Int32]]?, complete: Bool) {
        var budget = [Int64](repeating: 0, count: dims)
        for d in 0..<dims {
            var total: Int64 = 0
            for i in 0..<n { total += s(i, d) }
            budget[d] = Int64(k) * cap[d] - total
            if budget[d] < 0 { return (nil, true) }
        }
        func frac(_ i: Int, _ d: Int) -> Double { cap[d] > 0 ? Double(s(i, d)) / Double(cap[d]) : 0 }
        let order = (0..<n).sorted { a, b in
            let fa = (0..<dims).map { frac(a, $0) }.max() ?? 0, fb = (0..<dims).map { frac(b, $0) }.max() ?? 0
            if fa != fb { return fa > fb }
            return weight[a] != weight[b] ? weight[a] > weight[b] : a < b
        }
        var left = [Bool](repeating: true, count: n)   // by position in `order`
        var remaining = n
        var built: [[Int32]] = []
        var nodes = 0
        var aborted = false
        var truncated = false

        // All maximal completions of a bin opened by order[first], at most `limit` of them.
        func completions(_ first: Int, limit: Int) -> [(items: [Int], waste: [Int64])] {
            var out: [(items: [Int], waste: [Int64])] = []
            var load = (0..<dims).map { s(order[first], $0) }
            var chosen = [first]
            var classes = Set<Int32>()
            if conflict[order[first]] >= 0 { classes.insert(conflict[order[first]]) }
            func fitsNow(_ pos: Int) -> Bool {
                let i = order[pos]
                for d in 0..<dims where load[d] + s(i, d) > cap[d] { return false }
                return conflict[i] < 0 || !classes.contains(conflict[i])
            }
            func dfs(_ from: Int) {
                if out.count >= limit { truncated = true; return }
                if aborted { return }
                nodes += 1
                if nodes > nodeLimit || (nodes & 1023 == 0 && deadline.passed) { aborted = true; return }
                var extended = false
                var pos = from
                while pos < n {
                    if pos != first && left[pos] && fitsNow(pos) {
                        let i = order[pos]
                        extended = true
                        for d in 0..<dims { load[d] += s(i, d) }
                        chosen.append(pos)
                        if conflict[i] >= 0 { classes.insert(conflict[i]) }
                        dfs(pos + 1)
                        if conflict[i] >= 0 { classes.remove(conflict[i]) }
                        chosen.removeLast()
                        for d in 0..<dims { load[d] -= s(i, d) }
                        if out.count >= limit || aborted { return }
                    }
                    pos += 1
                }
                if extended { return }
                // Maximal only: no remaining item (skipped earlier) may still fit.
                for p in 0..<n where p != first && left[p] && !chosen.contains(p) && fitsNow(p) { return }
                let waste = (0..<dims).map { cap[$0] - load[$0] }
                for d in 0..<dims where waste[d] > budget[d] { return }
                out.append((chosen, waste))
            }
            dfs(0)
            return out.sorted { a, b in
                let wa = (0..<dims).reduce(0.0) { $0 + (cap[$1] > 0 ? Double(a.waste[$1]) / Double(cap[$1]) : 0) }
                let wb = (0..<dims).reduce(0.0) { $0 + (cap[$1] > 0 ? Double(b.waste[$1]) / Double(cap[$1]) : 0) }
                return wa < wb
            }
        }

        // Completions of two or three items within the waste budget, found directly (O(n²)): on tight
        // instances (triplets) these are the ones that matter, and they come before the full enumeration.
        func smallCompletions(_ first: Int) -> [(items: [Int], waste: [Int64])] {
            var out: [(items: [Int], waste: [Int64])] = []
            let x = order[first]
            var w1 = [Int64](repeating: 0, count: dims)
            var w2 = [Int64](repeating: 0, count: dims)
            for p1 in 0..<n where p1 != first && left[p1] {
                let y = order[p1]
                if conflict[y] >= 0 && conflict[y] == conflict[x] { continue }
                var ok = true
                for d in 0..<dims {
                    w1[d] = cap[d] - s(x, d) - s(y, d)
                    if w1[d] < 0 { ok = false; break }
                }
                guard ok else { continue }
                nodes += 1
                if (0..<dims).allSatisfy({ w1[$0] <= budget[$0] }) { out.append(([first, p1], w1)) }
                for p2 in (p1 + 1)..<n where p2 != first && left[p2] {
                    let z = order[p2]
                    if conflict[z] >= 0 && (conflict[z] == conflict[x] || conflict[z] == conflict[y]) { continue }
                    var fine = true
                    for d in 0..<dims {
                        w2[d] = w1[d] - s(z, d)
                        if w2[d] < 0 || w2[d] > budget[d] { fine = false; break }
                    }
                    if fine { out.append(([first, p1, p2], w2)) }
                }
                if out.count > 500 { break }
            }
            return out.sorted { a, b in
                let wa = (0..<dims).reduce(0.0) { $0 + (cap[$1] > 0 ? Double(a.waste[$1]) / Double(cap[$1]) : 0) }
                let wb = (0..<dims).reduce(0.0) { $0 + (cap[$1] > 0 ? Double(b.waste[$1]) / Double(cap[$1]) : 0) }
                return wa < wb
            }
        }

        // With no waste left every bin must be full: open the bin with the item that has the fewest exact
        // two- or three-item completions (fail first, as exact-cover solvers do). nil: some item has none.
        func mostConstrained() -> Int? {
            var at: [[Int64]: [Int]] = [:]
            for p in 0..<n where left[p] { at[(0..<dims).map { s(order[p], $0) }, default: []].append(p) }
            var best: Int? = nil
            var bestCount = Int.max
            for p in 0..<n where left[p] {
                let x = order[p]
                var count = 0
                nodes += 1
                for q in 0..<n where q != p && left[q] {
                    let y = order[q]
                    var need = [Int64](repeating: 0, count: dims)
                    var ok = true
                    for d in 0..<dims {
                        need[d] = cap[d] - s(x, d) - s(y, d)
                        if need[d] < 0 { ok = false; break }
                    }
                    guard ok else { continue }
                    if need.allSatisfy({ $0 == 0 }) { count += 2; continue }
                    if let zs = at[need] { count += zs.filter { $0 != p && $0 != q }.count }
                    if count >= bestCount { break }
                }
                if count == 0 { return p }
                if count < bestCount { bestCount = count; best = p }
            }
            return best
        }

        func build(_ binsLeft: Int) -> Bool {
            if remaining == 0 { return true }
            if binsLeft == 0 || aborted { return false }
            if nodes > nodeLimit || deadline.passed { aborted = true; return false }
            guard var first = (0..<n).first(where: { left[$0] }) else { return true }
            let exact = budget.allSatisfy { $0 == 0 }
            if exact { first = mostConstrained() ?? first }
            func attempt(_ c: (items: [Int], waste: [Int64])) -> Bool {
                for pos in c.items { left[pos] = false }
                remaining -= c.items.count
                for d in 0..<dims { budget[d] -= c.waste[d] }
                built.append(c.items.map { Int32(order[$0]) })
                if build(binsLeft - 1) { return true }
                built.removeLast()
                for d in 0..<dims { budget[d] += c.waste[d] }
                remaining += c.items.count
                for pos in c.items { left[pos] = true }
                return false
            }
            var tried = Set<[Int]>()
            // Exact instances only: elsewhere the full enumeration's order (least waste first) is the better one.
            let tight = budget.allSatisfy { $0 == 0 }
            for c in tight ? smallCompletions(first) : [] {
                if aborted { return false }
                tried.insert(c.items)
                if attempt(c) { return true }
            }
            for c in completions(first, limit: 2000) where !tried.contains(c.items) {
                if aborted { return false }
                if attempt(c) { return true }
            }
            return false
        }
        if build(k) { return (built, true) }
        return (nil, !aborted && !truncated)
    }
}
