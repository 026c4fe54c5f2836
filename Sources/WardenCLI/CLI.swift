import Glibc
import WardenCore
import WardenEngine
import WardenStore
import WardenSystem

/// A hand-written command line (no argument-parser package): a table of commands with their options,
/// help to stdout (exit 0), usage errors to stderr (exit 64) with a pointer to the help, runtime errors as
/// `warden: <what failed>: <why> (<hint>)` with the exit codes of DESIGN §7.
struct Option: Sendable {
    let name: String
    /// Placeholder of the value ("DIR"); nil for a flag.
    let value: String?
    let help: String
    var repeatable = false

    static func flag(_ name: String, _ help: String) -> Option { Option(name: name, value: nil, help: help) }
    static func value(_ name: String, _ value: String, _ help: String, repeatable: Bool = false) -> Option {
        Option(name: name, value: value, help: help, repeatable: repeatable)
    }
}

struct Command: Sendable {
    /// Words after `warden` (`["plugin", "register"]`).
    let path: [String]
    let synopsis: String
    let abstract: String
    var discussion: String? = nil
    var options: [Option] = []
    /// Allowed positional count.
    var positionals: ClosedRange<Int> = 0...0
    /// Everything after `--` (or after the first positional) is passed through untouched.
    var passthrough = false
    /// Internal commands (the plugin-host worker) are left out of help.
    var hidden = false
    /// Executes tasks or hosts plugins in this process, so it may dlopen a plugin library: the static
    /// `warden` runs it in `warden-dynamic` (see Linkage).
    var loadsLibraries = false
    /// Opens the store. False for the commands that only read files and run sandboxes: a PostgreSQL store
    /// URL in the environment then does not send them to `warden-dynamic` for a libpq they never load.
    var usesStore = true
    let run: @Sendable (Invocation) throws(WardenError) -> Int32

    var name: String { path.joined(separator: " ") }
}

/// Parsed arguments of one command.
struct Invocation {
    var positionals: [String] = []
    var options: [String: [String]] = [:]
    var flags: Set<String> = []
    var rest: [String] = []
    let ctx: Context

    func value(_ name: String) -> String? { options[name]?.last }
    func values(_ name: String) -> [String] { options[name] ?? [] }
    func has(_ flag: String) -> Bool { flags.contains(flag) }
    var json: Bool { ctx.json }
}

let globalOptions: [Option] = [
    .value("--state", "DIR", "State directory (default $WARDEN_HOME, else ./.warden)."),
    .value("--store", "URL", "Store: sqlite:PATH or postgres://… (default sqlite in the state dir; env WARDEN_STORE)."),
    .flag("--json", "Print machine-readable JSON."),
    .flag("--help", "Show help for the command."),
    .flag("--version", "Print the version."),
]

/// Shared state of one invocation: where the state lives, and the store and engine, opened lazily.
final class Context {
    var stateDir: String
    var storeURL: String?
    var json = false
    private var _store: Store?
    private var _engine: Engine?

    init() {
        stateDir = FS.env("WARDEN_HOME") ?? "./.warden"
        storeURL = FS.env("WARDEN_STORE")
    }

    var absoluteState: String { FS.absolute(stateDir) }

    func store() throws(WardenError) -> Store {
        if let s = _store { return s }
        if (storeURL ?? "").isEmpty && !FS.exists("\(absoluteState)/warden.db") {
            throw WardenError(.noInput, "no Warden state in \(absoluteState)", hint: "run `warden init` first, or pass --state DIR")
        }
        let s = try Store.open(url: storeURL, stateDir: absoluteState)
        _store = s
        return s
    }

    func engine() throws(WardenError) -> Engine {
        if let e = _engine { return e }
        let e = Engine(store: try store())
        Wiring.install(e, stateDir: absoluteState)
        _engine = e
        return e
    }

    /// The actor recorded in the audit for a command-line user.
    var actor: String {
        let user = FS.env("SUDO_USER") ?? FS.env("USER") ?? "uid=\(getuid())"
        return "cli:\(user)"
    }
}

// MARK: output

enum Out {
    nonisolated(unsafe) static var buffer: [UInt8] = []

    static func print(_ s: String = "") {
        buffer.append(contentsOf: s.utf8)
        buffer.append(10)
        if buffer.count > 1 << 16 { flush() }
    }

    static func raw(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count > 1 << 16 { flush() }
    }

