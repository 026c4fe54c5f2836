import Glibc
import WardenCore
import WardenEngine
import WardenPlugins
import WardenSandbox
import WardenStore
import WardenSystem

/// The command table. Each entry's `run` only parses values and prints; the work is in the modules.
enum Commands {
    static let groupAbstracts: [String: String] = [
        "plugin": "Register, list, show and remove plugins.",
        "policy": "Set or show the admission policy.",
        "workflow": "Submit, inspect and cancel workflows.",
        "dlq": "List and replay dead tasks.",
        "report": "Reports on the live cluster.",
        "sandbox": "Run a command in the sandbox.",
        "profile": "List, show and check sandbox profiles.",
        "bench": "Microbenchmarks.",
    ]

    static let taskOptions: [Option] = [
        .value("--input", "JSON|@FILE", "The tool's input: a JSON object, or @FILE to read it from a file."),
        .value("--tenant", "T", "Tenant (default: default, or $WARDEN_TENANT)."),
        .value("--cpu", "C", "CPU request (\"2\", \"0.5\", \"500m\"); default from the manifest."),
        .value("--memory", "M", "Memory request (\"256Mi\", \"1Gi\"); default from the manifest."),
        .value("--timeout", "D", "Wall-clock limit of one attempt (\"30s\"); default from the manifest."),
        .value("--priority", "N", "Larger is more urgent (default 0)."),
        .value("--idempotency-key", "K", "Submissions with the same key (per tenant) return the first task."),
        .value("--after", "ID", "Run only after task ID succeeded (repeatable).", repeatable: true),
        .value("--lock", "KEY", "Hold the exclusive lock KEY while running (repeatable).", repeatable: true),
        .value("--traceparent", "TP", "W3C trace context to continue."),
        .value("--retries", "N", "Override the manifest's retry.max."),
        .flag("--approval", "Require an approval before it runs."),
    ]

