import Glibc
import WardenCore
import WardenSandbox
import WardenScheduler
import WardenStore
import WardenSystem

/// `warden serve` and `warden agent`: a scheduler (the leader places queued tasks on nodes) and an executor
/// (runs the tasks placed on this node in worker threads, heartbeats its leases). With SQLite there is one
/// serve, both roles. With PostgreSQL every serve competes for the leader's advisory lock; agents only execute.
public final class Server: @unchecked Sendable {
    public struct Options: Sendable {
        public var schedule = true
        public var execute = true
        public var slots = 2 * max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        public var strategy = Strategy.binpack
        public var stateDir = "./.warden"
        public var controlSocket = true
        public var otlpFile: String?
        public var metricsAddr: String?
        /// Seconds running tasks get to finish on SIGTERM before they are killed and handed back.
        public var graceMs: Int64 = 10_000
        public var roundSize = 512
        public init() {}
    }

    public let engine: Engine
    public let options: Options
    let wake = Signal()
    let work = Signal()
    private var lock = pthread_mutex_t()
    private var pending: [TaskRecord] = []       // placed on this node, waiting for a worker
    private var dispatched: Set<String> = []      // ids handed to a worker and not finished
    private var waited: [String: Int] = [:]       // scheduling rounds a queued task has waited
    private var lastExplanation: [String: String] = [:]
    private var reservations: [String: String] = [:]  // task → node held for it (the placer is rebuilt each round)
    private var stopping = false
    private var busy = 0
    var control: ControlServer?
    public var leader: LeaderElection?
    public var log: (@Sendable (String) -> Void)?

    public init(engine: Engine, options: Options) {
        self.engine = engine
        self.options = options
        pthread_mutex_init(&lock, nil)
    }

    var isStopping: Bool {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return stopping
    }

    /// Starts every thread and returns. `stop()` shuts down cleanly.
    public func start() throws(WardenError) {
        let swept = Sandbox.shared.sweep()
        if swept > 0 { log?("removed \(swept) cgroup(s) left by a crashed warden") }
        if options.execute {
            try engine.registerNode()
            // Leases held by an earlier process on this node died with it: apply the lease rules now, not in 5 s.
            let recovered = recoverOwnNode()
            if recovered > 0 { log?("recovered \(recovered) task(s) held by the previous process on node \(engine.config.node)") }
        }

        if options.controlSocket {
            let c = try ControlServer(stateDir: options.stateDir)
            c.onWake = { [weak self] in self?.wake.signal() }
            c.onCancel = { [weak self] id in self?.engine.killLocal(id, why: "cancel") }
            c.metricsText = { [weak self] in self?.engine.metrics.render(store: self?.engine.store) ?? "" }
            c.start()
            control = c
        }
        let previousProgress = engine.onProgress
        engine.onProgress = { [weak self] id, fraction, message in
            previousProgress?(id, fraction, message)
            self?.control?.progress(id, fraction, message)
        }
        let previous = engine.onChange
        engine.onChange = { [weak self] id in
            previous?(id)
            self?.control?.changed(id)
            self?.wake.signal()
        }
        // Other machines' submissions and placements arrive as NOTIFY on PostgreSQL.
        engine.store.db.listen("warden_wake") { [weak self] id in
            self?.wake.signal()
            self?.work.signal()
            self?.control?.changed(id)
        }
        startThread { [self] in heartbeatLoop() }
        if options.schedule { startThread { [self] in scheduleLoop() } }
        if options.execute {
            for _ in 0..<options.slots { startThread { [self] in workerLoop() } }
            startThread { [self] in claimLoop() }
        }
        if let f = options.otlpFile { startThread { [self] in exportLoop(f) } }
        if let addr = options.metricsAddr { try MetricsHTTP.start(addr: addr) { [weak self] in self?.engine.metrics.render(store: self?.engine.store) ?? "" } }
    }

    /// Tasks placed on or running on this node under an older instance go through the lease rules at once.
    func recoverOwnNode() -> Int {
        let store = engine.store
        let node = engine.config.node
        let me = engine.config.instance
        let stale = (try? store.read { tx in
            try tx.query("SELECT \(Store.taskColumns) FROM tasks WHERE node = ? AND state IN ('placed', 'running') AND (lease_owner IS NULL OR lease_owner <> ?)",
                         [.text(node), .text(me)]).map(Store.decodeTask)
        }) ?? []
        var n = 0
        for t in stale {
            _ = try? store.write { tx in try engine.handleLostLease(tx, t, now: Time.nowMs()) }
            engine.notify(t.id)
            n += 1
        }
        return n
    }