    static func flush() {
        guard !buffer.isEmpty else { return }
        try? FS.writeAll(fd: 1, buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    static func err(_ s: String) {
        flush()
        try? FS.writeAll(fd: 2, Array((s + "\n").utf8))
    }

    static func json(_ v: JSONValue) { print(v.pretty) }

    static var stderrIsTTY: Bool { isatty(2) == 1 }
}

/// A one-line status on stderr, rewritten in place, only when stderr is a terminal.
final class ProgressLine {
    private var shown = false
    private let start = Time.monotonicNs()

    func update(_ text: String) {
        guard Out.stderrIsTTY else { return }
        let secs = Double(Time.monotonicNs() - start) / 1e9
        let line = "\r\u{1B}[K\(text) (\(String(Int(secs)))s)"
        try? FS.writeAll(fd: 2, Array(line.utf8))
        shown = true
    }

    func clear() {
        if shown { try? FS.writeAll(fd: 2, Array("\r\u{1B}[K".utf8)) }
        shown = false
    }
}

// MARK: parsing

public enum CLI {
    static let version = "0.1.0"

    static func usageError(_ message: String, command: Command?) -> Int32 {
        Out.err("warden: \(message)")
        if let c = command {
            Out.err("Usage: \(c.synopsis)")
            Out.err("  See 'warden \(c.name) --help' for more information.")
        } else {
            Out.err("Usage: warden <command> [options]")
            Out.err("  See 'warden --help' for more information.")
        }
        return ExitCode.usage.rawValue
    }

    public static func main(_ argv: [String]) -> Int32 {
        let ctx = Context()
        var args = Array(argv.dropFirst())
        var wantHelp = false
        var wantVersion = false

        // Global options are taken wherever they are (up to `--`); leading words that extend a command's path
        // select the command; everything else is the command's.
        var words: [String] = []
        var remaining: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--" {
                remaining.append(contentsOf: args[i...])
                break
            }
            // A command's own option of the same name wins after its words (`tasks --state S` filters by state;
            // the state directory then comes from --state before the command, or WARDEN_HOME).
            let own = Commands.all.first(where: { $0.path == words })?.options.contains(where: { $0.name == splitOption(a)?.0 }) ?? false
            if !own, let (name, inline) = splitOption(a), let g = globalOptions.first(where: { $0.name == name }) {
                if let placeholder = g.value {
                    var v = inline
                    if v == nil {
                        guard i + 1 < args.count else {
                            return usageError("option '\(name)' needs a value (\(placeholder))", command: Commands.all.first { $0.path == words })
                        }
                        i += 1
                        v = args[i]
                    }
                    if name == "--state" { ctx.stateDir = v! } else { ctx.storeURL = v! }
                } else if name == "--json" {
                    ctx.json = true
                } else if name == "--help" {
                    wantHelp = true
                } else {
                    wantVersion = true
                }
            } else if a == "-h" {
                wantHelp = true
            } else if remaining.isEmpty && !a.hasPrefix("-") && Commands.all.contains(where: { $0.path.starts(with: words + [a]) }) {
                words.append(a)
            } else {
                remaining.append(a)
            }
            i += 1
        }
        let command = Commands.all.first { $0.path == words }
        args = remaining
        if wantVersion && words.isEmpty {
            Out.print("warden \(version)")
            Out.flush()
            return 0
        }
        if words == ["help"] {
            let target = args.filter { !$0.hasPrefix("-") }
            if target.isEmpty { Out.print(Help.top()); Out.flush(); return 0 }
            if let c = Commands.all.first(where: { $0.path == target }) { Out.print(Help.command(c)); Out.flush(); return 0 }
            if Commands.all.contains(where: { $0.path.starts(with: target) }) { Out.print(Help.group(target)); Out.flush(); return 0 }
            return usageError("unknown command '\(target.joined(separator: " "))'", command: nil)
        }
        guard let cmd = command else {
            if wantHelp || words.isEmpty && args.isEmpty {
                if words.isEmpty {
                    Out.print(Help.top())
                    Out.flush()
                    return wantHelp ? 0 : ExitCode.usage.rawValue
                }
            }
            if !words.isEmpty {
                if wantHelp { Out.print(Help.group(words)); Out.flush(); return 0 }
                let subs = Commands.all.filter { $0.path.count == words.count + 1 && $0.path.starts(with: words) }.map { $0.path.last! }
                if let first = args.first(where: { !$0.hasPrefix("-") }) {
                    return usageError("unknown subcommand '\(words.joined(separator: " ")) \(first)' (one of: \(subs.joined(separator: ", ")))", command: nil)
                }
                return usageError("'\(words.joined(separator: " "))' needs a subcommand (one of: \(subs.joined(separator: ", ")))", command: nil)
            }
            let first = args.first ?? ""
            if first.hasPrefix("-") { return usageError("unknown option '\(first)'", command: nil) }
            return usageError("unknown command '\(first)'", command: nil)
        }
        if wantHelp {
            Out.print(Help.command(cmd))
            Out.flush()
            return 0
        }
        var inv = Invocation(ctx: ctx)
        var j = 0
        while j < args.count {
            let a = args[j]
            if cmd.passthrough && (a == "--" || (!a.hasPrefix("-") && inv.positionals.count >= cmd.positionals.upperBound)) {
                inv.rest = Array(args[(a == "--" ? j + 1 : j)...])
                break
            }
            if a.hasPrefix("-") && a != "-" {
                guard let (name, inline) = splitOption(a), let opt = cmd.options.first(where: { $0.name == name }) else {
                    return usageError("unknown option '\(a.split(separator: "=").first ?? "")'", command: cmd)
                }
                if let placeholder = opt.value {
                    var v = inline
                    if v == nil {
                        guard j + 1 < args.count else { return usageError("option '\(name)' needs a value (\(placeholder))", command: cmd) }
                        j += 1
                        v = args[j]
                    }
                    if !opt.repeatable && inv.options[name] != nil {
                        return usageError("option '\(name)' given more than once", command: cmd)
                    }
                    inv.options[name, default: []].append(v!)
                } else {
                    if inline != nil { return usageError("option '\(name)' takes no value", command: cmd) }
                    inv.flags.insert(name)
                }
            } else {
                inv.positionals.append(a)
            }
            j += 1
        }
        if !cmd.positionals.contains(inv.positionals.count) {
            if inv.positionals.count < cmd.positionals.lowerBound {
                return usageError("missing argument (\(cmd.synopsis.split(separator: " ").dropFirst(cmd.path.count + 1).first ?? "argument"))", command: cmd)
            }
            return usageError("unexpected argument '\(inv.positionals[cmd.positionals.upperBound])'", command: cmd)
        }
        if let why = Linkage.reasonForDynamic(cmd, storeURL: ctx.storeURL) {
            return Linkage.execDynamic(argv, because: why)
        }
        do {
            let code = try cmd.run(inv)
            Out.flush()
            return code
        } catch {
            Out.err("warden: \(error.description)")
            return error.code.rawValue
        }
    }