    static let all: [Command] = [
        Command(path: ["help"], synopsis: "warden help [COMMAND…]", abstract: "Show help for a command.", positionals: 0...3) { _ in 0 },
        Command(path: ["init"], synopsis: "warden init", abstract: "Create the state directory and the store.", run: initCommand),
        Command(path: ["plugin", "register"], synopsis: "warden plugin register DIR [--trust]",
                abstract: "Validate a plugin directory, pin its files and register it.",
                discussion: "The manifest is DIR/warden-plugin.json. Registering an existing NAME@VERSION again replaces it.",
                options: [.flag("--trust", "Allow hosting: in-process for a dylib (it then runs inside Warden).")],
                positionals: 1...1, run: PluginCommands.register),
        Command(path: ["plugin", "list"], synopsis: "warden plugin list [--json]", abstract: "List registered plugins.", run: PluginCommands.list),
        Command(path: ["plugin", "show"], synopsis: "warden plugin show NAME[@V] [--json]", abstract: "Show one plugin version.",
                positionals: 1...1, run: PluginCommands.show),
        Command(path: ["plugin", "remove"], synopsis: "warden plugin remove NAME[@V]", abstract: "Remove one version, or every version.",
                positionals: 1...1, run: PluginCommands.remove),
        Command(path: ["run"], synopsis: "warden run PLUGIN[.TOOL][@V] [--input JSON|@FILE] [--tenant T] [--cpu C] [--memory M] [--timeout D]",
                abstract: "Submit a call and wait for its result (works without `serve`).",
                discussion: "Prints the result JSON (with --json, the whole task). Exits 0 when the task succeeded, 1 when it failed, and with the admission's code when it was rejected (65 invalid input, 69 quota or rate limit, 77 denied).",
                options: taskOptions + [.value("--wait", "D", "Give up waiting after D (the task keeps going).")],
                positionals: 1...1, loadsLibraries: true, run: TaskCommands.run),
        Command(path: ["submit"], synopsis: "warden submit PLUGIN[.TOOL][@V] [--input JSON|@FILE] [--idempotency-key K] [--priority N] [--after ID]… [--lock KEY]…",
                abstract: "Submit a call; print the task id.", options: taskOptions, positionals: 1...1, run: TaskCommands.submit),
        Command(path: ["status"], synopsis: "warden status ID [--json]", abstract: "Show a task, its placement explanation and history.",
                positionals: 1...1, run: TaskCommands.status),
        Command(path: ["wait"], synopsis: "warden wait ID [--timeout D]", abstract: "Wait for a task to end; exit 0 if it succeeded.",
                options: [.value("--timeout", "D", "Give up after D (exit 75).")], positionals: 1...1, run: TaskCommands.wait),
        Command(path: ["tasks"], synopsis: "warden tasks [--state S] [--tenant T] [--limit N] [--json]", abstract: "List tasks, newest first.",
                options: [.value("--state", "S", "Only tasks in state S."), .value("--tenant", "T", "Only tasks of tenant T."),
                          .value("--limit", "N", "At most N tasks (default 50).")],
                run: TaskCommands.list),
        Command(path: ["cancel"], synopsis: "warden cancel ID [--reason R]", abstract: "Cancel a task (kills its sandbox) and its dependents.",
                options: [.value("--reason", "R", "Why (recorded).")], positionals: 1...1, run: TaskCommands.cancel),
        Command(path: ["logs"], synopsis: "warden logs ID", abstract: "Print a task's stderr, attempt by attempt.", positionals: 1...1, run: TaskCommands.logs),
        Command(path: ["approve"], synopsis: "warden approve ID [--reason R]", abstract: "Approve a task waiting for approval.",
                options: [.value("--reason", "R", "Comment (recorded).")], positionals: 1...1, run: TaskCommands.approve),
        Command(path: ["deny"], synopsis: "warden deny ID [--reason R]", abstract: "Deny a task waiting for approval.",
                options: [.value("--reason", "R", "Why (recorded).")], positionals: 1...1, run: TaskCommands.deny),
        Command(path: ["dlq", "list"], synopsis: "warden dlq list [--json]", abstract: "List dead and in_doubt tasks.", run: TaskCommands.dlqList),
        Command(path: ["dlq", "replay"], synopsis: "warden dlq replay ID…", abstract: "Re-queue dead tasks with a fresh attempt budget.",
                positionals: 1...10_000, run: TaskCommands.dlqReplay),
        Command(path: ["policy", "set"], synopsis: "warden policy set FILE", abstract: "Validate and install an admission policy.",
                positionals: 1...1, run: PolicyCommands.set),
        Command(path: ["policy", "show"], synopsis: "warden policy show [--json]", abstract: "Show the admission policy.", run: PolicyCommands.show),
        Command(path: ["audit"], synopsis: "warden audit [--verify] [--task ID] [--json]", abstract: "Print the hash-chained audit log; --verify checks it.",
                options: [.flag("--verify", "Recompute the chain; exit 1 on any altered, removed or reordered record."),
                          .value("--task", "ID", "Only records of task ID.")],
                run: PolicyCommands.audit),
        Command(path: ["metrics"], synopsis: "warden metrics", abstract: "Print metrics in the Prometheus text format.", run: ServeCommands.metrics),
        Command(path: ["nodes"], synopsis: "warden nodes [--json]", abstract: "Nodes: capacity, allocation, readiness, heartbeats.", run: ServeCommands.nodes),
        Command(path: ["serve"], synopsis: "warden serve [--node NAME] [--cpu C --memory M] [--label K=V]… [--lease D] [--metrics-addr HOST:PORT] [--otlp-file F]",
                abstract: "Run the control plane and a local executor.",
                options: [.value("--node", "NAME", "This node's name (default: the host name)."),
                          .value("--cpu", "C", "CPU capacity (default: the machine's)."),
                          .value("--memory", "M", "Memory capacity (default: the machine's)."),
                          .value("--label", "K=V", "Node label for constraints (repeatable).", repeatable: true),
                          .value("--lease", "D", "Lease of a placed task (default 5s)."),
                          .value("--heartbeat", "D", "Heartbeat interval (default 1s)."),
                          .value("--metrics-addr", "HOST:PORT", "Serve /metrics over HTTP."),
                          .value("--otlp-file", "F", "Append finished spans to F as OTLP/JSON lines."),
                          .value("--slots", "N", "Tasks run at once on this node (default: 2 per CPU)."),
                          .flag("--no-executor", "Schedule only; run nothing on this node.")],
                loadsLibraries: true, run: ServeCommands.serve),
        Command(path: ["agent"], synopsis: "warden agent --store postgres://… --node NAME --cpu C --memory M [--label K=V]…",
                abstract: "Run an executor node that claims the tasks placed on it.",
                options: [.value("--node", "NAME", "This node's name."), .value("--cpu", "C", "CPU capacity."),
                          .value("--memory", "M", "Memory capacity."), .value("--label", "K=V", "Node label (repeatable).", repeatable: true),
                          .value("--lease", "D", "Lease (default 5s)."), .value("--heartbeat", "D", "Heartbeat interval (default 1s)."),
                          .value("--slots", "N", "Tasks run at once (default: 2 per CPU).")],
                loadsLibraries: true, run: ServeCommands.agent),
        Command(path: ["sandbox", "exec"], synopsis: "warden sandbox exec [--profile P] [--seccomp OCI.json] [--cpu C] [--memory M] [--pids N] [--timeout D] [--network none|loopback|host] [--bind SRC:DST]… [--ro-bind SRC:DST]… [--report FILE] -- CMD ARG…",
                abstract: "Run one command isolated.",
                discussion: "The exit status is the command's (128+N when signal N killed it); 71 when the sandbox could not be set up.",
                options: [.value("--profile", "P", "Profile name or file (default: default)."),
                          .value("--seccomp", "FILE", "OCI/Docker seccomp file replacing the profile's filter."),
                          .value("--cpu", "C", "CPU limit."), .value("--memory", "M", "Memory limit."), .value("--pids", "N", "Process limit."),
                          .value("--timeout", "D", "Wall-clock limit."), .value("--network", "MODE", "none, loopback or host."),
                          .value("--bind", "SRC[:DST]", "Writable bind (repeatable).", repeatable: true),
                          .value("--ro-bind", "SRC[:DST]", "Read-only bind (repeatable).", repeatable: true),
                          .value("--chdir", "DIR", "Working directory inside."),
                          .value("--env", "K=V", "Set an environment variable inside (repeatable).", repeatable: true),
                          .value("--report", "FILE", "Write the result record (JSON) to FILE.")],
                positionals: 0...0, passthrough: true, usesStore: false, run: SandboxCommands.exec),
        Command(path: ["profile", "list"], synopsis: "warden profile list [--json]", abstract: "List the shipped sandbox profiles.", usesStore: false, run: SandboxCommands.list),
        Command(path: ["profile", "show"], synopsis: "warden profile show NAME", abstract: "Print a profile.", positionals: 1...1, usesStore: false, run: SandboxCommands.show),
        Command(path: ["profile", "check"], synopsis: "warden profile check FILE [--json]",
                abstract: "Check a Warden profile or an OCI seccomp file; report what is not honoured.",
                positionals: 1...1, usesStore: false, run: SandboxCommands.check),
        Command(path: ["version"], synopsis: "warden version", abstract: "Print the version.", usesStore: false) { _ in
            Out.print("warden \(CLI.version)")
            return 0
        },
    ] + ExtraCommands.all
}

