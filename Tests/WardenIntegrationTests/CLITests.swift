import Foundation
import Testing

/// Golden output of the command line: help to stdout with exit 0, usage errors to stderr with exit 64 and a
/// pointer to the help, runtime errors as `warden: …` with DESIGN §7's exit codes.
@Suite struct CLITests {
    @Test func versionAndTopHelp() throws {
        let v = try Warden.run(["--version"])
        #expect(v.status == 0)
        #expect(v.stdout == "warden 0.1.0\n")
        let h = try Warden.run(["--help"])
        #expect(h.status == 0)
        #expect(h.stdout.hasPrefix("OVERVIEW: Warden schedules and isolates untrusted tool and agent code.\n\nUSAGE: warden <command> [options]\n"))
        for cmd in ["init", "plugin", "run", "submit", "status", "serve", "sandbox", "audit", "dlq", "workflow", "explain"] {
            #expect(h.stdout.contains("\n  \(cmd) "), "top help lists \(cmd)")
        }
        #expect(h.stderr.isEmpty)
    }

    @Test func commandHelpIsGolden() throws {
        let r = try Warden.run(["help", "init"])
        #expect(r.status == 0)
        #expect(r.stdout == """
            OVERVIEW: Create the state directory and the store.

            USAGE: warden init

            GLOBAL OPTIONS:
              --state DIR               State directory (default $WARDEN_HOME, else ./.warden).
              --store URL               Store: sqlite:PATH or postgres://… (default sqlite in the state dir; env WARDEN_STORE).
              --json                    Print machine-readable JSON.
              --help                    Show help for the command.
              --version                 Print the version.

            """)
        let same = try Warden.run(["init", "--help"])
        #expect(same.stdout == r.stdout)
        let group = try Warden.run(["plugin", "--help"])
        #expect(group.status == 0)
        #expect(group.stdout.contains("SUBCOMMANDS:\n  register"))
    }

    @Test func unknownOptionIsAUsageError() throws {
        let r = try Warden.run(["run", "wordcount", "--foo"])
        #expect(r.status == 64)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.hasPrefix("warden: unknown option '--foo'\nUsage: warden run PLUGIN[.TOOL][@V]"))
        #expect(r.stderr.hasSuffix("  See 'warden run --help' for more information.\n"))
    }

    @Test func unknownCommandAndMissingArgument() throws {
        let u = try Warden.run(["frobnicate"])
        #expect(u.status == 64)
        #expect(u.stderr.hasPrefix("warden: unknown command 'frobnicate'\n"))
        let m = try Warden.run(["status"])
        #expect(m.status == 64)
        #expect(m.stderr.hasPrefix("warden: missing argument (ID)\nUsage: warden status ID [--json]\n"))
        let g = try Warden.run(["plugin"])
        #expect(g.status == 64)
        #expect(g.stderr.hasPrefix("warden: 'plugin' needs a subcommand (one of: register, list, show, remove)"))
    }

    @Test func malformedValuesOnTheCommandLineAre64InFilesAre65() throws {
        let state = try Warden.freshState()
        let cpu = try Warden.run(["run", "x", "--cpu", "12Zi"], state: state)
        #expect(cpu.status == 64)
        #expect(cpu.stderr == "warden: --cpu: invalid CPU quantity \"12Zi\" (expected cores like \"2\" or \"0.5\", or millicores like \"500m\")\n")
        let timeout = try Warden.run(["wait", "t1", "--timeout", "soon"], state: state)
        #expect(timeout.status == 64)
        #expect(timeout.stderr.contains("--timeout: invalid duration \"soon\""))
        let json = try Warden.run(["run", "x", "--input", "{bad"], state: state)
        #expect(json.status == 65)
        #expect(json.stderr.hasPrefix("warden: --input: invalid JSON"))
    }

    @Test func unknownIdsAre66() throws {
        let state = try Warden.freshState()
        let s = try Warden.run(["status", "t00000000000000000"], state: state)
        #expect(s.status == 66)
        #expect(s.stderr == "warden: unknown task \"t00000000000000000\"\n")
        let p = try Warden.run(["run", "nosuchplugin"], state: state)
        #expect(p.status == 66)
        #expect(p.stderr.hasPrefix("warden: unknown plugin \"nosuchplugin\""))
        let noState = try Warden.run(["tasks"], state: "/tmp/warden-no-such-state-\(UUID().uuidString)")
        #expect(noState.status == 66)
        #expect(noState.stderr.contains("run `warden init` first"))
    }

    @Test func globalOptionsGoBeforeOrAfter() throws {
        let state = try Warden.freshState()
        let a = try Warden.run(["--json", "--state", state, "tasks"])
        let b = try Warden.run(["tasks", "--state", state, "--json"])
        #expect(a.status == 0 && b.status == 0)
        #expect(a.stdout == "[\n\n]\n" || a.stdout == "[]\n")
        #expect(a.stdout == b.stdout)
    }
}
