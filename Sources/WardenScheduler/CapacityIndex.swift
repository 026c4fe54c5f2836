/// The index over free capacity used by `Placer`.
///
/// Nodes with the same allocatable vector and the same labels form a *pool*: constraints and label-domain
/// anti-affinity are decided once per pool. Nodes with the same allocatable vector form a *shape*. Pools and
/// shapes each have a grid: a task with no constraint and no anti-affinity in force asks the few shape grids,
/// any other task the grids of its eligible pools. Inside a grid, nodes with the same free vector form a *group*
/// (identical score, identical feasibility). Groups sit in a g×g grid over free cpu × free memory (bucket =
/// 1/g of the allocatable in each dimension; g = 16, 64 or 256 as the grid grows), listed twice: in the list of their row
/// (sorted by free memory) and in the list of their column (sorted by free cpu). A 2-D Fenwick tree counts
/// nodes per bucket and per-row totals are kept.
///
/// A query walks rows in order of their lower bound on the strategy's cost; inside a row it starts at the first
/// column with enough memory (binary search) and stops when the bound passes the best node found. So a
/// placement reads a few short runs of a few pools instead of every node. Counting why nodes were rejected
/// uses the same grid: buckets wholly on one side of the demand are counted from totals; only the row of the
/// demand's cpu and the part of its memory column with enough cpu are read entry by entry.
/// Grid resolutions: a grid starts coarse and is rebuilt finer as its pool grows, so a cluster of many small
/// pools (say, a label unique to each node) stays small in memory, and a big pool keeps short rows.
let gridSizes = [16, 64, 256]

/// The resolution for a grid of `nodes` ready nodes: short rows, without spending 330 KB on a small pool.
func gridSize(for nodes: Int) -> Int {
    nodes <= 128 ? 16 : nodes <= 1024 ? 64 : 256
}

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
    var grid: Int32
    var row: Int32
    var col: Int32
    /// Node sequence numbers, in descending order: the smallest (the tie-break winner) is last.
    var members: [Int32]
}

/// A sorted array of entries in manually managed memory: the scans of the hot path read it without reference
/// counting, exclusivity checks or bounds checks. Rows are sorted by (mem, group), columns by (cpu, group).
/// Owned by its `Pool`, which frees it.
struct LineList {
    var base: UnsafeMutablePointer<LineEntry>? = nil
    var count = 0
    var capacity = 0

    @inline(__always) func key(_ e: LineEntry, byCpu: Bool) -> Int64 { byCpu ? e.cpu : e.mem }

    /// First index whose key is ≥ `x`.
    @inline(__always) func lowerBound(_ x: Int64, byCpu: Bool) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if key(base![mid], byCpu: byCpu) < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Index of the entry of group `g` with key `x`.
    func find(_ x: Int64, _ g: Int32, byCpu: Bool) -> Int {
        var i = lowerBound(x, byCpu: byCpu)
        while base![i].group != g { i += 1 }
        return i
    }

    mutating func insert(_ e: LineEntry, byCpu: Bool) {
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
        let i = lowerBound(key(e, byCpu: byCpu), byCpu: byCpu)
        if i < count { (base! + i + 1).moveInitialize(from: base! + i, count: count - i) }
        (base! + i).initialize(to: e)
        count += 1
    }

    mutating func remove(at i: Int) {
        if i < count - 1 { (base! + i).moveInitialize(from: base! + i + 1, count: count - 1 - i) }
        count -= 1
    }

    func release() { base?.deallocate() }
}

