import Foundation
import Testing

/// `warden mcp` as a process: messages piped in, stdin closed, the answers read back. Every stdout line must
/// be a JSON-RPC 2.0 message, and closing stdin must end the process.
@Suite struct MCPTests {
    static func lines(_ messages: [[String: Any]], raw: [String] = []) throws -> String {
        try (messages.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) } + raw)
            .joined(separator: "\n") + "\n"
    }

    static func decode(_ stdout: String) throws -> [[String: Any]] {
        try stdout.split(separator: "\n").map { line in
            let v = try JSONSerialization.jsonObject(with: Data(line.utf8))
            guard let m = v as? [String: Any], m["jsonrpc"] as? String == "2.0" else { throw TestFailure("not JSON-RPC: \(line)") }
            return m
        }
    }

    @Test(.timeLimit(.minutes(1))) func pipedMessagesAreAnsweredAndEndOfInputEndsTheServer() throws {
        let state = try Warden.freshState()
        try Warden.run(["plugin", "register", "\(Warden.repo)/plugins/wordcount"], state: state)
        let input = try Self.lines([
            ["jsonrpc": "2.0", "id": 1, "method": "initialize", "params": ["protocolVersion": "2024-11-05", "capabilities": [:] as [String: Any]]],
            ["jsonrpc": "2.0", "method": "notifications/initialized"],
            ["jsonrpc": "2.0", "id": 2, "method": "tools/list"],
            ["jsonrpc": "2.0", "id": 3, "method": "completion/complete"],
        ], raw: ["{oops", "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\"}"])
        let r = try Warden.run(["mcp"], state: state, stdin: input)
        #expect(r.status == 0, "\(r.stderr)")
        let out = try Self.decode(r.stdout)
        #expect(out.count == 5)
        #expect((out[0]["result"] as? [String: Any])?["protocolVersion"] as? String == "2024-11-05")
        let tools = ((out[1]["result"] as? [String: Any])?["tools"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(tools == ["wordcount.count"])
        #expect((out[2]["error"] as? [String: Any])?["code"] as? Int == -32601)
        #expect((out[3]["error"] as? [String: Any])?["code"] as? Int == -32700)
        #expect(out[4]["id"] as? Int == 4 && out[4]["result"] != nil)
    }

    @Test(.timeLimit(.minutes(1)), .enabled(if: Host.sandboxReady, "needs user namespaces to run a tool"))
    func aCallRunsAsATaskOfTheTenant() throws {
        let state = try Warden.freshState()
        try Warden.run(["plugin", "register", "\(Warden.repo)/plugins/wordcount"], state: state)
        let input = try Self.lines([
            ["jsonrpc": "2.0", "id": 1, "method": "initialize", "params": ["protocolVersion": "2025-06-18", "capabilities": [:] as [String: Any]]],
            ["jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": ["name": "wordcount.count", "arguments": ["text": "x y z"]]],
        ])
        let r = try Warden.run(["mcp"], state: state, stdin: input, env: ["WARDEN_TENANT": "team-a"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try Self.decode(r.stdout)
        let result = try #require(out.last?["result"] as? [String: Any])
        #expect(result["isError"] as? Bool == false)
        #expect((result["structuredContent"] as? [String: Any])?["words"] as? Int == 3)
        let task = try #require((result["_meta"] as? [String: Any])?["warden/task"] as? String)
        let status = try Warden.run(["status", task, "--json"], state: state)
        #expect((status.json as? [String: Any])?["tenant"] as? String == "team-a")
        #expect((status.json as? [String: Any])?["state"] as? String == "succeeded")
    }
}
