import Glibc
import Synchronization
import WardenCore
import WardenStore
import WardenSystem

/// Engine microbenchmarks (`warden bench submit|tasks`). Each compares against a baseline measured in the
/// same run, because fsync costs differ tenfold between machines of one kind.
public enum EngineBench {
    /// A throw-away process plugin whose one tool prints `{}` (echo on the sandbox PATH).
    static func noopPlugin(in dir: String) throws(WardenError) -> String {
        let p = "\(dir)/noop-plugin"
        try FS.mkdirs(p)
        try FS.writeFile("\(p)/warden-plugin.json", """
            {"name": "noop", "version": "1.0.0", "kind": "process", "exec": ["echo", "{}"],
             "tools": [{"name": "noop", "description": "Does nothing.", "inputSchema": {"type": "object"}}],
             "resources": {"cpu": "10m", "memory": "16Mi"}, "timeout": "10s", "concurrency": 10000}
            """)
        return p
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
    }

    /// Durable submits per second through full admission, `threads` clients at once: group commit versus
    /// one commit per submit, on fresh stores in the same directory.
    public static func submit(n: Int, threads: Int, storeURL: String?) throws(WardenError) -> JSONValue {
        let dir = "/tmp/warden-bench-\(getpid())"
        defer { FS.removeTree(dir) }
        func measure(groupCommit: Bool, label: String) throws(WardenError) -> (perSecond: Double, latencies: [Double], commits: Int) {
            let state = "\(dir)/\(label)"
            let store = try Store.open(url: storeURL, stateDir: state, groupCommit: groupCommit)
            let engine = Engine(store: store)
            engine.config.spans = false
            try engine.registry.register(try noopPlugin(in: state), trusted: false, actor: "bench")
            let perThread = max(1, n / threads)
            nonisolated(unsafe) var latencies = [[Double]](repeating: [], count: threads)
            let start = Time.monotonicNs()
            let failures = onThreads(threads) { t in
                var local: [Double] = []
                local.reserveCapacity(perThread)
                var failed = 0
                for i in 0..<perThread {
                    var spec = TaskSpec(plugin: "noop")
                    spec.idempotencyKey = "\(label)-\(t)-\(i)"
                    let t0 = Time.monotonicNs()
                    if (try? engine.submit(spec)) == nil { failed += 1 }
                    local.append(Double(Time.monotonicNs() - t0) / 1e6)
                }
                latencies[t] = local
                return failed
            }
            let secs = Double(Time.monotonicNs() - start) / 1e9
            let total = perThread * threads
            guard failures == 0 else { throw WardenError(.internalError, "bench submit: \(failures) submissions failed") }
            let count = try store.read { tx in
                try tx.queryOne("SELECT COUNT(*) AS n FROM tasks WHERE idempotency_key LIKE ?", [.text("\(label)-%")])?.int("n") ?? 0
            }
            guard count == Int64(total) else { throw WardenError(.internalError, "bench submit: \(count) of \(total) tasks stored") }
            let commits = (store.db as? SQLiteDatabase)?.commits ?? total
            return (Double(total) / secs, latencies.flatMap { $0 }.sorted(), commits)
        }
        let isSQLite = storeURL == nil || storeURL!.hasPrefix("sqlite")
        let run = "\(getpid())-\(Time.nowMs())"
        let grouped = try measure(groupCommit: true, label: "group-\(run)")
        guard isSQLite else {
            // PostgreSQL: every write is its own transaction and the server batches WAL flushes across them.
            return ["name": "submit", "n": .int(Int64(n)), "threads": .int(Int64(threads)), "store": "postgres",
                    "median_ms": .double(round3(percentile(grouped.latencies, 0.5))),
                    "p90_ms": .double(round3(percentile(grouped.latencies, 0.9))),
                    "per_second": .double(grouped.perSecond.rounded())]
        }
        let single = try measure(groupCommit: false, label: "single-\(run)")
        return [
            "name": "submit", "n": .int(Int64(n)), "threads": .int(Int64(threads)),
            "store": .string(isSQLite ? "sqlite" : "postgres"),
            "median_ms": .double(round3(percentile(grouped.latencies, 0.5))), "p90_ms": .double(round3(percentile(grouped.latencies, 0.9))),
            "per_second": .double(grouped.perSecond.rounded()), "commits": .int(Int64(grouped.commits)),
            "baseline": "one commit per submit",
            "baseline_per_second": .double(single.perSecond.rounded()),
            "baseline_median_ms": .double(round3(percentile(single.latencies, 0.5))),
            "ratio": .double(round3(grouped.perSecond / max(1, single.perSecond))),
        ]
    }

