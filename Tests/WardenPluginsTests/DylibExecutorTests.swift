import Foundation
import Testing
import WardenCore
import WardenSandbox
import WardenStore
@testable import WardenPlugins

/// The executor against real sandboxed workers: the workers run the `warden-dynamic` binary next to
/// WARDEN_BIN (the static `warden` cannot dlopen), else the debug build made with these tests.
enum WorkerHost {
    static let binary: String? = {
        if let b = ProcessInfo.processInfo.environment["WARDEN_BIN"] {
            let dynamic = (b as NSString).deletingLastPathComponent + "/warden-dynamic"
            if FileManager.default.isExecutableFile(atPath: dynamic) { return dynamic }
        }
        let debug = "\(BuiltPlugins.repo)/.build/debug/warden-dynamic"
        return FileManager.default.isExecutableFile(atPath: debug) ? debug : nil
    }()

    static let ready: Bool = {
        let max = (try? String(contentsOfFile: "/proc/sys/user/max_user_namespaces", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return binary != nil && (Int(max ?? "0") ?? 0) > 0
    }()

    /// This process's own non-system libraries (the toolchain's Swift runtime, which a debug warden needs).
    static func executor() throws -> DylibExecutor {
        let b = try #require(binary)
        let e = DylibExecutor(host: HostBinary(path: b, libraryDirs: HostBinary.current().libraryDirs))
        e.graceMs = 200
        return e
    }

    static func record(_ rel: String, concurrency: Int? = nil) throws -> PluginRecord {
        let dir = try BuiltPlugins.path(rel)
        let json = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/warden-plugin.json"))))
        var m = try PluginManifest.decode(json)
        if let concurrency { m.concurrency = concurrency }
        return PluginRecord(manifest: m, manifestJSON: json, dir: dir, files: [:], digest: "test-\(rel)-\(concurrency ?? 0)",
                            trusted: false, registeredAt: 0, tools: m.tools)
    }

    static func call(_ p: PluginRecord, _ tool: String, _ input: JSONValue = [:], timeoutMs: Int64 = 10_000) -> ToolCall {
        ToolCall(plugin: p, tool: tool, input: input, taskID: "t", attempt: 1, tenant: "default", traceparent: nil,
                 resources: p.manifest.resources, timeoutMs: timeoutMs)
    }
}

final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(Double, String)] = []
    func add(_ f: Double, _ m: String) { lock.withLock { items.append((f, m)) } }
    var all: [(Double, String)] { lock.withLock { items } }
}

@Suite(.serialized, .enabled(if: WorkerHost.ready, "needs user namespaces and a built warden binary"))
struct DylibExecutorTests {
    @Test(.timeLimit(.minutes(1))) func oneWarmWorkerServesManyCalls() throws {
        let e = try WorkerHost.executor()
        defer { e.shutdown() }
        let p = try WorkerHost.record("hello-c")
        for i in 0..<50 {
            let o = e.execute(WorkerHost.call(p, "greet", ["name": .string("n\(i)")]), control: SandboxControl(), progress: nil)
            #expect(o.status == .succeeded(["greeting": .string("Hello, n\(i)!")]))
        }
        #expect(e.workerCount(p) == 1)
    }

    @Test(.timeLimit(.minutes(1))) func parallelCallsStayWithinTheConcurrencyLimit() throws {
        let e = try WorkerHost.executor()
        defer { e.shutdown() }
        let p = try WorkerHost.record("test/hostile", concurrency: 2)
        let start = Date()
        let outcomes = Collected()
        DispatchQueue.concurrentPerform(iterations: 6) { _ in
            let o = e.execute(WorkerHost.call(p, "sleep", ["ms": 300]), control: SandboxControl(), progress: nil)
            outcomes.add(o.succeeded ? 1 : 0, "\(o.status)")
        }
        #expect(outcomes.all.allSatisfy { $0.0 == 1 }, "\(outcomes.all.map(\.1))")
        // Six 300 ms calls through at most two workers take at least three rounds.
        #expect(Date().timeIntervalSince(start) >= 0.9)
        #expect(e.workerCount(p) == 2)
    }

