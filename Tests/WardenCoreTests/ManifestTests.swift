import Testing
@testable import WardenCore

@Suite struct ManifestTests {
    static let good: JSONValue = [
        "name": "wordcount", "version": "1.2.0", "kind": "process", "exec": ["bin/wordcount"],
        "tools": [["name": "count", "description": "Count.", "inputSchema": ["type": "object"]]],
        "resources": ["cpu": "250m", "memory": "64Mi"], "timeout": "30s",
        "retry": ["max": 3, "initialBackoff": "1s", "maxBackoff": "60s"], "idempotent": true,
    ]

    func with(_ key: String, _ value: JSONValue?) -> JSONValue {
        guard case .object(var o) = Self.good else { return .null }
        o[key] = value
        return .object(o)
    }

    func message(_ j: JSONValue) -> String? {
        do {
            _ = try PluginManifest.decode(j)
            return nil
        } catch {
            #expect(error.code == .dataError)
            return error.message
        }
    }

    @Test func decodesTheDesignExample() throws {
        let m = try PluginManifest.decode(Self.good)
        #expect(m.name == "wordcount")
        #expect(m.resources == Resources(cpuMillis: 250, memoryBytes: 64 << 20))
        #expect(m.retry.max == 3)
        #expect(m.tools[0].name == "count")
        #expect(m.timeoutMs == 30_000)
    }

    @Test func unknownKeyNamesItsPath() {
        #expect(message(with("memroy", "1Gi"))?.hasPrefix("$.memroy: unknown key") == true)
        #expect(message(with("resources", ["cpu": "1", "gpus": 1]))?.hasPrefix("$.resources.gpus: unknown key") == true)
    }

    @Test func wrongTypesAndMissingFields() {
        #expect(message(with("idempotent", "yes"))?.hasPrefix("$.idempotent: expected true or false") == true)
        #expect(message(with("name", nil))?.hasPrefix("$.name: required") == true)
        #expect(message(with("tools", [["name": "count"]]))?.hasPrefix("$.tools[0].inputSchema: required") == true)
        #expect(message(with("kind", "wasm"))?.contains("unknown kind") == true)
    }

    @Test func pathsMayNotEscape() {
        #expect(message(with("exec", ["../../bin/sh"]))?.contains("escapes the plugin directory") == true)
        #expect(message(with("exec", ["/bin/sh"]))?.contains("must be relative") == true)
        // A bare command name is looked up on the sandbox PATH.
        #expect(message(with("exec", ["python3", "tool.py"])) == nil)
    }

    @Test func badQuantitiesNameTheField() {
        #expect(message(with("resources", ["cpu": "12Zi"]))?.hasPrefix("$.resources.cpu: invalid CPU quantity \"12Zi\"") == true)
        #expect(message(with("timeout", "soon"))?.hasPrefix("$.timeout:") == true)
    }

    @Test func kindRules() {
        #expect(message(with("hosting", "in-process"))?.contains("only a dylib plugin") == true)
        var dylib = with("kind", "dylib")
        #expect(message(dylib)?.contains("$.library: required") == true)
        if case .object(var o) = dylib {
            o["exec"] = nil
            o["library"] = "lib/libx.so"
            dylib = .object(o)
        }
        #expect(message(dylib) == nil)
    }

    @Test func versionsOrderNumerically() throws {
        #expect(Version("1.10.0")! > Version("1.9.3")!)
        #expect(Version("2.0.0-rc1")! < Version("2.0.0")!)
        #expect(Version("1.2") == nil)
    }

    @Test func targetParsing() throws {
        let t = try TaskSpec.parseTarget("wordcount.count@1.2.0")
        #expect(t.plugin == "wordcount" && t.tool == "count" && t.version == "1.2.0")
        #expect(throws: WardenError.self) { try TaskSpec.parseTarget("Bad Name") }
    }
}

@Suite struct SchemaTests {
    let schema: JSONValue = ["type": "object", "properties": ["text": ["type": "string", "maxLength": 5], "n": ["type": "integer", "minimum": 1]],
                             "required": ["text"], "additionalProperties": false]

    @Test func acceptsValidInput() throws {
        try JSONSchema.validate(["text": "hi", "n": 3], schema: schema)
    }

    @Test(arguments: [
        (JSONValue.object(["n": 2]), "$.text: required"),
        (JSONValue.object(["text": 5]), "$.text: expected string"),
        (JSONValue.object(["text": "toolong"]), "$.text: must be at most 5"),
        (JSONValue.object(["text": "a", "n": 0]), "$.n: must be at least 1"),
        (JSONValue.object(["text": "a", "x": 1]), "$.x: unknown property"),
    ])
    func rejectsWithPath(input: JSONValue, prefix: String) {
        do {
            try JSONSchema.validate(input, schema: schema)
            Issue.record("accepted \(input.canonical)")
        } catch {
            #expect(error.message.hasPrefix(prefix), "\(error.message)")
        }
    }
}

@Suite struct TaskStateTests {
    @Test func terminalStatesHaveNoAutomaticExit() {
        for s in TaskState.allCases where s.isTerminal {
            let next = TaskState.transitions[s] ?? []
            // Only operator replays leave dead and in_doubt.
            #expect(next.isSubset(of: [.queued, .dead]), "\(s) → \(next)")
        }
        #expect(TaskState.transitions[.succeeded]!.isEmpty)
    }

