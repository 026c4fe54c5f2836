import WardenCore
import WardenEngine
import WardenSystem

/// `bench submit` and `bench tasks`: the engine's durability and throughput figures.
enum EngineBenchCommands {
    static let all: [Command] = [
        Command(path: ["bench", "submit"], synopsis: "warden bench submit [--n N] [--threads T] [--store URL] [--json]",
                abstract: "Durable submits per second: group commit against one commit per submit, same run.",
                options: [.value("--n", "N", "Submissions per mode (default 5000)."), .value("--threads", "T", "Concurrent clients, each waiting for its acknowledgement (default 64).")]) { inv throws(WardenError) in
            let n = Int(try Parse.int(inv, "--n", range: 1...10_000_000) ?? 5000)
            let threads = Int(try Parse.int(inv, "--threads", range: 1...1024) ?? 64)
            let r = try EngineBench.submit(n: n, threads: threads, storeURL: inv.ctx.storeURL)
            print(r, inv)
            return 0
        },
        Command(path: ["bench", "tasks"], synopsis: "warden bench tasks [--n N] [--slots S] [--plugin DIR [--tool T] [--input JSON]] [--json]",
                abstract: "Sandboxed no-op tasks per second through an in-process serve.",
                discussion: "Every task is submitted, admitted, placed, executed and recorded durably. By default each runs a process plugin that echoes {} (one sandbox spawned per task); --plugin measures another plugin, such as a dylib served by warm sandboxed workers.",
                options: [.value("--n", "N", "Tasks (default 2000)."), .value("--slots", "S", "Executor slots (default 8)."),
                          .value("--plugin", "DIR", "Plugin directory to run instead of the echo process plugin."),
                          .value("--tool", "T", "Tool of --plugin."), .value("--input", "JSON", "Input of each task (default {}).")],
                loadsLibraries: true) { inv throws(WardenError) in
            let n = Int(try Parse.int(inv, "--n", range: 1...1_000_000) ?? 2000)
            let slots = Int(try Parse.int(inv, "--slots", range: 1...1024) ?? 8)
            var workload = EngineBench.TaskWorkload()
            if let dir = inv.value("--plugin") { workload.pluginDir = FS.absolute(dir) }
            workload.tool = inv.value("--tool")
            if inv.value("--input") != nil { workload.input = try Parse.input(inv.value("--input")) }
            let r = try EngineBench.tasks(n: n, slots: slots, workload: workload) { engine, dir in Wiring.install(engine, stateDir: dir) }
            print(r, inv)
            return 0
        },
        Command(path: ["bench", "queue"], synopsis: "warden bench queue [--n N] [--json]",
                abstract: "Memory and scheduling-round time with N queued tasks, against 1,000 queued in the same process.",
                discussion: "Submits 1,000 tasks to a node none of them fits, runs scheduling rounds and reads the process's resident memory; then queues up to N and measures again. A round reads a bounded page of the queue, so memory must not grow with it.",
                options: [.value("--n", "N", "Tasks queued in the end (default 100000).")]) { inv throws(WardenError) in
            let n = Int(try Parse.int(inv, "--n", range: 2000...10_000_000) ?? 100_000)
            print(try EngineBench.queue(n: n), inv)
            return 0
        },
    ]

    static func print(_ r: JSONValue, _ inv: Invocation) {
        if inv.json { Out.json(r); return }
        guard case .object(let o) = r else { return }
        for k in o.keys.sorted() { Out.print("\(k): \(o[k]!.canonical)") }
    }
}
