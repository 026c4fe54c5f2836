/// The index over free capacity used by `Placer`.
///
/// Nodes with the same allocatable vector and the same labels form a *pool*: constraints and label-domain
/// anti-affinity are decided once per pool. Inside a pool, nodes with the same free vector form a *group*
/// (identical score, identical feasibility), and groups sit in a 64×64 grid of buckets over free cpu × free
/// memory (bucket = 1/64 of the pool's allocatable in each dimension). Each group is listed twice, in the list
/// of its row and in the list of its column, so a row or a column is read as one contiguous array. Bit masks
/// say which buckets are non-empty, a 2-D Fenwick tree counts nodes per bucket, and per-row totals are kept.
///
/// A query walks rows in order of their lower bound on the strategy's cost and stops when the bound passes the
/// best node found, so a placement looks at a few rows of a few pools instead of every node. Counting why nodes
/// were rejected uses the same grid: buckets wholly below the demand are counted from totals; only the one row
/// of the demand's cpu and the one column of its memory are read entry by entry.
let gridSize = 64

/// One group in a row or column list: what scans need, flat, so they read memory in order.
struct LineEntry {
    var cpu: Int64
    var mem: Int64
    var count: Int32
    var group: Int32
    /// The column (in a row list) or the row (in a column list).
    var other: Int32
}

struct Group {
    var free: Vec
    var pool: Int32
    var row: Int32
    var col: Int32
    var rowSlot: Int32
    var colSlot: Int32
    /// Node sequence numbers, in descending order: the smallest (the tie-break winner) is last.
    var members: [Int32]
}

/// A growable array of entries in manually managed memory: the scans of the hot path read it without
/// reference counting, exclusivity checks or bounds checks. Owned by its `Pool`.
struct LineList {
    var base: UnsafeMutablePointer<LineEntry>? = nil
    var count = 0
    var capacity = 0

    mutating func append(_ e: LineEntry) {
        if count == capacity {
            let cap = max(4, capacity * 2)
            let p = UnsafeMutablePointer<LineEntry>.allocate(capacity: cap)
            if let base {
                p.moveInitialize(from: base, count: count)
                base.deallocate()
            }
            base = p
            capacity = cap
        }
        (base! + count).initialize(to: e)
        count += 1
    }

    mutating func removeLast() -> LineEntry {
        count -= 1
        return base![count]
    }

    func release() { base?.deallocate() }
}

final class Pool {
    let id: Int32
    let alloc: Vec
    let labels: [String: String]
    var ready = 0
    var notReady = 0
    var groupOf: [Vec: Int32] = [:]
    /// Row lists (by free cpu) and column lists (by free memory) of groups.
    let rows: UnsafeMutablePointer<LineList>
    let cols: UnsafeMutablePointer<LineList>
    /// Groups per bucket, to keep the masks.
    let cellGroups: UnsafeMutablePointer<Int32>
    /// Per row, which columns have a non-empty bucket; per column, which rows.
    let rowMask: UnsafeMutablePointer<UInt64>
    let colMask: UnsafeMutablePointer<UInt64>
    /// Nodes per row.
    let rowCount: UnsafeMutablePointer<Int>
    /// A 2-D Fenwick tree of nodes per bucket: prefix sums in O(log² 64).
    let fenwick: UnsafeMutablePointer<Int32>
    /// Smallest amount of each bucket: edge[k] = ceil(k × cap / 64), per dimension.
    let cpuEdges: UnsafeMutablePointer<Int64>
    let memEdges: UnsafeMutablePointer<Int64>

    init(id: Int32, alloc: Vec, labels: [String: String]) {
        self.id = id
        self.alloc = alloc
        self.labels = labels
        let g = gridSize
        rows = .allocate(capacity: g)
        rows.initialize(repeating: LineList(), count: g)
        cols = .allocate(capacity: g)
        cols.initialize(repeating: LineList(), count: g)
        cellGroups = .allocate(capacity: g * g)
        cellGroups.initialize(repeating: 0, count: g * g)
        rowMask = .allocate(capacity: g)
        rowMask.initialize(repeating: 0, count: g)
        colMask = .allocate(capacity: g)
        colMask.initialize(repeating: 0, count: g)
        rowCount = .allocate(capacity: g)
        rowCount.initialize(repeating: 0, count: g)
        fenwick = .allocate(capacity: (g + 1) * (g + 1))
        fenwick.initialize(repeating: 0, count: (g + 1) * (g + 1))
        cpuEdges = .allocate(capacity: g + 1)
        memEdges = .allocate(capacity: g + 1)
        for k in 0...g {
            cpuEdges[k] = Pool.edge(k, alloc.cpu)
            memEdges[k] = Pool.edge(k, alloc.mem)
        }
    }

