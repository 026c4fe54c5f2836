import CWardenLinux
import Glibc
import WardenCore


/// Limits a per-task cgroup enforces. `nil` means unlimited.
public struct CgroupLimits: Sendable, Hashable {
    public var cpuMillis: Int64?
    public var memoryBytes: Int64?
    public var pids: Int64?
    public init(cpuMillis: Int64? = nil, memoryBytes: Int64? = nil, pids: Int64? = nil) {
        self.cpuMillis = cpuMillis
        self.memoryBytes = memoryBytes
        self.pids = pids
    }
    /// Names of the limits that are set ("cpu", "memory", "pids").
    public var requested: Set<String> {
        var s: Set<String> = []
        if cpuMillis != nil { s.insert("cpu") }
        if memoryBytes != nil { s.insert("memory") }
        if pids != nil { s.insert("pids") }
        return s
    }
}

/// What the kernel counted for one task's cgroup.
public struct CgroupStats: Sendable, Hashable {
    public var memoryPeakBytes: Int64?
    public var oomKills: Int64 = 0
    public var pidsLimitHits: Int64 = 0
    public var cpuUsageNs: Int64?
    public init() {}
}

public enum CgroupVersion: String, Sendable { case v1, v2, none }

/// One task's cgroup (in each v1 hierarchy, or one v2 directory).
public protocol TaskCgroup: AnyObject, Sendable {
    /// v2: an O_PATH directory fd for CLONE_INTO_CGROUP, else -1.
    var dirFD: Int32 { get }
    /// Open `cgroup.procs` files the launcher writes the child's pid into (v2 without CLONE_INTO_CGROUP).
    var procsFDs: [Int32] { get }
    /// v1: open `tasks` files the child itself writes "0" into before anything else. Moving a pid through
    /// cgroup.procs takes the kernel's global threadgroup rwsem for writing, an RCU grace period (10-17 ms
    /// per spawn here); a single thread moving itself does not (cgroup_procs_write_start).
    var selfAttachFDs: [Int32] { get }
    func stats() -> CgroupStats
    /// Kills every process in the cgroup (v2 `cgroup.kill`; v1 SIGKILL to each listed pid until empty).
    func killAll()
    /// Removes the cgroup directories and closes the fds. Safe to call twice.
    func destroy()
}

/// Creates per-task cgroups. `enforceable` says which limits this host can enforce.
public protocol CgroupDriver: Sendable {
    var version: CgroupVersion { get }
    var enforceable: Set<String> { get }
    /// Where Warden's task cgroups live (one path per hierarchy), for messages and tests.
    var bases: [String] { get }
    func create(name: String, limits: CgroupLimits) throws(WardenError) -> TaskCgroup
    /// Removes leftover task cgroups of Warden processes that no longer run (a crash, a kill -9).
    @discardableResult func sweep() -> Int
}

public enum Cgroups {
    /// A unique cgroup name owned by this process: `w<pid>-<n>`. `sweep` uses the pid to find orphans.
    public static func taskName(_ n: Int) -> String { "w\(getpid())-\(n)" }

    /// Picks the driver for this host: v2 when the unified hierarchy has the memory, pids and cpu
    /// controllers, else v1 when its hierarchies are mounted, else none. `WARDEN_CGROUP=v1|v2|none` overrides.
    public static func detect(mountInfo: String? = nil, selfCgroup: String? = nil) -> CgroupDriver {
        let own = selfCgroup ?? (try? FS.readText("/proc/self/cgroup")) ?? ""
        let paths = parseSelfCgroup(own)
        let mounts = mountInfo.map(parseMounts) ?? standardMounts(selfCgroup: paths)
            ?? parseMounts((try? FS.readText("/proc/self/mountinfo")) ?? "")
        let forced = FS.env("WARDEN_CGROUP")
        if forced == "none" { return NoCgroups() }
        if let v2 = mounts.first(where: { $0.fstype == "cgroup2" }) {
            let driver = CgroupV2(mountPoint: v2.mountPoint, ownPath: paths["0::"] ?? "/")
            if forced == "v2" || (forced == nil && driver.enforceable.isSuperset(of: ["memory", "pids", "cpu"])) {
                return driver
            }
        }
        var hierarchies: [String: String] = [:]   // controller → base dir
        for m in mounts where m.fstype == "cgroup" {
            for c in m.superOptions where ["memory", "pids", "cpu", "cpuacct"].contains(c) {
                let key = m.superOptions.filter { !["rw", "ro"].contains($0) }.sorted().joined(separator: ",")
                let own = paths[key] ?? paths.first(where: { $0.key.split(separator: ",").contains(Substring(c)) })?.value ?? "/"
                hierarchies[c] = m.mountPoint + (own == "/" ? "" : own)
            }
        }
        if !hierarchies.isEmpty && forced != "v2" { return CgroupV1(hierarchies: hierarchies) }
        return NoCgroups()
    }