    @Test(.timeLimit(.minutes(1))) func progressLogsAndStderrAreRelayed() throws {
        let e = try WorkerHost.executor()
        defer { e.shutdown() }
        let p = try WorkerHost.record("test/hostile")
        let progress = Collected()
        let o = e.execute(WorkerHost.call(p, "chatty"), control: SandboxControl()) { f, m in progress.add(f, m) }
        #expect(o.status == .succeeded(["chatted": true]))
        #expect(progress.all.map(\.0) == [0.5] && progress.all.map(\.1) == ["halfway"])
        let log = String(decoding: o.stderr, as: UTF8.self)
        #expect(log.contains("[warn] a log line through the host") && log.contains("hostile: a line on stderr"), "\(log)")
    }

    @Test(.timeLimit(.minutes(1))) func cancelStopsACooperativeCallAndKeepsItsWorker() throws {
        let e = try WorkerHost.executor()
        defer { e.shutdown() }
        let p = try WorkerHost.record("test/hostile")
        let control = SandboxControl()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { control.cancel() }
        let start = Date()
        let o = e.execute(WorkerHost.call(p, "patient", timeoutMs: 30_000), control: control, progress: nil)
        #expect(o.status == .failed(reason: "canceled", retryable: false))
        #expect(Date().timeIntervalSince(start) < 1)
        #expect(e.workerCount(p) == 1)   // it returned when cancelled() said so: no kill needed
        #expect(e.execute(WorkerHost.call(p, "ok"), control: SandboxControl(), progress: nil).succeeded)
    }

    @Test(.timeLimit(.minutes(1))) func cancelKillsACallThatIgnoresIt() throws {
        let e = try WorkerHost.executor()
        defer { e.shutdown() }
        let p = try WorkerHost.record("test/hostile")
        let control = SandboxControl()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { control.cancel() }
        let start = Date()
        let o = e.execute(WorkerHost.call(p, "loop", timeoutMs: 30_000), control: control, progress: nil)
        #expect(o.status == .failed(reason: "canceled", retryable: false))
        #expect(Date().timeIntervalSince(start) < 1.5)
        #expect(e.workerCount(p) == 0)   // killed, not kept
        #expect(e.execute(WorkerHost.call(p, "ok"), control: SandboxControl(), progress: nil).succeeded)
    }

    @Test(.timeLimit(.minutes(1))) func anOutputUnderTheCapIsNeverGarbageHoweverItEscapes() throws {
        // 7 MiB of \" pairs: within the 8 MiB cap, about 14 MiB as a JSON string on the channel.
        let e = try WorkerHost.executor()
        defer { e.shutdown() }
        let p = try WorkerHost.record("test/hostile")
        let o = e.execute(WorkerHost.call(p, "bigquotes"), control: SandboxControl(), progress: nil)
        guard case .succeeded(.string(let s)) = o.status else {
            Issue.record("\(o.status)")
            return
        }
        #expect(s.utf8.count == (7 << 20) / 2 - 1 && s.utf8.allSatisfy { $0 == UInt8(ascii: "\"") })
        #expect(e.workerCount(p) == 1)
    }

    @Test(.timeLimit(.minutes(1))) func aCrashFailsOnlyThatCallAndANewWorkerTakesOver() throws {
        let e = try WorkerHost.executor()
        defer { e.shutdown() }
        let p = try WorkerHost.record("test/hostile")
        #expect(e.execute(WorkerHost.call(p, "ok"), control: SandboxControl(), progress: nil).succeeded)
        let crash = e.execute(WorkerHost.call(p, "segfault"), control: SandboxControl(), progress: nil)
        guard case .failed(let why, let retryable) = crash.status else {
            Issue.record("a segfault succeeded")
            return
        }
        #expect(why.contains("SIGSEGV") && retryable)
        #expect(e.workerCount(p) == 0)
        #expect(e.execute(WorkerHost.call(p, "ok"), control: SandboxControl(), progress: nil).succeeded)
        #expect(e.workerCount(p) == 1)
    }
}
