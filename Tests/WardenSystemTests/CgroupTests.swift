import Foundation
import Glibc
import Testing
@testable import WardenSystem

/// A directory tree shaped like a cgroup v2 hierarchy. cgroupfs makes its control files itself; here the
/// test makes the ones the driver may touch (empty for files it writes, pre-filled for files it reads).
struct FakeCgroupTree {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "warden-fake-cgroup-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try put("cgroup.controllers", "cpuset cpu io memory pids\n")
        try put("cgroup.subtree_control", "")
        try FileManager.default.createDirectory(atPath: "\(root)/warden", withIntermediateDirectories: true)
        try put("warden/cgroup.subtree_control", "")
    }

    func put(_ rel: String, _ text: String) throws {
        try text.write(toFile: "\(root)/\(rel)", atomically: false, encoding: .utf8)
    }

    func read(_ rel: String) -> String? { try? String(contentsOfFile: "\(root)/\(rel)", encoding: .utf8) }

    /// A task directory as cgroupfs shows it right after mkdir, with some counters already non-zero.
    func task(_ name: String, counters: Bool = true) throws {
        try FileManager.default.createDirectory(atPath: "\(root)/warden/\(name)", withIntermediateDirectories: true)
        for f in ["memory.max", "memory.swap.max", "pids.max", "cpu.max", "cgroup.kill", "cgroup.procs"] {
            try put("warden/\(name)/\(f)", "")
        }
        guard counters else { return }
        try put("warden/\(name)/memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n")
        try put("warden/\(name)/pids.events", "max 7\n")
        try put("warden/\(name)/cpu.stat", "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n")
        try put("warden/\(name)/memory.peak", "67108864\n")
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}

@Suite("cgroup v2 driver on a fake cgroupfs", .timeLimit(.minutes(1)))
struct CgroupV2FakeTreeTests {
    @Test func enablesControllersForTaskCgroups() throws {
        let t = try FakeCgroupTree()
        defer { t.remove() }
        let v2 = CgroupV2(mountPoint: t.root, ownPath: "/")
        #expect(v2.version == .v2)
        #expect(v2.enforceable == ["cpu", "memory", "pids"])
        #expect(v2.bases == ["\(t.root)/warden"])
        // Delegation: our own cgroup and warden/ hand the three controllers down.
        #expect(t.read("cgroup.subtree_control") == "+cpu +memory +pids")
        #expect(t.read("warden/cgroup.subtree_control") == "+cpu +memory +pids")
    }

    @Test func createWritesLimitsAndReadsStats() throws {
        let t = try FakeCgroupTree()
        defer { t.remove() }
        let v2 = CgroupV2(mountPoint: t.root, ownPath: "/")
        try t.task("w1-1")
        let cg = try v2.create(name: "w1-1", limits: CgroupLimits(cpuMillis: 500, memoryBytes: 64 << 20, pids: 32))
        #expect(t.read("warden/w1-1/memory.max") == "67108864")
        #expect(t.read("warden/w1-1/memory.swap.max") == "0")   // no swap: the memory limit is the real limit
        #expect(t.read("warden/w1-1/pids.max") == "32")
        #expect(t.read("warden/w1-1/cpu.max") == "50000 100000")
        #expect(cg.dirFD >= 0, "no O_PATH fd for CLONE_INTO_CGROUP")
        #expect(cg.procsFDs.count == 1)

        let s = cg.stats()
        #expect(s.memoryPeakBytes == 64 << 20)
        #expect(s.oomKills == 1)
        #expect(s.pidsLimitHits == 7)
        #expect(s.cpuUsageNs == 123_456_000)

        cg.killAll()
        #expect(t.read("warden/w1-1/cgroup.kill") == "1")
        cg.destroy()
        cg.destroy()   // twice is fine
    }

    @Test func unlimitedWritesNothingAndDestroyRemoves() throws {
        let t = try FakeCgroupTree()
        defer { t.remove() }
        let v2 = CgroupV2(mountPoint: t.root, ownPath: "/")
        let cg = try v2.create(name: "w1-2", limits: CgroupLimits())
        #expect(cg.dirFD >= 0)
        #expect((try FileManager.default.contentsOfDirectory(atPath: "\(t.root)/warden/w1-2")).isEmpty)
        cg.destroy()
        #expect(!FileManager.default.fileExists(atPath: "\(t.root)/warden/w1-2"))
    }

