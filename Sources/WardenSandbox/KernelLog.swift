import Glibc
import WardenCore
import WardenSystem

/// Reads the kernel's audit record of a seccomp kill (`type=1326 … sig=31 … syscall=N`) to name the syscall.
/// Best effort: it needs read access to /dev/kmsg and a kernel that logs seccomp kills (the default).
enum KernelLog {
    static func lastSeccompKill(since startMonotonicNs: UInt64, executable: String) -> String? {
        let fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let sinceUs = startMonotonicNs / 1000
        let comm = String(FS.basename(executable).prefix(15))
        var found: String?
        var buf = [UInt8](repeating: 0, count: 8192)
        // Records come one per read; EAGAIN marks the end of the buffer.
        for _ in 0..<100_000 {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EPIPE { continue }   // a record was overwritten while we read
                break
            }
            if n == 0 { break }
            let line = String(decoding: buf[0..<n], as: UTF8.self)
            guard line.contains("type=1326"), line.contains("sig=31") else { continue }
            let header = line.split(separator: ";", maxSplits: 1).first ?? ""
            let fields = header.split(separator: ",")
            guard fields.count >= 3, let ts = UInt64(fields[2]), ts >= sinceUs else { continue }
            if !comm.isEmpty && !line.contains("comm=\"\(comm)") { continue }
            var nr: Int32?
            var compat = false
            for token in line.split(separator: " ") {
                if token.hasPrefix("syscall=") { nr = Int32(token.dropFirst(8)) }
                if token == "compat=1" { compat = true }
                if token.hasPrefix("arch=") && token != "arch=c000003e" { compat = true }
            }
            if let nr {
                found = compat ? "ia32 syscall \(nr)" : (SeccompCompiler.syscallName(nr) ?? "syscall \(nr)")
            }
        }
        return found
    }
}