    deinit {
        for i in 0..<gridSize {
            rows[i].release()
            cols[i].release()
        }
        rows.deallocate()
        cols.deallocate()
        cellGroups.deallocate()
        rowMask.deallocate()
        colMask.deallocate()
        rowCount.deallocate()
        fenwick.deallocate()
        cpuEdges.deallocate()
        memEdges.deallocate()
    }

    /// ceil(k × cap / 64) without overflow.
    private static func edge(_ k: Int, _ cap: Int64) -> Int64 {
        guard cap > 0 else { return 0 }
        let p = cap.multipliedFullWidth(by: Int64(k))
        let (q, r) = Int64(gridSize).dividingFullWidth(p)
        return r > 0 ? q + 1 : q
    }

    /// Bucket of an amount: floor(x × 64 / cap), clamped to 0…63. A floating-point guess corrected against the
    /// exact integer edges, so a boundary never depends on rounding.
    @inline(__always) static func bucket(_ x: Int64, _ cap: Int64, _ edges: UnsafeMutablePointer<Int64>) -> Int {
        if cap <= 0 || x <= 0 { return 0 }
        if x >= cap { return gridSize - 1 }
        var k = Int(Double(x) / Double(cap) * Double(gridSize))
        k = min(max(k, 0), gridSize - 1)
        while k < gridSize - 1 && edges[k + 1] <= x { k += 1 }
        while k > 0 && edges[k] > x { k -= 1 }
        return k
    }

    @inline(__always) func row(_ cpu: Int64) -> Int { Pool.bucket(cpu, alloc.cpu, cpuEdges) }
    @inline(__always) func col(_ mem: Int64) -> Int { Pool.bucket(mem, alloc.mem, memEdges) }

    func fenwickAdd(_ row: Int, _ col: Int, _ delta: Int32) {
        var i = row + 1
        while i <= gridSize {
            var j = col + 1
            while j <= gridSize {
                fenwick[i &* (gridSize + 1) &+ j] &+= delta
                j += j & -j
            }
            i += i & -i
        }
    }

    /// Nodes in rows < `rows` and columns < `cols`.
    @inline(__always) func prefix(_ rows: Int, _ cols: Int) -> Int {
        var s = 0
        var i = rows
        while i > 0 {
            var j = cols
            while j > 0 {
                s &+= Int(fenwick[i &* (gridSize + 1) &+ j])
                j -= j & -j
            }
            i -= i & -i
        }
        return s
    }
}

struct PoolKey: Hashable {
    var alloc: Vec
    var labels: [String: String]
}

/// 10^(k/64) for k = 0…64: the bucket edges of the exponential scores.
let pow10Edges: [Double] = (0...gridSize).map { Scoring.p10(Double($0) / Double(gridSize)) }

/// Nodes where a demand does not fit, by first short dimension, with the largest free amount among them; and
/// how many fit. Extended dimensions get arrays only when the demand uses one, so the common case allocates
/// nothing.
struct Tally {
    var fit = 0
    var cpuShort = 0, memShort = 0
    var cpuBest = Int64.min, memBest = Int64.min
    var extShort: [Int] = []
    var extBest: [Int64] = []

    init(extDims: Int) {
        if extDims > 0 {
            extShort = Array(repeating: 0, count: extDims)
            extBest = Array(repeating: .min, count: extDims)
        }
    }

    @inline(__always) mutating func note(_ d: Int, _ count: Int, _ free: Int64) {
        switch d {
        case 0: cpuShort += count; cpuBest = max(cpuBest, free)
        case 1: memShort += count; memBest = max(memBest, free)
        default: extShort[d - 2] += count; extBest[d - 2] = max(extBest[d - 2], free)
        }
    }

    mutating func merge(_ o: Tally) {
        fit += o.fit
        if o.cpuShort > 0 { note(0, o.cpuShort, o.cpuBest) }
        if o.memShort > 0 { note(1, o.memShort, o.memBest) }
        for k in 0..<o.extShort.count where o.extShort[k] > 0 { note(2 + k, o.extShort[k], o.extBest[k]) }
    }

