import CWardenLinux
import Glibc
import WardenCore
import WardenSystem

/// A minimal HTTP/1.0 endpoint for Prometheus: `GET /metrics` returns the text format; anything else 404.
public enum MetricsHTTP {
    public static func start(addr: String, render: @escaping @Sendable () -> String) throws(WardenError) {
        let parts = addr.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else {
            throw WardenError.invalid("--metrics-addr", "expected HOST:PORT, got \(quoted(addr))", code: .usage)
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Errno.current.error("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        guard inet_pton(AF_INET, String(parts[0]), &sin.sin_addr) == 1 else {
            close(fd)
            throw WardenError.invalid("--metrics-addr", "not an IPv4 address: \(quoted(String(parts[0])))", code: .usage)
        }
        let rc = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0, listen(fd, 64) == 0 else {
            let e = Errno.current
            close(fd)
            throw e.error("--metrics-addr \(addr)")
        }
        startThread {
            while true {
                let c = warden_accept_cloexec(fd)
                if c < 0 { if errno == EINTR { continue }; usleep(10_000); continue }
                var tv = timeval(tv_sec: 2, tv_usec: 0)
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                var buf = [UInt8](repeating: 0, count: 4096)
                let n = read(c, &buf, buf.count)
                let req = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : ""
                let body: String
                let status: String
                if req.hasPrefix("GET /metrics") {
                    status = "200 OK"
                    body = render()
                } else {
                    status = "404 Not Found"
                    body = "not found\n"
                }
                let head = "HTTP/1.0 \(status)\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
                try? FS.writeAll(fd: c, Array((head + body).utf8))
                close(c)
            }
        }
    }
}
