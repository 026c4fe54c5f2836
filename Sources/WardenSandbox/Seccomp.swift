import CSeccomp
import CWardenLinux
import Glibc
import WardenCore
import WardenSystem

/// Compiles seccomp policies to BPF with libseccomp (in the parent; the child only loads the bytes).
///
/// A sandbox gets two stacked filters: the profile's (OCI format) and Warden's mandatory filter. The kernel
/// runs both and the most restrictive action wins, so no OCI file can re-allow what the mandatory filter
/// denies (the containers/common default, for one, allows `mount`, `unshare` and `personality`). Both kill
/// foreign ABIs (ia32 `int 0x80`, x32) with SCMP_ACT_KILL_PROCESS.
public enum SeccompCompiler {
    /// One compiled BPF program: 8 bytes per `struct sock_filter`.
    public struct Program: Sendable, Hashable {
        public var bytes: [UInt8]
        public var instructionCount: Int { bytes.count / 8 }
    }

    /// What `profile check` reports and what compilation honoured.
    public struct Notes: Sendable {
        public var ignored: [String] = []
        public var rulesApplied = 0
        public var rulesSkipped = 0
    }

    // MARK: mandatory rules (DESIGN §4)

    static let namespaceCloneFlags: [(String, UInt64)] = [
        ("CLONE_NEWNS", 0x0002_0000), ("CLONE_NEWCGROUP", 0x0200_0000), ("CLONE_NEWUTS", 0x0400_0000),
        ("CLONE_NEWIPC", 0x0800_0000), ("CLONE_NEWUSER", 0x1000_0000), ("CLONE_NEWPID", 0x2000_0000),
        ("CLONE_NEWNET", 0x4000_0000), ("CLONE_NEWTIME", 0x80),
    ]

    /// Syscalls denied outright with EPERM whatever the profile says.
    public static let mandatoryDenied: [String] = [
        "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "keyctl", "add_key", "request_key",
        "userfaultfd", "perf_event_open", "ptrace", "process_vm_readv", "process_vm_writev", "kexec_load",
        "kexec_file_load", "init_module", "finit_module", "delete_module", "mount", "umount2", "pivot_root",
        "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "open_by_handle_at",
        "unshare", "setns",
    ]

    static let TIOCSTI: UInt64 = 0x5412
    static let TIOCLINUX: UInt64 = 0x541C

    /// Arguments the kernel reads as 32-bit ints: compares on them are masked to the low 32 bits, so a value
    /// with garbage in the upper half (`0x1_0000_5412` for TIOCSTI) cannot slip past an equality rule.
    static let thirtyTwoBitArgs: [String: Set<Int>] = [
        "personality": [0], "ioctl": [1], "socket": [0, 1, 2], "socketpair": [0, 1, 2], "prctl": [0], "fcntl": [1],
        "kill": [1], "tkill": [1], "tgkill": [2], "setsockopt": [1, 2], "getsockopt": [1, 2], "flock": [1],
        "setns": [1], "unshare": [], "clone": [], "mprotect": [], "chmod": [1], "fchmod": [1], "fchmodat": [2],
        "umask": [0], "setuid": [0], "setgid": [0], "setfsuid": [0], "setfsgid": [0],
    ]

    /// Warden's mandatory filter. Default ALLOW, so it only ever makes the profile's answer stricter.
    public static func mandatoryProgram() throws(WardenError) -> Program {
        guard let ctx = seccomp_init(cseccomp_act_allow()) else { throw WardenError(.internalError, "seccomp_init failed") }
        defer { seccomp_release(ctx) }
        try setCommonAttributes(ctx)
        let eperm = cseccomp_act_errno(UInt16(EPERM))
        for name in mandatoryDenied {
            try addRule(ctx, eperm, name, [], context: "mandatory rule \(name)")
        }
        for (flagName, flag) in namespaceCloneFlags {
            try addRule(ctx, eperm, "clone", [scmp_arg_cmp(arg: 0, op: SCMP_CMP_MASKED_EQ, datum_a: flag, datum_b: flag)],
                        context: "mandatory rule clone(\(flagName))")
        }
        // glibc falls back to clone when clone3 says ENOSYS; clone3's flags live in memory we cannot inspect.
        try addRule(ctx, cseccomp_act_errno(UInt16(ENOSYS)), "clone3", [], context: "mandatory rule clone3")
        for cmd in [TIOCSTI, TIOCLINUX] {
            try addRule(ctx, eperm, "ioctl", [scmp_arg_cmp(arg: 1, op: SCMP_CMP_MASKED_EQ, datum_a: 0xFFFF_FFFF, datum_b: cmd)],
                        context: "mandatory rule ioctl(\(cmd == TIOCSTI ? "TIOCSTI" : "TIOCLINUX"))")
        }
        // Any persona but the default changes how the kernel treats the process (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE…).
        try addRule(ctx, eperm, "personality", [scmp_arg_cmp(arg: 0, op: SCMP_CMP_NE, datum_a: 0, datum_b: 0)],
                    context: "mandatory rule personality")
        return try export(ctx)
    }

