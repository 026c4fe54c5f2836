import Glibc
import WardenCore

/// Small, explicit file-system calls over Glibc. Errors name the path and errno.
public enum FS {
    public static func readFile(_ path: String, limit: Int = 64 << 20) throws(WardenError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Errno.current.error("open \(path)") }
        defer { close(fd) }
        return try readAll(fd: fd, limit: limit, what: path)
    }

    public static func readText(_ path: String) throws(WardenError) -> String {
        String(decoding: try readFile(path), as: UTF8.self)
    }

    /// Reads until EOF. Beyond `limit` bytes it stops with an error (inputs are never read without bound).
    /// Reads straight into the result, sized from fstat when the file says its size (procfs and pipes do not):
    /// one-shot commands read a dozen small files and a zeroed 64 KiB bounce buffer each showed in profiles.
    public static func readAll(fd: Int32, limit: Int = 64 << 20, what: String = "file") throws(WardenError) -> [UInt8] {
        var st = stat()
        let known = fstat(fd, &st) == 0 && st.st_size > 0 ? Int(st.st_size) : 0
        // One byte more than the size, so that EOF is seen without growing; never more than limit + 1.
        var out = [UInt8](repeating: 0, count: min(limit, known > 0 ? known : 4095) + 1)
        var used = 0
        while true {
            if used == out.count { out.append(contentsOf: repeatElement(0, count: min(out.count, limit + 1 - out.count))) }
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + used, $0.count - used) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Errno.current.error("read \(what)")
            }
            if n == 0 { break }
            used += n
            if used > limit { throw WardenError(.dataError, "\(what): larger than \(Quantity.formatBytes(Int64(limit)))") }
        }
        out.removeSubrange(used...)
        return out
    }

    /// Writes atomically: a temp file in the same directory, fsync, rename.
    public static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644, atomic: Bool = true) throws(WardenError) {
        let target = atomic ? "\(path).tmp.\(getpid())" : path
        let fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Errno.current.error("open \(target)") }
        do throws(WardenError) {
            try writeAll(fd: fd, bytes)
        } catch {
            close(fd)
            throw error
        }
        if atomic { fsync(fd) }
        close(fd)
        if atomic && rename(target, path) != 0 { throw Errno.current.error("rename \(target)") }
    }

    public static func writeFile(_ path: String, _ text: String) throws(WardenError) {
        try writeFile(path, Array(text.utf8))
    }

    public static func writeAll(fd: Int32, _ bytes: [UInt8]) throws(WardenError) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Errno.current.error("write")
            }
            off += n
        }
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func lstatMode(_ path: String) -> mode_t? {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode : nil
    }

    public static func statMode(_ path: String) -> mode_t? {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mode : nil
    }

    public static func isDirectory(_ path: String) -> Bool { statMode(path).map { $0 & S_IFMT == S_IFDIR } ?? false }
    public static func isRegularFile(_ path: String) -> Bool { statMode(path).map { $0 & S_IFMT == S_IFREG } ?? false }
    public static func isSymlink(_ path: String) -> Bool { lstatMode(path).map { $0 & S_IFMT == S_IFLNK } ?? false }
    public static func isExecutable(_ path: String) -> Bool { isRegularFile(path) && access(path, X_OK) == 0 }

    public static func readlink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = Glibc.readlink(path, &buf, buf.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func realpath(_ path: String) -> String? {
        guard let p = Glibc.realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    public static func mkdirs(_ path: String, mode: mode_t = 0o755) throws(WardenError) {
        if isDirectory(path) { return }
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode) != 0 && errno != EEXIST { throw Errno.current.error("mkdir \(current)") }
        }
    }

    /// Directory entries (names), sorted, without `.` and `..`.
    public static func list(_ path: String) throws(WardenError) -> [String] {
        guard let d = opendir(path) else { throw Errno.current.error("opendir \(path)") }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    /// Removes a file or a directory tree (like rm -rf); missing is fine.
    public static func removeTree(_ path: String) {
        guard let mode = lstatMode(path) else { return }
        if mode & S_IFMT == S_IFDIR {
            for name in (try? list(path)) ?? [] { removeTree("\(path)/\(name)") }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    public static func cwd() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return "." }
        return String(cString: buf)
    }

    /// An absolute, lexically normalised path (no symlink resolution).
    public static func absolute(_ path: String, base: String? = nil) -> String {
        let full = path.hasPrefix("/") ? path : "\(base ?? cwd())/\(path)"
        var parts: [Substring] = []
        for p in full.split(separator: "/") {
            if p == "." || p.isEmpty { continue }
            if p == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(p)
        }
        return "/" + parts.joined(separator: "/")
    }

    public static func basename(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }
    public static func dirname(_ path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "." }
        return i == path.startIndex ? "/" : String(path[..<i])
    }

    public static func env(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        return String(cString: v)
    }

    /// The process environment as `NAME=value` pairs.
    public static func environment() -> [String: String] {
        var out: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return out
    }
}
