import Glibc
import WardenCore
import WardenSandbox
import WardenStore
import WardenSystem

/// Registration's check of a dylib, before anything loads it outside a sandbox: `warden plugin-host --probe`
/// in a throw-away child in the plugin's own sandbox does dlopen(RTLD_NOW), finds the entry symbol, checks
/// the ABI version, runs `init` once and lists the tools. A library that crashes or hangs in a constructor,
/// speaks another ABI, lacks the entry point, has unresolved symbols or disagrees with its manifest about
/// its tools is refused with one line naming the manifest field (exit 65).
public enum DylibProbe {
    /// Loading and init must finish within this.
    public static let timeoutMs: Int64 = 15_000

    public static func run(_ plugin: PluginRecord, host: HostBinary, sandbox: Sandbox = .shared) throws(WardenError) -> [PluginManifest.Tool] {
        let manifestPath = "\(plugin.dir)/\(PluginManifest.fileName)"
        let lib = plugin.manifest.library ?? ""
        var spec = try pluginHostSpec(plugin, host: host, args: [])
        spec.argv = [spec.argv[0], "plugin-host", "--probe", "--library", libraryPathInside(plugin, spec: spec)]
        spec.stdin = .bytes(plugin.manifest.config.canonicalBytes)
        spec.wallMs = timeoutMs
        let out = sandbox.run(spec)
        func refuse(_ why: String) -> WardenError {
            WardenError.invalid("\(manifestPath): $.library", "\(quoted(lib)) \(why)")
        }
        if let e = out.setupError {
            throw WardenError(e.code, "\(manifestPath): the probe of \(quoted(lib)) could not start: \(e.message)", hint: e.hint)
        }
        let r = out.report
        let reply = try? JSONValue.parse(out.stdout)
        switch r.reason {
        case "exited" where r.exitCode == 0 && reply?["ok"]?.boolValue == true:
            break
        case "exited" where reply?["ok"]?.boolValue == false:
            throw refuse(reply?["message"]?.stringValue ?? "cannot be used")
        case "exited":
            throw refuse("ended the probe with exit status \(r.exitCode ?? -1) while loading (a constructor or init called exit?)\(ProcessExecutor.tail(out.stderr))")
        case "signaled":
            let sig = r.signal ?? 0
            throw refuse("crashed while loading (signal \(sig), \(signalName(sig))): a constructor or init faulted\(ProcessExecutor.tail(out.stderr))")
        case "timeout":
            throw refuse("did not finish loading within \(Quantity.formatDuration(timeoutMs)) (a constructor or init hangs)")
        case "oom":
            throw refuse("ran out of memory while loading (limit \(Quantity.formatBytes(spec.memoryBytes ?? 0)))")
        case "seccomp":
            throw refuse("made a forbidden system call while loading\(r.syscall.map { " (\($0))" } ?? "")")
        default:
            throw refuse("failed to load: \(r.reason)\(ProcessExecutor.tail(out.stderr))")
        }
        // With a tool list from the library, the manifest must match it exactly.
        guard let offered = reply?["tools"]?.arrayValue?.compactMap(\.stringValue) else { return [] }
        let declared = plugin.manifest.tools.map(\.name)
        for (i, name) in declared.enumerated() where !offered.contains(name) {
            throw WardenError.invalid("\(manifestPath): $.tools[\(i)].name",
                                      "the library \(quoted(lib)) does not implement a tool \(quoted(name)) (it offers: \(offered.joined(separator: ", ")))")
        }
        for name in offered where !declared.contains(name) {
            throw WardenError.invalid("\(manifestPath): $.tools",
                                      "the library \(quoted(lib)) offers a tool \(quoted(name)) that the manifest does not declare")
        }
        return plugin.manifest.tools
    }
}
