/// A sandbox profile (DESIGN §4), decoded strictly. The `seccomp` section is the OCI/Docker seccomp format
/// (`OCISeccomp`), inline or as a path resolved by the loader.
public struct SandboxProfile: Sendable, Hashable {
    public enum Namespace: String, Sendable, CaseIterable, Hashable { case user, pid, mount, net, ipc, uts, cgroup }
    public enum Network: String, Sendable, Hashable { case none, loopback, host }
    public enum Dev: String, Sendable, Hashable { case minimal, none }

    public struct Rootfs: Sendable, Hashable {
        public var readOnly: [BindSpec] = []
        public var readWrite: [BindSpec] = []
        public var tmpfs: [String] = []
        public var proc = true
        public var dev = Dev.minimal
        public init() {}
    }

    public struct Limits: Sendable, Hashable {
        public var cpuMillis: Int64?
        public var memoryBytes: Int64?
        public var pids: Int64?
        public var wallMs: Int64?
        public var cpuTimeMs: Int64?
        public var nofile: Int64?
        public var fileSizeBytes: Int64?
        public var outputBytes: Int64?
        /// Limits that may go unenforced when the host lacks the controller ("cpu", "memory", "pids"), or all.
        public var bestEffort: Set<String> = []
        public init() {}
        public static let names = ["cpu", "memory", "pids", "wall", "cpuTime", "nofile", "fileSize", "output"]
    }

    public enum Seccomp: Sendable, Hashable {
        case none
        case inline(OCISeccomp)
        case path(String)
    }

    public var name: String
    public var description: String = ""
    public var namespaces: Set<Namespace> = Set(Namespace.allCases)
    public var uid: UInt32 = 65534
    public var gid: UInt32 = 65534
    public var rootfs = Rootfs()
    public var network = Network.none
    public var limits = Limits()
    public var envKeep: [String] = []
    public var envSet: [String: String] = [:]
    public var seccomp = Seccomp.none
    public var hostname = "warden"
    /// Lifts Warden's mandatory seccomp denials. Honoured only for the shipped `trusted` profile.
    public var trusted = false

    public init(name: String) { self.name = name }