    struct Mount { var mountPoint: String; var fstype: String; var superOptions: [String] }

    /// The cgroup mounts of the usual layout (systemd, Docker): a cgroup2 file system at /sys/fs/cgroup, or a
    /// tmpfs there holding `unified` and one v1 hierarchy per line of /proc/self/cgroup, named after its
    /// controllers ("cpu,cpuacct"). Found with a few statfs calls instead of reading /proc/self/mountinfo,
    /// which the kernel formats mount by mount (50-100 µs, a fifth of a one-shot spawn's cgroup work). nil when
    /// the host is laid out otherwise: then mountinfo decides.
    static func standardMounts(_ root: String = "/sys/fs/cgroup", selfCgroup paths: [String: String]) -> [Mount]? {
        let cgroup2: Int = 0x6367_7270, cgroup1: Int = 0x0027_e0eb, tmpfs: Int = 0x0102_1994   // linux/magic.h
        func type(_ path: String) -> Int { warden_fs_type(path) }
        switch type(root) {
        case cgroup2: return [Mount(mountPoint: root, fstype: "cgroup2", superOptions: [])]
        case tmpfs: break
        default: return nil
        }
        var out: [Mount] = []
        if type(root + "/unified") == cgroup2 { out.append(Mount(mountPoint: root + "/unified", fstype: "cgroup2", superOptions: [])) }
        for key in paths.keys where key != "0::" {
            let controllers = key.split(separator: ",").map(String.init)
            guard controllers.contains(where: { ["memory", "pids", "cpu", "cpuacct"].contains($0) }) else { continue }
            guard type("\(root)/\(key)") == cgroup1 else { return nil }
            out.append(Mount(mountPoint: "\(root)/\(key)", fstype: "cgroup", superOptions: controllers))
        }
        return out
    }