/// The index of one pool (labels set) or one shape (labels nil).
final class Grid {
    let id: Int32
    let alloc: Vec
    let labels: [String: String]?
    @exclusivity(unchecked) var ready = 0
    @exclusivity(unchecked) var notReady = 0
    @exclusivity(unchecked) var groupOf = GroupMap()
    let rows: UnsafeMutablePointer<LineList>
    let cols: UnsafeMutablePointer<LineList>
    /// Nodes per row.
    let rowCount: UnsafeMutablePointer<Int>
    /// Per row, which of 64 column blocks hold a group (and how many), so a search skips a row whose memory
    /// is all out of bounds without reading it.
    let rowBlocks: UnsafeMutablePointer<UInt64>
    let blockGroups: UnsafeMutablePointer<UInt32>
    /// A 2-D Fenwick tree of nodes per bucket: prefix sums in O(log² g).
    let fenwick: UnsafeMutablePointer<Int32>
    /// Smallest amount of each bucket: edge[k] = ceil(k × cap / g), per dimension.
    let cpuEdges: UnsafeMutablePointer<Int64>
    let memEdges: UnsafeMutablePointer<Int64>

    /// Rows and columns of this grid.
    let g: Int
    /// Columns per block of `rowBlocks` (64 blocks a row at most).
    let blockWidth: Int
    /// 10^(k/g) for k = 0…g: the bucket edges of the exponential scores.
    let pow10: UnsafeMutablePointer<Double>

    init(id: Int32, alloc: Vec, labels: [String: String]?, size g: Int = gridSizes[0]) {
        self.id = id
        self.alloc = alloc
        self.labels = labels
        self.g = g
        blockWidth = max(1, g / 64)
        pow10 = .allocate(capacity: g + 1)
        for k in 0...g { pow10[k] = Scoring.p10(Double(k) / Double(g)) }
        rows = .allocate(capacity: g)
        rows.initialize(repeating: LineList(), count: g)
        cols = .allocate(capacity: g)
        cols.initialize(repeating: LineList(), count: g)
        rowCount = .allocate(capacity: g)
        rowCount.initialize(repeating: 0, count: g)
        rowBlocks = .allocate(capacity: g)
        rowBlocks.initialize(repeating: 0, count: g)
        blockGroups = .allocate(capacity: g * 64)
        blockGroups.initialize(repeating: 0, count: g * 64)
        fenwick = .allocate(capacity: (g + 1) * (g + 1))
        fenwick.initialize(repeating: 0, count: (g + 1) * (g + 1))
        cpuEdges = .allocate(capacity: g + 1)
        memEdges = .allocate(capacity: g + 1)
        for k in 0...g {
            cpuEdges[k] = Grid.edge(k, g, alloc.cpu)
            memEdges[k] = Grid.edge(k, g, alloc.mem)
        }
    }

    deinit {
        for i in 0..<g {
            rows[i].release()
            cols[i].release()
        }
        pow10.deallocate()
        rows.deallocate()
        cols.deallocate()
        rowCount.deallocate()
        rowBlocks.deallocate()
        blockGroups.deallocate()
        fenwick.deallocate()
        cpuEdges.deallocate()
        memEdges.deallocate()
    }

    /// ceil(k × cap / G) without overflow.
    private static func edge(_ k: Int, _ g: Int, _ cap: Int64) -> Int64 {
        guard cap > 0 else { return 0 }
        let p = cap.multipliedFullWidth(by: Int64(k))
        let (q, r) = Int64(g).dividingFullWidth(p)
        return r > 0 ? q + 1 : q
    }

    /// Bucket of an amount: floor(x × G / cap), clamped to 0…G−1. A floating-point guess corrected against the
    /// exact integer edges, so a boundary never depends on rounding.
    @inline(__always) static func bucket(_ x: Int64, _ cap: Int64, _ g: Int, _ edges: UnsafeMutablePointer<Int64>) -> Int {
        if cap <= 0 || x <= 0 { return 0 }
        if x >= cap { return g - 1 }
        var k = Int(Double(x) / Double(cap) * Double(g))
        k = min(max(k, 0), g - 1)
        while k < g - 1 && edges[k + 1] <= x { k += 1 }
        while k > 0 && edges[k] > x { k -= 1 }
        return k
    }