    @Test func aMissingControlFileIsAnError() throws {
        let t = try FakeCgroupTree()
        defer { t.remove() }
        let v2 = CgroupV2(mountPoint: t.root, ownPath: "/")
        // cgroupfs without the pids controller would have no pids.max: refuse, never invent the file.
        try FileManager.default.createDirectory(atPath: "\(t.root)/warden/w1-3", withIntermediateDirectories: true)
        #expect(throws: (any Error).self) { try v2.create(name: "w1-3", limits: CgroupLimits(pids: 10)) }
        #expect(!FileManager.default.fileExists(atPath: "\(t.root)/warden/w1-3/pids.max"))
    }

    @Test func sweepRemovesOnlyOrphans() throws {
        let t = try FakeCgroupTree()
        defer { t.remove() }
        let v2 = CgroupV2(mountPoint: t.root, ownPath: "/")
        let dead = deadPid()
        // An orphan of a dead Warden (empty: removable), one with cgroup.kill (killed first), ours, and a stranger.
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(t.root)/warden/w\(dead)-1", withIntermediateDirectories: true)
        try t.task("w\(dead)-2", counters: false)
        try fm.createDirectory(atPath: "\(t.root)/warden/w\(getpid())-1", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(t.root)/warden/other", withIntermediateDirectories: true)
        let removed = v2.sweep()
        #expect(removed == 1, "only the empty orphan can go on a fake tree")
        #expect(!fm.fileExists(atPath: "\(t.root)/warden/w\(dead)-1"))
        #expect(t.read("warden/w\(dead)-2/cgroup.kill") == "1", "the orphan's processes were not killed")
        #expect(fm.fileExists(atPath: "\(t.root)/warden/w\(getpid())-1"), "sweep removed a live Warden's cgroup")
        #expect(fm.fileExists(atPath: "\(t.root)/warden/other"))
    }
}

/// A pid that just exited (so kill(pid, 0) says ESRCH).
func deadPid() -> pid_t {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/true")
    try? p.run()
    p.waitUntilExit()
    return p.processIdentifier
}

@Suite("cgroup detection", .timeLimit(.minutes(1)))
struct CgroupDetectTests {
    @Test func pureV2() throws {
        let t = try FakeCgroupTree()
        defer { t.remove() }
        try FileManager.default.createDirectory(atPath: "\(t.root)/user.slice", withIntermediateDirectories: true)
        try t.put("user.slice/cgroup.controllers", "cpu memory pids\n")
        try t.put("user.slice/cgroup.subtree_control", "")
        try FileManager.default.createDirectory(atPath: "\(t.root)/user.slice/warden", withIntermediateDirectories: true)
        try t.put("user.slice/warden/cgroup.subtree_control", "")
        let mountinfo = """
        22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
        30 22 0:26 / \(t.root) rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
        """
        let d = Cgroups.detect(mountInfo: mountinfo, selfCgroup: "0::/user.slice\n")
        #expect(d.version == .v2)
        #expect(d.bases == ["\(t.root)/user.slice/warden"])
        #expect(d.enforceable == ["cpu", "memory", "pids"])
    }

    @Test func hybridWithoutV2ControllersIsV1() throws {
        let t = try FakeCgroupTree()
        defer { t.remove() }
        // systemd's hybrid layout: an empty unified hierarchy plus the v1 controllers.
        let fm = FileManager.default
        for d in ["unified", "memory/ci/warden", "pids/ci", "cpu,cpuacct/ci"] {
            try fm.createDirectory(atPath: "\(t.root)/\(d)", withIntermediateDirectories: true)
        }
        try t.put("unified/cgroup.controllers", "")
        try t.put("memory/ci/warden/memory.limit_in_bytes", "")
        let mountinfo = """
        22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
        25 22 0:22 / \(t.root) ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
        26 25 0:23 / \(t.root)/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
        28 25 0:25 / \(t.root)/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
        29 25 0:26 / \(t.root)/pids rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,pids
        30 25 0:27 / \(t.root)/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
        """
        let selfCgroup = "4:memory:/ci\n3:pids:/ci\n2:cpu,cpuacct:/ci\n0::/ci\n"
        let d = Cgroups.detect(mountInfo: mountinfo, selfCgroup: selfCgroup)
        #expect(d.version == .v1)
        #expect(Set(d.bases) == ["\(t.root)/memory/ci/warden", "\(t.root)/pids/ci/warden", "\(t.root)/cpu,cpuacct/ci/warden"])
        #expect(d.enforceable.contains("memory"))
    }