    /// `/proc/self/mountinfo` lines: "36 35 98:0 /root /mnt rw,noatime master:1 - cgroup cgroup rw,memory".
    /// Fields are separated by single spaces (a space inside a path is written \040), so the line is split
    /// as bytes: splitting Strings by Character cost a tenth of a millisecond on every one-shot spawn.
    static func parseMounts(_ text: String) -> [Mount] {
        var out: [Mount] = []
        let space = UInt8(ascii: " "), dash = Array("-".utf8)
        for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: space)
            guard let sep = fields.firstIndex(where: { $0.elementsEqual(dash) }), sep >= 5, fields.count >= sep + 4 else { continue }
            out.append(Mount(mountPoint: String(decoding: fields[4], as: UTF8.self),
                             fstype: String(decoding: fields[sep + 1], as: UTF8.self),
                             superOptions: fields[sep + 3].split(separator: UInt8(ascii: ",")).map { String(decoding: $0, as: UTF8.self) }))
        }
        return out
    }

    /// `/proc/self/cgroup`: "4:memory:/user.slice" → ["memory": "/user.slice"], "0::/x" → ["0::": "/x"].
    /// Split as bytes, like `parseMounts`.
    static func parseSelfCgroup(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
            let parts = line.split(separator: UInt8(ascii: ":"), maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(decoding: parts[2], as: UTF8.self)
            if parts[0].elementsEqual("0".utf8) && parts[1].isEmpty { out["0::"] = path } else {
                let controllers = parts[1].split(separator: UInt8(ascii: ",")).map { String(decoding: $0, as: UTF8.self) }
                out[controllers.sorted().joined(separator: ",")] = path
            }
        }
        return out
    }

    /// A control file holding one number ("123\n"). Parsed as bytes: generic String trimming and splitting
    /// cost a tenth of a millisecond on first use, on every one-shot spawn's way out.
    static func readInt(_ path: String) -> Int64? {
        guard let bytes = try? FS.readFile(path, limit: 4096) else { return nil }
        return parseInt(bytes[...])
    }

    /// The value of `key` in a flat keyed file ("oom_kill 3").
    static func readKey(_ path: String, _ key: String) -> Int64? {
        guard let bytes = try? FS.readFile(path, limit: 1 << 16) else { return nil }
        let want = Array(key.utf8)
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            let kv = line.split(separator: UInt8(ascii: " "))
            if kv.count == 2 && kv[0].elementsEqual(want) { return parseInt(kv[1]) }
        }
        return nil
    }

    /// A decimal integer, optionally negative, between ASCII blanks; nil for anything else.
    static func parseInt(_ bytes: ArraySlice<UInt8>) -> Int64? {
        let blank: (UInt8) -> Bool = { $0 == 32 || $0 == 10 || $0 == 9 || $0 == 13 }
        guard let first = bytes.firstIndex(where: { !blank($0) }), let last = bytes.lastIndex(where: { !blank($0) }) else { return nil }
        var i = first
        let negative = bytes[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        guard i <= last else { return nil }
        var v: Int64 = 0
        while i <= last {
            let d = bytes[i]
            guard d >= 48 && d <= 57 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (n, o2) = m.addingReportingOverflow(Int64(d - 48))
            guard !o1 && !o2 else { return nil }
            v = n
            i += 1
        }
        return negative ? -v : v
    }

    /// Writes a control file. Never O_CREAT: cgroupfs makes every file itself, and a missing one means the
    /// controller is missing (an error), not a file to invent.
    static func write(_ path: String, _ value: String) throws(WardenError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Errno.current.error("open \(path)") }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n != bytes.count { throw Errno.current.error("write \(quoted(value)) to \(path)") }
    }

    /// rmdir with a few retries: a cgroup stays busy for a moment after its last process is reaped.
    /// True when the directory is gone.
    @discardableResult static func removeDir(_ path: String) -> Bool {
        for attempt in 0..<50 {
            if rmdir(path) == 0 || errno == ENOENT { return true }
            if errno != EBUSY { return false }
            usleep(useconds_t(min(1000 * (attempt + 1), 20_000)))
        }
        return false
    }

    static func pidsIn(_ procsFile: String) -> [pid_t] {
        ((try? FS.readText(procsFile)) ?? "").split(separator: "\n").compactMap { pid_t($0) }
    }

    /// True when the process that created `name` (w<pid>-n) is gone.
    static func isOrphan(_ name: String) -> Bool {
        guard name.hasPrefix("w"), let dash = name.firstIndex(of: "-"),
              let pid = pid_t(name[name.index(after: name.startIndex)..<dash]) else { return false }
        if pid == getpid() { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }
}

/// No cgroups (or none usable): nothing is enforceable.
public final class NoCgroups: CgroupDriver {
    public init() {}
    public var version: CgroupVersion { .none }
    public var enforceable: Set<String> { [] }
    public var bases: [String] { [] }
    public func create(name: String, limits: CgroupLimits) throws(WardenError) -> TaskCgroup { EmptyCgroup() }
    public func sweep() -> Int { 0 }
}

final class EmptyCgroup: TaskCgroup {
    var dirFD: Int32 { -1 }
    var procsFDs: [Int32] { [] }
    var selfAttachFDs: [Int32] { [] }
    func stats() -> CgroupStats { CgroupStats() }
    func killAll() {}
    func destroy() {}
}

// MARK: - v1

/// cgroup v1: one directory per task in each of the memory, pids, cpu and cpuacct hierarchies.
public final class CgroupV1: CgroupDriver {
    /// controller → directory holding Warden's task cgroups (`…/memory/warden`).
    public let dirs: [String: String]

    public init(hierarchies: [String: String]) {
        var d: [String: String] = [:]
        for (c, base) in hierarchies { d[c] = base + "/warden" }
        dirs = d
        for dir in Set(d.values) { try? FS.mkdirs(dir) }
        var e: Set<String> = []
        if let m = d["memory"], FS.exists(m + "/memory.limit_in_bytes") { e.insert("memory") }
        if let p = d["pids"], FS.exists(p + "/pids.max") || FS.isDirectory(p) { e.insert("pids") }
        if let c = d["cpu"], FS.exists(c + "/cpu.cfs_quota_us") { e.insert("cpu") }
        enforceable = e
    }

    public var version: CgroupVersion { .v1 }
    public var bases: [String] { Array(Set(dirs.values)).sorted() }

    /// Looked at once, in init: the launcher asks on every spawn.
    public let enforceable: Set<String>