    func short(_ d: Int) -> Int { d == 0 ? cpuShort : d == 1 ? memShort : d - 2 < extShort.count ? extShort[d - 2] : 0 }
    func best(_ d: Int) -> Int64 { d == 0 ? cpuBest : d == 1 ? memBest : extBest[d - 2] }

    /// `insufficient cpu`, … rejections, for the dimensions that have any.
    func rejections(_ demand: Vec, _ dims: Dims) -> [Rejection] {
        var out: [Rejection] = []
        for k in 0..<(2 + extShort.count) where short(k) > 0 {
            let name = dims.name(k)
            let reason = k == 0 ? "insufficient cpu" : k == 1 ? "insufficient memory" : "insufficient \(name)"
            out.append(Rejection(reason: reason, count: short(k), resource: name, need: demand.dim(k), bestFree: best(k)))
        }
        return out
    }
}

extension Placer {
    // MARK: group bookkeeping

    func addToIndex(_ seq: Int32) {
        let node = nodes[Int(seq)]
        let pool = pools[Int(node.pool)]
        let free = node.alloc - node.used
        let g: Int32
        if let existing = pool.groupOf[free] {
            g = existing
            insertDescending(&groups[Int(g)].members, seq)
            let gr = groups[Int(g)]
            pool.rows[Int(gr.row)].base![Int(gr.rowSlot)].count += 1
            pool.cols[Int(gr.col)].base![Int(gr.colSlot)].count += 1
        } else {
            let r = pool.row(free.cpu), c = pool.col(free.mem)
            let group = Group(free: free, pool: pool.id, row: Int32(r), col: Int32(c), rowSlot: Int32(pool.rows[r].count),
                              colSlot: Int32(pool.cols[c].count), members: [seq])
            if let reuse = spareGroups.popLast() {
                g = reuse
                groups[Int(g)] = group
            } else {
                g = Int32(groups.count)
                groups.append(group)
            }
            pool.rows[r].append(LineEntry(cpu: free.cpu, mem: free.mem, count: 1, group: g, other: Int32(c)))
            pool.cols[c].append(LineEntry(cpu: free.cpu, mem: free.mem, count: 1, group: g, other: Int32(r)))
            pool.cellGroups[r * gridSize + c] += 1
            pool.rowMask[r] |= 1 << UInt64(c)
            pool.colMask[c] |= 1 << UInt64(r)
            pool.groupOf[free] = g
        }
        let r = Int(groups[Int(g)].row), c = Int(groups[Int(g)].col)
        pool.fenwickAdd(r, c, 1)
        pool.rowCount[r] += 1
        nodes[Int(seq)].group = g
    }

    func removeFromIndex(_ seq: Int32) {
        let g = nodes[Int(seq)].group
        guard g >= 0 else { return }
        nodes[Int(seq)].group = -1
        let gr = groups[Int(g)]
        let pool = pools[Int(gr.pool)]
        let r = Int(gr.row), c = Int(gr.col)
        pool.fenwickAdd(r, c, -1)
        pool.rowCount[r] -= 1
        removeDescending(&groups[Int(g)].members, seq)
        guard groups[Int(g)].members.isEmpty else {
            pool.rows[r].base![Int(gr.rowSlot)].count -= 1
            pool.cols[c].base![Int(gr.colSlot)].count -= 1
            return
        }
        // The group is empty: take it out of its row and column lists (swap-remove) and recycle its id.
        let lastR = pool.rows[r].removeLast()
        if lastR.group != g {
            pool.rows[r].base![Int(gr.rowSlot)] = lastR
            groups[Int(lastR.group)].rowSlot = gr.rowSlot
        }
        let lastC = pool.cols[c].removeLast()
        if lastC.group != g {
            pool.cols[c].base![Int(gr.colSlot)] = lastC
            groups[Int(lastC.group)].colSlot = gr.colSlot
        }
        pool.cellGroups[r * gridSize + c] -= 1
        if pool.cellGroups[r * gridSize + c] == 0 {
            pool.rowMask[r] &= ~(1 << UInt64(c))
            pool.colMask[c] &= ~(1 << UInt64(r))
        }
        pool.groupOf[gr.free] = nil
        spareGroups.append(g)
    }