    /// The profile's OCI filter. Unknown syscall names in a deny rule are errors; in an allow rule they are
    /// skipped (profiles list syscalls of other architectures and kernels) and noted.
    public static func compile(_ oci: OCISeccomp, path: String = "$.seccomp") throws(WardenError) -> (Program, Notes) {
        var notes = Notes()
        let defAction = try action(oci.defaultAction, errnoRet: oci.defaultErrnoRet, path: "\(path).defaultAction", notes: &notes)
        guard let ctx = seccomp_init(defAction) else { throw WardenError(.internalError, "seccomp_init failed") }
        defer { seccomp_release(ctx) }
        try setCommonAttributes(ctx)
        let foreign = oci.architectures.filter { !["SCMP_ARCH_X86_64", "amd64", "x86_64"].contains($0) }
        if !foreign.isEmpty {
            notes.ignored.append("architectures \(foreign.joined(separator: ", ")): foreign ABIs are always killed, never allowed")
        }
        if !oci.archMap.isEmpty { notes.ignored.append("archMap: only the native x86_64 ABI is allowed") }
        for f in oci.flags { notes.ignored.append("flags \(f): not supported, ignored") }
        for k in oci.ignoredKeys { notes.ignored.append("\(k): not supported, ignored") }
        let kernel = kernelRelease()
        for (i, rule) in oci.syscalls.enumerated() {
            let rp = "\(path).syscalls[\(i)]"
            // The sandbox holds no capabilities, so a rule that needs one never applies.
            if !rule.includes.caps.isEmpty {
                notes.ignored.append("\(rp): applies only with capabilities \(rule.includes.caps.joined(separator: ", ")), which the sandbox never has")
                notes.rulesSkipped += 1
                continue
            }
            if !rule.includes.arches.isEmpty && !rule.includes.arches.contains(where: { ["amd64", "x86_64", "SCMP_ARCH_X86_64"].contains($0) }) {
                notes.rulesSkipped += 1
                continue
            }
            if rule.excludes.arches.contains(where: { ["amd64", "x86_64", "SCMP_ARCH_X86_64"].contains($0) }) {
                notes.rulesSkipped += 1
                continue
            }
            if let mk = rule.includes.minKernel, compareKernel(kernel, mk) < 0 {
                notes.rulesSkipped += 1
                continue
            }
            let act = try action(rule.action, errnoRet: rule.errnoRet ?? oci.defaultErrnoRet, path: "\(rp).action", notes: &notes)
            let permissive = rule.action == "SCMP_ACT_ALLOW" || rule.action == "SCMP_ACT_LOG"
            for name in rule.names {
                let nr = seccomp_syscall_resolve_name(name)
                if nr == __NR_SCMP_ERROR {
                    if permissive {
                        notes.ignored.append("\(rp): unknown syscall \(quoted(name)) skipped")
                        continue
                    }
                    throw WardenError.invalid("\(rp).names", "unknown syscall \(quoted(name)) in a deny rule (a deny rule must name real syscalls)")
                }
                if act == defAction { continue }   // libseccomp refuses rules equal to the default action
                var cmps: [scmp_arg_cmp] = []
                for a in rule.args {
                    var op = cmpOp(a.op)
                    var datumA = a.value, datumB = a.valueTwo
                    if thirtyTwoBitArgs[name]?.contains(a.index) == true {
                        if op == SCMP_CMP_EQ {
                            op = SCMP_CMP_MASKED_EQ
                            datumA = 0xFFFF_FFFF
                            datumB = a.value & 0xFFFF_FFFF
                        } else if op == SCMP_CMP_MASKED_EQ {
                            datumA = a.value & 0xFFFF_FFFF
                        }
                    }
                    cmps.append(scmp_arg_cmp(arg: UInt32(a.index), op: op, datum_a: datumA, datum_b: datumB))
                }
                try addRule(ctx, act, name, cmps, context: "\(rp) (\(name))")
                notes.rulesApplied += 1
            }
        }
        return (try export(ctx), notes)
    }

    // MARK: helpers

