import Glibc
import WardenCore

/// An errno value with its symbolic name, so messages say `EPERM`, not `1`.
public struct Errno: Error, Equatable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(_ raw: Int32) { rawValue = raw }
    public static var current: Errno { Errno(errno) }

    static let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO", ENXIO: "ENXIO", E2BIG: "E2BIG",
        ENOEXEC: "ENOEXEC", EBADF: "EBADF", ECHILD: "ECHILD", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES",
        EFAULT: "EFAULT", EBUSY: "EBUSY", EEXIST: "EEXIST", EXDEV: "EXDEV", ENODEV: "ENODEV", ENOTDIR: "ENOTDIR",
        EISDIR: "EISDIR", EINVAL: "EINVAL", ENFILE: "ENFILE", EMFILE: "EMFILE", ENOTTY: "ENOTTY", ETXTBSY: "ETXTBSY",
        EFBIG: "EFBIG", ENOSPC: "ENOSPC", ESPIPE: "ESPIPE", EROFS: "EROFS", EMLINK: "EMLINK", EPIPE: "EPIPE",
        ERANGE: "ERANGE", ENAMETOOLONG: "ENAMETOOLONG", ENOSYS: "ENOSYS", ENOTEMPTY: "ENOTEMPTY", ELOOP: "ELOOP",
        EOVERFLOW: "EOVERFLOW", EOPNOTSUPP: "EOPNOTSUPP", ECONNREFUSED: "ECONNREFUSED", ENETUNREACH: "ENETUNREACH",
        EADDRINUSE: "EADDRINUSE", ETIMEDOUT: "ETIMEDOUT", EUSERS: "EUSERS", ENOTSOCK: "ENOTSOCK",
        EAFNOSUPPORT: "EAFNOSUPPORT", ECONNRESET: "ECONNRESET", EHOSTUNREACH: "EHOSTUNREACH",
    ]

    public var name: String { Self.names[rawValue] ?? "errno \(rawValue)" }
    public var message: String { String(cString: strerror(rawValue)) }
    public var description: String { "\(name) (\(message))" }

    /// `open /x: ENOENT (No such file or directory)` as a WardenError with a fitting exit code.
    public func error(_ what: String, hint: String? = nil) -> WardenError {
        let code: ExitCode
        switch rawValue {
        case ENOENT, ENOTDIR: code = .noInput
        case EACCES, EPERM: code = .failure
        case EAGAIN, EBUSY, EINTR: code = .tempFail
        default: code = .failure
        }
        return WardenError(code, "\(what): \(self)", hint: hint)
    }
}

/// Retries a syscall wrapper on EINTR; returns its value or throws the errno.
@inline(__always)
public func sys<T: BinaryInteger>(_ body: () -> T) throws(Errno) -> T {
    while true {
        let r = body()
        if r >= 0 { return r }
        let e = errno
        if e != EINTR { throw Errno(e) }
    }
}