    @inline(__always) func row(_ cpu: Int64) -> Int { Grid.bucket(cpu, alloc.cpu, g, cpuEdges) }

    func noteGroup(row r: Int, col c: Int, _ delta: Int32) {
        let b = c / blockWidth
        let k = r * 64 + b
        blockGroups[k] = UInt32(Int64(blockGroups[k]) + Int64(delta))
        if blockGroups[k] == 0 { rowBlocks[r] &= ~(1 << UInt64(b)) } else { rowBlocks[r] |= 1 << UInt64(b) }
    }
    @inline(__always) func col(_ mem: Int64) -> Int { Grid.bucket(mem, alloc.mem, g, memEdges) }

    func fenwickAdd(_ row: Int, _ col: Int, _ delta: Int32) {
        var i = row + 1
        while i <= g {
            var j = col + 1
            while j <= g {
                fenwick[i &* (g + 1) &+ j] &+= delta
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
                s &+= Int(fenwick[i &* (g + 1) &+ j])
                j -= j & -j
            }
            i -= i & -i
        }
        return s
    }
}

/// Free vector → group, per grid: open addressing with a cheap multiplicative hash (the general-purpose
/// Dictionary spends most of its time seeding SipHash here). Keys are compared through the groups array.
struct GroupMap {
    private var slots: [Int32] = Array(repeating: -1, count: 16)
    private var used = 0

