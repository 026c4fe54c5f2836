import Glibc
import Testing
import WardenCore
import WardenEngine
import WardenStore
import WardenSystem
@testable import WardenMCP

/// The front door's protocol handling, driven over pipes with a real store (no sandbox needed: nothing
/// here runs a tool).
@Suite struct FrontDoorTests {
    final class Door: @unchecked Sendable {
        let toDoor: Int32
        let replies: LineQueue
        let finished = Signal()
        let state: String

        init(pageSize: Int = 100, plugins: [String] = ["wordcount"]) throws {
            state = tempDir("door")
            let engine = Engine(store: try Store.open(url: nil, stateDir: state))
            Installation.install(into: engine, stateDir: state)
            let repo = String(#filePath.split(separator: "/").dropLast(3).joined(separator: "/"))
            for p in plugins { try engine.registry.register("/\(repo)/plugins/\(p)", trusted: false, actor: "test") }
            var o = MCPFrontDoor.Options()
            o.stateDir = state
            o.pageSize = pageSize
            let input = makePipe(), output = makePipe()
            let door = MCPFrontDoor(engine: engine, options: o, output: output.write)
            replies = LineQueue(fd: output.read)
            toDoor = input.write
            startThread { [finished] in
                door.serve(input: input.read)
                close(output.write)
                finished.signal()
            }
        }

        func send(_ text: String) { write(toDoor, text) }
        func send(_ v: JSONValue) { send(v.canonical) }
        func ask(_ v: JSONValue) -> JSONValue? {
            send(v)
            return replies.next()
        }
        func request(_ id: Int64, _ method: String, _ params: JSONValue? = nil) -> JSONValue? {
            ask(RPC.request(id: .int(id), method: method, params: params))
        }
        /// Closes the door's input, waits for it to stop serving, removes its state.
        func end() {
            close(toDoor)
            _ = finished.wait(timeoutMs: 5000)
            FS.removeTree(state)
        }
    }

