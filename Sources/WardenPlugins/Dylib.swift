import CWardenPlugin
import Glibc
import WardenCore
import WardenSystem

/// Why a plugin library cannot be used, and at which step (the probe reports the step).
public struct DylibError: Error, Sendable, CustomStringConvertible {
    public enum Stage: String, Sendable {
        case open = "dlopen", entry, abi, tools, initialize = "init"
    }

    public var stage: Stage
    public var message: String

    public init(_ stage: Stage, _ message: String) {
        self.stage = stage
        self.message = message
    }

    public var description: String { message }
}

/// A dlopen'ed plugin library (model: swift-tools-support-core `DLHandle`), checked against the ABI.
///
/// It is never dlclose'd: a library may have started threads or registered destructors, and a Swift
/// plugin carries its own runtime, none of which survives unloading. A worker process ends instead.
public final class DylibLibrary: @unchecked Sendable {
    public let path: String
    public let name: String
    public let version: String
    /// The tool names from the optional `warden_plugin_tools` export; nil when the library has none.
    public let tools: [String]?
    let plugin: UnsafePointer<warden_plugin>

    private init(path: String, plugin: UnsafePointer<warden_plugin>, tools: [String]?) {
        self.path = path
        self.plugin = plugin
        self.tools = tools
        name = plugin.pointee.name.map { String(cString: $0) } ?? ""
        version = plugin.pointee.version.map { String(cString: $0) } ?? ""
    }

    typealias EntryFunction = @convention(c) () -> UnsafePointer<warden_plugin>?
    typealias ToolsFunction = @convention(c) () -> UnsafePointer<CChar>?

    /// dlopen(RTLD_NOW | RTLD_LOCAL), the entry symbol, the ABI version, the required functions and the
    /// optional tool list. Constructors run here: a library that crashes in one takes this process down,
    /// which is why registration calls this in a throw-away sandboxed child first.
    public static func open(_ path: String) throws(DylibError) -> DylibLibrary {
        if let why = SelfExecutable.cannotLoad("a plugin library") { throw DylibError(.open, why) }
        _ = dlerror()
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw DylibError(.open, "cannot be loaded: \(oneLine(lastDLError() ?? "dlopen failed"))")
        }
        guard let sym = dlsym(handle, "warden_plugin_entry") else {
            throw DylibError(.entry, "does not export warden_plugin_entry (is it built against include/warden_plugin.h?)")
        }
        let entry = unsafeBitCast(sym, to: EntryFunction.self)
        guard let plugin = entry() else {
            throw DylibError(.entry, "warden_plugin_entry() returned NULL")
        }
        let abi = plugin.pointee.abi_version
        guard abi == WARDEN_PLUGIN_ABI_VERSION else {
            throw DylibError(.abi, "has ABI version \(abi), but this Warden speaks version \(WARDEN_PLUGIN_ABI_VERSION) (rebuild it against include/warden_plugin.h)")
        }
        let p = plugin.pointee
        var missing: [String] = []
        if p.`init` == nil { missing.append("init") }
        if p.invoke == nil { missing.append("invoke") }
        if p.free_output == nil { missing.append("free_output") }
        guard missing.isEmpty else {
            throw DylibError(.entry, "its warden_plugin has no \(missing.joined(separator: ", ")) function")
        }
        var tools: [String]?
        if let tsym = dlsym(handle, "warden_plugin_tools") {
            let f = unsafeBitCast(tsym, to: ToolsFunction.self)
            guard let text = f() else { throw DylibError(.tools, "warden_plugin_tools() returned NULL") }
            let json: JSONValue
            do throws(WardenError) { json = try JSONValue.parse(Array(String(cString: text).utf8)) } catch {
                throw DylibError(.tools, "warden_plugin_tools() is not a JSON array of names: \(error.message)")
            }
            guard let items = json.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                throw DylibError(.tools, "warden_plugin_tools() is not a JSON array of names")
            }
            tools = items.compactMap(\.stringValue)
        }
        return DylibLibrary(path: path, plugin: plugin, tools: tools)
    }

    static func lastDLError() -> String? {
        guard let e = dlerror() else { return nil }
        return String(cString: e)
    }

    /// Calls `init` with `config` (a JSON object). Callbacks made during init go to `sink`.
    public func instantiate(config: String, sink: DylibCallSink) throws(DylibError) -> DylibInstance {
        let instance = DylibInstance(library: self)
        var state: UnsafeMutableRawPointer?
        let rc = DylibCallContext.with(sink) {
            config.withCString { plugin.pointee.`init`!(instance.host, $0, &state) }
        }
        guard rc == 0 else {
            throw DylibError(.initialize, "failed to initialise: init returned \(rc)")
        }
        instance.state = state
        return instance
    }
}

