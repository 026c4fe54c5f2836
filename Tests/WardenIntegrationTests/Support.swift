import Foundation
import Testing

/// Helpers for tests that run the built `warden` binary: a temporary state directory per test, the binary's
/// path (WARDEN_BIN, else the release or debug build in .build), and host capability checks.
enum Warden {
    static let repo: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let binary: String = {
        if let b = ProcessInfo.processInfo.environment["WARDEN_BIN"], FileManager.default.isExecutableFile(atPath: b) { return b }
        for p in [".build/release/warden", ".build/debug/warden"] where FileManager.default.isExecutableFile(atPath: "\(repo)/\(p)") {
            return "\(repo)/\(p)"
        }
        return "\(repo)/.build/debug/warden"
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(stdout.utf8), options: [.fragmentsAllowed]) }
    }

    /// Runs `warden ARGS` with `WARDEN_HOME=state`, feeding `stdin`, and waits.
    @discardableResult
    static func run(_ args: [String], state: String? = nil, stdin: String? = nil, env: [String: String] = [:],
                    executable: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable ?? binary)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        e["WARDEN_PROFILES"] = "\(repo)/sandbox-profiles"
        if let state { e["WARDEN_HOME"] = state }
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? inp.fileHandleForWriting.close()
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        nonisolated(unsafe) var errData = Data()
        let t = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        t.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !t.isFinished { usleep(1000) }
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    /// A fresh state directory, initialised.
    static func freshState(_ name: String = #function) throws -> String {
        let dir = NSTemporaryDirectory() + "warden-test-\(name.filter { $0.isLetter || $0.isNumber })-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let r = try run(["init"], state: dir)
        guard r.status == 0 else { throw TestFailure("warden init failed: \(r.stderr)") }
        return dir
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// What this host can do; tests that need more say so loudly when they skip.
enum Host {
    static let isRoot = getuid() == 0
    static let userNamespaces: Bool = {
        let max = (try? String(contentsOfFile: "/proc/sys/user/max_user_namespaces", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return (Int(max ?? "0") ?? 0) > 0
    }()
    static let cgroupV1Memory = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    static let sandboxReady = userNamespaces

    static func skipNote(_ what: String) -> String {
        let note = "SKIPPED: \(what) (this host lacks it; CI has it)"
        FileHandle.standardError.write(Data("\n*** \(note) ***\n".utf8))
        return note
    }
}
