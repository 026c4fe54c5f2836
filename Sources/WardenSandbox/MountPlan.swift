import CWardenLinux
import Glibc
import WardenCore
import WardenSystem

/// The new root, decided in the parent. Every mount point and symlink lives in a *skeleton* directory on
/// the host, made once per distinct layout and reused (content-addressed by the layout). The child binds the
/// skeleton onto itself, mounts into it, pivots into it and remounts it read-only: it creates nothing, so it
/// needs no writable root and cannot leave anything behind.
struct MountPlan {
    enum Kind: Equatable {
        case bindReadOnly, bindWritable, device, tmpfs, proc
        case symlink(String)
        case directory
    }

    struct Entry {
        var kind: Kind
        var isFile = false
        var source: String?
        var target: String
        var data: String?
    }

    var entries: [Entry] = []
    var cwd = "/"
    var hasMountNamespace = true
    var skeleton = ""

    static let devices = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]

    static func build(_ spec: SandboxSpec, limits: SandboxProfile.Limits) throws(WardenError) -> MountPlan {
        var plan = MountPlan()
        let profile = spec.profile.profile
        guard profile.namespaces.contains(.mount) else {
            plan.hasMountNamespace = false
            plan.cwd = spec.cwd ?? spec.pluginDir ?? FS.cwd()
            return plan
        }
        // One stat per profile path (a one-shot command plans about twenty of them).
        for b in profile.rootfs.readOnly {
            // A symlink among the profile's system paths (/bin → usr/bin on merged-/usr systems) stays a symlink.
            let sameName = b.source == b.target
            guard let mode = sameName ? FS.lstatMode(b.source) : FS.statMode(b.source) else { continue }   // e.g. /lib32
            if mode & S_IFMT == S_IFLNK {
                if let link = FS.readlink(b.source) { plan.entries.append(Entry(kind: .symlink(link), target: b.target)) }
                continue
            }
            plan.entries.append(Entry(kind: .bindReadOnly, isFile: mode & S_IFMT != S_IFDIR, source: b.source, target: b.target))
        }
        for b in profile.rootfs.readWrite {
            guard let mode = FS.statMode(b.source) else { continue }
            plan.entries.append(Entry(kind: .bindWritable, isFile: mode & S_IFMT != S_IFDIR, source: b.source, target: b.target))
        }
        let tmpSize = limits.memoryBytes.map { ",size=\($0)" } ?? ""
        for t in profile.rootfs.tmpfs {
            plan.entries.append(Entry(kind: .tmpfs, target: t, data: "mode=1777\(tmpSize)"))
        }
        if profile.rootfs.proc && profile.namespaces.contains(.pid) {
            plan.entries.append(Entry(kind: .proc, target: "/proc"))
        }
        if profile.rootfs.dev == .minimal {
            plan.entries.append(Entry(kind: .directory, target: "/dev"))
            for d in devices where FS.exists(d) {
                plan.entries.append(Entry(kind: .device, isFile: true, source: d, target: d))
            }
            for (name, link) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
                plan.entries.append(Entry(kind: .symlink(link), target: "/dev/\(name)"))
            }
            plan.entries.append(Entry(kind: .tmpfs, target: "/dev/shm", data: "mode=1777\(tmpSize)"))
        }
        if let dir = spec.pluginDir {
            plan.bind(BindSpec(source: dir, target: "/plugin"), .bindReadOnly)
            plan.cwd = "/plugin"
        }
        // Extra binds, shallow targets first so a bind inside another lands on top of it.
        if !spec.roBinds.isEmpty || !spec.binds.isEmpty {
            let extra = (spec.roBinds.map { ($0, Kind.bindReadOnly) } + spec.binds.map { ($0, Kind.bindWritable) })
                .enumerated().sorted { a, b in
                    let da = a.element.0.target.split(separator: "/").count, db = b.element.0.target.split(separator: "/").count
                    return da != db ? da < db : a.offset < b.offset
                }
            for (_, (b, kind)) in extra {
                guard FS.exists(b.source) else { throw WardenError(.noInput, "bind source \(quoted(b.source)) does not exist") }
                plan.bind(b, kind)
            }
        }
        if let c = spec.cwd { plan.cwd = c }
        plan.skeleton = try Skeleton.ensure(plan.entries)
        return plan
    }

    mutating func bind(_ b: BindSpec, _ kind: Kind) {
        entries.append(Entry(kind: kind, isFile: !FS.isDirectory(b.source), source: b.source, target: b.target))
    }

    /// The entries the child mounts (symlinks and directories are already in the skeleton).
    func cMounts(_ arena: CArena) -> (mounts: [warden_mount], indices: [Int]) {
        var out: [warden_mount] = []
        var idx: [Int] = []
        for (i, e) in entries.enumerated() {
            let kind: warden_mount_kind
            switch e.kind {
            case .bindReadOnly: kind = WARDEN_MOUNT_BIND_RO
            case .bindWritable: kind = WARDEN_MOUNT_BIND_RW
            case .device: kind = WARDEN_MOUNT_DEV
            case .tmpfs: kind = WARDEN_MOUNT_TMPFS
            case .proc: kind = WARDEN_MOUNT_PROC
            case .symlink, .directory: continue
            }
            out.append(warden_mount(kind: Int32(kind.rawValue), source: e.source.map { arena.cString($0) },
                                    target: arena.cString(e.target), data: e.data.map { arena.cString($0) }))
            idx.append(i)
        }
        return (out, idx)
    }

    /// The host path that an inside path shows, following the plan's binds and symlinks; nil if none.
    func hostPath(_ inside: String) -> String? {
        guard hasMountNamespace else { return inside }
        var path = FS.absolute(inside)
        for _ in 0..<8 {
            var best: Entry?
            for e in entries where path == e.target || path.hasPrefix(e.target == "/" ? "/" : e.target + "/") {
                if best == nil || e.target.count >= best!.target.count { best = e }
            }
            guard let e = best else { return nil }
            let rest = String(path.dropFirst(e.target.count))
            switch e.kind {
            case .symlink(let link):
                path = FS.absolute(link.hasPrefix("/") ? link + rest : FS.dirname(e.target) + "/" + link + rest)
            case .bindReadOnly, .bindWritable, .device:
                return (e.source ?? "") + rest
            default:
                return nil
            }
        }
        return nil
    }

    /// The inside path to exec: argv0 as given when it has a slash (relative to the working directory),
    /// else the first PATH entry whose host counterpart is executable.
    func resolveExecutable(_ argv0: String, cwd: String, path: String) throws(WardenError) -> String {
        if argv0.contains("/") { return argv0.hasPrefix("/") ? argv0 : FS.absolute(argv0, base: cwd) }
        for dir in path.split(separator: ":") where dir.hasPrefix("/") {
            let candidate = "\(dir)/\(argv0)"
            if let host = hostPath(candidate), FS.isExecutable(host) { return candidate }
        }
        throw WardenError(.osError, "sandbox setup failed at execve \(argv0): ENOENT (command not found on the sandbox PATH \(path))",
                          hint: "give a full path, or bind the directory that holds it with --ro-bind")
    }
}