/// Where a call's callbacks go: the worker relays them as frames, in-process hosting calls the engine.
public protocol DylibCallSink: AnyObject {
    func log(level: Int32, message: String)
    func progress(_ fraction: Double, _ message: String)
    func cancelled() -> Bool
}

/// The sink of the call running on this thread (a pthread key), so that one `warden_host` can serve
/// concurrent calls: a callback finds its call through the thread it is made on.
enum DylibCallContext {
    static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    static func with<T>(_ sink: DylibCallSink, _ body: () -> T) -> T {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, Unmanaged<AnyObject>.passUnretained(sink as AnyObject).toOpaque())
        defer { pthread_setspecific(key, previous) }
        return body()
    }

    static var current: DylibCallSink? {
        guard let p = pthread_getspecific(key) else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as? DylibCallSink
    }
}

/// Outside any call: log lines go to stderr (the worker's stderr reaches the task log), progress is
/// dropped, nothing is cancelled.
private let logCallback: @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?) -> Void = { _, level, msg in
    let text = msg.map { String(cString: $0) } ?? ""
    if let sink = DylibCallContext.current {
        sink.log(level: level, message: text)
    } else {
        let line = Array("[\(DylibLog.name(level))] \(text)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}

private let progressCallback: @convention(c) (UnsafeMutableRawPointer?, Double, UnsafePointer<CChar>?) -> Void = { _, f, msg in
    DylibCallContext.current?.progress(f.isFinite ? min(1, max(0, f)) : 0, msg.map { String(cString: $0) } ?? "")
}

private let cancelledCallback: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { _ in
    (DylibCallContext.current?.cancelled() ?? false) ? 1 : 0
}

public enum DylibLog {
    public static func name(_ level: Int32) -> String {
        switch level {
        case ...0: "debug"
        case 1: "info"
        case 2: "warn"
        default: "error"
        }
    }
}

/// What `invoke` returned: its code and a copy of its output (nil when over the cap; `length` is the size).
public struct DylibRawResult: Sendable {
    public var rc: Int32
    public var output: [UInt8]?
    public var length: Int
}

/// One initialised instance of a library: a `warden_host` and the plugin's `state`.
public final class DylibInstance: @unchecked Sendable {
    public let library: DylibLibrary
    let host: UnsafeMutablePointer<warden_host>
    var state: UnsafeMutableRawPointer?
    private var closed = false

    init(library: DylibLibrary) {
        self.library = library
        host = .allocate(capacity: 1)
        host.initialize(to: warden_host(abi_version: WARDEN_PLUGIN_ABI_VERSION, ctx: nil, log: logCallback,
                                        progress: progressCallback, cancelled: cancelledCallback))
    }

    /// One tool call on this thread; callbacks go to `sink`. An output longer than `cap` is not copied.
    public func invoke(tool: String, input: [UInt8], cap: Int, sink: DylibCallSink) -> DylibRawResult {
        let p = library.plugin.pointee
        var out: UnsafeMutablePointer<CChar>?
        var outLen = 0
        var nulTerminated = input
        nulTerminated.append(0)
        let rc = DylibCallContext.with(sink) {
            tool.withCString { t in
                nulTerminated.withUnsafeBufferPointer { buf in
                    buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) { inp in
                        p.invoke!(state, t, inp, input.count, &out, &outLen)
                    }
                }
            }
        }
        guard let out else { return DylibRawResult(rc: rc, output: [], length: 0) }
        var copy: [UInt8]?
        if outLen <= cap {
            copy = out.withMemoryRebound(to: UInt8.self, capacity: outLen) { Array(UnsafeBufferPointer(start: $0, count: outLen)) }
        }
        p.free_output!(out)
        return DylibRawResult(rc: rc, output: copy, length: outLen)
    }

    /// Calls the plugin's `shutdown` once.
    public func shutdown() {
        guard !closed else { return }
        closed = true
        library.plugin.pointee.shutdown?(state)
    }
}

/// The reply of one call as Warden sees it, built the same way in a worker and in-process.
public struct DylibReply: Sendable, Equatable {
    public enum Problem: Sendable, Equatable {
        /// rc 0 but the output is not one JSON value.
        case invalidOutput(String)
        /// The output is longer than the cap (its length in bytes).
        case outputLimit(Int)
    }

    public var rc: Int32
    public var output: JSONValue?
    public var message: String?
    public var problem: Problem?

    public init(rc: Int32, output: JSONValue? = nil, message: String? = nil, problem: Problem? = nil) {
        self.rc = rc
        self.output = output
        self.message = message
        self.problem = problem
    }

    /// Interprets `invoke`'s code and output: rc 0 needs valid JSON (empty means null); otherwise the
    /// output is a message, plain or `{"error": "..."}`.
    public static func interpret(_ raw: DylibRawResult, cap: Int) -> DylibReply {
        guard let bytes = raw.output else { return DylibReply(rc: raw.rc, problem: .outputLimit(raw.length)) }
        if raw.rc == 0 {
            if bytes.allSatisfy({ $0 == 32 || $0 == 10 || $0 == 9 || $0 == 13 }) { return DylibReply(rc: 0, output: .null) }
            do throws(WardenError) {
                return DylibReply(rc: 0, output: try JSONValue.parse(bytes))
            } catch {
                return DylibReply(rc: 0, problem: .invalidOutput(error.message))
            }
        }
        return DylibReply(rc: raw.rc, message: errorMessage(bytes))
    }

    static func errorMessage(_ bytes: [UInt8]) -> String? {
        guard !bytes.isEmpty else { return nil }
        if bytes.first == UInt8(ascii: "{"), let v = try? JSONValue.parse(bytes), let e = v["error"]?.stringValue {
            return String(oneLine(e).prefix(500))
        }
        let text = oneLine(String(decoding: bytes.prefix(2000), as: UTF8.self))
        return text.isEmpty ? nil : String(text.prefix(500))
    }

    /// The task outcome: success, a tool error (not retried), or 75 (retried).
    public func outcome(cap: Int) -> ToolOutcome {
        switch problem {
        case .outputLimit(let n)?:
            return .failed("output_limit: the tool returned \(Quantity.formatBytes(Int64(n))), over its \(Quantity.formatBytes(Int64(cap))) output cap")
        case .invalidOutput(let why)?:
            return .failed("the tool returned 0 but its output is not JSON (\(why))")
        case nil:
            break
        }
        switch rc {
        case 0: return ToolOutcome(status: .succeeded(output ?? .null))
        case 75: return .failed("the tool asked to be retried (75)\(message.map { ": \($0)" } ?? "")", retryable: true)
        default: return .failed("the tool failed (\(rc))\(message.map { ": \($0)" } ?? "")")
        }
    }
}

/// Keeps a message on one line (dlerror texts, plugin messages).
func oneLine(_ s: String) -> String {
    String(s.map { $0.isNewline || $0 == "\t" ? " " : $0 }).trimmed
}
