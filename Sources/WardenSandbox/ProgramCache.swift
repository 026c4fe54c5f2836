import CSeccomp
import Glibc
import WardenCore
import WardenSystem

/// Compiled seccomp programs on disk, so a one-shot `warden sandbox exec` does not run libseccomp over a
/// few hundred rules on every call. A program is a function of the OCI filter (named by its source: the
/// SHA-256 of its file and its place in it, so the decoded rules are never hashed), the kernel (`minKernel`
/// rules), libseccomp's syscall tables and Warden's compiler: all of them are in the key, Warden's as the
/// identity of its executable. The files live in the skeleton directory (root: /run/warden/bpf), which
/// must be private to us: whoever writes a cached program decides the sandbox's filter.
enum ProgramCache {
    static var dir: String { Skeleton.top + "/bpf" }

    /// What every key starts with: the format, Warden's executable, the kernel, libseccomp.
    static let environment: String = {
        let exe = ProfileLoader.identity("/proc/self/exe").id
        let v = seccomp_version()
        let lib = v.map { "\($0.pointee.major).\($0.pointee.minor).\($0.pointee.micro)" } ?? "?"
        return "warden-bpf-1\u{0}\(exe)\u{0}\(SeccompCompiler.kernelRelease())\u{0}libseccomp \(lib)"
    }()

    static func key(_ what: String) -> String { SHA256.hex(environment + "\u{0}" + what) }

    /// The cached program, or nil (missing, unreadable, not ours, malformed: then it is compiled again).
    static func load(_ key: String) -> SeccompCompiler.Program? {
        guard let bytes = PrivateCache.read(dir, key, limit: 1 << 20), !bytes.isEmpty, bytes.count % 8 == 0 else { return nil }
        return SeccompCompiler.Program(bytes: bytes)
    }

    /// Best effort: a cache that cannot be written only costs the next call a compile.
    static func store(_ key: String, _ p: SeccompCompiler.Program) { PrivateCache.write(dir, key, p.bytes) }
}

/// Files of the caches under the skeleton tree: read only when the tree and the file are ours and no one
/// else can write them; written atomically, best effort. Each directory keeps at most `keep` entries: a write
/// that finds more removes the least recently used (by mtime, which a hit refreshes once a day), so a host
/// that edits its profiles all day does not fill /run.
enum PrivateCache {
    static let keep = 512

    static func read(_ dir: String, _ key: String, limit: Int) -> [UInt8]? {
        guard (try? checkDir(dir)) != nil else { return nil }
        let fd = open("\(dir)/\(key)", O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == geteuid(), st.st_mode & 0o022 == 0,
              st.st_size <= limit, let bytes = try? FS.readAll(fd: fd, limit: limit, what: "cache file"),
              bytes.count == Int(st.st_size) else { return nil }
        if Int64(time(nil)) - Int64(st.st_mtim.tv_sec) > 86_400 { futimens(fd, nil) }   // still in use
        return bytes
    }

    static func write(_ dir: String, _ key: String, _ bytes: [UInt8], keep: Int = PrivateCache.keep) {
        guard (try? FS.mkdirs(dir, mode: 0o700)) != nil, (try? checkDir(dir)) != nil else { return }
        try? FS.writeFile("\(dir)/\(key)", bytes, mode: 0o600, atomic: true)
        prune(dir, keep: keep)
    }

    /// Removes the oldest entries (by mtime) beyond `keep`.
    static func prune(_ dir: String, keep: Int) {
        guard let names = try? FS.list(dir), names.count > keep else { return }
        var aged: [(mtime: Int, name: String)] = []
        for name in names {
            var st = stat()
            guard lstat("\(dir)/\(name)", &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            aged.append((st.st_mtim.tv_sec * 1_000_000_000 + st.st_mtim.tv_nsec, name))
        }
        aged.sort { $0.mtime < $1.mtime }
        for entry in aged.prefix(max(0, aged.count - keep)) { unlink("\(dir)/\(entry.name)") }
    }

    static func checkDir(_ dir: String) throws(WardenError) {
        try Skeleton.checkPrivate(Skeleton.top)
        try Skeleton.checkPrivate(dir)
    }
}

/// Profile and seccomp files as parsed JSON, by the SHA-256 of their bytes, in the same private directory
/// tree as the compiled programs. A one-shot command reads the file (it needs the bytes anyway), hashes it
/// and reads the value back without running JSONDecoder; a file that changed has other bytes, so a stale
/// entry cannot be found. Only files Warden loads as profiles go through here, never task input.
enum ParsedFileCache {
    static var dir: String { Skeleton.top + "/json" }

    /// The JSON in `bytes` (the contents of a profile file), from the cache or parsed and then cached, and
    /// the SHA-256 of the bytes (the cache key, which also names the file's seccomp rules: ProfileLoader).
    static func json(_ bytes: [UInt8]) throws(WardenError) -> (value: JSONValue, digest: String) {
        let key = SHA256.hex(bytes)
        if let cached = load(key) { return (cached, key) }
        let value = try JSONValue.parse(bytes)
        store(key, value)
        return (value, key)
    }

    static func load(_ key: String) -> JSONValue? {
        PrivateCache.read(dir, key, limit: 1 << 22).flatMap(JSONValue.init(binary:))
    }

    static func store(_ key: String, _ value: JSONValue) { PrivateCache.write(dir, key, value.binary) }
}
