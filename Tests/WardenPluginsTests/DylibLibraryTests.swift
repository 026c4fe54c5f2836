import Foundation
import Testing
import WardenCore
@testable import WardenPlugins

/// The plugin libraries of plugins/ (examples and test-only ones), built once with `make -C plugins`.
enum BuiltPlugins {
    static let repo: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let built: Result<Void, TestError> = {
        let p = Process()
        // Under a lock: test processes running in parallel must not write the same library at once.
        p.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        p.arguments = ["/tmp/warden-plugins-make.lock", "make", "-s", "-C", "\(repo)/plugins"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        do { try p.run() } catch { return .failure(TestError("make: \(error)")) }
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return p.terminationStatus == 0 ? .success(()) : .failure(TestError("make -C plugins failed: \(text)"))
    }()

    static func path(_ rel: String) throws -> String {
        try built.get()
        return "\(repo)/plugins/\(rel)"
    }
}

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Records what a call's callbacks did.
final class RecordingSink: DylibCallSink, @unchecked Sendable {
    var logs: [(Int32, String)] = []
    var progress: [(Double, String)] = []
    var cancel = false
    func log(level: Int32, message: String) { logs.append((level, message)) }
    func progress(_ fraction: Double, _ message: String) { progress.append((fraction, message)) }
    func cancelled() -> Bool { cancel }
}

/// Loading checks and calls, in this test process (only well-behaved or load-refused libraries here: a
/// crashing one would take the test runner down, which is exactly why Warden probes in a sandbox).
@Suite struct DylibLibraryTests {
    func stageOf(_ lib: String) throws -> DylibError? {
        do {
            _ = try DylibLibrary.open(try BuiltPlugins.path(lib))
            return nil
        } catch let e as DylibError {
            return e
        }
    }

    @Test func theCExampleLoadsInitialisesAndAnswers() throws {
        let lib = try DylibLibrary.open(try BuiltPlugins.path("hello-c/lib/libhello.so"))
        #expect(lib.name == "hello-c" && lib.version == "1.0.0")
        #expect(lib.tools == ["greet", "sum"])
        let sink = RecordingSink()
        let inst = try lib.instantiate(config: #"{"greeting": "Hi"}"#, sink: sink)
        defer { inst.shutdown() }

        let greet = inst.invoke(tool: "greet", input: Array(#"{"name":"Ada"}"#.utf8), cap: 1 << 20, sink: sink)
        #expect(greet.rc == 0)
        #expect(DylibReply.interpret(greet, cap: 1 << 20).output == ["greeting": "Hi, Ada!"])

        let sum = inst.invoke(tool: "sum", input: Array(#"{"numbers":[1, 2, 3.5]}"#.utf8), cap: 1 << 20, sink: sink)
        #expect(DylibReply.interpret(sum, cap: 1 << 20).output == ["sum": 6.5, "count": 3])
        // The progress callback reached this call's sink (routed by thread).
        #expect(sink.progress.map(\.0) == [1.0] && sink.progress.map(\.1) == ["summed"])

        let unknown = inst.invoke(tool: "nope", input: Array("{}".utf8), cap: 1 << 20, sink: sink)
        #expect(unknown.rc == 1)
        #expect(DylibReply.interpret(unknown, cap: 1 << 20).message == "unknown tool")
    }

    @Test func anOutputOverTheCapIsNotCopied() throws {
        let lib = try DylibLibrary.open(try BuiltPlugins.path("hello-c/lib/libhello.so"))
        let inst = try lib.instantiate(config: "{}", sink: RecordingSink())
        let r = inst.invoke(tool: "greet", input: Array(#"{"name":"Ada"}"#.utf8), cap: 8, sink: RecordingSink())
        #expect(r.output == nil && r.length == #"{"greeting":"Hello, Ada!"}"#.utf8.count)
    }

    @Test func theSwiftExampleCarriesItsOwnRuntime() throws {
        // This process has the toolchain's dynamic Swift runtime; the plugin brings a static, hidden one.
        let lib = try DylibLibrary.open(try BuiltPlugins.path("hello-swift/lib/libhello_swift.so"))
        #expect(lib.name == "hello-swift" && lib.tools == ["reverse", "stats"])
        let inst = try lib.instantiate(config: "{}", sink: RecordingSink())
        let r = inst.invoke(tool: "reverse", input: Array(#"{"text":"h\u00e9llo 👋🏽"}"#.utf8), cap: 1 << 20, sink: RecordingSink())
        #expect(DylibReply.interpret(r, cap: 1 << 20).output == ["reversed": "👋🏽 olléh"])
        let s = inst.invoke(tool: "stats", input: Array(#"{"text":"a b\nc"}"#.utf8), cap: 1 << 20, sink: RecordingSink())
        #expect(DylibReply.interpret(s, cap: 1 << 20).output == ["characters": 5, "words": 3, "lines": 2])
    }

    @Test(arguments: [
        ("test/abi0/lib/libabi0.so", DylibError.Stage.abi, "has ABI version 0, but this Warden speaks version 1"),
        ("test/abi2/lib/libabi2.so", .abi, "has ABI version 2, but this Warden speaks version 1"),
        ("test/noentry/lib/libnoentry.so", .entry, "does not export warden_plugin_entry"),
        ("test/unresolved/lib/libunresolved.so", .open, "undefined symbol: warden_test_symbol_nobody_defines"),
    ])
    func refusedAtLoad(lib: String, stage: DylibError.Stage, phrase: String) throws {
        let e = try #require(try stageOf(lib))
        #expect(e.stage == stage)
        #expect(e.message.contains(phrase), "\(e.message)")
    }

    @Test func aFailingInitIsRefused() throws {
        let lib = try DylibLibrary.open(try BuiltPlugins.path("test/initfail/lib/libinitfail.so"))
        #expect(throws: DylibError.self) { try lib.instantiate(config: "{}", sink: RecordingSink()) }
    }

    @Test func cancelledReachesTheCallOnItsThread() throws {
        // `patient` loops until cancelled() is true: with a cancelled sink it returns at once.
        let lib = try DylibLibrary.open(try BuiltPlugins.path("test/hostile/lib/libhostile.so"))
        let inst = try lib.instantiate(config: "{}", sink: RecordingSink())
        let cancelled = RecordingSink()
        cancelled.cancel = true
        let start = Date()
        let r = inst.invoke(tool: "patient", input: Array("{}".utf8), cap: 1 << 20, sink: cancelled)
        #expect(r.rc == 1)
        #expect(Date().timeIntervalSince(start) < 1)
    }
}