    /// Stops placing, lets running tasks finish for the grace period, kills and hands back the rest.
    public func stop() {
        pthread_mutex_lock(&lock)
        stopping = true
        let queuedHere = pending
        pending.removeAll()
        pthread_mutex_unlock(&lock)
        wake.signal()
        let store = engine.store
        // Placed here but not started: hand back to the queue.
        for t in queuedHere {
            _ = try? store.write { tx in
                try store.transition(tx, t.id, to: .queued, expect: [.placed], actor: engine.config.instance,
                                     reason: "handed back: \(engine.config.node) shut down",
                                     set: ["lease_owner": .null, "lease_expires": .null, "node": .null,
                                           "attempts": .int(Int64(max(0, t.attempts - 1)))])
                try engine.releaseLocks(tx, t.id)
            }
        }
        let deadline = Time.monotonicNs() + UInt64(options.graceMs) * 1_000_000
        while Time.monotonicNs() < deadline {
            pthread_mutex_lock(&lock)
            let left = busy
            pthread_mutex_unlock(&lock)
            if left == 0 { break }
            usleep(20_000)
        }
        for id in engine.runningIDs { engine.killLocal(id, why: "shutdown") }
        while true {
            pthread_mutex_lock(&lock)
            let left = busy
            pthread_mutex_unlock(&lock)
            if left == 0 { break }
            usleep(10_000)
        }
        _ = try? store.write { tx in
            _ = try tx.execute("UPDATE nodes SET last_heartbeat = 0 WHERE name = ? AND owner = ?", [.text(engine.config.node), .text(engine.config.instance)])
        }
        leader?.resign()
        control?.stop()
    }

    // MARK: loops

    func heartbeatLoop() {
        var lastSweep: UInt64 = 0
        var lastBeat = Time.monotonicNs()
        while !isStopping {
            let beat: Bool? = options.execute ? try? engine.store.heartbeat(node: engine.config.node, owner: engine.config.instance, leaseMs: engine.config.leaseMs) : true
            if beat != nil { lastBeat = Time.monotonicNs() }
            if beat == nil && Time.monotonicNs() - lastBeat > UInt64(engine.config.leaseMs) * 1_000_000 {
                // Cut off from the store past our lease: our tasks are being re-run elsewhere. Stop them here.
                for id in engine.runningIDs { engine.killLocal(id, why: "lease lost: store unreachable") }
            }
            let alive = beat ?? true
            if !alive {
                // Another process registered this node name: our leases are no longer ours. Stop executing.
                log?("node \(engine.config.node) was taken over by another process; stopping")
                for id in engine.runningIDs { engine.killLocal(id, why: "node taken over") }
            }
            let now = Time.monotonicNs()
            if isLeader && now - lastSweep > 500_000_000 {
                if engine.sweep() > 0 { wake.signal() }
                lastSweep = now
            }
            _ = wake
            usleep(useconds_t(engine.config.heartbeatMs * 1000))
        }
    }

    var isLeader: Bool { options.schedule && (leader?.isLeader ?? true) }

    func scheduleLoop() {
        while !isStopping {
            guard isLeader else {
                _ = leader?.tryAcquire()
                _ = wake.wait(timeoutMs: 500)
                continue
            }
            engine.advanceWorkflows()
            let placed = (try? scheduleRound()) ?? 0
            if placed > 0 { work.signal() }
            // More may be placeable at once after a full round; otherwise sleep until woken or the next backoff.
            if placed >= options.roundSize { continue }
            _ = wake.wait(timeoutMs: nextWakeMs())
        }
    }

    /// Milliseconds until the earliest backoff ends (capped), so retries start on time without polling.
    func nextWakeMs() -> Int64 {
        let now = Time.nowMs()
        let next = (try? engine.store.read { tx in
            try tx.queryOne("SELECT MIN(not_before) AS t FROM tasks WHERE state = 'queued' AND not_before > ?", [.int(now)])?.int("t")
        }) ?? nil
        guard let next else { return 1000 }
        return max(1, min(1000, next - now))
    }