func initCommand(_ inv: Invocation) throws(WardenError) -> Int32 {
    let dir = inv.ctx.absoluteState
    try FS.mkdirs(dir, mode: 0o700)
    let store = try Store.open(url: inv.ctx.storeURL, stateDir: dir)
    if inv.json {
        Out.json(["state": .string(dir), "store": .string(store.db.location)])
    } else {
        Out.print("initialised \(dir) (store \(store.db.location))")
    }
    return 0
}

// MARK: value parsing shared by commands

enum Parse {
    static func input(_ text: String?) throws(WardenError) -> JSONValue {
        guard let text else { return .object([:]) }
        if text.hasPrefix("@") {
            let path = String(text.dropFirst())
            let bytes: [UInt8]
            if path == "-" { bytes = try FS.readAll(fd: 0, limit: 16 << 20, what: "stdin") } else {
                guard FS.exists(path) else { throw WardenError.notFound("--input: no such file \(quoted(path))") }
                bytes = try FS.readFile(path, limit: 16 << 20)
            }
            do throws(WardenError) { return try JSONValue.parse(bytes) } catch { throw error.prefixed("--input \(path)") }
        }
        do throws(WardenError) { return try JSONValue.parse(text) } catch { throw error.prefixed("--input") }
    }

    static func duration(_ inv: Invocation, _ name: String) throws(WardenError) -> Int64? {
        guard let v = inv.value(name) else { return nil }
        let ms = try Quantity.durationMillis(v, field: name, code: .usage)
        guard ms > 0 else { throw WardenError.invalid(name, "must be positive, got \(quoted(v))", code: .usage) }
        return ms
    }

    static func int(_ inv: Invocation, _ name: String, range: ClosedRange<Int64>) throws(WardenError) -> Int64? {
        guard let v = inv.value(name) else { return nil }
        guard let i = Int64(v), range.contains(i) else {
            throw WardenError.invalid(name, "expected an integer from \(range.lowerBound) to \(range.upperBound), got \(quoted(v))", code: .usage)
        }
        return i
    }

    static func labels(_ inv: Invocation) throws(WardenError) -> [String: String] {
        var out: [String: String] = [:]
        for l in inv.values("--label") {
            let parts = l.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw WardenError.invalid("--label", "expected KEY=VALUE, got \(quoted(l))", code: .usage)
            }
            out[String(parts[0])] = String(parts[1])
        }
        return out
    }
}