    /// Sandboxed no-op tasks per second through a serve (scheduler, executor slots, sandbox, durable
    /// transitions), from the first submission to the last completion.
    /// The task each benchmark run submits: by default a process plugin that echoes `{}` (one sandbox spawned
    /// per task); or any plugin directory, tool and input (a dylib in a warm sandboxed worker, say).
    public struct TaskWorkload: Sendable {
        public var pluginDir: String?
        public var tool: String?
        public var input: JSONValue = .object([:])
        public init(pluginDir: String? = nil, tool: String? = nil, input: JSONValue = .object([:])) {
            self.pluginDir = pluginDir
            self.tool = tool
            self.input = input
        }
    }

    /// `wire` connects the executors of other modules (dylib, mcp) the way the CLI does.
    public static func tasks(n: Int, slots: Int, workload: TaskWorkload = TaskWorkload(),
                             wire: (Engine, String) -> Void = { _, _ in }) throws(WardenError) -> JSONValue {
        let dir = "/tmp/warden-bench-tasks-\(getpid())"
        defer { FS.removeTree(dir) }
        let store = try Store.open(url: nil, stateDir: dir)
        let engine = Engine(store: store)
        engine.config.node = "bench"
        engine.config.instance = "bench:\(getpid())"
        engine.config.capacity = Resources(cpuMillis: 1_000_000, memoryBytes: 1 << 40)
        wire(engine, dir)
        let pluginDir: String
        if let d = workload.pluginDir { pluginDir = d } else { pluginDir = try noopPlugin(in: dir) }
        let plugin = try engine.registry.register(pluginDir, trusted: false, actor: "bench")
        var options = Server.Options()
        options.stateDir = dir
        options.slots = slots
        options.controlSocket = false
        let server = Server(engine: engine, options: options)
        try server.start()
        let start = Time.monotonicNs()
        var ids: Set<String> = []
        for i in 0..<n {
            var spec = TaskSpec(plugin: plugin.manifest.name)
            spec.tool = workload.tool
            spec.input = workload.input
            spec.idempotencyKey = "t\(i)"
            ids.insert(try engine.submit(spec).task.id)
        }
        server.wake.signal()
        // Poll the store for completion (cheap: one count query every 20 ms).
        var succeeded: Int64 = 0
        while true {
            let rows = try store.read { tx in try tx.query("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state", []) }
            succeeded = rows.first { $0.text("state") == "succeeded" }?.int("n") ?? 0
            let terminal = rows.filter { TaskState(rawValue: $0.text("state") ?? "")?.isTerminal == true }.reduce(Int64(0)) { $0 + ($1.int("n") ?? 0) }
            if terminal >= Int64(n) { break }
            if Double(Time.monotonicNs() - start) / 1e9 > 600 { break }
            usleep(20_000)
        }
        let secs = Double(Time.monotonicNs() - start) / 1e9
        server.stop()
        return ["name": "tasks", "n": .int(Int64(n)), "slots": .int(Int64(slots)), "succeeded": .int(succeeded),
                "plugin": .string("\(plugin.manifest.name) (\(plugin.manifest.kind.rawValue))"),
                "seconds": .double(round3(secs)), "per_second": .double((Double(n) / secs).rounded())]
    }