    /// One scheduling round: queued tasks in fair order (dominant-resource fairness between tenants, then
    /// priority, then age), each placed with the shared Placer; every placement of the round in one write.
    @discardableResult
    func scheduleRound() throws(WardenError) -> Int {
        let engine = self.engine
        let store = engine.store
        let now = Time.nowMs()
        let roundStart = Time.monotonicNs()
        let localNode = engine.config.node
        let roundSize = options.roundSize
        let strategy = options.strategy
        var placedCount = 0
        var placedHere: [TaskRecord] = []
        var explanations: [(String, String)] = []
        var waitedNow: [String: Int] = [:]
        pthread_mutex_lock(&lock)
        let waitedBefore = waited
        let heldBefore = reservations
        var heldNow: [String: String] = [:]
        pthread_mutex_unlock(&lock)
        try store.write { tx in
            let candidates = try tx.query("SELECT \(Store.taskColumns) FROM tasks WHERE state = 'queued' AND not_before <= ? ORDER BY priority DESC, created_at, id LIMIT ?",
                                          [.int(now), .int(Int64(roundSize * 4))]).map(Store.decodeTask)
            guard !candidates.isEmpty else { return }
            let placer = try engine.loadPlacer(tx, strategy: strategy, now: now)
            let nodes = try store.nodes(tx)
            let owners = Dictionary(nodes.map { ($0.name, $0.owner) }, uniquingKeysWith: { a, _ in a })
            var total = Resources.zero
            for n in nodes where n.ready(now: now, staleMs: engine.staleMs) { total = total + (n.capacity - n.reserved) }
            var share = try Self.tenantShares(tx, total: total)
            // Tenants take turns by dominant share: the one using least of its most-used resource goes first.
            var byTenant: [String: [TaskRecord]] = [:]
            for t in candidates { byTenant[t.tenant, default: []].append(t) }
            var round: [TaskRecord] = []
            while round.count < candidates.count {
                guard let tenant = byTenant.filter({ !$0.value.isEmpty }).min(by: { a, b in
                    let sa = share[a.key] ?? 0, sb = share[b.key] ?? 0
                    return sa != sb ? sa < sb : a.key < b.key
                })?.key else { break }
                let t = byTenant[tenant]!.removeFirst()
                round.append(t)
                share[tenant, default: 0] += Self.dominantShare(t.resources, total: total)
            }
            var pendingTasks: [PendingTask] = []
            var byID: [String: TaskRecord] = [:]
            for t in round {
                if let b = try engine.blocker(tx, t, now: now) {
                    explanations.append((t.id, b.reason))
                    continue
                }
                var d = Engine.demand(t)
                // The round is already in fair order (tenants by dominant share; within a tenant, priority then
                // age): encode that order in the priority the placer sorts by. The task's own priority must not
                // be added on top, or a tenant could jump ahead of the fair share by raising it.
                d.priority = -pendingTasks.count
                pendingTasks.append(PendingTask(demand: d, waitedRounds: waitedBefore[t.id] ?? 0))
                byID[t.id] = t
            }
            // A starving task keeps the node held for it across rounds, though the placer is rebuilt each round.
            for p in pendingTasks { if let node = heldBefore[p.demand.id] { try? placer.hold(p.demand, on: node) } }
            let outcome = placer.scheduleRound(pendingTasks)
            heldNow = outcome.reservations
            // Per-plugin concurrency counts this round's placements too.
            var active: [String: Int64] = [:]
            for d in outcome.placed {
                guard placedCount < roundSize, let t = byID[d.task], let node = d.node else { continue }
                let key = "\(t.plugin)@\(t.version)"
                if let limit = (try? engine.plugin(t.plugin, version: t.version))??.manifest.concurrency {
                    if active[key] == nil {
                        active[key] = try tx.queryOne("SELECT COUNT(*) AS n FROM tasks WHERE plugin = ? AND version = ? AND state IN ('placed', 'running')",
                                                      [.text(t.plugin), .text(t.version)])?.int("n") ?? 0
                    }
                    if active[key]! >= Int64(limit) {
                        placer.release(taskID: t.id)
                        explanations.append((t.id, "plugin \(t.plugin) is at its concurrency limit (\(limit) running)"))
                        continue
                    }
                }
                let owner = owners[node] ?? nil
                guard let p = try engine.place(tx, t, node: node, owner: owner, explanation: d.explanation, now: now) else { continue }
                if engine.config.spans {
                    try Tracer.insert(tx, name: "schedule", task: p, startNs: roundStart, endNs: Time.monotonicNs(), attributes: ["node": node])
                }
                placedCount += 1
                active[key, default: 0] += 1
                if node == localNode { placedHere.append(p) }
            }
            for d in outcome.waiting {
                explanations.append((d.task, d.explanation))
                waitedNow[d.task] = (waitedBefore[d.task] ?? 0) + 1
            }
            // Keep explanations current for `status`, without rewriting unchanged ones.
            pthread_mutex_lock(&lock)
            let changed = explanations.filter { lastExplanation[$0.0] != $0.1 }
            pthread_mutex_unlock(&lock)
            for (id, e) in changed {
                try tx.execute("UPDATE tasks SET explanation = ? WHERE id = ? AND state = 'queued'", [.text(e), .text(id)])
            }
        }
        pthread_mutex_lock(&lock)
        waited = waitedNow
        reservations = heldNow
        for (id, e) in explanations { lastExplanation[id] = e }
        if lastExplanation.count > 100_000 { lastExplanation.removeAll() }
        pthread_mutex_unlock(&lock)
        if !placedHere.isEmpty { enqueue(placedHere) }
        for t in placedHere { engine.notify(t.id) }
        return placedCount
    }

