import Glibc
import WardenCore
import WardenSystem

/// The worker side of isolated dylib hosting: what `warden plugin-host` runs inside the plugin's sandbox.
/// The library is dlopen'ed here, never in the control plane.
public enum PluginHostProcess {
    /// Serves calls arriving on `fd` (3 inside the sandbox), one at a time, until EOF or `shutdown`.
    /// Returns the process exit status: 0 after a clean end, 65 when the library cannot be used.
    public static func serve(library: String, fd: Int32 = 3) -> Int32 {
        let reader = FrameReader(fd: fd)
        guard case .frame(let first) = reader.readBlocking(), first.t == "init" else {
            log("plugin-host: the channel did not start with an init frame")
            return ExitCode.dataError.rawValue
        }
        let cap = Int(first.maxOutput ?? 8 << 20)
        let sink = WorkerSink(fd: fd, reader: reader)
        let instance: DylibInstance
        do throws(DylibError) {
            let lib = try DylibLibrary.open(library)
            instance = try lib.instantiate(config: first.config ?? "{}", sink: sink)
        } catch {
            var f = HostFrame("fatal")
            f.stage = error.stage.rawValue
            f.message = error.message
            sink.send(FrameCodec.encode(f))
            return ExitCode.dataError.rawValue
        }
        var ready = HostFrame("ready")
        ready.abi = 1
        ready.name = instance.library.name
        ready.version = instance.library.version
        ready.tools = instance.library.tools
        sink.send(FrameCodec.encode(ready))

        while true {
            switch reader.readBlocking() {
            case .frame(let f) where f.t == "call":
                guard let id = f.id, let tool = f.tool else {
                    log("plugin-host: a call frame without id or tool")
                    return ExitCode.dataError.rawValue
                }
                let timeout = UInt64(max(0, f.timeoutMs ?? 30_000))
                sink.begin(id: id, deadlineNs: Time.monotonicNs() + timeout * 1_000_000)
                let raw = instance.invoke(tool: tool, input: Array((f.input ?? "{}").utf8), cap: cap, sink: sink)
                sink.end()
                sink.send(resultFrame(id: id, raw: raw, cap: cap))
            case .frame(let f) where f.t == "cancel":
                continue   // for a call that already ended
            case .frame(let f) where f.t == "shutdown":
                instance.shutdown()
                return 0
            case .frame(let f):
                log("plugin-host: unexpected frame \(quoted(f.t))")
                return ExitCode.dataError.rawValue
            case .eof:
                instance.shutdown()
                return 0
            case .garbage(let why):
                log("plugin-host: \(why)")
                return ExitCode.dataError.rawValue
            }
        }
    }

    /// The plugin's code and output, unread: the host interprets them. Only an output over the cap is held back.
    static func resultFrame(id: Int64, raw: DylibRawResult, cap: Int) -> [UInt8] {
        if let bytes = raw.output { return FrameCodec.encodeResult(id: id, rc: raw.rc, output: bytes) }
        var f = HostFrame("result", id: id)
        f.rc = raw.rc
        f.problem = "output_limit"
        f.length = Int64(raw.length)
        return FrameCodec.encode(f)
    }

    /// `warden plugin-host --probe`: load, check and initialise the library once, then print one JSON line
    /// on stdout: `{"ok": true, "abi", "name", "version", "tools"}` or `{"ok": false, "stage", "message"}`.
    /// Exit 0 or 65. A crash in a constructor or in init kills this process: the caller reports the signal.
    public static func probe(library: String, config: String) -> Int32 {
        let sink = StderrSink()
        var out: [String: JSONValue]
        var status: Int32 = 0
        do throws(DylibError) {
            let lib = try DylibLibrary.open(library)
            let instance = try lib.instantiate(config: config, sink: sink)
            instance.shutdown()
            out = ["ok": true, "abi": .int(1), "name": .string(lib.name), "version": .string(lib.version),
                   "tools": lib.tools.map { .array($0.map { .string($0) }) } ?? .null]
        } catch {
            out = ["ok": false, "stage": .string(error.stage.rawValue), "message": .string(error.message)]
            status = ExitCode.dataError.rawValue
        }
        try? FS.writeAll(fd: 1, JSONValue.object(out).canonicalBytes + [10])
        return status
    }

    static func log(_ s: String) {
        try? FS.writeAll(fd: 2, Array((s + "\n").utf8))
    }
}

/// Callbacks of the call being served, relayed as frames; `cancelled` also watches for a cancel frame.
final class WorkerSink: DylibCallSink, @unchecked Sendable {
    let fd: Int32
    let reader: FrameReader
    private var lock = pthread_mutex_t()
    private var callID: Int64?
    private var deadlineNs: UInt64 = 0
    private var isCancelled = false

    init(fd: Int32, reader: FrameReader) {
        self.fd = fd
        self.reader = reader
        pthread_mutex_init(&lock, nil)
    }

    func begin(id: Int64, deadlineNs: UInt64) {
        pthread_mutex_lock(&lock)
        callID = id
        self.deadlineNs = deadlineNs
        isCancelled = false
        pthread_mutex_unlock(&lock)
    }

    func end() {
        pthread_mutex_lock(&lock)
        callID = nil
        pthread_mutex_unlock(&lock)
    }

    /// Writes a whole frame; serialised so frames from callbacks never interleave.
    func send(_ bytes: [UInt8]) {
        pthread_mutex_lock(&lock)
        _ = FrameWriter.send(fd, bytes)
        pthread_mutex_unlock(&lock)
    }

    private var currentID: Int64? {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return callID
    }

    func log(level: Int32, message: String) {
        guard let id = currentID else {
            PluginHostProcess.log("[\(DylibLog.name(level))] \(message)")
            return
        }
        var f = HostFrame("log", id: id)
        f.level = level
        f.message = String(message.prefix(8192))
        send(FrameCodec.encode(f))
    }

    func progress(_ fraction: Double, _ message: String) {
        guard let id = currentID else { return }
        var f = HostFrame("progress", id: id)
        f.fraction = fraction
        f.message = String(message.prefix(1024))
        send(FrameCodec.encode(f))
    }

    /// True once a cancel frame for this call arrived, the host went away, or the deadline passed.
    func cancelled() -> Bool {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        guard let id = callID else { return false }
        if isCancelled { return true }
        if Time.monotonicNs() >= deadlineNs {
            isCancelled = true
            return true
        }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) > 0 else { return false }
        if reader.fill() == .eof { isCancelled = true }
        while let e = reader.next() {
            switch e {
            case .frame(let f) where f.t == "cancel" && f.id == id: isCancelled = true
            case .frame: continue
            case .eof, .garbage: isCancelled = true
            }
        }
        return isCancelled
    }
}

/// The probe's callbacks: log lines to stderr, nothing else.
final class StderrSink: DylibCallSink {
    func log(level: Int32, message: String) { PluginHostProcess.log("[\(DylibLog.name(level))] \(message)") }
    func progress(_ fraction: Double, _ message: String) {}
    func cancelled() -> Bool { false }
}