    static func setCommonAttributes(_ ctx: scmp_filter_ctx) throws(WardenError) {
        // Kill the whole process on a foreign ABI: a 32-bit int 0x80 or an x32 call never reaches a rule.
        let rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, cseccomp_act_kill_process())
        if rc != 0 { throw WardenError(.internalError, "seccomp_attr_set(ACT_BADARCH): \(Errno(-rc))") }
        // We set no_new_privs ourselves, in the child, just before loading.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        // A binary tree over syscall numbers instead of a linear list: a few comparisons per syscall instead
        // of up to one per rule, and the kernel's per-syscall action cache (built by running the filter for
        // every syscall of every architecture when it is loaded) fills in a fraction of the time.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)
    }

    static func addRule(_ ctx: scmp_filter_ctx, _ act: UInt32, _ name: String, _ cmps: [scmp_arg_cmp], context: String) throws(WardenError) {
        let nr = seccomp_syscall_resolve_name(name)
        guard nr != __NR_SCMP_ERROR else { throw WardenError(.internalError, "\(context): unknown syscall \(name)") }
        let rc = cmps.withUnsafeBufferPointer { seccomp_rule_add_array(ctx, act, nr, UInt32($0.count), $0.baseAddress) }
        // -EACCES: same as the default action; -EEXIST: an identical rule. Neither changes the filter.
        if rc != 0 && rc != -EACCES && rc != -EEXIST {
            throw WardenError(.dataError, "\(context): libseccomp refused the rule: \(Errno(-rc))")
        }
    }

    static func export(_ ctx: scmp_filter_ctx) throws(WardenError) -> Program {
        let fd = warden_memfd("seccomp")
        guard fd >= 0 else { throw Errno.current.error("memfd_create") }
        defer { close(fd) }
        let rc = seccomp_export_bpf(ctx, fd)
        guard rc == 0 else { throw WardenError(.internalError, "seccomp_export_bpf: \(Errno(-rc))") }
        lseek(fd, 0, SEEK_SET)
        let bytes = try FS.readAll(fd: fd, limit: 1 << 20, what: "seccomp program")
        guard bytes.count % 8 == 0, !bytes.isEmpty else { throw WardenError(.internalError, "seccomp program has \(bytes.count) bytes") }
        return Program(bytes: bytes)
    }

    static func action(_ name: String, errnoRet: Int?, path: String, notes: inout Notes) throws(WardenError) -> UInt32 {
        switch name {
        case "SCMP_ACT_ALLOW": return cseccomp_act_allow()
        case "SCMP_ACT_ERRNO":
            let e = errnoRet ?? Int(EPERM)
            guard e >= 0 && e <= 4095 else { throw WardenError.invalid(path, "errnoRet \(e) out of range 0…4095") }
            return cseccomp_act_errno(UInt16(e))
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD":
            // Killing one thread leaves a half-dead process; kill all of it.
            return cseccomp_act_kill_process()
        case "SCMP_ACT_KILL_PROCESS": return cseccomp_act_kill_process()
        case "SCMP_ACT_TRAP": return cseccomp_act_trap()
        case "SCMP_ACT_LOG": return cseccomp_act_log()
        case "SCMP_ACT_TRACE":
            notes.ignored.append("\(path): SCMP_ACT_TRACE has no tracer here; it fails the call with ENOSYS")
            return cseccomp_act_errno(UInt16(ENOSYS))
        case "SCMP_ACT_NOTIFY":
            notes.ignored.append("\(path): SCMP_ACT_NOTIFY has no listener here; it fails the call with EPERM")
            return cseccomp_act_errno(UInt16(EPERM))
        default: throw WardenError.invalid(path, "unknown action \(quoted(name))")
        }
    }

    static func cmpOp(_ s: String) -> scmp_compare {
        switch s {
        case "SCMP_CMP_NE": SCMP_CMP_NE
        case "SCMP_CMP_LT": SCMP_CMP_LT
        case "SCMP_CMP_LE": SCMP_CMP_LE
        case "SCMP_CMP_GE": SCMP_CMP_GE
        case "SCMP_CMP_GT": SCMP_CMP_GT
        case "SCMP_CMP_MASKED_EQ": SCMP_CMP_MASKED_EQ
        default: SCMP_CMP_EQ
        }
    }

    /// The syscall name for a number on x86_64 (for seccomp kill reports).
    public static func syscallName(_ nr: Int32) -> String? {
        guard let p = seccomp_syscall_resolve_num_arch(cseccomp_arch_x86_64(), nr) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    static func kernelRelease() -> String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: u.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    /// Compares "6.1.0-18-amd64" with "4.8": numerically, component by component.
    static func compareKernel(_ a: String, _ b: String) -> Int {
        func nums(_ s: String) -> [Int] {
            s.split(whereSeparator: { !$0.isNumber }).prefix(3).compactMap { Int($0) }
        }
        let x = nums(a), y = nums(b)
        for i in 0..<max(x.count, y.count) {
            let p = i < x.count ? x[i] : 0, q = i < y.count ? y[i] : 0
            if p != q { return p < q ? -1 : 1 }
        }
        return 0
    }
}
