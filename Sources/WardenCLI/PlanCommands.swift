import Glibc
import WardenCore
import WardenEngine
import WardenScheduler
import WardenStore
import WardenSystem

/// `warden plan`, `warden report placement` and `warden bench schedule`: the scheduler's model for capacity
/// planners (files in, report out), for operators (the live cluster), and its speed.
enum PlanCommands {
    static let all: [Command] = [plan, reportPlacement, benchSchedule]

    static let plan = Command(
        path: ["plan"],
        synopsis: "warden plan --tasks TASKS.json (--nodes NODES.json | --shape CPU,MEMORY[,NAME=N…]) [--strategy binpack|dotproduct|spread] [--time-limit SECONDS] [--json] [--html REPORT.html]",
        abstract: "Offline placement and capacity report from files.",
        discussion: "With --nodes: where each task would go on that cluster, unplaced tasks with the reason, per-node utilization and stranded capacity. With --shape: the fewest nodes of that shape found within --time-limit (default 5 s), and a proven lower bound. Same input, same answer. Exits 0 when every task is placed, 1 when some are not; the report is printed either way.",
        options: [.value("--tasks", "FILE", "Tasks: [{\"id\", \"cpu\", \"memory\", \"resources\", \"count\", \"priority\", \"constraints\", \"antiAffinity\"}]."),
                  .value("--nodes", "FILE", "A fixed cluster: [{\"name\", \"cpu\", \"memory\", \"resources\", \"count\", \"labels\", \"reserved\"}]."),
                  .value("--shape", "CPU,MEMORY[,NAME=N…]", "The node shape to count (e.g. 16,64Gi,gpu=2)."),
                  .value("--strategy", "S", "binpack (default), dotproduct or spread (with --nodes)."),
                  .value("--time-limit", "SECONDS", "Search time for --shape (default 5)."),
                  .value("--html", "FILE", "Also write a self-contained HTML report (inline SVG, no network).")],
        usesStore: false, run: PlanCommands.runPlan)

    static func runPlan(_ inv: Invocation) throws(WardenError) -> Int32 {
        guard let tasksFile = inv.value("--tasks") else {
            throw WardenError(.usage, "plan: --tasks FILE is required", hint: "see `warden help plan`")
        }
        let nodesFile = inv.value("--nodes"), shape = inv.value("--shape")
        guard (nodesFile == nil) != (shape == nil) else {
            throw WardenError(.usage, "plan: give exactly one of --nodes FILE or --shape CPU,MEMORY", hint: "see `warden help plan`")
        }
        let strategy = try strategyOption(inv)
        var timeLimit = 5.0
        if let v = inv.value("--time-limit") {
            guard let t = Double(v), t.isFinite, t > 0, t <= 3600 else {
                throw WardenError.invalid("--time-limit", "expected seconds from 0 to 3600, got \(quoted(v))", code: .usage)
            }
            timeLimit = t
        }
        let tasks = try PlanInput.tasks(fromJSON: try readJSON(tasksFile, option: "--tasks"))
        let report: PlanReport
        if let nodesFile {
            report = Planner.plan(tasks: tasks, nodes: try PlanInput.nodes(fromJSON: try readJSON(nodesFile, option: "--nodes")), strategy: strategy)
        } else {
            let progress = ProgressLine()
            report = Planner.minimumNodes(tasks: tasks, shape: try PlanInput.shape(parsing: shape!), timeLimitSeconds: timeLimit,
                                          trace: Out.stderrIsTTY ? { progress.update($0) } : nil)
            progress.clear()
        }
        try writeHTML(report, inv)
        if inv.json { Out.json(report.json) } else { Out.raw(Array(report.text.utf8)) }
        return report.allPlaced ? 0 : 1
    }

    static let reportPlacement = Command(
        path: ["report", "placement"], synopsis: "warden report placement [--html FILE] [--json]",
        abstract: "The live cluster: each node's allocation and tasks, queued tasks and why they wait.",
        discussion: "Built from the store with the same placer the scheduler uses. Every placed task is listed with the explanation recorded when it was placed; every queued task with the reason it waits.",
        options: [.value("--html", "FILE", "Also write a self-contained HTML report (inline SVG, no network).")],
        run: PlanCommands.runReportPlacement)

