import CWardenLinux
import Glibc

/// This process's executable, and how it was linked. `warden` is linked statically (it starts three times
/// faster); `warden-dynamic`, next to it, is the same program linked dynamically. Only the dynamic one may
/// dlopen: in a static glibc process, a library that needs libc.so gets a second, uninitialised C library
/// (its own malloc, its own threads' state) — and a Swift plugin a second Swift runtime on top.
public enum SelfExecutable {
    /// The kernel's link already names the file itself (no symlinks left to resolve).
    public static let path: String? = FS.readlink("/proc/self/exe").flatMap { $0.hasSuffix(" (deleted)") ? nil : $0 }

    /// No program interpreter was mapped: a static executable.
    public static let isStatic: Bool = warden_has_interpreter() == 0

    public static let dynamicName = "warden-dynamic"

    /// The dynamically linked build next to this executable: this one when it is dynamic, nil when missing.
    public static var dynamic: String? {
        guard let path else { return nil }
        if !isStatic { return path }
        let twin = FS.dirname(path) + "/" + dynamicName
        return FS.isExecutable(twin) ? twin : nil
    }

    /// Why this process cannot load `what` (nil when it can), for the error of a caller that was not
    /// handed over to the dynamic build.
    public static func cannotLoad(_ what: String) -> String? {
        isStatic ? "\(what) cannot be loaded by a statically linked executable (\(path ?? "?")); \(dynamicName) loads it" : nil
    }
}