    // MARK: counting rejections in one pool

    /// The ready nodes of `pool` where `d` does not fit (by first short dimension, with the largest free amount)
    /// and how many fit. Buckets wholly on one side of the demand are counted from totals; only the row of the
    /// demand's cpu and the column of its memory are read entry by entry.
    func tally(_ pool: Pool, _ d: Vec, extDims: Int) -> Tally {
        var t = Tally(extDims: extDims)
        if d.hasExt { return tallyByScan(pool, d, &t) }
        let rc = pool.row(d.cpu), rm = pool.col(d.mem)
        var cpuShort = 0, memShort = 0
        var bestCpu = Int64.min, bestMem = Int64.min
        // Row rc is the only row where cpu can go either way.
        let row = pool.rows[rc]
        for k in 0..<row.count {
            let e = row.base![k]
            if d.cpu > 0 && e.cpu < d.cpu {
                cpuShort &+= Int(e.count)
                bestCpu = max(bestCpu, e.cpu)
            } else if d.mem > 0 && e.mem < d.mem {
                memShort &+= Int(e.count)
                bestMem = max(bestMem, e.mem)
            }
        }
        if d.cpu > 0 && rc > 0 {
            for i in 0..<rc { cpuShort &+= pool.rowCount[i] }
            if bestCpu == .min {
                // The largest free cpu below the demand sits in the highest non-empty row under rc.
                let masks = pool.rowMask
                var i = rc - 1
                while i >= 0 && masks[i] == 0 { i -= 1 }
                if i >= 0 {
                    let r = pool.rows[i]
                    for k in 0..<r.count { bestCpu = max(bestCpu, r.base![k].cpu) }
                }
            }
        }
        if d.mem > 0 && rc + 1 < gridSize {
            // Rows above rc all have enough cpu: columns below rm are short on memory, column rm is partial.
            memShort &+= pool.prefix(gridSize, rm) &- pool.prefix(rc + 1, rm)
            var partialBest = Int64.min
            let col = pool.cols[rm]
            for k in 0..<col.count {
                let e = col.base![k]
                if e.other > rc && e.mem < d.mem {
                    memShort &+= Int(e.count)
                    partialBest = max(partialBest, e.mem)
                }
            }
            if partialBest == .min && rm > 0 {
                // Otherwise the largest free memory is in the highest column under rm with a row above rc.
                let above: UInt64 = UInt64.max << UInt64(rc + 1)
                let masks = pool.colMask
                var c = rm - 1
                while c >= 0 && masks[c] & above == 0 { c -= 1 }
                if c >= 0 {
                    let col = pool.cols[c]
                    for k in 0..<col.count where col.base![k].other > rc { partialBest = max(partialBest, col.base![k].mem) }
                }
            }
            bestMem = max(bestMem, partialBest)
        }
        if cpuShort > 0 { t.note(0, cpuShort, bestCpu) }
        if memShort > 0 { t.note(1, memShort, bestMem) }
        t.fit = pool.ready - cpuShort - memShort
        return t
    }

    /// Demands with extended resources: look at every group of the pool (extended pools are small).
    private func tallyByScan(_ pool: Pool, _ d: Vec, _ t: inout Tally) -> Tally {
        var fit = 0
        for i in 0..<gridSize {
            let row = pool.rows[i]
            for k in 0..<row.count {
                let e = row.base![k]
                let f = groups[Int(e.group)].free
                if let s = d.firstShort(in: f) { t.note(s, Int(e.count), f.dim(s)) } else { fit += Int(e.count) }
            }
        }
        t.fit = fit
        return t
    }

    // MARK: searching one pool

