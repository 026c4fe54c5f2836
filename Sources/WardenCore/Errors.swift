/// Process exit codes (DESIGN §7). The values follow sysexits.h where one fits.
public enum ExitCode: Int32, Sendable, Codable {
    case ok = 0
    /// The task or command failed.
    case failure = 1
    /// Bad usage, including a malformed value on the command line.
    case usage = 64
    /// Bad input data: a malformed file or JSON input.
    case dataError = 65
    /// A missing file or an unknown id (task, plugin, node).
    case noInput = 66
    /// No capacity, quota or rate limit: try later.
    case unavailable = 69
    /// A bug or an impossible state inside Warden.
    case internalError = 70
    /// Sandbox setup failed before the command could start.
    case osError = 71
    /// A temporary failure; retrying may help.
    case tempFail = 75
    /// Denied by policy.
    case denied = 77
}

/// The one error type that crosses module boundaries. `message` already names what failed and why
/// (`"$.resources.cpu: invalid CPU quantity \"12Zi\""`); `hint` is an optional remedy.
/// The CLI prints it as `warden: <message> (<hint>)`.
public struct WardenError: Error, CustomStringConvertible, Sendable, Equatable {
    public var code: ExitCode
    public var message: String
    public var hint: String?

    public init(_ code: ExitCode, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String {
        if let hint { return "\(message) (\(hint))" }
        return message
    }

    /// Malformed data at a JSON path (exit 65 in files, 64 when `code` says the value came from a flag).
    public static func invalid(_ path: String, _ why: String, code: ExitCode = .dataError, hint: String? = nil)
        -> WardenError
    {
        WardenError(code, path.isEmpty ? why : "\(path): \(why)", hint: hint)
    }

    public static func notFound(_ what: String, hint: String? = nil) -> WardenError {
        WardenError(.noInput, what, hint: hint)
    }

    public static func internalError(_ what: String) -> WardenError {
        WardenError(.internalError, what)
    }

    /// Same error with a different exit code (e.g. a file's 65 reported as a flag's 64).
    public func with(code: ExitCode) -> WardenError {
        var copy = self
        copy.code = code
        return copy
    }

    /// Same error with a prefix naming where it came from (`"plugins/x/warden-plugin.json"`).
    public func prefixed(_ prefix: String) -> WardenError {
        var copy = self
        copy.message = "\(prefix): \(message)"
        return copy
    }
}

/// Quotes a user-supplied value for an error message, keeping it on one line and short.
public func quoted(_ value: String) -> String {
    var out = "\""
    for scalar in value.unicodeScalars.prefix(80) {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 { out += "\\u{\(String(scalar.value, radix: 16))}" } else { out.unicodeScalars.append(scalar) }
        }
    }
    if value.unicodeScalars.count > 80 { out += "…" }
    return out + "\""
}