    /// `--name=value` → ("--name", "value"); `--name` → ("--name", nil); not an option → nil.
    static func splitOption(_ a: String) -> (String, String?)? {
        guard a.hasPrefix("--"), a.count > 2 else { return nil }
        if let eq = a.firstIndex(of: "=") { return (String(a[..<eq]), String(a[a.index(after: eq)...])) }
        return (a, nil)
    }
}

// MARK: help

enum Help {
    static func optionLines(_ opts: [Option]) -> [String] {
        opts.map { o in
            let left = "  \(o.name)\(o.value.map { " \($0)" } ?? "")"
            let pad = max(2, 28 - left.count)
            return left + String(repeating: " ", count: pad) + o.help
        }
    }

    static func top() -> String {
        var s = """
        OVERVIEW: Warden schedules and isolates untrusted tool and agent code.

        USAGE: warden <command> [options]

        COMMANDS:

        """
        var seen: Set<String> = []
        for c in Commands.all where !c.hidden {
            let head = c.path[0]
            if seen.contains(head) { continue }
            seen.insert(head)
            let group = Commands.all.filter { $0.path[0] == head }
            let text = group.count > 1 || group[0].path.count > 1 ? Commands.groupAbstracts[head] ?? "" : group[0].abstract
            s += "  " + head + String(repeating: " ", count: max(2, 14 - head.count)) + text + "\n"
        }
        s += "\nGLOBAL OPTIONS:\n" + optionLines(globalOptions).joined(separator: "\n")
        s += "\n\n  See 'warden help <command>' for more about a command."
        return s
    }

    static func group(_ words: [String]) -> String {
        let subs = Commands.all.filter { $0.path.starts(with: words) && !$0.hidden }
        var s = "OVERVIEW: \(Commands.groupAbstracts[words[0]] ?? "")\n\nUSAGE: warden \(words.joined(separator: " ")) <subcommand>\n\nSUBCOMMANDS:\n"
        for c in subs {
            let name = c.path.dropFirst(words.count).joined(separator: " ")
            s += "  " + name + String(repeating: " ", count: max(2, 14 - name.count)) + c.abstract + "\n"
        }
        s += "\n  See 'warden help \(words.joined(separator: " ")) <subcommand>' for more."
        return s
    }

    static func command(_ c: Command) -> String {
        var s = "OVERVIEW: \(c.abstract)\n\nUSAGE: \(c.synopsis)\n"
        if let d = c.discussion { s += "\n\(d)\n" }
        if !c.options.isEmpty { s += "\nOPTIONS:\n" + optionLines(c.options).joined(separator: "\n") + "\n" }
        s += "\nGLOBAL OPTIONS:\n" + optionLines(globalOptions).joined(separator: "\n")
        return s
    }
}