    /// Improves `best` with the best node of `pool` for `d`. `hosts`: nodes that already hold a task of the
    /// anti-affinity group when the pool has no such label (each node is then its own domain).
    func search(_ pool: Pool, _ d: Vec, hosts: [Int32: Int]?, best: inout Candidate) {
        let a = pool.alloc
        let masks = pool.rowMask, edges = pow10Edges
        let rc = pool.row(d.cpu), rm = pool.col(d.mem)
        let fromRm: UInt64 = UInt64.max << UInt64(rm)
        let s = strategy
        let fc = Scoring.frac(d.cpu, a.cpu), fm = Scoring.frac(d.mem, a.mem)
        let kc = Scoring.p10(-fc), km = Scoring.p10(-fm)
        let wc = fc + Scoring.dotFloor, wm = fm + Scoring.dotFloor

        // Lower bounds of the cost per row and per column. The cost is a sum of a cpu term and a memory term,
        // each monotone in the free amount, so a bucket's corner bounds it (the lower-left one for binpack and
        // dotproduct, the upper-right one for spread, whose cost is minus the free terms).
        @inline(__always) func rowLB(_ i: Int) -> Double {
            switch s {
            case .binpack: return i == rc ? (d.cpu > 0 ? 1 : 0) : edges[i] * kc
            case .dotproduct: return i == rc ? (d.cpu > 0 ? 0 : -.infinity) : wc * (Double(i) / Double(gridSize) - fc)
            case .spread: return -edges[i + 1] * kc
            }
        }
        @inline(__always) func colLB(_ j: Int) -> Double {
            switch s {
            case .binpack: return j == rm ? (d.mem > 0 ? 1 : 0) : edges[j] * km
            case .dotproduct: return j == rm ? (d.mem > 0 ? 0 : -.infinity) : wm * (Double(j) / Double(gridSize) - fm)
            case .spread: return -edges[j + 1] * km
            }
        }

        @inline(__always) func scan(_ i: Int, _ rl: Double) {
            let row = pool.rows[i]
            for k in 0..<row.count {
                let e = row.base![k]
                if e.other < rm { continue }
                if d.cpu > 0 && e.cpu < d.cpu { continue }
                if d.mem > 0 && e.mem < d.mem { continue }
                if best.found && rl + colLB(Int(e.other)) > best.cost + best.slack { continue }
                if d.hasExt && !d.fits(in: groups[Int(e.group)].free) { continue }
                let c = Scoring.cost(s, freeCpu: e.cpu, freeMem: e.mem, demand: d, alloc: a)
                if best.found && c > best.cost { continue }
                // The group's smallest sequence number that the anti-affinity rule allows.
                let m = groups[Int(e.group)].members
                var k = m.count - 1
                if let hosts { while k >= 0 && hosts[m[k]] != nil { k -= 1 } }
                guard k >= 0 else { continue }
                best.offer(cost: c, seq: m[k])
            }
        }

        if s == .spread {
            // Rows from the top: the bound grows as rows go down.
            let minCol = colLB(gridSize - 1)
            var i = gridSize - 1
            while i >= rc {
                defer { i -= 1 }
                if masks[i] & fromRm == 0 { continue }
                let rl = rowLB(i)
                if best.found && rl + minCol > best.cost + best.slack { break }
                scan(i, rl)
            }
        } else {
            let minCol = colLB(rm)
            for i in rc..<gridSize {
                if masks[i] & fromRm == 0 { continue }
                let rl = rowLB(i)
                if best.found && rl + minCol > best.cost + best.slack { break }
                scan(i, rl)
            }
        }
    }
}

/// The best node found so far: lowest cost, then lowest sequence number.
struct Candidate {
    var found = false
    var cost = Double.infinity
    var seq: Int32 = .max

    /// Pruning margin: bucket bounds are computed differently from exact costs, so allow for rounding.
    var slack: Double { 1e-9 * max(1, abs(cost)) }

    @inline(__always) mutating func offer(cost c: Double, seq s: Int32) {
        if !found || c < cost || (c == cost && s < seq) {
            found = true
            cost = c
            seq = s
        }
    }
}

@inline(__always) func insertDescending(_ a: inout [Int32], _ x: Int32) {
    // Appending is the common case (a node with a smaller seq than all others moving in).
    if a.isEmpty || a[a.count - 1] > x { a.append(x); return }
    var lo = 0, hi = a.count
    while lo < hi {
        let mid = (lo + hi) / 2
        if a[mid] > x { lo = mid + 1 } else { hi = mid }
    }
    a.insert(x, at: lo)
}

@inline(__always) func removeDescending(_ a: inout [Int32], _ x: Int32) {
    if a[a.count - 1] == x { a.removeLast(); return }
    var lo = 0, hi = a.count
    while lo < hi {
        let mid = (lo + hi) / 2
        if a[mid] > x { lo = mid + 1 } else { hi = mid }
    }
    if lo < a.count && a[lo] == x { a.remove(at: lo) }
}