    public func create(name: String, limits: CgroupLimits) throws(WardenError) -> TaskCgroup {
        let cg = V1Task()
        do throws(WardenError) {
            for dir in Set(dirs.values).sorted() {
                let path = "\(dir)/\(name)"
                if mkdir(path, 0o755) != 0 && errno != EEXIST { throw Errno.current.error("mkdir \(path)") }
                cg.paths.append(path)
            }
            if let m = dirs["memory"] {
                cg.memory = "\(m)/\(name)"
                if let mem = limits.memoryBytes {
                    try Cgroups.write("\(m)/\(name)/memory.limit_in_bytes", String(mem))
                    // No swap: the limit must be the real limit. The file exists only with swap accounting.
                    if FS.exists("\(m)/\(name)/memory.memsw.limit_in_bytes") {
                        try Cgroups.write("\(m)/\(name)/memory.memsw.limit_in_bytes", String(mem))
                    }
                }
            }
            if let p = dirs["pids"] {
                cg.pids = "\(p)/\(name)"
                if let n = limits.pids { try Cgroups.write("\(p)/\(name)/pids.max", String(n)) }
            }
            if let c = dirs["cpu"], let cpu = limits.cpuMillis {
                try Cgroups.write("\(c)/\(name)/cpu.cfs_period_us", "100000")
                try Cgroups.write("\(c)/\(name)/cpu.cfs_quota_us", String(max(1000, cpu * 100)))
            }
            if let a = dirs["cpuacct"] { cg.cpuacct = "\(a)/\(name)" }
            for path in cg.paths {
                let fd = open("\(path)/tasks", O_WRONLY | O_CLOEXEC)
                guard fd >= 0 else { throw Errno.current.error("open \(path)/tasks") }
                cg.selfAttachFDs.append(fd)
            }
        } catch {
            cg.destroy()
            throw error
        }
        return cg
    }

    public func sweep() -> Int {
        var removed = 0
        for dir in Set(dirs.values) {
            for name in (try? FS.list(dir)) ?? [] where FS.isDirectory("\(dir)/\(name)") && Cgroups.isOrphan(name) {
                let path = "\(dir)/\(name)"
                for _ in 0..<20 {
                    let pids = Cgroups.pidsIn("\(path)/cgroup.procs")
                    if pids.isEmpty { break }
                    for p in pids { kill(p, SIGKILL) }
                    usleep(5000)
                }
                if Cgroups.removeDir(path) { removed += 1 }
            }
        }
        return removed
    }
}

final class V1Task: TaskCgroup, @unchecked Sendable {
    var paths: [String] = []
    var procsFDs: [Int32] { [] }
    var selfAttachFDs: [Int32] = []
    var memory: String?
    var pids: String?
    var cpuacct: String?
    var dirFD: Int32 { -1 }
    private var destroyed = false

    func stats() -> CgroupStats {
        var s = CgroupStats()
        if let m = memory {
            s.memoryPeakBytes = Cgroups.readInt("\(m)/memory.max_usage_in_bytes")
            s.oomKills = Cgroups.readKey("\(m)/memory.oom_control", "oom_kill") ?? 0
        }
        if let p = pids { s.pidsLimitHits = Cgroups.readKey("\(p)/pids.events", "max") ?? 0 }
        if let a = cpuacct { s.cpuUsageNs = Cgroups.readInt("\(a)/cpuacct.usage") }
        return s
    }

    func killAll() {
        for _ in 0..<50 {
            var any = false
            for path in paths {
                for p in Cgroups.pidsIn("\(path)/cgroup.procs") {
                    kill(p, SIGKILL)
                    any = true
                }
            }
            if !any { return }
            usleep(2000)
        }
    }

    func destroy() {
        if destroyed { return }
        destroyed = true
        for fd in selfAttachFDs { close(fd) }
        selfAttachFDs = []
        for path in paths { Cgroups.removeDir(path) }
    }

    deinit { destroy() }
}

// MARK: - v2

/// cgroup v2 (kernel docs: Documentation/admin-guide/cgroup-v2.rst): one directory per task under
/// `<own cgroup>/warden`, limits in memory.max / pids.max / cpu.max, `cgroup.kill`, CLONE_INTO_CGROUP.
public final class CgroupV2: CgroupDriver {
    public let root: String          // <mount><own path>
    public let base: String          // root + "/warden"

