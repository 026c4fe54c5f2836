import Glibc
import Synchronization
import WardenCore
import WardenSystem

/// Finds and loads sandbox profiles by name (`default`, `strict`, `network`, `trusted`, or any file in the
/// profile directory) or by path, resolving a `seccomp` path relative to the profile file.
public enum ProfileLoader {
    /// A loaded profile with its OCI seccomp section resolved.
    public struct Loaded: Sendable {
        public var profile: SandboxProfile
        public var seccomp: SeccompFilter?
        public var path: String
        /// True when it came from the shipped profile directory (only then may `trusted` lift denials).
        public var builtIn: Bool
    }

    /// An OCI seccomp filter as loaded, and where it was written. Immutable, shared by every spec that uses it.
    public final class SeccompFilter: Sendable {
        public let oci: OCISeccomp
        /// The file and the JSON path of the filter in it ("$" for an OCI file, "$.seccomp" inline in a
        /// profile), so that a bad rule is reported where it is.
        public let file: String
        public let jsonPath: String
        /// The SHA-256 of the file's bytes and the JSON path: names these rules exactly, so that their compiled
        /// program is found without hashing the decoded rules (Sandbox.programs).
        public let source: String

        init(_ oci: OCISeccomp, file: String, jsonPath: String, digest: String) {
            self.oci = oci
            self.file = file
            self.jsonPath = jsonPath
            source = "\(digest)#\(jsonPath)"
        }
    }

    /// Where shipped profiles live: `$WARDEN_PROFILES`, else `sandbox-profiles/` next to the binary or in a
    /// parent directory of it (a build tree), else `../share/warden/sandbox-profiles`.
    public static func profileDirectory() -> String? {
        if let env = FS.env("WARDEN_PROFILES"), FS.isDirectory(env) { return env }
        guard let exe = SelfExecutable.path else { return nil }
        var dir = FS.dirname(exe)
        let exeDir = dir
        for _ in 0..<6 {
            let candidate = "\(dir)/sandbox-profiles"
            if FS.isRegularFile("\(candidate)/default.json") { return candidate }
            if dir == "/" { break }
            dir = FS.dirname(dir)
        }
        let share = FS.absolute("../share/warden/sandbox-profiles", base: exeDir)
        return FS.isDirectory(share) ? share : nil
    }

    public static func list() -> [String] {
        guard let dir = profileDirectory() else { return [] }
        return ((try? FS.list(dir)) ?? []).filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
    }

    /// Profiles already parsed in this process, by file, with the identity of the file(s) they came from:
    /// an executor loads its plugin's profile for every task, and parsing ~10 KB of JSON each time showed up
    /// in `bench tasks`. A changed file (inode, size or mtime) is parsed again.
    private static let cache = Mutex<[String: (identity: [String], loaded: Loaded)]>([:])

    /// What a file is now (device, inode, size, mtime), and whether it changed in the last two seconds.
    static func identity(_ path: String) -> (id: String, recent: Bool) {
        var st = stat()
        guard stat(path, &st) == 0 else { return ("missing", true) }
        return ("\(st.st_dev):\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)",
                Int64(time(nil)) - Int64(st.st_mtim.tv_sec) < 2)
    }

    /// `nameOrPath` containing a slash or ending in .json is a path; anything else is a shipped profile name.
    static func isPath(_ nameOrPath: String) -> Bool { nameOrPath.contains("/") || nameOrPath.hasSuffix(".json") }

