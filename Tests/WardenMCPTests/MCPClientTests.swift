import Glibc
import Testing
import WardenCore
import WardenSystem
@testable import WardenMCP

/// The client Warden uses for mcp-kind plugin servers, against a scripted server on pipes.
@Suite struct MCPClientTests {
    /// A client wired to a fake server: `requests` is what the client sent, `reply` answers it.
    final class Fake: @unchecked Sendable {
        let client: MCPClient
        let requests: LineQueue
        let toClient: Int32

        init() {
            let up = makePipe(), down = makePipe()
            client = MCPClient(readFD: down.read, writeFD: up.write)
            requests = LineQueue(fd: up.read)
            toClient = down.write
        }

        func reply(_ v: JSONValue) { write(toClient, v.canonical) }
        func closeServer() { close(toClient) }
    }

    @Test(.timeLimit(.minutes(1))) func concurrentRequestsAreMatchedByID() throws {
        let f = Fake()
        let a = Signal(), b = Signal()
        nonisolated(unsafe) var ra: Result<JSONValue, MCPClient.CallError>?
        nonisolated(unsafe) var rb: Result<JSONValue, MCPClient.CallError>?
        startThread { ra = f.client.callTool("a", arguments: [:], timeoutMs: 5000); a.signal() }
        let first = try #require(f.requests.next())
        startThread { rb = f.client.callTool("b", arguments: [:], timeoutMs: 5000); b.signal() }
        let second = try #require(f.requests.next())
        #expect(first["params"]?["name"] == "a" && second["params"]?["name"] == "b")
        // Answer in the other order.
        f.reply(["jsonrpc": "2.0", "id": second["id"]!, "result": ["content": [], "tag": "B"]])
        f.reply(["jsonrpc": "2.0", "id": first["id"]!, "result": ["content": [], "tag": "A"]])
        #expect(a.wait(timeoutMs: 5000) && b.wait(timeoutMs: 5000))
        #expect(try ra?.get()["tag"] == "A")
        #expect(try rb?.get()["tag"] == "B")
    }

    @Test(.timeLimit(.minutes(1))) func progressGoesToTheRequestThatAskedAndPingIsAnswered() throws {
        let f = Fake()
        let done = Signal()
        final class Box: @unchecked Sendable { var seen: [(Double, Double?, String?)] = [] }
        let box = Box()
        startThread {
            _ = f.client.callTool("slow", arguments: [:], timeoutMs: 5000, progress: { p, t, m in box.seen.append((p, t, m)) })
            done.signal()
        }
        let req = try #require(f.requests.next())
        let token = try #require(req["params"]?["_meta"]?["progressToken"])
        f.reply(["jsonrpc": "2.0", "id": 99, "method": "ping"])
        let pong = try #require(f.requests.next())
        #expect(pong == ["jsonrpc": "2.0", "id": 99, "result": [:]])
        f.reply(["jsonrpc": "2.0", "id": 7, "method": "sampling/createMessage", "params": [:]])
        #expect(try #require(f.requests.next())["error"]?["code"] == .int(RPCError.methodNotFound))
        f.reply(["jsonrpc": "2.0", "method": "notifications/progress", "params": ["progressToken": 12345, "progress": 9]])
        f.reply(["jsonrpc": "2.0", "method": "notifications/progress", "params": ["progressToken": token, "progress": 1, "total": 2, "message": "half"]])
        f.reply(["jsonrpc": "2.0", "id": req["id"]!, "result": ["content": []]])
        #expect(done.wait(timeoutMs: 5000))
        #expect(box.seen.count == 1)
        #expect(box.seen.first?.0 == 1 && box.seen.first?.1 == 2 && box.seen.first?.2 == "half")
    }

