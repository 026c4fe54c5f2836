import Glibc
import WardenCore
import WardenStore
import WardenSystem

/// Registers plugins: strict manifest validation, file checks (missing, escaping by `..` or symlink),
/// sha256 pinning of every file, and the kind's own probe (dylib load check, MCP tool discovery).
public final class Registry: @unchecked Sendable {
    public let store: Store
    /// Kind-specific checks run before anything is stored (dylib probe, MCP discovery); they may replace the
    /// tool list (an mcp plugin's tools come from the server).
    public var probes: [PluginManifest.Kind: @Sendable (PluginRecord) throws(WardenError) -> [PluginManifest.Tool]] = [:]

    public static let maxFiles = 20_000
    public static let maxTotalBytes: Int64 = 1 << 30

    public init(store: Store) { self.store = store }

    /// Validates `dir` and returns the record that `register` would store, without storing it.
    public func inspect(_ dirArg: String, trusted: Bool) throws(WardenError) -> PluginRecord {
        guard let dir = FS.realpath(dirArg), FS.isDirectory(dir) else {
            throw WardenError.notFound("plugin directory \(quoted(dirArg)) does not exist")
        }
        let manifestPath = "\(dir)/\(PluginManifest.fileName)"
        guard FS.isRegularFile(manifestPath) else {
            throw WardenError.notFound("\(dirArg): no \(PluginManifest.fileName) in the plugin directory")
        }
        let json: JSONValue
        let manifest: PluginManifest
        do throws(WardenError) {
            json = try JSONValue.parse(try FS.readFile(manifestPath, limit: 1 << 20))
            manifest = try PluginManifest.decode(json)
        } catch {
            throw error.with(code: error.code == .noInput ? .noInput : .dataError).prefixed(manifestPath)
        }
        for (path, field) in manifest.referencedPaths {
            try Self.checkInside(dir: dir, relative: path, field: field, manifestPath: manifestPath,
                                 executable: field.hasSuffix("exec[0]") || field.hasSuffix("command[0]"))
        }
        if manifest.hosting == .inProcess && !trusted {
            throw WardenError(.denied, "\(manifestPath): $.hosting: in-process hosting runs the library inside Warden itself",
                              hint: "register with --trust if this library is trusted")
        }
        let files = try Self.hashTree(dir)
        let record = PluginRecord(manifest: manifest, manifestJSON: json, dir: dir, files: files,
                                  digest: Self.digest(files), trusted: trusted, registeredAt: Time.nowMs(), tools: manifest.tools)
        return record
    }

    /// Registers (or replaces) `name@version`. Nothing is written when any check fails.
    @discardableResult
    public func register(_ dir: String, trusted: Bool, actor: String) throws(WardenError) -> PluginRecord {
        var record = try inspect(dir, trusted: trusted)
        if let probe = probes[record.manifest.kind] {
            let tools = try probe(record)
            if record.manifest.kind == .mcp {
                if record.manifest.tools.isEmpty {
                    record.tools = tools
                } else {
                    // The manifest's tools must really be offered: a manifest that lies is refused.
                    let offered = Set(tools.map(\.name))
                    for (i, t) in record.manifest.tools.enumerated() where !offered.contains(t.name) {
                        throw WardenError.invalid("\(record.dir)/\(PluginManifest.fileName): $.tools[\(i)].name",
                                                  "the MCP server does not offer a tool \(quoted(t.name)) (it offers: \(offered.sorted().joined(separator: ", ")))")
                    }
                    record.tools = record.manifest.tools
                }
            } else if !tools.isEmpty {
                // A dylib's own tool list must agree with its manifest.
                let declared = Set(record.manifest.tools.map(\.name))
                for t in tools where !declared.contains(t.name) {
                    throw WardenError.invalid("\(record.dir)/\(PluginManifest.fileName): $.tools",
                                              "the library offers a tool \(quoted(t.name)) that the manifest does not declare")
                }
            }
        }
        try store.putPlugin(record, actor: actor)
        return record
    }

    /// Refuses to run a plugin whose files changed since registration.
    public func verifyPinned(_ p: PluginRecord) throws(WardenError) {
        let now: [String: String]
        do throws(WardenError) { now = try Self.hashTree(p.dir) } catch {
            throw WardenError(.failure, "plugin \(p.name)@\(p.version) cannot be verified: \(error.message)",
                              hint: "re-register it with `warden plugin register \(p.dir)`")
        }
        if now == p.files { return }
        let changed = Set(now.keys).union(p.files.keys).filter { now[$0] != p.files[$0] }.sorted()
        let first = changed.first ?? "?"
        let what = p.files[first] == nil ? "added" : (now[first] == nil ? "removed" : "modified")
        throw WardenError(.failure, "plugin \(p.name)@\(p.version) changed since registration (\(first) \(what)\(changed.count > 1 ? ", and \(changed.count - 1) more" : "")); it will not run",
                          hint: "re-register it with `warden plugin register \(p.dir)`")
    }

    // MARK: checks

    static func checkInside(dir: String, relative: String, field: String, manifestPath: String, executable: Bool) throws(WardenError) {
        let full = "\(dir)/\(relative)"
        guard FS.exists(full) else {
            throw WardenError.invalid("\(manifestPath): \(field)", "file \(quoted(relative)) does not exist in the plugin directory")
        }
        guard let real = FS.realpath(full), real == dir || real.hasPrefix(dir + "/") else {
            throw WardenError.invalid("\(manifestPath): \(field)", "\(quoted(relative)) escapes the plugin directory through a symlink")
        }
        guard FS.isRegularFile(real) else {
            throw WardenError.invalid("\(manifestPath): \(field)", "\(quoted(relative)) is not a regular file")
        }
        if executable && !FS.isExecutable(real) {
            throw WardenError.invalid("\(manifestPath): \(field)", "\(quoted(relative)) is not executable (chmod +x it)")
        }
    }

    /// sha256 of every regular file under `dir` (relative paths). A symlink that leaves the directory is an
    /// error: what runs must be what was pinned.
    static func hashTree(_ dir: String) throws(WardenError) -> [String: String] {
        var out: [String: String] = [:]
        var total: Int64 = 0
        var stack = [""]
        while let rel = stack.popLast() {
            let path = rel.isEmpty ? dir : "\(dir)/\(rel)"
            for name in try FS.list(path) {
                let r = rel.isEmpty ? name : "\(rel)/\(name)"
                let full = "\(dir)/\(r)"
                if name == "__pycache__" || name == ".git" { continue }
                guard let mode = FS.lstatMode(full) else { continue }
                switch mode & S_IFMT {
                case S_IFDIR: stack.append(r)
                case S_IFLNK:
                    guard let real = FS.realpath(full), real.hasPrefix(dir + "/") || real == dir else {
                        throw WardenError(.dataError, "\(full): symlink escapes the plugin directory")
                    }
                case S_IFREG:
                    var st = stat()
                    stat(full, &st)
                    total += Int64(st.st_size)
                    guard out.count < maxFiles, total <= maxTotalBytes else {
                        throw WardenError(.dataError, "\(dir): plugin directory too large (over \(maxFiles) files or \(Quantity.formatBytes(maxTotalBytes)))")
                    }
                    out[r] = try SHA256.hex(file: full)
                default:
                    continue
                }
            }
        }
        return out
    }

    static func digest(_ files: [String: String]) -> String {
        var h = SHA256()
        for (path, sum) in files.sorted(by: { $0.key < $1.key }) {
            h.update("\(path)\u{0}\(sum)\n")
        }
        return SHA256.hexString(h.finalize())
    }
}