    static let modernMeta: JSONValue = ["io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                        "io.modelcontextprotocol/clientCapabilities": [:]]

    @Test(.timeLimit(.minutes(1)), arguments: ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
    func initializeAgreesOnEachHandshakeVersion(_ version: String) throws {
        let d = try Door()
        defer { d.end() }
        let r = try #require(d.request(1, "initialize", ["protocolVersion": .string(version), "capabilities": [:], "clientInfo": ["name": "t", "version": "1"]]))
        #expect(r["id"] == 1)
        #expect(r["result"]?["protocolVersion"] == .string(version))
        #expect(r["result"]?["capabilities"]?["tools"] != nil)
        #expect(r["result"]?["serverInfo"]?["name"] == "warden")
    }

    @Test(.timeLimit(.minutes(1))) func anUnknownVersionGetsTheNewestHandshakeVersion() throws {
        let d = try Door()
        defer { d.end() }
        let r = try #require(d.request(1, "initialize", ["protocolVersion": "1999-01-01", "capabilities": [:]]))
        #expect(r["result"]?["protocolVersion"] == "2025-11-25")
        let bad = try #require(d.request(2, "initialize", ["capabilities": [:]]))
        #expect(bad["error"]?["code"] == .int(RPCError.invalidParams))
    }

    @Test(.timeLimit(.minutes(1))) func badInputGetsTheRightErrorAndServingGoesOn() throws {
        let d = try Door()
        defer { d.end() }
        d.send("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ")
        let parse = try #require(d.replies.next())
        #expect(parse["error"]?["code"] == .int(RPCError.parseError) && parse["id"] == .null)
        try FS.writeAll(fd: d.toDoor, [0x7b, 0xff, 0xfe, 0x7d, 0x0a])   // not UTF-8
        #expect(try #require(d.replies.next())["error"]?["code"] == .int(RPCError.parseError))
        #expect(try #require(d.request(2, "resources/list"))["error"]?["code"] == .int(RPCError.methodNotFound))
        #expect(try #require(d.ask(["jsonrpc": "1.0", "id": 3, "method": "ping"]))["error"]?["code"] == .int(RPCError.invalidRequest))
        #expect(try #require(d.ask([["jsonrpc": "2.0", "id": 4, "method": "ping"]]))["error"]?["code"] == .int(RPCError.invalidRequest))
        #expect(try #require(d.ask(["jsonrpc": "2.0", "id": ["x": 1], "method": "ping"]))["error"]?["code"] == .int(RPCError.invalidRequest))
        #expect(try #require(d.ask(["jsonrpc": "2.0", "id": 5, "method": "ping", "params": [1, 2]]))["error"]?["code"] == .int(RPCError.invalidParams))
        #expect(try #require(d.request(6, "tools/call", ["arguments": [:]]))["error"]?["code"] == .int(RPCError.invalidParams))
        #expect(try #require(d.request(7, "tools/call", ["name": "wordcount.count", "arguments": [1]]))["error"]?["code"] == .int(RPCError.invalidParams))
        #expect(try #require(d.request(8, "tools/call", ["name": "nosuch.tool"]))["error"]?["code"] == .int(RPCError.invalidParams))
        #expect(try #require(d.request(9, "tools/call", ["name": "wordcount"]))["error"]?["code"] == .int(RPCError.invalidParams))
        #expect(try #require(d.request(10, "tools/list", ["cursor": "not-ours"]))["error"]?["code"] == .int(RPCError.invalidParams))
        // Notifications, known or not, are never answered: the next reply is the ping's.
        d.send(RPC.notification("notifications/whatever", nil))
        d.send(RPC.notification("notifications/cancelled", ["requestId": 12345]))
        let pong = try #require(d.request(11, "ping"))
        #expect(pong == ["jsonrpc": "2.0", "id": 11, "result": [:]])
        #expect(try #require(d.ask(["jsonrpc": "2.0", "id": "str-id", "method": "ping"]))["id"] == "str-id")
    }

    @Test(.timeLimit(.minutes(1))) func theModernEnvelopeIsCheckedPerRequest() throws {
        let d = try Door()
        defer { d.end() }
        let disc = try #require(d.request(1, "server/discover", ["_meta": Self.modernMeta]))
        #expect(disc["result"]?["supportedVersions"] == ["2026-07-28"])
        #expect(disc["result"]?["resultType"] == "complete")
        #expect(disc["result"]?["capabilities"]?["tools"] != nil)
        var future = Self.modernMeta.objectValue!
        future["io.modelcontextprotocol/protocolVersion"] = "2099-01-01"
        let unsupported = try #require(d.request(2, "server/discover", ["_meta": .object(future)]))
        #expect(unsupported["error"]?["code"] == .int(RPCError.unsupportedProtocolVersion))
        #expect(unsupported["error"]?["data"]?["supported"] == ["2026-07-28"])
        #expect(unsupported["error"]?["data"]?["requested"] == "2099-01-01")
        let noCaps = try #require(d.request(3, "tools/list", ["_meta": ["io.modelcontextprotocol/protocolVersion": "2026-07-28"]]))
        #expect(noCaps["error"]?["code"] == .int(RPCError.invalidParams))
        let list = try #require(d.request(4, "tools/list", ["_meta": Self.modernMeta]))
        #expect(list["result"]?["resultType"] == "complete" && list["result"]?["ttlMs"] == 0 && list["result"]?["cacheScope"] == "private")
        #expect(list["result"]?["tools"]?.arrayValue?.first?["name"] == "wordcount.count")
        #expect(try #require(d.request(5, "ping", ["_meta": Self.modernMeta]))["result"] == ["resultType": "complete"])
        // Without the envelope the same request is answered in the handshake era.
        #expect(try #require(d.request(6, "tools/list"))["result"]?["resultType"] == nil)
    }

    @Test(.timeLimit(.minutes(1))) func toolsArePagedWithAnOpaqueCursor() throws {
        let d = try Door(pageSize: 2, plugins: ["wordcount", "files", "flaky"])
        defer { d.end() }
        var names: [String] = []
        var cursor: JSONValue?
        var pages = 0
        repeat {
            let r = try #require(d.request(Int64(pages + 1), "tools/list", cursor.map { ["cursor": $0] }))
            let tools = try #require(r["result"]?["tools"]?.arrayValue)
            #expect(tools.count <= 2)
            for t in tools {
                names.append(t["name"]?.stringValue ?? "?")
                #expect(t["inputSchema"]?["type"] == "object")
            }
            cursor = r["result"]?["nextCursor"]
            pages += 1
        } while cursor != nil && pages < 10
        #expect(names == ["files.delete", "files.list", "flaky.once", "wordcount.count"])
        #expect(pages == 2)
    }

    @Test(.timeLimit(.minutes(1))) func endOfInputEndsServing() throws {
        let d = try Door()
        #expect(d.request(1, "ping") != nil)
        close(d.toDoor)
        #expect(d.finished.wait(timeoutMs: 5000))
        #expect(d.replies.next(timeoutMs: 1000) == nil && d.replies.isClosed)
        FS.removeTree(d.state)
    }
}