/// Content-addressed root skeletons under /run/warden/skel (root) or /tmp/warden-UID/skel.
enum Skeleton {
    static var top: String { geteuid() == 0 ? "/run/warden" : "/tmp/warden-\(geteuid())" }
    static var base: String { top + "/skel" }

    /// A skeleton is reused as found, and becomes the sandbox's root: whoever can write into it decides what
    /// the sandbox sees (say /etc/ld.so.preload). /tmp/warden-UID is a predictable name in a world-writable
    /// directory, so another local user could make it first. Both levels must be real directories of ours
    /// that nobody else can write.
    static func checkPrivate(_ dir: String) throws(WardenError) {
        var st = stat()
        guard lstat(dir, &st) == 0 else { throw Errno.current.error("lstat \(dir)") }
        guard st.st_mode & S_IFMT == S_IFDIR, st.st_uid == geteuid(), st.st_mode & 0o022 == 0 else {
            throw WardenError(.osError, "refusing the sandbox skeleton directory \(dir): it must be a directory owned by uid \(geteuid()) that no one else can write (owner \(st.st_uid), mode \(String(st.st_mode & 0o7777, radix: 8)))",
                              hint: "remove it; Warden makes it again")
        }
    }

    /// The skeleton directory for these entries, created (atomically, by rename) when missing.
    static func ensure(_ entries: [MountPlan.Entry]) throws(WardenError) -> String {
        var items: [(String, String)] = []   // (target, "d" | "f" | "l:<text>")
        for e in entries {
            switch e.kind {
            case .symlink(let text): items.append((e.target, "l:\(text)"))
            case .bindReadOnly, .bindWritable, .device: items.append((e.target, e.isFile ? "f" : "d"))
            case .tmpfs, .proc, .directory: items.append((e.target, "d"))
            }
        }
        // Never create through a symlink: an absolute link would lead out of the skeleton onto the host.
        let links = items.filter { $0.1.hasPrefix("l:") }.map(\.0)
        items = items.filter { item in !links.contains { item.0.hasPrefix($0 + "/") } }
        let layout = items.map { "\($0.0)\u{0}\($0.1)" }.joined(separator: "\n")
        let path = "\(base)/\(SHA256.hex(layout).prefix(24))"
        // Checked on every launch (two lstat calls): a directory swapped in later must not be trusted either.
        try FS.mkdirs(base, mode: 0o755)
        try checkPrivate(top)
        try checkPrivate(base)
        if FS.isDirectory(path) { return path }
        let tmp = "\(base)/.tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        FS.removeTree(tmp)
        try FS.mkdirs(tmp, mode: 0o755)
        for (target, type) in items {
            let full = tmp + target
            if type == "d" {
                try FS.mkdirs(full, mode: 0o755)
            } else {
                try FS.mkdirs(FS.dirname(full), mode: 0o755)
                if FS.lstatMode(full) != nil { continue }   // a deeper entry already made it
                if type == "f" {
                    let fd = open(full, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
                    guard fd >= 0 else { throw Errno.current.error("create \(full)") }
                    close(fd)
                } else if symlink(String(type.dropFirst(2)), full) != 0 {
                    throw Errno.current.error("symlink \(full)")
                }
            }
        }
        chmod(tmp, 0o755)
        if rename(tmp, path) != 0 {
            // Someone else made the same skeleton first: theirs is as good as ours.
            FS.removeTree(tmp)
            guard FS.isDirectory(path) else { throw Errno.current.error("rename \(tmp)") }
        }
        return path
    }
}