    /// A shipped profile by name or a profile file by path, parsed once per process while its files stay as
    /// they are.
    public static func load(_ nameOrPath: String) throws(WardenError) -> Loaded {
        let key = isPath(nameOrPath) ? FS.absolute(nameOrPath) : "\(profileDirectory() ?? "")#\(nameOrPath)"
        if let hit = cache.withLock({ $0[key] }),
           hit.identity == [hit.loaded.path, hit.loaded.seccomp?.file].compactMap({ $0 }).map({ identity($0).id }) {
            return hit.loaded
        }
        let loaded = try loadUncached(nameOrPath)
        let files = [loaded.path, loaded.seccomp?.file].compactMap { $0 }.map(identity)
        // A file modified in the last two seconds may change again within its mtime's resolution after we
        // read it (git's "racy" index entries): such a load is not cached. Nor is a bare OCI file, which
        // also reads the default profile.
        let bareOCI = loaded.seccomp?.file == loaded.path && loaded.seccomp?.jsonPath == "$"
        if !bareOCI && !files.contains(where: \.recent) {
            cache.withLock { $0[key] = (files.map(\.id), loaded) }
        }
        return loaded
    }

    static func loadUncached(_ nameOrPath: String) throws(WardenError) -> Loaded {
        let byPath = isPath(nameOrPath)
        let path: String
        var builtIn = false
        if byPath {
            path = FS.absolute(nameOrPath)
            guard FS.exists(path) else { throw WardenError.notFound("profile \(quoted(nameOrPath)): no such file") }
        } else {
            guard PluginManifest.isValidName(nameOrPath) else {
                throw WardenError.invalid("profile", "invalid profile name \(quoted(nameOrPath))", code: .usage)
            }
            guard let dir = profileDirectory() else {
                throw WardenError.notFound("profile \(quoted(nameOrPath)): no sandbox-profiles directory found", hint: "set WARDEN_PROFILES")
            }
            path = "\(dir)/\(nameOrPath).json"
            guard FS.exists(path) else {
                throw WardenError.notFound("unknown profile \(quoted(nameOrPath))", hint: "known: \(list().joined(separator: ", "))")
            }
            builtIn = true
        }
        let (json, digest) = try parse(path)
        // A bare OCI seccomp file loads as the default profile with that filter.
        if json["defaultAction"] != nil && json["name"] == nil {
            var base = try load("default")
            base.seccomp = SeccompFilter(try decodeOCI(json, file: path), file: path, jsonPath: "$", digest: digest)
            base.path = path
            return base
        }
        var profile: SandboxProfile
        do throws(WardenError) { profile = try SandboxProfile.decode(json) } catch { throw error.prefixed(path) }
        if profile.trusted && !(builtIn && profile.name == "trusted") {
            throw WardenError.invalid("\(path): $.trusted", "only the shipped \"trusted\" profile may lift Warden's mandatory denials")
        }
        var loaded = Loaded(profile: profile, seccomp: nil, path: path, builtIn: builtIn)
        switch profile.seccomp {
        case .none: break
        case .inline(let s): loaded.seccomp = SeccompFilter(s, file: path, jsonPath: "$.seccomp", digest: digest)
        case .path(let p): loaded.seccomp = try loadOCI(FS.absolute(p, base: FS.dirname(path)))
        }
        return loaded
    }

    /// An OCI seccomp file (`sandbox exec --seccomp FILE`, or a profile's `"seccomp": "FILE"`).
    public static func loadOCI(_ path: String) throws(WardenError) -> SeccompFilter {
        guard FS.exists(path) else { throw WardenError.notFound("seccomp file \(quoted(path)): no such file") }
        let (json, digest) = try parse(path)
        return SeccompFilter(try decodeOCI(json, file: path), file: path, jsonPath: "$", digest: digest)
    }

    /// The file's JSON and the SHA-256 of its bytes.
    static func parse(_ path: String) throws(WardenError) -> (JSONValue, String) {
        do throws(WardenError) { return try ParsedFileCache.json(try FS.readFile(path)) } catch { throw error.prefixed(path) }
    }

    static func decodeOCI(_ json: JSONValue, file: String) throws(WardenError) -> OCISeccomp {
        do throws(WardenError) { return try OCISeccomp.decode(json) } catch { throw error.prefixed(file) }
    }
}
