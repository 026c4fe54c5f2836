import Glibc
import WardenCore
import WardenStore
import WardenSystem

/// `warden` is linked statically, so it starts in about a millisecond; it cannot dlopen (see SelfExecutable).
/// The commands that may load a library — plugin libraries hosted in-process or in a plugin-host worker,
/// libpq for a PostgreSQL store — are handed to `warden-dynamic` with the same arguments, before they have
/// done anything. The choice is made here and nowhere else.
enum Linkage {
    /// Why `cmd` must run in the dynamic build, or nil when this process can run it.
    static func reasonForDynamic(_ cmd: Command, storeURL: String?) -> String? {
        guard SelfExecutable.isStatic else { return nil }
        if cmd.loadsLibraries { return "`warden \(cmd.name)` may load plugin libraries" }
        if cmd.usesStore && Store.isPostgres(storeURL) { return "a PostgreSQL store needs libpq" }
        return nil
    }

    /// Replaces this process with the dynamic build. Returns only on failure, with the exit code.
    static func execDynamic(_ argv: [String], because why: String) -> Int32 {
        guard let twin = SelfExecutable.dynamic else {
            Out.err("warden: \(why), which a statically linked warden cannot load, and \(SelfExecutable.dynamicName) is not next to it (\(SelfExecutable.path.map(FS.dirname) ?? "?")) (hint: install warden and \(SelfExecutable.dynamicName) side by side)")
            return ExitCode.internalError.rawValue
        }
        Out.flush()
        var cArgs = argv.map { strdup($0) }
        cArgs.append(nil)
        execv(twin, cArgs)
        Out.err("warden: exec \(twin): \(Errno.current)")
        return ExitCode.osError.rawValue
    }
}
