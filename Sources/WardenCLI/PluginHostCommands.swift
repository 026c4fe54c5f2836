import Glibc
import WardenCore
import WardenEngine
import WardenPlugins
import WardenSandbox
import WardenStore
import WardenSystem

/// Dylib hosting: the hidden `plugin-host` worker (run inside a plugin's sandbox) and `bench dispatch`.
enum PluginHostCommands {
    static let all: [Command] = [
        Command(path: ["plugin-host"], synopsis: "warden plugin-host --library PATH [--probe]",
                abstract: "Internal: host a dylib plugin inside its sandbox (frames on fd 3).",
                discussion: "Started by Warden itself in the plugin's sandbox. With --probe it loads and checks the library once, reads the plugin's config from stdin and prints one JSON line.",
                options: [.value("--library", "PATH", "The plugin library, as the sandbox sees it."),
                          .flag("--probe", "Load, check and init once; report on stdout; exit 0 or 65.")],
                hidden: true, loadsLibraries: true, run: pluginHost),
        Command(path: ["bench", "dispatch"], synopsis: "warden bench dispatch [--n N] [--plugin DIR] [--json]",
                abstract: "Warm dylib calls (isolated worker, in-process) against a process-kind call.",
                discussion: "Times the executor path only (no store, no scheduler): N warm calls of the example C dylib through an isolated plugin-host worker, N more from parallel callers (one worker each, up to the plugin's concurrency, at most 4), N in-process, and N/50 (at least 20) sandboxed process calls (`cat` echoing the input, same profile). Every sandbox gets 1 CPU so the plugin's own CPU quota does not throttle the measurement. Prints each mode's median, p90, calls per second, and the ratios.",
                options: [.value("--n", "N", "Calls per dylib mode (default 5000)."),
                          .value("--plugin", "DIR", "The dylib plugin to call (default plugins/hello-c).")],
                loadsLibraries: true, run: benchDispatch),
    ]

    /// The binary workers run, read before any plugin is loaded in-process (see HostBinary.current).
    static let hostBinary = HostBinary.current()

    /// Gives an engine the dylib kind: the executor and the registration probe.
    static func install(_ engine: Engine) {
        let executor = DylibExecutor(host: hostBinary)
        engine.executors[.dylib] = executor
        let probe: @Sendable (PluginRecord) throws(WardenError) -> [PluginManifest.Tool] = { record throws(WardenError) in
            try DylibProbe.run(record, host: hostBinary)
        }
        engine.registry.probes.updateValue(probe, forKey: .dylib)
    }

    static func pluginHost(_ inv: Invocation) throws(WardenError) -> Int32 {
        guard let lib = inv.value("--library") else { throw WardenError.invalid("--library", "required", code: .usage) }
        if inv.has("--probe") {
            let config = try FS.readAll(fd: 0, limit: 16 << 20, what: "stdin")
            return PluginHostProcess.probe(library: lib, config: config.isEmpty ? "{}" : String(decoding: config, as: UTF8.self))
        }
        return PluginHostProcess.serve(library: lib)
    }

    // MARK: bench dispatch

    struct Mode {
        var name: String
        var n: Int
        var median: Double
        var p90: Double
        var perSecond: Double
        var callers = 1
        var json: JSONValue {
            ["name": .string(name), "n": .int(Int64(n)), "median_ms": .double(round3(median)), "p90_ms": .double(round3(p90)),
             "per_second": .double(perSecond.rounded()), "callers": .int(Int64(callers))]
        }
    }