    /// Memory and scheduling-round time with a long queue: `small` tasks queued, then `n`, on a node none of
    /// them fits (so they all stay queued and every round considers them). The peer is the same process with
    /// the short queue: memory must not grow with the queue, because a round reads a bounded page of it.
    public static func queue(n: Int, small: Int = 1000, rounds: Int = 5) throws(WardenError) -> JSONValue {
        let dir = "/tmp/warden-bench-queue-\(getpid())"
        defer { FS.removeTree(dir) }
        let store = try Store.open(url: nil, stateDir: dir)
        let engine = Engine(store: store)
        engine.config.spans = false
        engine.config.node = "bench"
        engine.config.instance = "bench:\(getpid())"
        engine.config.capacity = Resources(cpuMillis: 1, memoryBytes: 1 << 20)   // fits none of the tasks
        engine.config.maxQueuedTotal = max(engine.config.maxQueuedTotal, Int64(n) + 1)
        _ = try engine.registry.register(try noopPlugin(in: dir), trusted: false, actor: "bench")
        var options = Server.Options()
        options.stateDir = dir
        options.controlSocket = false
        let server = Server(engine: engine, options: options)
        try engine.registerNode()

        func fill(to count: Int, from already: Int) -> Int {
            onThreads(16) { t in
                var failed = 0
                for i in stride(from: already + t, to: count, by: 16) {
                    var spec = TaskSpec(plugin: "noop")
                    spec.idempotencyKey = "q\(i)"
                    if (try? engine.submit(spec)) == nil { failed += 1 }
                }
                return failed
            }
        }
        func measure() throws(WardenError) -> (rssKiB: Int64, roundMs: Double) {
            var times: [Double] = []
            for _ in 0..<rounds {
                let t0 = Time.monotonicNs()
                let placed = try server.scheduleRound()
                times.append(Double(Time.monotonicNs() - t0) / 1e6)
                guard placed == 0 else { throw WardenError(.internalError, "bench queue: \(placed) tasks placed on a node that fits none") }
            }
            // Live memory, not what the allocator keeps: 16 submitting threads leave freed memory in their
            // arenas, as much or as little as the run happened to touch (CI saw 4.5 to 9 MiB of it).
            releaseFreedMemory()
            return (rssKiB(), percentile(times.sorted(), 0.5))
        }
        var failures = fill(to: small, from: 0)
        let short = try measure()
        failures += fill(to: n, from: small)
        guard failures == 0 else { throw WardenError(.internalError, "bench queue: \(failures) submissions failed") }
        let queued = try store.read { tx in try tx.queryOne("SELECT COUNT(*) AS n FROM tasks WHERE state = 'queued'", [])?.int("n") ?? 0 }
        guard queued == Int64(n) else { throw WardenError(.internalError, "bench queue: \(queued) of \(n) tasks queued") }
        let long = try measure()
        return ["name": "queue", "queued": .int(queued), "baseline_queued": .int(Int64(small)),
                "rss_mib": .double(round3(Double(long.rssKiB) / 1024)), "baseline_rss_mib": .double(round3(Double(short.rssKiB) / 1024)),
                "round_median_ms": .double(round3(long.roundMs)), "baseline_round_median_ms": .double(round3(short.roundMs)),
                "rss_ratio": .double(round3(Double(long.rssKiB) / Double(max(1, short.rssKiB))))]
    }

    /// Resident memory of this process now (VmRSS), in KiB.
    static func rssKiB() -> Int64 {
        guard let text = try? FS.readText("/proc/self/status") else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int64(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return 0
    }

    /// Runs `body(i)` for i in 0..<n on n threads at once and waits for all; returns the sum of their results
    /// (the benchmarks count failed submissions with it).
    static func onThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Int) -> Int {
        let total = Atomic<Int>(0)
        let done = Signal()
        for t in 0..<n {
            startThread {
                total.add(body(t), ordering: .relaxed)
                done.signal()
            }
        }
        for _ in 0..<n { done.wait() }
        return total.load(ordering: .relaxed)
    }

    static func round3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
}