    static func dominantShare(_ r: Resources, total: Resources) -> Double {
        var s = 0.0
        if total.cpuMillis > 0 { s = max(s, Double(r.cpuMillis) / Double(total.cpuMillis)) }
        if total.memoryBytes > 0 { s = max(s, Double(r.memoryBytes) / Double(total.memoryBytes)) }
        for (k, v) in r.extended where (total.extended[k] ?? 0) > 0 { s = max(s, Double(v) / Double(total.extended[k]!)) }
        return s
    }

    /// Each tenant's dominant share of the cluster from its placed and running tasks.
    static func tenantShares(_ tx: SQLExecutor, total: Resources) throws -> [String: Double] {
        var out: [String: Double] = [:]
        for r in try tx.query("SELECT tenant, SUM(cpu_m) AS c, SUM(mem_b) AS m FROM tasks WHERE state IN ('placed', 'running') GROUP BY tenant", []) {
            out[r.text("tenant") ?? ""] = dominantShare(Resources(cpuMillis: r.int("c") ?? 0, memoryBytes: r.int("m") ?? 0), total: total)
        }
        return out
    }

    func enqueue(_ tasks: [TaskRecord]) {
        pthread_mutex_lock(&lock)
        for t in tasks where !dispatched.contains(t.id) {
            dispatched.insert(t.id)
            pending.append(t)
        }
        pthread_mutex_unlock(&lock)
        for _ in tasks { work.signal() }
    }

    /// Picks up tasks placed on this node by another scheduler (the leader, or before a restart).
    func claimLoop() {
        let store = engine.store
        while !isStopping {
            let mine = (try? store.read { tx in
                try tx.query("SELECT \(Store.taskColumns) FROM tasks WHERE node = ? AND state = 'placed' AND lease_owner = ?",
                             [.text(engine.config.node), .text(engine.config.instance)]).map(Store.decodeTask)
            }) ?? []
            if !mine.isEmpty { enqueue(mine) }
            _ = work.wait(timeoutMs: options.schedule ? 1000 : 200)
            work.signal()   // pass the wake on to a worker
            usleep(options.schedule ? 200_000 : 50_000)
        }
    }

    func workerLoop() {
        while true {
            var next: TaskRecord?
            pthread_mutex_lock(&lock)
            if !stopping, !pending.isEmpty {
                next = pending.removeFirst()
                busy += 1
            }
            let done = stopping
            pthread_mutex_unlock(&lock)
            if done && next == nil { return }
            guard let t = next else {
                _ = work.wait(timeoutMs: 500)
                continue
            }
            engine.execute(t)
            pthread_mutex_lock(&lock)
            busy -= 1
            dispatched.remove(t.id)
            pthread_mutex_unlock(&lock)
            wake.signal()
        }
    }

    func exportLoop(_ path: String) {
        var last: Int64 = (try? engine.store.read { tx in try tx.queryOne("SELECT MAX(id) AS m FROM spans", [])?.int("m") ?? 0 }) ?? 0
        while !isStopping {
            if let (doc, next) = try? Tracer.otlp(engine.store, after: last), let doc {
                let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
                if fd >= 0 {
                    try? FS.writeAll(fd: fd, Array((doc.canonical + "\n").utf8))
                    close(fd)
                }
                last = next
                continue
            }
            usleep(200_000)
        }
    }
}