    @Test(.timeLimit(.minutes(1))) func aServerThatDiesFailsThePendingCall() throws {
        let f = Fake()
        let done = Signal()
        nonisolated(unsafe) var r: Result<JSONValue, MCPClient.CallError>?
        startThread { r = f.client.callTool("x", arguments: [:], timeoutMs: 10_000); done.signal() }
        _ = try #require(f.requests.next())
        f.closeServer()
        #expect(done.wait(timeoutMs: 5000))
        guard case .failure(.closed(let why))? = r else { Issue.record("expected .closed, got \(String(describing: r))"); return }
        #expect(why.contains("closed its stdout"))
        #expect(f.client.isClosed)
        // Later calls fail at once.
        guard case .failure(.closed) = f.client.callTool("y", arguments: [:], timeoutMs: 10_000) else { Issue.record("not closed"); return }
    }

    @Test(.timeLimit(.minutes(1))) func cancellingSendsNotificationsCancelled() throws {
        let f = Fake()
        let done = Signal()
        let flag = Signal()
        nonisolated(unsafe) var r: Result<JSONValue, MCPClient.CallError>?
        startThread {
            r = f.client.callTool("sleep", arguments: [:], timeoutMs: 10_000, isCancelled: { flag.wait(timeoutMs: 0) })
            done.signal()
        }
        let req = try #require(f.requests.next())
        flag.signal()
        #expect(done.wait(timeoutMs: 5000))
        #expect(r == .failure(.cancelled))
        let note = try #require(f.requests.next())
        #expect(note["method"] == "notifications/cancelled")
        #expect(note["params"]?["requestId"] == req["id"])
    }

    @Test(.timeLimit(.minutes(1))) func aTimeoutCancelsOnTheServer() throws {
        let f = Fake()
        let r = f.client.callTool("sleep", arguments: [:], timeoutMs: 100)
        #expect(r == .failure(.timeout))
        let req = try #require(f.requests.next())
        let note = try #require(f.requests.next())
        #expect(note["method"] == "notifications/cancelled" && note["params"]?["requestId"] == req["id"])
    }

    @Test(.timeLimit(.minutes(1))) func initializeRefusesAVersionWardenDoesNotSpeak() throws {
        let f = Fake()
        let done = Signal()
        nonisolated(unsafe) var r: Result<Void, MCPClient.CallError>?
        startThread { r = f.client.initialize(clientVersion: "t", timeoutMs: 5000); done.signal() }
        let req = try #require(f.requests.next())
        #expect(req["method"] == "initialize" && req["params"]?["protocolVersion"] == "2025-11-25")
        f.reply(["jsonrpc": "2.0", "id": req["id"]!, "result": ["protocolVersion": "1999-01-01", "capabilities": [:]]])
        #expect(done.wait(timeoutMs: 5000))
        guard case .failure(.protocolViolation(let why))? = r else { Issue.record("accepted \(String(describing: r))"); return }
        #expect(why.contains("1999-01-01"))
    }

    @Test(.timeLimit(.minutes(1))) func listToolsFollowsCursors() throws {
        let f = Fake()
        let done = Signal()
        nonisolated(unsafe) var r: Result<[PluginManifest.Tool], MCPClient.CallError>?
        startThread { r = f.client.listTools(timeoutMs: 5000); done.signal() }
        let p1 = try #require(f.requests.next())
        #expect(p1["params"]?["cursor"] == nil)
        f.reply(["jsonrpc": "2.0", "id": p1["id"]!, "result": ["tools": [["name": "a", "inputSchema": ["type": "object"]]], "nextCursor": "c2"]])
        let p2 = try #require(f.requests.next())
        #expect(p2["params"]?["cursor"] == "c2")
        f.reply(["jsonrpc": "2.0", "id": p2["id"]!, "result": ["tools": [["name": "b", "description": "B"]]]])
        #expect(done.wait(timeoutMs: 5000))
        let tools = try #require(try? r?.get())
        #expect(tools.map(\.name) == ["a", "b"])
        #expect(tools[1].inputSchema == ["type": "object"] && tools[1].description == "B")
    }
}
