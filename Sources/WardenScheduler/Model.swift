#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import WardenCore

/// A resource vector in a placer's dimension order: cpu, memory, then extended resources by registry index.
/// `ext` never ends in a zero, so equal vectors hash equal whatever dimensions were registered later.
struct Vec: Hashable, Sendable {
    var cpu: Int64
    var mem: Int64
    var ext: [Int64]

    static let zero = Vec(cpu: 0, mem: 0, ext: [])

    init(cpu: Int64, mem: Int64, ext: [Int64]) {
        self.cpu = cpu
        self.mem = mem
        self.ext = ext
        trim()
    }

    @inline(__always) func e(_ k: Int) -> Int64 { k < ext.count ? ext[k] : 0 }

    var hasExt: Bool { !ext.isEmpty }

    private mutating func trim() {
        while let last = ext.last, last == 0 { ext.removeLast() }
    }

    static func + (a: Vec, b: Vec) -> Vec {
        if a.ext.isEmpty && b.ext.isEmpty { return Vec(cpu: a.cpu + b.cpu, mem: a.mem + b.mem, ext: []) }
        let n = max(a.ext.count, b.ext.count)
        return Vec(cpu: a.cpu + b.cpu, mem: a.mem + b.mem, ext: (0..<n).map { a.e($0) + b.e($0) })
    }

    static func - (a: Vec, b: Vec) -> Vec {
        if a.ext.isEmpty && b.ext.isEmpty { return Vec(cpu: a.cpu - b.cpu, mem: a.mem - b.mem, ext: []) }
        let n = max(a.ext.count, b.ext.count)
        return Vec(cpu: a.cpu - b.cpu, mem: a.mem - b.mem, ext: (0..<n).map { a.e($0) - b.e($0) })
    }

    /// The demand fits into `free`: every dimension the demand uses (> 0) is covered. A dimension the task does
    /// not use is not checked, so an overcommitted dimension only blocks tasks that need it.
    @inline(__always) func fits(in free: Vec) -> Bool {
        if cpu > 0 && cpu > free.cpu { return false }
        if mem > 0 && mem > free.mem { return false }
        if !ext.isEmpty {
            for k in 0..<ext.count where ext[k] > 0 && ext[k] > free.e(k) { return false }
        }
        return true
    }

    /// The first dimension (0 cpu, 1 memory, 2+k extended k) where the demand does not fit `free`, or nil.
    func firstShort(in free: Vec) -> Int? {
        if cpu > 0 && cpu > free.cpu { return 0 }
        if mem > 0 && mem > free.mem { return 1 }
        for k in 0..<ext.count where ext[k] > 0 && ext[k] > free.e(k) { return 2 + k }
        return nil
    }

    @inline(__always) func dim(_ d: Int) -> Int64 {
        switch d {
        case 0: return cpu
        case 1: return mem
        default: return e(d - 2)
        }
    }
}

/// Names of the extended dimensions a placer has seen, in first-seen order.
struct Dims: Sendable {
    private(set) var names: [String] = []
    private var index: [String: Int] = [:]

    mutating func vec(_ r: Resources) -> Vec {
        if r.extended.isEmpty { return Vec(cpu: r.cpuMillis, mem: r.memoryBytes, ext: []) }
        var ext: [Int64] = []
        for (name, v) in r.extended.sorted(by: { $0.key < $1.key }) where v != 0 {
            let k = register(name)
            if ext.count <= k { ext += Array(repeating: 0, count: k + 1 - ext.count) }
            ext[k] = v
        }
        return Vec(cpu: r.cpuMillis, mem: r.memoryBytes, ext: ext)
    }

    mutating func register(_ name: String) -> Int {
        if let k = index[name] { return k }
        index[name] = names.count
        names.append(name)
        return names.count - 1
    }

    func resources(_ v: Vec) -> Resources {
        var e: [String: Int64] = [:]
        for (k, x) in v.ext.enumerated() where x != 0 { e[names[k]] = x }
        return Resources(cpuMillis: v.cpu, memoryBytes: v.mem, extended: e)
    }

    /// "cpu", "memory", or the extended name of dimension `d`.
    func name(_ d: Int) -> String {
        switch d {
        case 0: return "cpu"
        case 1: return "memory"
        default: return names[d - 2]
        }
    }
}

/// The scores. Every strategy is written as a cost to minimize, computed from the free amounts left after the
/// task is placed; the online index, the full-scan baseline and the planner all call these functions, so there
/// is one scorer.
enum Scoring {
    @inline(__always) static func frac(_ x: Int64, _ cap: Int64) -> Double {
        cap > 0 ? Double(x) / Double(cap) : 0
    }

    /// 10^x. exp(x·ln 10) is several times faster than pow and as exact as a score needs.
    @inline(__always) static func p10(_ x: Double) -> Double { exp(x * 2.302585092994045684) }

    /// Floor weight of the dot-product score, so a dimension the task does not use still prefers less leftover.
    static let dotFloor = 0.05

    /// Cost of putting demand `d` on a node with free `f` and allocatable `a` (lower is better).
    @inline(__always) static func cost(_ s: Strategy, free f: Vec, demand d: Vec, alloc a: Vec) -> Double {
        cost(s, freeCpu: f.cpu, freeMem: f.mem, demand: d, alloc: a)
    }

    @inline(__always) static func cost(_ s: Strategy, freeCpu: Int64, freeMem: Int64, demand d: Vec, alloc a: Vec) -> Double {
        let rc = frac(freeCpu - d.cpu, a.cpu), rm = frac(freeMem - d.mem, a.mem)
        switch s {
        case .binpack: return p10(rc) + p10(rm)
        case .spread: return -(p10(rc) + p10(rm))
        case .dotproduct:
            return (frac(d.cpu, a.cpu) + dotFloor) * rc + (frac(d.mem, a.mem) + dotFloor) * rm
        }
    }

    /// The score a person sees (higher is better): Nomad's 0…18 for binpack and spread.
    static func score(_ s: Strategy, cost: Double) -> Double {
        switch s {
        case .binpack: return min(18, max(0, 20 - cost))
        case .spread: return min(18, max(0, -cost - 2))
        case .dotproduct: return 2.2 - cost
        }
    }
}

/// A small deterministic generator (SplitMix64): same seed, same sequence, on every run.
struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
