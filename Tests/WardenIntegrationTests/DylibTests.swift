import Foundation
import Testing

/// Dylib plugins through the command line: registration probes the library in a sandbox first, calls run in
/// warm sandboxed plugin-host workers, and a hostile plugin fails only its own task, with a reason.
@Suite(.serialized, .enabled(if: Host.sandboxReady, "needs user namespaces for the plugin sandbox"))
struct DylibTests {
    /// `make -C plugins` once: the examples and the test-only libraries.
    static let built: String? = {
        let p = Process()
        // Under a lock: test processes running in parallel must not write the same library at once.
        p.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        p.arguments = ["/tmp/warden-plugins-make.lock", "make", "-s", "-C", "\(Warden.repo)/plugins"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        do { try p.run() } catch { return "make: \(error)" }
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return p.terminationStatus == 0 ? nil : "make -C plugins failed: \(text)"
    }()

    func plugin(_ rel: String) throws -> String {
        if let problem = Self.built { throw TestFailure(problem) }
        return "\(Warden.repo)/plugins/\(rel)"
    }

    func task(_ r: Warden.Result) throws -> [String: Any] {
        guard let t = r.json as? [String: Any] else { throw TestFailure("not a task: \(r.stdout) \(r.stderr)") }
        return t
    }

    @Test(.timeLimit(.minutes(1))) func theExamplesRegisterAndAnswer() throws {
        let state = try Warden.freshState()
        var r = try Warden.run(["plugin", "register", try plugin("hello-c")], state: state)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("registered hello-c@1.0.0 (dylib, 2 tools: greet, sum)"))
        r = try Warden.run(["run", "hello-c.greet", "--input", #"{"name": "Ada"}"#, "--json"], state: state)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try task(r)["result"] as? [String: String] == ["greeting": "Hello, Ada!"])
        r = try Warden.run(["run", "hello-c.sum", "--input", #"{"numbers": [1, 2, 3.5]}"#, "--json"], state: state)
        #expect((try task(r)["result"] as? [String: Double]) == ["sum": 6.5, "count": 3])

        r = try Warden.run(["plugin", "register", try plugin("hello-swift")], state: state)
        #expect(r.status == 0, "\(r.stderr)")
        r = try Warden.run(["run", "hello-swift.reverse", "--input", #"{"text": "héllo"}"#, "--json"], state: state)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try task(r)["result"] as? [String: String] == ["reversed": "olléh"])

        r = try Warden.run(["plugin", "show", "hello-c", "--json"], state: state)
        #expect((r.json as? [String: Any])?["hosting"] as? String == "isolated")
        #expect((r.json as? [String: Any])?["kind"] as? String == "dylib")
    }

    @Test(.timeLimit(.minutes(1)), arguments: [
        ("test/abi0", "$.library: \"lib/libabi0.so\" has ABI version 0, but this Warden speaks version 1"),
        ("test/abi2", "$.library: \"lib/libabi2.so\" has ABI version 2, but this Warden speaks version 1"),
        ("test/noentry", "$.library: \"lib/libnoentry.so\" does not export warden_plugin_entry"),
        ("test/ctorcrash", "$.library: \"lib/libctorcrash.so\" crashed while loading (signal 11, SIGSEGV)"),
        ("test/ctorabort", "$.library: \"lib/libctorabort.so\" crashed while loading (signal 6, SIGABRT)"),
        ("test/unresolved", "undefined symbol: warden_test_symbol_nobody_defines"),
        ("test/initfail", "$.library: \"lib/libinitfail.so\" failed to initialise: init returned 1"),
        ("test/liar", "$.tools[1].name: the library \"lib/libliar.so\" does not implement a tool \"delete_everything\" (it offers: ping)"),
    ])
    func aBadLibraryIsRefusedAndNothingIsStored(dir: String, reason: String) throws {
        let state = try Warden.freshState()
        let before = try Warden.run(["audit", "--json"], state: state).stdout
        let r = try Warden.run(["plugin", "register", try plugin(dir)], state: state)
        #expect(r.status == 65, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains(reason), "\(r.stderr)")
        #expect(r.stderr.hasPrefix("warden: ") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(try Warden.run(["audit", "--json"], state: state).stdout == before)
        let name = "test-" + dir.split(separator: "/").last!
        #expect(try Warden.run(["plugin", "show", name], state: state).status == 66)
    }

    /// Every misbehaviour ends in a dead task with its own reason, and a good plugin answers right after.
    @Test(.timeLimit(.minutes(2)), arguments: [
        ("segfault", "the plugin crashed during the call (signal 11, SIGSEGV); its worker was replaced"),
        ("abort", "the plugin crashed during the call (signal 6, SIGABRT)"),
        ("exit", "the plugin host exited with 3 during the call"),
        ("loop", "timeout: the tool ran past its 2s deadline; its worker was killed and replaced"),
        ("patient", "timeout: the tool ran past its 2s deadline"),
        ("hog", "oom: the plugin ran out of memory during the call"),
        ("forkbomb", "pids: the plugin hit its process limit"),
        ("huge", "output_limit: the tool returned 16Mi, over its 8Mi output cap"),
        ("badjson", "the tool returned 0 but its output is not JSON"),
        ("garbage", "plugin-host: the worker wrote a frame header announcing 4294967295 bytes"),
        ("retry", "the tool asked to be retried (75): the backend is busy"),
        ("fail", "the tool failed (1): bad input: no widgets"),
    ])
    func aHostileCallFailsOnlyItsOwnTask(tool: String, reason: String) throws {
        let state = try Warden.freshState()
        #expect(try Warden.run(["plugin", "register", try plugin("test/hostile")], state: state).status == 0)
        #expect(try Warden.run(["plugin", "register", try plugin("hello-c")], state: state).status == 0)
        let start = Date()
        let r = try Warden.run(["run", "hostile.\(tool)", "--json"], state: state)
        #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
        let t = try task(r)
        #expect(t["state"] as? String == "dead")
        #expect((t["reason"] as? String)?.contains(reason) == true, "\(t["reason"] ?? "no reason")")
        // A 2 s deadline returns within a second of it (kill after a short grace).
        #expect(Date().timeIntervalSince(start) < 4.5)
        let good = try Warden.run(["run", "hello-c.greet", "--input", #"{"name": "after \#(tool)"}"#, "--json"], state: state)
        #expect(good.status == 0, "\(good.stderr)")
        #expect(try task(good)["result"] as? [String: String] == ["greeting": "Hello, after \(tool)!"])
    }

    @Test(.timeLimit(.minutes(1))) func aWorkerCrashIsRetriedWithANewWorker() throws {
        let state = try Warden.freshState()
        #expect(try Warden.run(["plugin", "register", try plugin("test/hostile")], state: state).status == 0)
        let r = try Warden.run(["run", "hostile.segfault", "--retries", "2", "--json"], state: state)
        let t = try task(r)
        #expect(t["attempts"] as? Int == 3)
        #expect((t["reason"] as? String)?.contains("no retries left after 3 attempts") == true, "\(t)")
        // The same plugin serves a good call right after: a fresh worker replaced the crashed ones.
        #expect(try Warden.run(["run", "hostile.ok"], state: state).status == 0)
    }

    @Test(.timeLimit(.minutes(1))) func logsStderrAndProgressReachTheTask() throws {
        let state = try Warden.freshState()
        #expect(try Warden.run(["plugin", "register", try plugin("test/hostile")], state: state).status == 0)
        let r = try Warden.run(["run", "hostile.chatty", "--json"], state: state)
        #expect(r.status == 0)
        let id = try #require(try task(r)["id"] as? String)
        let logs = try Warden.run(["logs", id], state: state).stdout
        #expect(logs.contains("hostile: a line on stderr"))
        #expect(logs.contains("[warn] a log line through the host"))
    }

    @Test(.timeLimit(.minutes(1))) func inProcessHostingNeedsTrust() throws {
        let state = try Warden.freshState()
        let dir = NSTemporaryDirectory() + "warden-trusted-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/lib", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: try plugin("hello-c/lib/libhello.so"), toPath: dir + "/lib/libhello.so")
        var manifest = try String(contentsOfFile: try plugin("hello-c/warden-plugin.json"), encoding: .utf8)
        manifest = manifest.replacingOccurrences(of: #""hosting": "isolated""#, with: #""hosting": "in-process""#)
            .replacingOccurrences(of: #""name": "hello-c""#, with: #""name": "hello-trusted""#)
        try manifest.write(toFile: dir + "/warden-plugin.json", atomically: true, encoding: .utf8)

        var r = try Warden.run(["plugin", "register", dir], state: state)
        #expect(r.status == 77, "\(r.stderr)")
        #expect(r.stderr.contains("$.hosting: in-process hosting runs the library inside Warden itself"))
        r = try Warden.run(["plugin", "register", dir, "--trust"], state: state)
        #expect(r.status == 0, "\(r.stderr)")
        r = try Warden.run(["run", "hello-trusted.greet", "--input", #"{"name": "Bo"}"#, "--json"], state: state)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try task(r)["result"] as? [String: String] == ["greeting": "Hello, Bo!"])
    }

    /// Warm calls: the isolated median is far below a sandbox spawn (each call would cost milliseconds if a
    /// worker were started per call), and the three modes are reported.
    @Test(.timeLimit(.minutes(1))) func benchDispatchReportsWarmCalls() throws {
        _ = try plugin("hello-c")
        let r = try Warden.run(["bench", "dispatch", "--n", "300", "--plugin", try plugin("hello-c"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try #require(r.json as? [String: Any])
        #expect(j["name"] as? String == "dispatch")
        let modes = try #require(j["modes"] as? [[String: Any]])
        #expect(modes.map { $0["name"] as? String } == ["isolated", "isolated-parallel", "in-process", "process"])
        let isolated = try #require(modes[0]["median_ms"] as? Double)
        let process = try #require(modes[3]["median_ms"] as? Double)
        #expect(isolated < 2, "isolated median \(isolated) ms: are workers warm?")
        #expect(process > isolated)
        #expect(modes[1]["callers"] as? Int == 4)   // hello-c's concurrency
        #expect((j["ratios"] as? [String: Double])?["process_over_isolated"] ?? 0 > 1)
    }
}
