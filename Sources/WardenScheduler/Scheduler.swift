// WardenScheduler: online placement, the offline planner (`warden plan`), explanations and reports.
// Model, scores, index and bounds are described in docs/SCHEDULING.md.
//
// Public API (what the engine and the CLI call):
//
//   Value types
//     NodeSpec(name:capacity:labels:reserved:)              a node; allocatable = capacity − reserved
//     TaskDemand(id:resources:priority:constraints:antiAffinity:labels:group:)
//     Strategy  .binpack | .dotproduct | .spread             (Strategy(rawValue: "binpack"), CLI names)
//     PlacementDecision { task, node, score, strategy, nodesTotal, nodesFit, reasons: [Rejection],
//                         rejections: [String: Int], explanation: String, placed: Bool }
//
//   Online (one instance per cluster; the engine serializes calls)
//     let p = Placer(strategy: .binpack, expectedTasks: 0)   (capacity hint)
//     p.upsertNode(spec, ready: true)          add or update (keeps the node's allocations)
//     p.setReady("n1", false) throws(WardenError)
//     p.removeNode("n1") -> [String]           ids of the tasks that were on it (now released)
//     p.place(demand) -> PlacementDecision     commits the allocation when it places
//     p.explain(demand) -> PlacementDecision   the same decision without committing
//     p.assign(demand, to: "n1") throws(WardenError)   record an existing placement (recovery), may overcommit
//     p.release(taskID:) -> Bool
//     p.allocate(node:resources:) / p.release(node:resources:) throws(WardenError)   anonymous adjustments
//     p.allocation(of: "n1") -> Resources?     p.nodeStatuses() -> [NodeStatus]     p.node(of: taskID) -> String?
//     p.scheduleRound(pending, reserveAfter: 10, maxReservations: 1) -> RoundOutcome
//                                              one queue pass: priority order, backfill, reservations
//     p.hold(demand, on: "n1") throws(WardenError)   restore a reservation in a rebuilt placer
//     p.report(waiting: [(task, reason)]) -> PlanReport   the live cluster (`warden report placement`)
//
//   Offline
//     PlanInput.tasks(fromJSON:) / nodes(fromJSON:) throws(WardenError)   TASKS.json, NODES.json (DESIGN §7)
//     PlanInput.shape(parsing: "16,64Gi,gpu=2") throws(WardenError) -> NodeSpec   (exit 64 on error)
//     Planner.plan(tasks:nodes:strategy:) -> PlanReport                     a fixed cluster
//     Planner.minimumNodes(tasks:shape:timeLimitSeconds:trace:) -> PlanReport   how many nodes of a shape
//     PlanReport { json: JSONValue, text: String, html: String, allPlaced: Bool, nodesUsed, lowerBound, ... }
//
//   Benchmarks
//     ScheduleBench.run(nodes:tasks:strategy:) -> JSONValue     `warden bench schedule --json`
import WardenCore

/// A node as the scheduler sees it. Allocatable capacity is `capacity − reserved` (headroom kept for the system).
public struct NodeSpec: Sendable, Hashable {
    public var name: String
    public var capacity: Resources
    public var labels: [String: String]
    public var reserved: Resources

    public init(name: String, capacity: Resources, labels: [String: String] = [:], reserved: Resources = .zero) {
        self.name = name
        self.capacity = capacity
        self.labels = labels
        self.reserved = reserved
    }

    /// What tasks may use.
    public var allocatable: Resources { capacity - reserved }
}

/// What one task needs from a node.
public struct TaskDemand: Sendable, Hashable {
    public var id: String
    public var resources: Resources
    /// Larger is more urgent.
    public var priority: Int
    /// Node label → allowed values; every key must match.
    public var constraints: [String: [String]]
    /// A node label key: two tasks of the same `group` never share a value of this label. A node without the
    /// label is a domain of its own (so `antiAffinity` on a missing label means "one per node").
    public var antiAffinity: String?
    /// Metadata, carried into reports.
    public var labels: [String: String]
    /// The anti-affinity group: the TASKS.json entry a `count` expanded, or a plugin.tool for the engine.
    public var group: String

    public init(id: String, resources: Resources, priority: Int = 0, constraints: [String: [String]] = [:],
                antiAffinity: String? = nil, labels: [String: String] = [:], group: String? = nil) {
        self.id = id
        self.resources = resources
        self.priority = priority
        self.constraints = constraints
        self.antiAffinity = antiAffinity
        self.labels = labels
        self.group = group ?? id
    }
}

/// How a feasible node is chosen. All three prefer the lower node sequence (insertion order) on a tie.
public enum Strategy: String, Sendable, Hashable, CaseIterable {
    /// Nomad's best fit: maximize `20 − (10^freeCpu + 10^freeMem)`, free fractions after placing the task.
    case binpack
    /// Demand-weighted best fit: minimize Σ (demand_k + 0.05) × leftover_k over cpu and memory (fractions of
    /// allocatable), so the task goes where the room left in the dimensions it uses most is smallest.
    case dotproduct
    /// Nomad's spread: maximize `10^freeCpu + 10^freeMem − 2`.
    case spread
}

/// Why some nodes could not take a task, aggregated over the nodes rejected for the same reason.
public struct Rejection: Sendable, Hashable {
    /// `not ready`, `constraint zone`, `insufficient memory`, `anti-affinity zone`: the key of `rejections`.
    public var reason: String
    public var count: Int
    /// For `insufficient X`: the resource name, the demand and the largest free amount among these nodes.
    public var resource: String?
    public var need: Int64?
    public var bestFree: Int64?
    /// For `constraint K`: the allowed values.
    public var allowed: [String]?