    /// On a host with the usual layout the statfs shortcut must find what /proc/self/mountinfo says.
    @Test func standardLayoutAgreesWithMountinfo() throws {
        let own = try FS.readText("/proc/self/cgroup")
        guard Cgroups.standardMounts(selfCgroup: Cgroups.parseSelfCgroup(own)) != nil else {
            print("*** SKIPPED standardLayoutAgreesWithMountinfo: /sys/fs/cgroup is not laid out the usual way here ***")
            return
        }
        let fast = Cgroups.detect()
        let slow = Cgroups.detect(mountInfo: try FS.readText("/proc/self/mountinfo"), selfCgroup: own)
        #expect(fast.version == slow.version)
        #expect(fast.bases == slow.bases)
        #expect(fast.enforceable == slow.enforceable)
    }

    @Test func none() {
        let mountinfo = "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        let d = Cgroups.detect(mountInfo: mountinfo, selfCgroup: "0::/\n")
        #expect(d.version == .none)
        #expect(d.enforceable.isEmpty)
    }
}

/// The real cgroup v1 hierarchies of this host (CI has memory, pids, cpu and cpuacct).
@Suite("cgroup v1 sweep on the host", .serialized)
struct CgroupV1SweepTests {
    @Test(.timeLimit(.minutes(1)))
    func sweepRemovesAnOrphanAndKillsWhatIsInIt() throws {
        guard getuid() == 0, FileManager.default.fileExists(atPath: "/sys/fs/cgroup/pids/cgroup.procs") else {
            FileHandle.standardError.write(Data("\n*** SKIPPED: cgroup v1 sweep needs root and /sys/fs/cgroup/pids (CI has both) ***\n".utf8))
            if ProcessInfo.processInfo.environment["CI"] != nil { Issue.record("CI must have cgroup v1 pids") }
            try Test.cancel("needs root and cgroup v1")
        }
        let driver = Cgroups.detect()
        guard let v1 = driver as? CgroupV1 else {
            try Test.cancel("this host's driver is \(driver.version.rawValue), not v1")
        }
        let dead = deadPid()
        let orphan = try v1.create(name: "w\(dead)-1", limits: CgroupLimits(pids: 5))
        let live = try v1.create(name: "w\(getpid())-999", limits: CgroupLimits())
        defer { live.destroy() }
        // Something still runs in the orphan (what a kill -9 of Warden leaves).
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        let orphanDirs = v1.bases.map { "\($0)/w\(dead)-1" }
        for d in orphanDirs {
            try "\(sleeper.processIdentifier)".write(toFile: "\(d)/cgroup.procs", atomically: false, encoding: .utf8)
        }
        #expect(orphanDirs.allSatisfy { FileManager.default.fileExists(atPath: $0) })

        let removed = v1.sweep()
        #expect(removed >= orphanDirs.count, "sweep removed \(removed), ours alone are \(orphanDirs.count)")
        for d in orphanDirs { #expect(!FileManager.default.fileExists(atPath: d), "\(d) is still there") }
        sleeper.waitUntilExit()
        #expect(sleeper.terminationReason == .uncaughtSignal, "the process in the orphan was not killed")
        for b in v1.bases {
            #expect(FileManager.default.fileExists(atPath: "\(b)/w\(getpid())-999"), "sweep removed a live Warden's cgroup")
        }
        orphan.destroy()
    }
}

/// Control files are read as bytes; what they may hold and what must not pass for a number.
@Suite("cgroup control file values")
struct CgroupValueTests {
    func int(_ s: String) -> Int64? { Cgroups.parseInt(Array(s.utf8)[...]) }

    @Test func numbers() {
        #expect(int("123\n") == 123)
        #expect(int("  -5 \t\r\n") == -5)
        #expect(int("0") == 0)
        #expect(int("9223372036854775807\n") == Int64.max)
    }

    @Test func notNumbers() {
        for s in ["", "\n", "max\n", "-", "12a", "1 2", "9223372036854775808", "+1"] {
            #expect(int(s) == nil, "\(s.debugDescription)")
        }
    }

    @Test func keyedFiles() throws {
        let path = NSTemporaryDirectory() + "warden-keyed-\(UUID().uuidString.prefix(8))"
        defer { unlink(path) }
        try "oom 0\noom_kill 3\nmax 12\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(Cgroups.readKey(path, "oom_kill") == 3)
        #expect(Cgroups.readKey(path, "max") == 12)
        #expect(Cgroups.readKey(path, "oom_") == nil)
        #expect(Cgroups.readKey(path, "missing") == nil)
    }
}