    public static func decode(_ json: JSONValue, path: String = "$") throws(WardenError) -> SandboxProfile {
        var r = try JSONObjectReader(json, path: path)
        var p = SandboxProfile(name: try r.requiredString("name"))
        p.description = try r.string("description") ?? ""
        if let ns = try r.stringArray("namespaces") {
            var set: Set<Namespace> = []
            for (i, n) in ns.enumerated() {
                guard let v = Namespace(rawValue: n) else {
                    throw WardenError.invalid("\(path).namespaces[\(i)]", "unknown namespace \(quoted(n)) (one of: \(Namespace.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                set.insert(v)
            }
            p.namespaces = set
        }
        if let u = try r.int("uid") {
            guard u > 0 && u < 4_294_967_295 else { throw WardenError.invalid("\(path).uid", "must be a non-root uid, got \(u)") }
            p.uid = UInt32(u)
        }
        if let g = try r.int("gid") {
            guard g > 0 && g < 4_294_967_295 else { throw WardenError.invalid("\(path).gid", "must be a non-root gid, got \(g)") }
            p.gid = UInt32(g)
        }
        if var fs = try r.object("rootfs") {
            p.rootfs.readOnly = try (fs.stringArray("readOnly") ?? []).enumerated().map { i, s throws(WardenError) in
                try BindSpec(parsing: s, field: "\(fs.child("readOnly"))[\(i)]")
            }
            p.rootfs.readWrite = try (fs.stringArray("readWrite") ?? []).enumerated().map { i, s throws(WardenError) in
                try BindSpec(parsing: s, field: "\(fs.child("readWrite"))[\(i)]")
            }
            p.rootfs.tmpfs = try fs.stringArray("tmpfs") ?? []
            for (i, t) in p.rootfs.tmpfs.enumerated() where !t.hasPrefix("/") || t.split(separator: "/").contains("..") {
                throw WardenError.invalid("\(fs.child("tmpfs"))[\(i)]", "must be an absolute path without '..', got \(quoted(t))")
            }
            p.rootfs.proc = try fs.bool("proc") ?? true
            if let d = try fs.string("dev") {
                guard let v = Dev(rawValue: d) else { throw WardenError.invalid(fs.child("dev"), "unknown dev mode \(quoted(d)) (one of: minimal, none)") }
                p.rootfs.dev = v
            }
            try fs.finish()
        }
        if let n = try r.string("network") {
            guard let v = Network(rawValue: n) else {
                throw WardenError.invalid("\(path).network", "unknown network mode \(quoted(n)) (one of: none, loopback, host)")
            }
            p.network = v
        }
        if var l = try r.object("limits") {
            if let v = l.value("cpu") { p.limits.cpuMillis = try Quantity.cpuMillis(v, field: l.child("cpu")) }
            if let v = l.value("memory") { p.limits.memoryBytes = try Quantity.bytes(v, field: l.child("memory")) }
            if let v = l.value("pids") { p.limits.pids = try Quantity.count(v, field: l.child("pids")) }
            if let v = l.value("wall") { p.limits.wallMs = try Quantity.durationMillis(v, field: l.child("wall")) }
            if let v = l.value("cpuTime") { p.limits.cpuTimeMs = try Quantity.durationMillis(v, field: l.child("cpuTime")) }
            if let v = l.value("nofile") { p.limits.nofile = try Quantity.count(v, field: l.child("nofile")) }
            if let v = l.value("fileSize") { p.limits.fileSizeBytes = try Quantity.bytes(v, field: l.child("fileSize")) }
            if let v = l.value("output") { p.limits.outputBytes = try Quantity.bytes(v, field: l.child("output")) }
            if let v = l.value("bestEffort") {
                switch v {
                case .bool(true): p.limits.bestEffort = Set(Limits.names)
                case .bool(false): break
                case .array(let a):
                    for (i, x) in a.enumerated() {
                        guard let s = x.stringValue, Limits.names.contains(s) else {
                            throw WardenError.invalid("\(l.child("bestEffort"))[\(i)]", "expected a limit name (one of: \(Limits.names.joined(separator: ", ")))")
                        }
                        p.limits.bestEffort.insert(s)
                    }
                default: throw WardenError.invalid(l.child("bestEffort"), "expected true or an array of limit names")
                }
            }
            try l.finish()
        }
        if var e = try r.object("env") {
            p.envKeep = try e.stringArray("keep") ?? []
            p.envSet = try e.stringMap("set") ?? [:]
            try e.finish()
        }
        if let s = r.value("seccomp") {
            switch s {
            case .string(let file): p.seccomp = .path(file)
            case .object: p.seccomp = .inline(try OCISeccomp.decode(s, path: "\(path).seccomp"))
            default: throw WardenError.invalid("\(path).seccomp", "expected an OCI seccomp object or a file path, got \(s.typeName)")
            }
        }
        if let h = try r.string("hostname") {
            guard !h.isEmpty, h.utf8.count <= 64 else { throw WardenError.invalid("\(path).hostname", "must be 1 to 64 bytes") }
            p.hostname = h
        }
        p.trusted = try r.bool("trusted") ?? false
        try r.finish()
        if p.network != .host && !p.namespaces.contains(.net) {
            throw WardenError.invalid("\(path).network", "network \(quoted(p.network.rawValue)) needs the net namespace")
        }
        if p.network == .host && p.namespaces.contains(.net) {
            p.namespaces.remove(.net)
        }
        return p
    }
}

/// The OCI runtime-spec / Docker seccomp profile format.
public struct OCISeccomp: Sendable, Hashable {
    public struct Arg: Sendable, Hashable {
        public var index: Int
        public var value: UInt64
        public var valueTwo: UInt64
        public var op: String
    }

    public struct Filter: Sendable, Hashable {
        public var caps: [String] = []
        public var arches: [String] = []
        public var minKernel: String?
        public var isEmpty: Bool { caps.isEmpty && arches.isEmpty && minKernel == nil }
    }

    public struct Rule: Sendable, Hashable {
        public var names: [String]
        public var action: String
        public var errnoRet: Int?
        public var args: [Arg]
        public var includes = Filter()
        public var excludes = Filter()
        public var comment: String?
    }

    public static let actions: Set<String> = [
        "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
    ]
    public static let ops: Set<String> = [
        "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
    ]

    /// Linux errno numbers for the names OCI files write in `errno` / `defaultErrno`.
    static let errnoNumbers: [String: Int] = [
        "EPERM": 1, "ENOENT": 2, "ESRCH": 3, "EINTR": 4, "EIO": 5, "EBADF": 9, "EAGAIN": 11, "ENOMEM": 12, "EACCES": 13,
        "EFAULT": 14, "EBUSY": 16, "EEXIST": 17, "ENODEV": 19, "EINVAL": 22, "ENOTTY": 25, "ENOSPC": 28, "EROFS": 30,
        "ENOSYS": 38, "EOPNOTSUPP": 95, "ENOTSUP": 95, "EAFNOSUPPORT": 97,
    ]

    public var defaultAction: String
    public var defaultErrnoRet: Int?
    public var architectures: [String] = []
    public var archMap: [(String, [String])] = []
    public var syscalls: [Rule] = []
    public var flags: [String] = []
    /// Keys we read but do not act on (reported by `profile check`).
    public var ignoredKeys: [String] = []

    public static func == (a: OCISeccomp, b: OCISeccomp) -> Bool {
        a.defaultAction == b.defaultAction && a.defaultErrnoRet == b.defaultErrnoRet && a.architectures == b.architectures
            && a.syscalls == b.syscalls && a.flags == b.flags && a.archMap.map(\.0) == b.archMap.map(\.0)
    }

    public func hash(into h: inout Hasher) {
        h.combine(defaultAction)
        h.combine(syscalls)
    }

    public static func decode(_ json: JSONValue, path: String = "$") throws(WardenError) -> OCISeccomp {
        var r = try JSONObjectReader(json, path: path)
        let def = try r.requiredString("defaultAction")
        guard actions.contains(def) else {
            throw WardenError.invalid("\(path).defaultAction", "unknown action \(quoted(def)) (one of: \(actions.sorted().joined(separator: ", ")))")
        }
        var s = OCISeccomp(defaultAction: def)
        if let e = try r.int("defaultErrnoRet") { s.defaultErrnoRet = Int(e) }
        if let name = try r.string("defaultErrno"), s.defaultErrnoRet == nil {
            guard let n = errnoNumbers[name] else {
                throw WardenError.invalid("\(path).defaultErrno", "unknown errno name \(quoted(name)); give the number in defaultErrnoRet")
            }
            s.defaultErrnoRet = n
        }
        s.architectures = try r.stringArray("architectures") ?? []
        if let am = try r.array("archMap") {
            for (i, v) in am.enumerated() {
                var a = try JSONObjectReader(v, path: "\(path).archMap[\(i)]")
                let arch = try a.requiredString("architecture")
                let subs = try a.stringArray("subArchitectures") ?? []
                _ = a.value("comment")
                try a.finish()
                s.archMap.append((arch, subs))
            }
        }
        s.flags = try r.stringArray("flags") ?? []
        // Real-world files carry keys from other runtimes' versions (`defaultErrno`, `listenerPath`, …): they are
        // reported by `profile check`, never fatal, so an existing profile loads as it is.
        let known: Set<String> = ["defaultAction", "defaultErrnoRet", "defaultErrno", "architectures", "archMap", "flags", "syscalls"]
        for k in r.dict.keys.sorted() where !known.contains(k) {
            _ = r.value(k)
            s.ignoredKeys.append(k)
        }
        if let list = try r.array("syscalls") {
            for (i, v) in list.enumerated() {
                let rp = "\(path).syscalls[\(i)]"
                var rr = try JSONObjectReader(v, path: rp)
                var names = try rr.stringArray("names") ?? []
                if let single = try rr.string("name") { names.append(single) }
                guard !names.isEmpty else { throw WardenError.invalid("\(rp).names", "required (a non-empty array of syscall names)") }
                let action = try rr.requiredString("action")
                guard actions.contains(action) else {
                    throw WardenError.invalid("\(rp).action", "unknown action \(quoted(action))")
                }
                var rule = Rule(names: names, action: action, errnoRet: nil, args: [])
                if let e = try rr.int("errnoRet") { rule.errnoRet = Int(e) }
                // containers/common writes the errno twice: `"errnoRet": 1, "errno": "EPERM"`. The name is only
                // needed when the number is missing; a name we cannot map is then an error, never a silent EPERM.
                if let name = try rr.string("errno"), rule.errnoRet == nil {
                    guard let n = errnoNumbers[name] else {
                        throw WardenError.invalid("\(rp).errno", "unknown errno name \(quoted(name)); give the number in errnoRet")
                    }
                    rule.errnoRet = n
                }
                if let args = try rr.array("args") {
                    for (j, av) in args.enumerated() {
                        let ap = "\(rp).args[\(j)]"
                        var ar = try JSONObjectReader(av, path: ap)
                        guard let idx = try ar.int("index"), idx >= 0 && idx <= 5 else {
                            throw WardenError.invalid("\(ap).index", "required, 0 to 5")
                        }
                        let value = try uint64(ar.value("value"), field: "\(ap).value") ?? 0
                        let value2 = try uint64(ar.value("valueTwo"), field: "\(ap).valueTwo") ?? 0
                        let op = try ar.requiredString("op")
                        guard ops.contains(op) else { throw WardenError.invalid("\(ap).op", "unknown comparison \(quoted(op))") }
                        try ar.finish()
                        rule.args.append(Arg(index: Int(idx), value: value, valueTwo: value2, op: op))
                    }
                }
                rule.includes = try filter(rr.object("includes"))
                rule.excludes = try filter(rr.object("excludes"))
                rule.comment = try rr.string("comment")
                try rr.finish()
                s.syscalls.append(rule)
            }
        }
        try r.finish()
        return s
    }

    private static func filter(_ reader: JSONObjectReader?) throws(WardenError) -> Filter {
        guard var f = reader else { return Filter() }
        var out = Filter()
        out.caps = try f.stringArray("caps") ?? []
        out.arches = try f.stringArray("arches") ?? []
        out.minKernel = try f.string("minKernel")
        try f.finish()
        return out
    }

    private static func uint64(_ v: JSONValue?, field: String) throws(WardenError) -> UInt64? {
        guard let v else { return nil }
        switch v {
        case .int(let i): return UInt64(bitPattern: i)
        case .double(let d) where d >= 0 && d < 18_446_744_073_709_551_616 && d == d.rounded(): return UInt64(d)
        default: throw WardenError.invalid(field, "expected an unsigned integer, got \(v.typeName)")
        }
    }
}