    static func runReportPlacement(_ inv: Invocation) throws(WardenError) -> Int32 {
        let engine = try inv.ctx.engine()
        let (placer, active, queued) = try engine.store.read { tx in
            (try engine.loadPlacer(tx), try engine.store.activeTasks(tx),
             try tx.query("SELECT \(Store.taskColumns) FROM tasks WHERE state = 'queued' ORDER BY priority DESC, created_at, id LIMIT 10000", []).map(Store.decodeTask))
        }
        let waiting = queued.map { (task: $0.id, reason: $0.explanation ?? "not yet considered by a scheduling round") }
        let report = placer.report(waiting: waiting)
        let explained = active.filter { $0.node != nil }.sorted { $0.id < $1.id }
        try writeHTML(report, inv)
        if inv.json {
            guard case .object(var o) = report.json else { Out.json(report.json); return 0 }
            o["explanations"] = .array(explained.map {
                .object(["task": .string($0.id), "node": .string($0.node ?? ""), "state": .string($0.state.rawValue),
                         "explanation": $0.explanation.map { .string($0) } ?? .null])
            })
            Out.json(.object(o))
        } else {
            Out.raw(Array(report.text.utf8))
            if !explained.isEmpty {
                Out.print("\nwhy each running task is where it is:")
                for t in explained { Out.print("  \(t.id) → \(t.node ?? "?") (\(t.state.rawValue)): \(t.explanation ?? "no explanation recorded")") }
            }
        }
        return 0
    }

    static let benchSchedule = Command(
        path: ["bench", "schedule"], synopsis: "warden bench schedule [--nodes N] [--n N] [--strategy S] [--json]",
        abstract: "Online placements per second, against a full scan of every node per task in the same run.",
        discussion: "A synthetic cluster of --nodes nodes (default 10000, three zones, ten label pools, some not ready) and --n tasks (default 100000: mixed sizes, a tenth with constraints, some with anti-affinity), each placed with a full explanation. The baseline places a sample of the same tasks by scanning every node and must make the same decisions.",
        options: [.value("--nodes", "N", "Nodes (default 10000)."), .value("--n", "N", "Tasks to place (default 100000)."),
                  .value("--strategy", "S", "binpack (default), dotproduct or spread.")],
        usesStore: false, run: PlanCommands.runBenchSchedule)

    static func runBenchSchedule(_ inv: Invocation) throws(WardenError) -> Int32 {
        let nodes = Int(try Parse.int(inv, "--nodes", range: 1...1_000_000) ?? 10_000)
        let n = Int(try Parse.int(inv, "--n", range: 1...10_000_000) ?? 100_000)
        let r = ScheduleBench.run(nodes: nodes, tasks: n, strategy: try strategyOption(inv))
        if inv.json { Out.json(r); return 0 }
        func num(_ k: String) -> String {
            switch r[k] {
            case .double(let d)?: return String(Int64(d))
            case .int(let i)?: return String(i)
            default: return "?"
            }
        }
        Out.print("schedule: \(num("per_second")) placements/s at \(nodes) nodes (\(num("placed")) of \(n) placed); full scan \(num("baseline_per_second"))/s; ratio \(r["ratio"].map { "\($0.canonical)" } ?? "?")×")
        return 0
    }

    // MARK: helpers

    static func strategyOption(_ inv: Invocation) throws(WardenError) -> Strategy {
        guard let v = inv.value("--strategy") else { return .binpack }
        guard let s = Strategy(rawValue: v) else {
            throw WardenError.invalid("--strategy", "expected binpack, dotproduct or spread, got \(quoted(v))", code: .usage)
        }
        return s
    }

    static func readJSON(_ path: String, option: String) throws(WardenError) -> JSONValue {
        guard FS.exists(path) else { throw WardenError.notFound("\(option): no such file \(quoted(path))") }
        do throws(WardenError) { return try JSONValue.parse(try FS.readFile(path, limit: 256 << 20)) } catch {
            throw error.prefixed("\(option) \(path)")
        }
    }

    static func writeHTML(_ report: PlanReport, _ inv: Invocation) throws(WardenError) {
        guard let path = inv.value("--html") else { return }
        try FS.writeFile(path, Array(report.html.utf8))
    }
}