    public init(reason: String, count: Int, resource: String? = nil, need: Int64? = nil, bestFree: Int64? = nil,
                allowed: [String]? = nil) {
        self.reason = reason
        self.count = count
        self.resource = resource
        self.need = need
        self.bestFree = bestFree
        self.allowed = allowed
    }

    /// `7 insufficient memory (need 2Gi, best free 1.5Gi)`.
    public var text: String {
        var s = "\(count) \(reason)"
        if let resource, let need {
            s += " (need \(formatAmount(need, resource))"
            if let bestFree { s += ", best free \(formatAmount(bestFree, resource))" }
            s += ")"
        } else if let allowed {
            s += " (not in [\(allowed.joined(separator: ", "))])"
        }
        return s
    }
}

/// One placement decision and its explanation.
public struct PlacementDecision: Sendable, Hashable {
    public var task: String
    /// The chosen node; nil when the task did not fit anywhere.
    public var node: String?
    /// The strategy's score of the chosen node (binpack 0…18, spread 0…18, dotproduct 0…2.2; higher is better).
    public var score: Double?
    public var strategy: Strategy
    /// Nodes known to the placer (ready or not).
    public var nodesTotal: Int
    /// Nodes where the task fits right now (the chosen one included).
    public var nodesFit: Int
    /// Reasons the other nodes were rejected, largest count first. Each node is counted once, under the first
    /// reason that applies in this order: not ready, constraint, insufficient cpu, memory, extended (by name),
    /// anti-affinity.
    public var reasons: [Rejection]
    /// Set when the decision is a reservation held for a task that waited too long (see `scheduleRound`).
    public var reservedNode: String?

    public var placed: Bool { node != nil }

    public var rejections: [String: Int] {
        var out: [String: Int] = [:]
        for r in reasons { out[r.reason, default: 0] += r.count }
        return out
    }

    /// `0/12 nodes fit: 7 insufficient memory (need 2Gi, best free 1.5Gi), 5 insufficient cpu (need 4, best free 2)`
    /// or `placed on n3 (binpack score 15.83); 5/12 nodes fit; rejected: 7 insufficient memory (…)`.
    public var explanation: String {
        let list = reasons.map(\.text).joined(separator: ", ")
        if let node {
            guard let score else { return "already placed on \(node)" }
            var s = "placed on \(node) (\(strategy.rawValue) score \(formatScore(score))); \(nodesFit)/\(nodesTotal) nodes fit"
            if !list.isEmpty { s += "; rejected: \(list)" }
            return s
        }
        var s = "\(nodesFit)/\(nodesTotal) nodes fit"
        if nodesTotal == 0 { return s + ": no nodes" }
        if !list.isEmpty { s += ": \(list)" }
        if let reservedNode { s += "; holding a reservation on \(reservedNode)" }
        return s
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "task": .string(task), "node": .optional(node), "strategy": .string(strategy.rawValue),
            "nodes_total": .int(Int64(nodesTotal)), "nodes_fit": .int(Int64(nodesFit)),
            "explanation": .string(explanation),
            "rejections": .object(rejections.mapValues { .int(Int64($0)) }),
        ]
        if let score { o["score"] = .double(roundTo(score, 4)) }
        if let reservedNode { o["reserved_node"] = .string(reservedNode) }
        return .object(o)
    }
}

/// A node's state as the placer holds it.
public struct NodeStatus: Sendable, Hashable {
    public var spec: NodeSpec
    public var ready: Bool
    /// Sum of the placed tasks, reservations and anonymous allocations.
    public var allocated: Resources
    public var tasks: Int

    /// The node shape of DESIGN §7: `{"name", "cpu", "memory", "allocated": {"cpu", "memory"}, "labels", "ready"}`.
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "name": .string(spec.name), "cpu": .string(Quantity.formatCPU(spec.capacity.cpuMillis)),
            "memory": .string(Quantity.formatBytes(spec.capacity.memoryBytes)),
            "allocated": allocated.json, "labels": .object(spec.labels.mapValues { .string($0) }),
            "ready": .bool(ready), "tasks": .int(Int64(tasks)),
        ]
        if !spec.capacity.extended.isEmpty { o["resources"] = .object(spec.capacity.extended.mapValues { .int($0) }) }
        if !spec.reserved.isZero { o["reserved"] = spec.reserved.json }
        return .object(o)
    }
}

// MARK: - formatting helpers shared by explanations and reports

/// A resource amount as a person writes it: cpu "1500m"/"2", memory "1.5Gi", extended as an integer.
func formatAmount(_ v: Int64, _ resource: String) -> String {
    switch resource {
    case "cpu": return formatCores(v)   // one unit in a sentence: "need 1.5, best free 0.25"
    case "memory": return Quantity.formatBytes(v)
    default: return String(v)
    }
}

/// Millicores as cores for tables: 15500 → "15.5", 13000 → "13", 250 → "0.25".
func formatCores(_ millis: Int64) -> String {
    let sign = millis < 0 ? "-" : ""
    let m = abs(millis)
    var frac = String(m % 1000)
    if m % 1000 == 0 { return sign + String(m / 1000) }
    frac = String(repeating: "0", count: 3 - frac.count) + frac
    while frac.hasSuffix("0") { frac.removeLast() }
    return "\(sign)\(m / 1000).\(frac)"
}

func formatScore(_ x: Double) -> String {
    let r = (x * 100).rounded() / 100
    var s = "\(r)"
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals == 1 { s += "0" }
    }
    return s
}

func roundTo(_ x: Double, _ places: Int) -> Double {
    var m = 1.0
    for _ in 0..<places { m *= 10 }
    return (x * m).rounded() / m
}