    /// `mountPoint` may be a fake directory tree in tests.
    public init(mountPoint: String, ownPath: String, prepare: Bool = true) {
        root = mountPoint + (ownPath == "/" ? "" : ownPath)
        base = root + "/warden"
        let t = (try? FS.readText("\(root)/cgroup.controllers")) ?? ""
        enforceable = Set(t.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)).intersection(["memory", "pids", "cpu"])
        if prepare { self.prepare() }
    }

    public var version: CgroupVersion { .v2 }
    public var bases: [String] { [base] }

    public var controllers: Set<String> {
        let t = (try? FS.readText("\(root)/cgroup.controllers")) ?? ""
        return Set(t.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }

    /// Read once, in init: the launcher asks on every spawn.
    public let enforceable: Set<String>

    /// Creates `warden/` and enables the controllers for its children. A non-root cgroup with processes in it
    /// cannot delegate controllers ("no internal processes"), so our own process moves to a leaf first.
    func prepare() {
        let wanted = enforceable
        guard !wanted.isEmpty else { return }
        try? FS.mkdirs(base)
        let enable = wanted.sorted().map { "+\($0)" }.joined(separator: " ")
        if (try? Cgroups.write("\(root)/cgroup.subtree_control", enable)) == nil {
            let leaf = "\(root)/warden.supervisor"
            try? FS.mkdirs(leaf)
            try? Cgroups.write("\(leaf)/cgroup.procs", String(getpid()))
            try? Cgroups.write("\(root)/cgroup.subtree_control", enable)
        }
        try? Cgroups.write("\(base)/cgroup.subtree_control", enable)
    }

    public func create(name: String, limits: CgroupLimits) throws(WardenError) -> TaskCgroup {
        let path = "\(base)/\(name)"
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw Errno.current.error("mkdir \(path)") }
        let cg = V2Task(path: path)
        do throws(WardenError) {
            if let m = limits.memoryBytes {
                try Cgroups.write("\(path)/memory.max", String(m))
                if FS.exists("\(path)/memory.swap.max") { try Cgroups.write("\(path)/memory.swap.max", "0") }
            }
            if let p = limits.pids { try Cgroups.write("\(path)/pids.max", String(p)) }
            if let c = limits.cpuMillis { try Cgroups.write("\(path)/cpu.max", "\(max(1000, c * 100)) 100000") }
            cg.dirFD = open(path, Int32(WARDEN_O_PATH) | O_DIRECTORY | O_CLOEXEC)
            guard cg.dirFD >= 0 else { throw Errno.current.error("open \(path)") }
            let procs = open("\(path)/cgroup.procs", O_WRONLY | O_CLOEXEC)
            if procs >= 0 { cg.procsFDs = [procs] }
        } catch {
            cg.destroy()
            throw error
        }
        return cg
    }

    public func sweep() -> Int {
        var removed = 0
        for name in (try? FS.list(base)) ?? [] where FS.isDirectory("\(base)/\(name)") && Cgroups.isOrphan(name) {
            let path = "\(base)/\(name)"
            if (try? Cgroups.write("\(path)/cgroup.kill", "1")) == nil {
                for p in Cgroups.pidsIn("\(path)/cgroup.procs") { kill(p, SIGKILL) }
            }
            if Cgroups.removeDir(path) { removed += 1 }
        }
        return removed
    }
}

final class V2Task: TaskCgroup, @unchecked Sendable {
    let path: String
    var dirFD: Int32 = -1
    var procsFDs: [Int32] = []
    var selfAttachFDs: [Int32] { [] }
    private var destroyed = false

    init(path: String) { self.path = path }

    func stats() -> CgroupStats {
        var s = CgroupStats()
        s.memoryPeakBytes = Cgroups.readInt("\(path)/memory.peak")
        s.oomKills = Cgroups.readKey("\(path)/memory.events", "oom_kill") ?? 0
        s.pidsLimitHits = Cgroups.readKey("\(path)/pids.events", "max") ?? 0
        if let us = Cgroups.readKey("\(path)/cpu.stat", "usage_usec") { s.cpuUsageNs = us * 1000 }
        return s
    }

    func killAll() {
        if (try? Cgroups.write("\(path)/cgroup.kill", "1")) != nil { return }
        for _ in 0..<50 {
            let pids = Cgroups.pidsIn("\(path)/cgroup.procs")
            if pids.isEmpty { return }
            for p in pids { kill(p, SIGKILL) }
            usleep(2000)
        }
    }

    func destroy() {
        if destroyed { return }
        destroyed = true
        if dirFD >= 0 { close(dirFD) }
        for fd in procsFDs { close(fd) }
        dirFD = -1
        procsFDs = []
        Cgroups.removeDir(path)
    }

    deinit { destroy() }
}
