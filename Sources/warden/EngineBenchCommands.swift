import WardenCore
import WardenEngine

/// `bench submit` and `bench tasks`: the engine's durability and throughput figures.
enum EngineBenchCommands {
    static let all: [Command] = [
        Command(path: ["bench", "submit"], synopsis: "warden bench submit [--n N] [--threads T] [--store URL] [--json]",
                abstract: "Durable submits per second: group commit against one commit per submit, same run.",
                options: [.value("--n", "N", "Submissions per mode (default 5000)."), .value("--threads", "T", "Concurrent clients (default 32).")]) { inv throws(WardenError) in
            let n = Int(try Parse.int(inv, "--n", range: 1...10_000_000) ?? 5000)
            let threads = Int(try Parse.int(inv, "--threads", range: 1...1024) ?? 32)
            let r = try EngineBench.submit(n: n, threads: threads, storeURL: inv.ctx.storeURL)
            print(r, inv)
            return 0
        },
        Command(path: ["bench", "tasks"], synopsis: "warden bench tasks [--n N] [--slots S] [--json]",
                abstract: "Sandboxed no-op tasks per second through an in-process serve.",
                options: [.value("--n", "N", "Tasks (default 2000)."), .value("--slots", "S", "Executor slots (default 8).")]) { inv throws(WardenError) in
            let n = Int(try Parse.int(inv, "--n", range: 1...1_000_000) ?? 2000)
            let slots = Int(try Parse.int(inv, "--slots", range: 1...1024) ?? 8)
            let r = try EngineBench.tasks(n: n, slots: slots)
            print(r, inv)
            return 0
        },
    ]

    static func print(_ r: JSONValue, _ inv: Invocation) {
        if inv.json { Out.json(r); return }
        guard case .object(let o) = r else { return }
        for k in o.keys.sorted() { Out.print("\(k): \(o[k]!.canonical)") }
    }
}