    @Test func designTransitionsAreLegal() {
        let legal: [(TaskState, TaskState)] = [(.submitted, .rejected), (.submitted, .awaitingApproval), (.awaitingApproval, .queued),
            (.awaitingApproval, .rejected), (.queued, .placed), (.placed, .running), (.running, .succeeded), (.running, .failed),
            (.failed, .queued), (.failed, .dead), (.running, .inDoubt), (.queued, .canceled), (.running, .canceled), (.dead, .queued)]
        for (a, b) in legal { #expect(a.canTransition(to: b), "\(a) → \(b)") }
        #expect(!TaskState.succeeded.canTransition(to: .queued))
        #expect(!TaskState.queued.canTransition(to: .succeeded))
        #expect(!TaskState.canceled.canTransition(to: .running))
    }

    @Test func allStatesParse() throws {
        for s in TaskState.allCases { #expect(try TaskState.parse(s.rawValue) == s) }
        #expect(throws: WardenError.self) { try TaskState.parse("done") }
    }
}

@Suite struct PolicyTests {
    let policy: JSONValue = [
        "tenants": ["default": ["quota": ["cpu": "4", "memory": "8Gi", "tasks": 50], "rateLimit": "100/s", "maxQueued": 10000],
                    "guest": ["quota": ["cpu": "1", "memory": "1Gi", "tasks": 4], "rateLimit": "5/s"]],
        "rules": [["id": "no-shell-for-guests", "effect": "deny", "tenants": ["guest"], "tools": ["shell.*"]],
                  ["id": "approve-deletes", "effect": "require_approval", "tools": ["fs.delete"]],
                  ["id": "allow-rest", "effect": "allow"]],
        "default": "deny", "agents": ["maxDepth": 3, "maxChildren": 20],
    ]

    @Test func firstMatchDecidesAndIsNamed() throws {
        let p = try Policy.decode(policy)
        #expect(p.decide(tenant: "guest", plugin: "shell", tool: "run") == .init(effect: .deny, rule: "no-shell-for-guests"))
        #expect(p.decide(tenant: "default", plugin: "shell", tool: "run") == .init(effect: .allow, rule: "allow-rest"))
        #expect(p.decide(tenant: "x", plugin: "fs", tool: "delete").effect == .requireApproval)
        #expect(p.tenant("guest").quota.cpuMillis == 1000)
        #expect(p.maxDepth == 3)
    }

    @Test func noMatchFallsToDefault() throws {
        var p = try Policy.decode(["rules": [["id": "only-fs", "effect": "allow", "plugins": ["fs"]]]])
        #expect(p.decide(tenant: "t", plugin: "web", tool: "get") == .init(effect: .deny, rule: "default"))
        p.defaultEffect = .allow
        #expect(p.decide(tenant: "t", plugin: "web", tool: "get").effect == .allow)
    }

    @Test func badPolicyNamesThePath() {
        do {
            _ = try Policy.decode(["rules": [["id": "r", "effect": "maybe"]]])
            Issue.record("accepted")
        } catch {
            #expect(error.message.hasPrefix("$.rules[0].effect:"))
        }
    }

    @Test func globs() {
        #expect(Glob.match("shell.*", "shell.run"))
        #expect(Glob.match("*", "anything.at.all"))
        #expect(Glob.match("a*c", "abbbc"))
        #expect(!Glob.match("shell.*", "shellx.run"))
        #expect(!Glob.match("fs.delete", "fs.deleted"))
    }
}

@Suite struct JSONTests {
    @Test func canonicalIsSortedAndStable() throws {
        let a = try JSONValue.parse(#"{"b": 1, "a": [true, null, "x/y"], "c": 1.5}"#)
        #expect(a.canonical == #"{"a":[true,null,"x/y"],"b":1,"c":1.5}"#)
        #expect(try JSONValue.parse(a.canonical) == a)
    }

    /// Found by fuzzing (Tests/Fuzz): an integral double printed as 4.4444444444440136e+18 parsed back as an
    /// integer, so its canonical form (what hashes and cache keys are made of) changed on a round trip.
    @Test func canonicalSurvivesAParseOfItself() throws {
        for text in ["[4444444444444013504.4445]", "[1e18]", "[-2.5e17]", "[4444444444444444444444]", "[1.5e300]", "[-0.0]"] {
            let once = try JSONValue.parse(text).canonical
            #expect(try JSONValue.parse(once).canonical == once, "\(text) → \(once)")
        }
    }

    @Test func malformedJSONIsOneLine() {
        do {
            _ = try JSONValue.parse("{\"a\": ")
            Issue.record("accepted")
        } catch {
            #expect(error.code == .dataError)
            #expect(!error.message.contains("\n"))
        }
    }

    @Test func iso8601() {
        #expect(Time.iso8601(0) == "1970-01-01T00:00:00.000Z")
        #expect(Time.iso8601(1_795_568_184_505) == "2026-11-25T00:56:24.505Z")
    }
}