    @inline(__always) private static func hash(_ v: Vec) -> Int {
        var h = UInt64(bitPattern: v.cpu) &* 0x9E37_79B9_7F4A_7C15
        h ^= UInt64(bitPattern: v.mem) &* 0xC2B2_AE3D_27D4_EB4F
        for x in v.ext { h = (h ^ UInt64(bitPattern: x)) &* 0x1656_67B1_9E37_79F9 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    func find(_ v: Vec, _ groups: [Group]) -> Int32? {
        let mask = slots.count - 1
        var i = GroupMap.hash(v) & mask
        while true {
            let g = slots[i]
            if g < 0 { return nil }
            if groups[Int(g)].free == v { return g }
            i = (i + 1) & mask
        }
    }

    mutating func insert(_ v: Vec, _ g: Int32, _ groups: [Group]) {
        if (used + 1) * 2 > slots.count { grow(groups) }
        let mask = slots.count - 1
        var i = GroupMap.hash(v) & mask
        while slots[i] >= 0 { i = (i + 1) & mask }
        slots[i] = g
        used += 1
    }

    /// Removes `g` (whose free vector is `v`), shifting later entries of its run back (no tombstones).
    mutating func remove(_ v: Vec, _ g: Int32, _ groups: [Group]) {
        let mask = slots.count - 1
        var i = GroupMap.hash(v) & mask
        while slots[i] != g { i = (i + 1) & mask }
        slots[i] = -1
        used -= 1
        var j = (i + 1) & mask
        while slots[j] >= 0 {
            let h = GroupMap.hash(groups[Int(slots[j])].free) & mask
            // Move slots[j] into the hole when its home is not in (i, j] (cyclically).
            let inRange = i <= j ? (h > i && h <= j) : (h > i || h <= j)
            if !inRange {
                slots[i] = slots[j]
                slots[j] = -1
                i = j
            }
            j = (j + 1) & mask
        }
    }

    private mutating func grow(_ groups: [Group]) {
        let old = slots
        slots = Array(repeating: -1, count: old.count * 2)
        used = 0
        let mask = slots.count - 1
        for g in old where g >= 0 {
            var i = GroupMap.hash(groups[Int(g)].free) & mask
            while slots[i] >= 0 { i = (i + 1) & mask }
            slots[i] = g
            used += 1
        }
    }
}

struct PoolKey: Hashable {
    var alloc: Vec
    var labels: [String: String]
}


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

    /// Adds the rejections of `o` (not its fit count: the caller adjusts that for anti-affinity).
    mutating func merge(_ o: Tally) {
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

    /// Puts a ready node into its pool grid and its shape grid.
    func addToIndex(_ seq: Int32) {
        let free = nodes[Int(seq)].alloc - nodes[Int(seq)].used
        nodes[Int(seq)].group = gridAdd(seq, free, pools[Int(nodes[Int(seq)].pool)])
        nodes[Int(seq)].shapeGroup = gridAdd(seq, free, pools[Int(nodes[Int(seq)].shape)])
    }

    func removeFromIndex(_ seq: Int32) {
        let g = nodes[Int(seq)].group
        guard g >= 0 else { return }
        gridRemove(seq, g)
        gridRemove(seq, nodes[Int(seq)].shapeGroup)
        nodes[Int(seq)].group = -1
        nodes[Int(seq)].shapeGroup = -1
    }

    private func gridAdd(_ seq: Int32, _ free: Vec, _ pool: Grid) -> Int32 {
        let g: Int32
        if let existing = pool.groupOf.find(free, groups) {
            g = existing
            insertDescending(&groups[Int(g)].members, seq)
            let r = Int(groups[Int(g)].row), c = Int(groups[Int(g)].col)
            pool.rows[r].base![pool.rows[r].find(free.mem, g, byCpu: false)].count += 1
            pool.cols[c].base![pool.cols[c].find(free.cpu, g, byCpu: true)].count += 1
        } else {
            let r = pool.row(free.cpu), c = pool.col(free.mem)
            if let reuse = spareGroups.popLast() {
                // Reuse the slot and its members array (empty, with capacity): no allocation.
                g = reuse
                groups[Int(g)].free = free
                groups[Int(g)].grid = pool.id
                groups[Int(g)].row = Int32(r)
                groups[Int(g)].col = Int32(c)
                groups[Int(g)].members.append(seq)
            } else {
                g = Int32(groups.count)
                groups.append(Group(free: free, grid: pool.id, row: Int32(r), col: Int32(c), members: [seq]))
            }
            pool.rows[r].insert(LineEntry(cpu: free.cpu, mem: free.mem, count: 1, group: g, other: Int32(c)), byCpu: false)
            pool.cols[c].insert(LineEntry(cpu: free.cpu, mem: free.mem, count: 1, group: g, other: Int32(r)), byCpu: true)
            pool.groupOf.insert(free, g, groups)
            pool.noteGroup(row: r, col: c, 1)
        }
        let r = Int(groups[Int(g)].row), c = Int(groups[Int(g)].col)
        pool.fenwickAdd(r, c, 1)
        pool.rowCount[r] += 1
        return g
    }

    /// Replaces a grid by a finer one when its pool has grown (same groups, new buckets).
    func regrid(_ id: Int32) {
        let old = pools[Int(id)]
        let size = gridSize(for: old.ready)
        guard size > old.g else { return }
        let new = Grid(id: id, alloc: old.alloc, labels: old.labels, size: size)
        new.ready = old.ready
        new.notReady = old.notReady
        new.groupOf = old.groupOf
        for i in 0..<old.g {
            let row = old.rows[i]
            for k in 0..<row.count {
                let e = row.base![k]
                let r = new.row(e.cpu), c = new.col(e.mem)
                groups[Int(e.group)].row = Int32(r)
                groups[Int(e.group)].col = Int32(c)
                new.rows[r].insert(LineEntry(cpu: e.cpu, mem: e.mem, count: e.count, group: e.group, other: Int32(c)), byCpu: false)
                new.cols[c].insert(LineEntry(cpu: e.cpu, mem: e.mem, count: e.count, group: e.group, other: Int32(r)), byCpu: true)
                new.noteGroup(row: r, col: c, 1)
                new.fenwickAdd(r, c, e.count)
                new.rowCount[r] += Int(e.count)
            }
        }
        pools[Int(id)] = new
    }

    private func gridRemove(_ seq: Int32, _ g: Int32) {
        let gr = groups[Int(g)]
        let pool = pools[Int(gr.grid)]
        let r = Int(gr.row), c = Int(gr.col)
        pool.fenwickAdd(r, c, -1)
        pool.rowCount[r] -= 1
        removeDescending(&groups[Int(g)].members, seq)
        let ri = pool.rows[r].find(gr.free.mem, g, byCpu: false)
        let ci = pool.cols[c].find(gr.free.cpu, g, byCpu: true)
        guard groups[Int(g)].members.isEmpty else {
            pool.rows[r].base![ri].count -= 1
            pool.cols[c].base![ci].count -= 1
            return
        }
        // The group is empty: take it out of its row and column lists and recycle its id.
        pool.rows[r].remove(at: ri)
        pool.cols[c].remove(at: ci)
        pool.noteGroup(row: r, col: c, -1)
        pool.groupOf.remove(gr.free, g, groups)
        spareGroups.append(g)
    }

    // MARK: counting rejections in one pool

    /// The ready nodes of `pool` where `d` does not fit (by first short dimension, with the largest free amount)
    /// and how many fit. Buckets wholly on one side of the demand are counted from totals; only the row of the
    /// demand's cpu, and the part of the demand's memory column with enough cpu, are read entry by entry.
    func tally(_ pool: Grid, _ d: Vec, extDims: Int) -> Tally {
        var t = Tally(extDims: extDims)
        if d.hasExt { return tallyByScan(pool, d, &t) }
        let rc = pool.row(d.cpu), rm = pool.col(d.mem)
        var cpuShort = 0, memShort = 0
        var bestCpu = Int64.min, bestMem = Int64.min
        // Row rc is the only row where cpu can go either way. Branch-free: which way each entry goes is random.
        let dcpu = d.cpu > 0 ? d.cpu : Int64.min, dmem = d.mem > 0 ? d.mem : Int64.min
        let row = pool.rows[rc]
        if let base = row.base {
            for k in 0..<row.count {
                let e = base[k]
                let cs = e.cpu < dcpu
                let ms = !cs && e.mem < dmem
                cpuShort &+= cs ? Int(e.count) : 0
                memShort &+= ms ? Int(e.count) : 0
                bestCpu = max(bestCpu, cs ? e.cpu : .min)
                bestMem = max(bestMem, ms ? e.mem : .min)
            }
        }
        if d.cpu > 0 && rc > 0 {
            for i in 0..<rc { cpuShort &+= pool.rowCount[i] }
            if bestCpu == .min {
                // The largest free cpu below the demand sits in the highest non-empty row under rc.
                var i = rc - 1
                while i >= 0 && pool.rowCount[i] == 0 { i -= 1 }
                if i >= 0 {
                    let r = pool.rows[i]
                    for k in 0..<r.count { bestCpu = max(bestCpu, r.base![k].cpu) }
                }
            }
        }
        if d.mem > 0 && rc + 1 < pool.g {
            // Rows above rc all have enough cpu: columns below rm are short on memory, column rm is partial.
            memShort &+= pool.prefix(pool.g, rm) &- pool.prefix(rc + 1, rm)
            let above = pool.cpuEdges[rc + 1]
            var partialBest = Int64.min
            let col = pool.cols[rm]
            if let base = col.base {
                for k in col.lowerBound(above, byCpu: true)..<col.count {
                    let e = base[k]
                    let ms = e.mem < d.mem
                    memShort &+= ms ? Int(e.count) : 0
                    partialBest = max(partialBest, ms ? e.mem : .min)
                }
            }
            if partialBest == .min {
                // Otherwise the largest free memory is in the highest column under rm with a row above rc
                // (a column's last entry has its largest cpu).
                var c = rm - 1
                while c >= 0 && (pool.cols[c].count == 0 || pool.cols[c].base![pool.cols[c].count - 1].cpu < above) { c -= 1 }
                if c >= 0 {
                    let col = pool.cols[c]
                    for k in col.lowerBound(above, byCpu: true)..<col.count { partialBest = max(partialBest, col.base![k].mem) }
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
    private func tallyByScan(_ pool: Grid, _ d: Vec, _ t: inout Tally) -> Tally {
        var fit = 0
        for i in 0..<pool.g {
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
    func search(_ pool: Grid, _ d: Vec, hosts: [Int32: Int]?, best: inout Candidate) {
        let a = pool.alloc
        let edges = pool.pow10, gridSize = pool.g
        let rc = pool.row(d.cpu), rm = pool.col(d.mem)
        let s = strategy
        let fc = Scoring.frac(d.cpu, a.cpu), fm = Scoring.frac(d.mem, a.mem)
        let kc = Scoring.p10(-fc), km = Scoring.p10(-fm)
        let wc = fc + Scoring.dotFloor, wm = fm + Scoring.dotFloor
        let memFrom = d.mem > 0 ? d.mem : Int64.min

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

        @inline(__always) func consider(_ e: LineEntry) {
            if d.hasExt && !d.fits(in: groups[Int(e.group)].free) { return }
            let c = Scoring.cost(s, freeCpu: e.cpu, freeMem: e.mem, demand: d, alloc: a)
            if best.found && c > best.cost { return }
            // The group's smallest sequence number that the anti-affinity rule allows.
            let m = groups[Int(e.group)].members
            var k = m.count - 1
            if let hosts { while k >= 0 && hosts[m[k]] != nil { k -= 1 } }
            guard k >= 0 else { return }
            best.offer(cost: c, seq: m[k])
        }

        // One row: entries with enough memory, in increasing memory (so increasing column bound for binpack and
        // dotproduct, decreasing for spread).
        @inline(__always) func scan(_ i: Int, _ rl: Double) {
            let row = pool.rows[i]
            guard let base = row.base else { return }
            if s == .spread {
                var k = row.count - 1
                while k >= 0 && base[k].mem >= memFrom {
                    let e = base[k]
                    k -= 1
                    if best.found && rl + colLB(Int(e.other)) > best.cost + best.slack { break }
                    if d.cpu > 0 && e.cpu < d.cpu { continue }
                    consider(e)
                }
            } else {
                for k in row.lowerBound(memFrom, byCpu: false)..<row.count {
                    let e = base[k]
                    if best.found && rl + colLB(Int(e.other)) > best.cost + best.slack { break }
                    if d.cpu > 0 && e.cpu < d.cpu { continue }
                    consider(e)
                }
            }
        }

        let bw = pool.blockWidth
        let fromBlock: UInt64 = UInt64.max << UInt64(rm / bw)
        if s == .spread {
            // Rows from the top: the bound grows as rows go down.
            let minCol = colLB(gridSize - 1)
            var i = gridSize - 1
            while i >= rc {
                defer { i -= 1 }
                let blocks = pool.rowBlocks[i] & fromBlock
                if blocks == 0 { continue }
                let rl = rowLB(i)
                if best.found && rl + minCol > best.cost + best.slack { break }
                // The best column bound of the row is at the top of its highest block.
                if best.found && rl + colLB((63 - blocks.leadingZeroBitCount) * bw + bw - 1) > best.cost + best.slack { continue }
                scan(i, rl)
            }
        } else {
            let minCol = colLB(rm)
            for i in rc..<gridSize {
                let blocks = pool.rowBlocks[i] & fromBlock
                if blocks == 0 { continue }
                let rl = rowLB(i)
                if best.found && rl + minCol > best.cost + best.slack { break }
                // The best column bound of the row is at the start of its lowest block (not below rm).
                if best.found && rl + colLB(max(rm, blocks.trailingZeroBitCount * bw)) > best.cost + best.slack { continue }
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