    static func round3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }

    static func benchDispatch(_ inv: Invocation) throws(WardenError) -> Int32 {
        let host = hostBinary
        let n = Int(try Parse.int(inv, "--n", range: 10...10_000_000) ?? 5000)
        let dir = try findPlugin(inv.value("--plugin"))
        let manifestPath = "\(dir)/\(PluginManifest.fileName)"
        let json: JSONValue
        var manifest: PluginManifest
        do throws(WardenError) {
            json = try JSONValue.parse(try FS.readFile(manifestPath))
            manifest = try PluginManifest.decode(json)
        } catch { throw error.prefixed(manifestPath) }
        guard manifest.kind == .dylib, let lib = manifest.library, let tool = manifest.tools.first else {
            throw WardenError.invalid(manifestPath, "bench dispatch needs a dylib plugin with at least one tool")
        }
        guard FS.isRegularFile("\(dir)/\(lib)") else {
            throw WardenError.notFound("\(dir)/\(lib) is not built", hint: "run `make plugins`")
        }
        manifest.hosting = .isolated
        // One full CPU for every mode's sandbox: the plugin's own quota (250m for hello-c) would otherwise
        // throttle the worker and measure the quota, not the hosting cost.
        manifest.resources.cpuMillis = 1000
        let isolated = PluginRecord(manifest: manifest, manifestJSON: json, dir: dir, files: [:], digest: "bench-isolated",
                                    trusted: false, registeredAt: Time.nowMs(), tools: manifest.tools)
        var inManifest = manifest
        inManifest.hosting = .inProcess
        let inProcess = PluginRecord(manifest: inManifest, manifestJSON: json, dir: dir, files: [:], digest: "bench-in-process",
                                     trusted: true, registeredAt: Time.nowMs(), tools: manifest.tools)
        // The process kind's cheapest honest tool: `cat` echoes the input JSON back, in the same profile.
        let catJSON: JSONValue = ["name": "bench-cat", "version": "1.0.0", "kind": "process", "exec": ["cat"],
                                  "tools": [["name": .string(tool.name), "inputSchema": ["type": "object"]]],
                                  "sandbox": ["profile": .string(manifest.sandbox.profile)]]
        var catManifest = try PluginManifest.decode(catJSON)
        catManifest.resources = manifest.resources
        let process = PluginRecord(manifest: catManifest, manifestJSON: catJSON, dir: dir, files: [:], digest: "bench-process",
                                   trusted: false, registeredAt: Time.nowMs(), tools: catManifest.tools)

        let input = benchInput(tool.name)
        let dylib = DylibExecutor(host: host)
        defer { dylib.shutdown() }
        let callers = min(4, manifest.concurrency)
        let modes = [
            try measure("isolated", executor: dylib, plugin: isolated, tool: tool.name, input: input, n: n, warmup: 200),
            try measure("isolated-parallel", executor: dylib, plugin: isolated, tool: tool.name, input: input, n: n,
                        warmup: 200, callers: callers),
            try measure("in-process", executor: dylib, plugin: inProcess, tool: tool.name, input: input, n: n, warmup: 200),
            try measure("process", executor: ProcessExecutor(), plugin: process, tool: tool.name, input: input, n: max(20, n / 50), warmup: 3),
        ]
        let iso = modes[0], inp = modes[2], proc = modes[3]
        let ratios: [String: Double] = [
            "isolated_over_in_process": iso.median / max(inp.median, 1e-9),
            "process_over_isolated": proc.median / max(iso.median, 1e-9),
        ]
        if inv.json {
            Out.json(["name": "dispatch", "n": .int(Int64(n)), "median_ms": .double(round3(iso.median)),
                      "p90_ms": .double(round3(iso.p90)), "per_second": .double(iso.perSecond.rounded()),
                      "plugin": .string("\(manifest.name).\(tool.name)"),
                      "modes": .array(modes.map(\.json)),
                      "ratios": .object(ratios.mapValues { .double((($0 * 10).rounded()) / 10) })])
            return 0
        }
        Out.print("dispatch: warm calls of \(manifest.name).\(tool.name), executor path only")
        for m in modes {
            Out.print("  \(TaskCommands.pad(m.callers > 1 ? "\(m.name) ×\(m.callers)" : m.name, 21)) n=\(TaskCommands.pad(String(m.n), 8)) median \(fmt(m.median)) ms  p90 \(fmt(m.p90)) ms  \(Int(m.perSecond.rounded())) calls/s")
        }
        Out.print("  isolated / in-process: \(fmt1(ratios["isolated_over_in_process"]!))x   process / isolated: \(fmt1(ratios["process_over_isolated"]!))x")
        return 0
    }

    static func fmt(_ v: Double) -> String {
        let r = round3(v)
        var s = String(r)
        if let dot = s.firstIndex(of: ".") {
            let decimals = s.distance(from: dot, to: s.endIndex) - 1
            if decimals < 3 { s += String(repeating: "0", count: 3 - decimals) }
        }
        return s
    }

    static func fmt1(_ v: Double) -> String { String((v * 10).rounded() / 10) }

    /// An input the example tools accept.
    static func benchInput(_ tool: String) -> JSONValue {
        switch tool {
        case "sum": ["numbers": [1, 2, 3]]
        default: ["name": "bench"]
        }
    }

    /// `n` timed calls after `warmup` untimed ones, from `callers` threads at once (each its own worker when
    /// isolated); calls per second over the whole run.
    static func measure(_ name: String, executor: ToolExecutor, plugin: PluginRecord, tool: String, input: JSONValue,
                        n: Int, warmup: Int, callers: Int = 1) throws(WardenError) -> Mode
    {
        let call = ToolCall(plugin: plugin, tool: tool, input: input, taskID: "bench", attempt: 1, tenant: "default",
                            traceparent: nil, resources: plugin.manifest.resources, timeoutMs: 10_000)
        final class Run: @unchecked Sendable {
            var samples: [[Double]]
            var failure: String?
            let lock = Signal(1)
            init(_ callers: Int) { samples = Array(repeating: [], count: callers) }
        }
        let run = Run(callers)
        @Sendable func loop(_ k: Int, _ count: Int, timed: Bool) {
            let control = SandboxControl()
            var mine: [Double] = []
            mine.reserveCapacity(count)
            for _ in 0..<count {
                let t0 = Time.monotonicNs()
                let o = executor.execute(call, control: control, progress: nil)
                mine.append(Double(Time.monotonicNs() - t0) / 1e6)
                if case .failed(let why, _) = o.status {
                    run.lock.wait()
                    run.failure = why
                    run.lock.signal()
                    break
                }
            }
            if timed { run.samples[k] = mine }
        }
        func all(_ count: Int, timed: Bool) {
            let done = Signal()
            for k in 0..<callers {
                startThread {
                    loop(k, count / callers + (k < count % callers ? 1 : 0), timed: timed)
                    done.signal()
                }
            }
            for _ in 0..<callers { done.wait() }
        }
        all(warmup * callers, timed: false)
        let start = Time.monotonicNs()
        all(n, timed: true)
        let total = Double(Time.monotonicNs() - start) / 1e9
        if let why = run.failure { throw WardenError(.failure, "bench dispatch: \(name) call failed: \(why)") }
        let samples = run.samples.flatMap { $0 }.sorted()
        return Mode(name: name, n: n, median: samples[n / 2], p90: samples[min(n - 1, n * 9 / 10)], perSecond: Double(n) / total,
                    callers: callers)
    }

    /// `--plugin DIR`, else plugins/hello-c here or beside the binary's build tree.
    static func findPlugin(_ given: String?) throws(WardenError) -> String {
        if let given {
            guard let real = FS.realpath(given), FS.isDirectory(real) else {
                throw WardenError.notFound("--plugin: no such directory \(quoted(given))")
            }
            return real
        }
        var candidates = ["plugins/hello-c"]
        var dir = FS.dirname(hostBinary.path)
        for _ in 0..<6 {
            candidates.append("\(dir)/plugins/hello-c")
            dir = FS.dirname(dir)
        }
        for c in candidates where FS.isRegularFile("\(c)/\(PluginManifest.fileName)") {
            return FS.realpath(c) ?? c
        }
        throw WardenError.notFound("no plugins/hello-c directory found", hint: "pass --plugin DIR")
    }
}
