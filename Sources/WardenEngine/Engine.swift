import Glibc
import WardenCore
import WardenPlugins
import WardenSandbox
import WardenScheduler
import WardenStore
import WardenSystem

/// The control plane's core: admission, placement, execution of attempts, retries, cancellation. `serve`
/// drives it with a scheduling loop; `run` without a daemon drives one task through it in-process. Every
/// state change is one durable write through the store.
public final class Engine: @unchecked Sendable {
    public struct Config: Sendable {
        public var node = "local"
        /// This process's claim on its leases (`node:pid:start`), so a restarted serve knows old leases are dead.
        public var instance = "local:\(getpid()):\(Time.nowMs())"
        public var capacity = Engine.machineCapacity()
        public var labels: [String: String] = [:]
        public var leaseMs: Int64 = 5000
        public var heartbeatMs: Int64 = 1000
        /// The whole system's queue bound (backpressure): beyond it every submission is refused with 69.
        public var maxQueuedTotal: Int64 = 1_000_000
        /// Record spans (admit, queue, place, spawn, run) in the store, for OTLP export.
        public var spans = true
        public init() {}
    }

    public let store: Store
    public let registry: Registry
    public var config: Config
    public var executors: [PluginManifest.Kind: ToolExecutor] = [:]
    public let metrics = Metrics()
    /// Called after each committed change a waiter might care about (serve wakes clients).
    public var onChange: (@Sendable (String) -> Void)?
    /// Progress reported by a running tool: task id, fraction, message.
    public var onProgress: (@Sendable (String, Double, String) -> Void)?
    /// Gives agent plugins their MCP socket (set by the MCP module).
    public var agentGateway: AgentGateway?

    private var lock = pthread_mutex_t()
    private var running: [String: SandboxControl] = [:]
    private var policyCache: (loadedAt: UInt64, policy: Policy?)?
    private var pinCache: [String: UInt64] = [:]
    private var pluginCache: (generation: Int64, byName: [String: [PluginRecord]])?
    /// The plugin generation last read from the store, and when (monotonic ns).
    private var generationSeen: (generation: Int64, at: UInt64)?

    public init(store: Store, config: Config = Config()) {
        self.store = store
        self.registry = Registry(store: store)
        self.config = config
        pthread_mutex_init(&lock, nil)
        executors[.process] = ProcessExecutor()
    }

    /// The machine's CPUs and memory, as this node's capacity when no flags say otherwise.
    public static func machineCapacity() -> Resources {
        let cpus = Int64(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let pages = Int64(sysconf(Int32(_SC_PHYS_PAGES)))
        let pageSize = Int64(sysconf(Int32(_SC_PAGESIZE)))
        return Resources(cpuMillis: max(1, cpus) * 1000, memoryBytes: pages * pageSize)
    }

    // MARK: policy

    /// The current policy, re-read at most every 500 ms (policy set is rare; admission is hot).
    public func policy() throws(WardenError) -> Policy? {
        let now = Time.monotonicNs()
        pthread_mutex_lock(&lock)
        if let c = policyCache, now - c.loadedAt < 500_000_000 {
            pthread_mutex_unlock(&lock)
            return c.policy
        }
        pthread_mutex_unlock(&lock)
        let p = try store.policy()
        pthread_mutex_lock(&lock)
        policyCache = (now, p)
        pthread_mutex_unlock(&lock)
        return p
    }

    public func invalidatePolicy() {
        pthread_mutex_lock(&lock)
        policyCache = nil
        pthread_mutex_unlock(&lock)
    }

    // MARK: running sandboxes

    func register(_ id: String, _ control: SandboxControl) {
        pthread_mutex_lock(&lock)
        running[id] = control
        pthread_mutex_unlock(&lock)
    }

    func unregister(_ id: String) {
        pthread_mutex_lock(&lock)
        running[id] = nil
        pthread_mutex_unlock(&lock)
    }

    /// Kills the sandbox of a task running in this process, if any.
    @discardableResult
    public func killLocal(_ id: String, why: String) -> Bool {
        pthread_mutex_lock(&lock)
        let c = running[id]
        pthread_mutex_unlock(&lock)
        c?.cancel(why)
        return c != nil
    }

    public var runningIDs: [String] {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return Array(running.keys)
    }

    /// `name@version` (or the newest), from a per-process cache of decoded records that is dropped whenever
    /// the store's plugin generation changes (one cheap read per call instead of decoding manifests).
    public func plugin(_ name: String, version: String? = nil) throws(WardenError) -> PluginRecord? {
        try plugin(name, version: version, generationMaxAgeNs: 0).record
    }

    /// The same, trusting a generation read up to `generationMaxAgeNs` ago; returns the generation used, so
    /// a caller that skipped the read can check it inside its own write (admission does).
    func plugin(_ name: String, version: String?, generationMaxAgeNs: UInt64) throws(WardenError) -> (record: PluginRecord?, generation: Int64) {
        let now = Time.monotonicNs()
        pthread_mutex_lock(&lock)
        let seen = generationSeen
        pthread_mutex_unlock(&lock)
        let gen: Int64
        if let seen, now &- seen.at <= generationMaxAgeNs {
            gen = seen.generation
        } else {
            gen = try store.pluginGeneration()
            pthread_mutex_lock(&lock)
            generationSeen = (gen, now)
            pthread_mutex_unlock(&lock)
        }
        return (try cachedPlugin(name, version: version, generation: gen), gen)
    }

    private func cachedPlugin(_ name: String, version: String?, generation gen: Int64) throws(WardenError) -> PluginRecord? {
        pthread_mutex_lock(&lock)
        if pluginCache?.generation != gen { pluginCache = (gen, [:]) }
        let cached = pluginCache?.byName[name]
        pthread_mutex_unlock(&lock)
        let all: [PluginRecord]
        if let cached { all = cached } else {
            all = try store.plugins(name: name)
            pthread_mutex_lock(&lock)
            if pluginCache?.generation == gen { pluginCache?.byName[name] = all }
            pthread_mutex_unlock(&lock)
        }
        if let version { return all.first { $0.version == version } }
        return all.last
    }

    /// The plugin record a task runs, checked against its pinned digest (cached per process for 2 s).
    func pinnedPlugin(_ name: String, _ version: String) throws(WardenError) -> PluginRecord {
        guard let p = try plugin(name, version: version) else {
            throw WardenError.notFound("plugin \(name)@\(version) is no longer registered")
        }
        let key = "\(p.name)@\(p.version)#\(p.digest)"
        let now = Time.monotonicNs()
        pthread_mutex_lock(&lock)
        let checked = pinCache[key]
        pthread_mutex_unlock(&lock)
        if checked == nil || now - checked! > 2_000_000_000 {
            try registry.verifyPinned(p)
            pthread_mutex_lock(&lock)
            pinCache[key] = now
            pthread_mutex_unlock(&lock)
        }
        return p
    }

    /// Tells whoever waits on `id` (and, on PostgreSQL, every other process) that something changed.
    func notify(_ id: String) {
        onChange?(id)
        if store.db.dialect == .postgres { store.db.notify("warden_wake", id) }
    }
}

/// Agent plugins get an MCP socket inside their sandbox (DESIGN §5a); the MCP module implements this.
public protocol AgentGateway: AnyObject, Sendable {
    /// Adds the socket (bind + WARDEN_SOCKET) to the call of an agent task.
    func prepare(_ call: inout ToolCall, task: TaskRecord)
    /// The agent task's attempt ended: close its socket.
    func finished(_ taskID: String)
}
