import CCrypto
import Glibc
import WardenCore

/// SHA-256 through libcrypto (we write no crypto). The low-level SHA256_* API, not EVP: EVP's first use
/// initialises all of OpenSSL (config file, providers), which cost every short-lived CLI run ~1.7 ms.
public struct SHA256 {
    private var ctx = SHA256_CTX()

    public init() {
        SHA256_Init(&ctx)
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        if let base = bytes.baseAddress { SHA256_Update(&ctx, base, bytes.count) }
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }
    public mutating func update(_ text: String) { update(Array(text.utf8)) }

    public mutating func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        SHA256_Final(&out, &ctx)
        return out
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        var h = SHA256()
        h.update(bytes)
        return hexString(h.finalize())
    }

    public static func hex(_ text: String) -> String { hex(Array(text.utf8)) }

    /// Hashes a file in 64 KiB chunks.
    public static func hex(file path: String) throws(WardenError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Errno.current.error("open \(path)") }
        defer { close(fd) }
        var h = SHA256()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw Errno.current.error("read \(path)") }
            if n == 0 { break }
            buf.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return hexString(h.finalize())
    }

    public static func hexString(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
