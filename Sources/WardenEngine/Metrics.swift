import Glibc
import WardenCore
import WardenStore

/// Prometheus metrics. Counters and histograms live in the process that does the work (`serve`); gauges
/// (queue depth, tasks by state, node allocation) are read from the store when rendered, so `warden metrics`
/// without a daemon still shows the durable picture.
public final class Metrics: @unchecked Sendable {
    private var lock = pthread_mutex_t()
    private var counters: [String: [String: Double]] = [:]   // name → labels text → value
    private var histograms: [String: Histogram] = [:]
    private let help: [String: (String, String)] = [
        "warden_task_latency_seconds": ("histogram", "Submit-to-finish latency of tasks."),
        "warden_task_run_seconds": ("histogram", "Run time of one attempt."),
    ]

    struct Histogram {
        static let buckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
        var counts = [Double](repeating: 0, count: buckets.count)
        var sum = 0.0
        var count = 0.0
        mutating func observe(_ v: Double) {
            for (i, b) in Self.buckets.enumerated() where v <= b { counts[i] += 1 }
            sum += v
            count += 1
        }
    }

    public init() { pthread_mutex_init(&lock, nil) }

    public func inc(_ name: String, _ labels: [String: String] = [:], by v: Double = 1) {
        let key = labels.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\"\(escape($0.value))\"" }.joined(separator: ",")
        pthread_mutex_lock(&lock)
        counters[name, default: [:]][key, default: 0] += v
        pthread_mutex_unlock(&lock)
    }

    public func observe(_ name: String, _ seconds: Double) {
        pthread_mutex_lock(&lock)
        histograms[name, default: Histogram()].observe(seconds)
        pthread_mutex_unlock(&lock)
    }

    func escape(_ s: String) -> String {
        s.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"").replacingAll("\n", with: "\\n")
    }

    /// The text exposition format: this process's counters and histograms, then the store's gauges.
    public func render(store: Store?) -> String {
        var out = ""
        pthread_mutex_lock(&lock)
        let cs = counters
        let hs = histograms
        pthread_mutex_unlock(&lock)
        for name in cs.keys.sorted() {
            let (type, text) = help[name] ?? ("counter", name)
            out += "# HELP \(name) \(text)\n# TYPE \(name) \(type)\n"
            for (labels, v) in cs[name]!.sorted(by: { $0.key < $1.key }) {
                out += labels.isEmpty ? "\(name) \(fmt(v))\n" : "\(name){\(labels)} \(fmt(v))\n"
            }
        }
        for name in hs.keys.sorted() {
            let h = hs[name]!
            let (_, text) = help[name] ?? ("histogram", name)
            out += "# HELP \(name) \(text)\n# TYPE \(name) histogram\n"
            for (i, b) in Histogram.buckets.enumerated() { out += "\(name)_bucket{le=\"\(fmt(b))\"} \(fmt(h.counts[i]))\n" }
            out += "\(name)_bucket{le=\"+Inf\"} \(fmt(h.count))\n\(name)_sum \(fmt(h.sum))\n\(name)_count \(fmt(h.count))\n"
        }
        if let store { out += Self.storeGauges(store) }
        return out
    }

    static let counterHelp: [String: String] = [
        "warden_admissions_total": "Admission decisions by outcome.",
        "warden_sandbox_kills_total": "Sandboxes ended by a limit, the kernel or Warden, by reason.",
        "warden_task_attempts_total": "Finished task attempts by the state they left the task in.",
    ]

    static func storeGauges(_ store: Store) -> String {
        var out = ""
        // Durable counters, bumped by every process in the transactions that did the work.
        var byName: [String: [(String, Int64)]] = [:]
        for (key, v) in (try? store.counters()) ?? [] {
            let name = String(key.prefix(while: { $0 != "{" }))
            byName[name, default: []].append((key, v))
        }
        for name in byName.keys.sorted() {
            out += "# HELP \(name) \(counterHelp[name] ?? name)\n# TYPE \(name) counter\n"
            for (k, v) in byName[name]! { out += "\(k) \(v)\n" }
        }
        guard let rows = try? store.read({ tx in try tx.query("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state", []) }) else { return out }
        out += "# HELP warden_tasks Tasks by state.\n# TYPE warden_tasks gauge\n"
        for r in rows.sorted(by: { ($0.text("state") ?? "") < ($1.text("state") ?? "") }) {
            out += "warden_tasks{state=\"\(r.text("state") ?? "")\"} \(r.int("n") ?? 0)\n"
        }
        if let q = try? store.read({ tx in try tx.query("SELECT tenant, queued FROM usage", []) }) {
            out += "# HELP warden_queue_depth Tasks waiting (queued or awaiting approval), by tenant.\n# TYPE warden_queue_depth gauge\n"
            for r in q.sorted(by: { ($0.text("tenant") ?? "") < ($1.text("tenant") ?? "") }) where r.text("tenant") != "*" {
                out += "warden_queue_depth{tenant=\"\(r.text("tenant") ?? "")\"} \(r.int("queued") ?? 0)\n"
            }
            let total = q.first(where: { $0.text("tenant") == "*" })?.int("queued") ?? 0
            out += "# HELP warden_queue_depth_total Tasks waiting in all tenants.\n# TYPE warden_queue_depth_total gauge\nwarden_queue_depth_total \(total)\n"
        }
        if let nodes = try? store.read({ tx in
            try tx.query("SELECT n.name, n.cpu_m, n.mem_b, COALESCE(SUM(t.cpu_m), 0) AS acpu, COALESCE(SUM(t.mem_b), 0) AS amem FROM nodes n LEFT JOIN tasks t ON t.node = n.name AND t.state IN ('placed', 'running') GROUP BY n.name, n.cpu_m, n.mem_b", [])
        }) {
            out += "# HELP warden_node_capacity Node capacity (cpu in cores, memory in bytes).\n# TYPE warden_node_capacity gauge\n"
            for r in nodes {
                let n = r.text("name") ?? ""
                out += "warden_node_capacity{node=\"\(n)\",resource=\"cpu\"} \(Double(r.int("cpu_m") ?? 0) / 1000)\n"
                out += "warden_node_capacity{node=\"\(n)\",resource=\"memory\"} \(r.int("mem_b") ?? 0)\n"
            }
            out += "# HELP warden_node_allocated Resources held by placed and running tasks.\n# TYPE warden_node_allocated gauge\n"
            for r in nodes {
                let n = r.text("name") ?? ""
                out += "warden_node_allocated{node=\"\(n)\",resource=\"cpu\"} \(Double(r.int("acpu") ?? 0) / 1000)\n"
                out += "warden_node_allocated{node=\"\(n)\",resource=\"memory\"} \(r.int("amem") ?? 0)\n"
            }
        }
        return out
    }

    func fmt(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v) }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        split(separatorString: target).joined(separator: replacement)
    }
}
