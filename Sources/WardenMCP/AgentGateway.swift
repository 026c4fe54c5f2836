import CWardenLinux
import Glibc
import WardenCore
import WardenEngine
import WardenPlugins
import WardenSystem

/// Agent plugins (`"agent": true`) get an MCP server inside their sandbox: a UNIX socket bound at
/// `/run/warden-agent/mcp.sock` (`WARDEN_SOCKET`), one line of JSON-RPC per message as on stdio. It is the
/// front door with the agent task as parent: `tools/list` offers what the tenant's policy allows, every
/// `tools/call` is a child task (same tenant, `parent` set, the trace continued, admitted, scheduled and
/// sandboxed like any task, bounded by the policy's depth and fan-out budgets). The socket speaks only MCP;
/// nothing else of the host is reachable through it. It closes when the agent's attempt ends, canceling
/// what it still has in flight.
public final class AgentSockets: AgentGateway, @unchecked Sendable {
    let engine: Engine
    let stateDir: String
    private var lock = pthread_mutex_t()
    private var open: [String: Endpoint] = [:]

    static let insideDir = "/run/warden-agent"

    final class Endpoint: @unchecked Sendable {
        let dir: String
        let listenFD: Int32
        var doors: [MCPFrontDoor] = []
        var connections: [Int32] = []
        var closed = false
        init(dir: String, listenFD: Int32) {
            self.dir = dir
            self.listenFD = listenFD
        }
    }

    public init(engine: Engine, stateDir: String) {
        self.engine = engine
        self.stateDir = stateDir
        pthread_mutex_init(&lock, nil)
    }

    static var baseDir: String { geteuid() == 0 ? "/run/warden/agents" : "/tmp/warden-\(geteuid())/agents" }

    public func prepare(_ call: inout ToolCall, task: TaskRecord) {
        let dir = "\(Self.baseDir)/\(task.id)-\(task.attempts)"
        FS.removeTree(dir)
        guard (try? FS.mkdirs(dir, mode: 0o711)) != nil else { return }
        chmod(dir, 0o711)
        let path = "\(dir)/mcp.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in raw.copyBytes(from: Array(path.utf8.prefix(raw.count - 1)) + [0]) }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0 && listen(fd, 16) == 0
        guard ok else { close(fd); return }
        // The sandbox user (not us) connects: the socket must be writable by it; the directory holds nothing else.
        chmod(path, 0o666)
        let ep = Endpoint(dir: dir, listenFD: fd)
        pthread_mutex_lock(&lock)
        open[task.id] = ep
        pthread_mutex_unlock(&lock)
        call.binds.append(BindSpec(source: dir, target: Self.insideDir))
        call.env["WARDEN_SOCKET"] = "\(Self.insideDir)/mcp.sock"
        var options = MCPFrontDoor.Options()
        options.tenant = task.tenant
        options.stateDir = stateDir
        options.parent = task.id
        options.parentTraceparent = task.traceparent
        options.relayProgress = false
        options.shutdownGraceMs = 0
        let doorOptions = options
        let engine = self.engine
        startThread {
            while true {
                let c = warden_accept_cloexec(fd)
                if c < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return   // closed by finished()
                }
                let door = MCPFrontDoor(engine: engine, options: doorOptions, output: c)
                pthread_mutex_lock(&self.lock)
                let closed = ep.closed
                if !closed {
                    ep.doors.append(door)
                    ep.connections.append(c)
                }
                pthread_mutex_unlock(&self.lock)
                if closed { close(c); return }
                startThread {
                    door.serve(input: c)
                }
            }
        }
    }

    public func finished(_ taskID: String) {
        pthread_mutex_lock(&lock)
        guard let ep = open.removeValue(forKey: taskID) else {
            pthread_mutex_unlock(&lock)
            return
        }
        ep.closed = true
        let doors = ep.doors
        let conns = ep.connections
        pthread_mutex_unlock(&lock)
        shutdown(ep.listenFD, Int32(SHUT_RDWR))
        close(ep.listenFD)
        for c in conns { shutdown(c, Int32(SHUT_RDWR)) }
        for d in doors { d.stop(reason: "agent task \(taskID) ended") }
        FS.removeTree(ep.dir)
    }
}
