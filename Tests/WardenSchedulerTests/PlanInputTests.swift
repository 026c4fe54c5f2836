import Testing
import WardenCore
@testable import WardenScheduler

@Suite struct PlanInputTests {
    private func tasks(_ text: String) throws(WardenError) -> [TaskDemand] {
        try PlanInput.tasks(fromJSON: try JSONValue.parse(text))
    }

    private func nodes(_ text: String) throws(WardenError) -> [NodeSpec] {
        try PlanInput.nodes(fromJSON: try JSONValue.parse(text))
    }

    private func error(_ body: () throws(WardenError) -> Void) -> WardenError? {
        do { try body() } catch { return error }
        return nil
    }

    @Test func designExampleTasks() throws {
        let t = try tasks("""
            [{"id": "t1", "cpu": "500m", "memory": "256Mi", "resources": {"gpu": 1}, "count": 1, "priority": 0, "labels": {},
              "constraints": {"pool": "std", "zone": ["a", "b"]}, "antiAffinity": "zone"}]
            """)
        #expect(t.count == 1)
        #expect(t[0].id == "t1")
        #expect(t[0].resources == Resources(cpuMillis: 500, memoryBytes: 256 << 20, extended: ["gpu": 1]))
        #expect(t[0].constraints == ["pool": ["std"], "zone": ["a", "b"]])
        #expect(t[0].antiAffinity == "zone")
        #expect(t[0].group == "t1")
    }

    @Test func countExpandsIdsInOneGroup() throws {
        let t = try tasks(#"[{"id": "web", "cpu": "1", "memory": "1Gi", "count": 3, "priority": 7}, {"id": "db", "cpu": 2}]"#)
        #expect(t.map(\.id) == ["web-0", "web-1", "web-2", "db"])
        #expect(t.map(\.group) == ["web", "web", "web", "db"])
        #expect(t[0].priority == 7)
        #expect(t[3].resources == Resources(cpuMillis: 2000))
    }

    @Test func badTaskInputNamesPathAndValue() {
        let cases: [(String, String)] = [
            (#"[{"id": "a", "cpu": "1", "memroy": "1Gi"}]"#, "$[0].memroy: unknown key"),
            (#"[{"id": "a"}, {"id": "b", "cpu": "12Zi"}]"#, #"$[1].cpu: invalid CPU quantity "12Zi""#),
            (#"[{"id": "a", "memory": "1.5.Gi"}]"#, #"$[0].memory: invalid memory quantity "1.5.Gi""#),
            (#"[{"id": "a", "constraints": {"zone": ["a", 3]}}]"#, "$[0].constraints.zone[1]: expected a string, got a number"),
            (#"[{"id": "a", "constraints": {"zone": 3}}]"#, "$[0].constraints.zone: expected a string or an array of strings, got a number"),
            (#"[{"id": "a", "count": 0}]"#, "$[0].count: must be at least 1, got 0"),
            (#"[{"id": "a", "count": 2}, {"id": "a-1"}]"#, #"$[1].id: duplicate task id "a-1""#),
            (#"[{"cpu": "1"}]"#, "$[0].id: required"),
            (#"{"id": "a"}"#, "$: expected an array of tasks, got an object"),
            (#"[{"id": "a", "resources": {"GPU": 1}}]"#, "$[0].resources.GPU: invalid extended resource name"),
        ]
        for (text, prefix) in cases {
            let e = error { () throws(WardenError) in _ = try tasks(text) }
            #expect(e?.code == .dataError, "\(text)")
            #expect(e?.message.hasPrefix(prefix) == true, "\(text): \(e?.message ?? "no error")")
        }
    }

    @Test func nodesWithPoolsAndReservedHeadroom() throws {
        let n = try nodes("""
            [{"name": "n1", "cpu": "16", "memory": "64Gi", "resources": {"gpu": 2}, "count": 2, "labels": {"zone": "a"},
              "reserved": {"cpu": "500m", "memory": "1Gi"}},
             {"name": "small", "cpu": 2, "memory": "4Gi"}]
            """)
        #expect(n.map(\.name) == ["n1-0", "n1-1", "small"])
        #expect(n[0].labels == ["zone": "a"])
        #expect(n[0].allocatable == Resources(cpuMillis: 15_500, memoryBytes: 63 << 30, extended: ["gpu": 2]))
        #expect(n[2].capacity == Resources(cpuMillis: 2000, memoryBytes: 4 << 30))
    }

    @Test func badNodeInput() {
        let cases: [(String, String)] = [
            (#"[{"name": "n", "cpu": "4"}]"#, "$[0].memory: required"),
            (#"[{"name": "n", "cpu": "4", "memory": "8Gi", "reserved": {"cpu": "5"}}]"#, "$[0].reserved.cpu: reserved 5 exceeds the capacity 4"),
            (#"[{"name": "n", "cpu": "4", "memory": "8Gi", "reserved": {"disk": 1}}]"#, "$[0].reserved.disk: unknown key"),
            (#"[{"name": "n", "cpu": "4", "memory": "8Gi", "labels": {"zone": 1}}]"#, "$[0].labels.zone: expected a string, got a number"),
            (#"[{"name": "n", "cpu": "4", "memory": "8Gi"}, {"name": "n", "cpu": "4", "memory": "8Gi"}]"#, #"$[1].name: duplicate node name "n""#),
        ]
        for (text, prefix) in cases {
            let e = error { () throws(WardenError) in _ = try nodes(text) }
            #expect(e?.code == .dataError, "\(text)")
            #expect(e?.message.hasPrefix(prefix) == true, "\(text): \(e?.message ?? "no error")")
        }
    }

    @Test func shapes() throws {
        let s = try PlanInput.shape(parsing: "16,64Gi")
        #expect(s.capacity == Resources(cpuMillis: 16_000, memoryBytes: 64 << 30))
        let g = try PlanInput.shape(parsing: "500m,1.5Gi,gpu=2,disk=100")
        #expect(g.capacity == Resources(cpuMillis: 500, memoryBytes: 3 << 29, extended: ["gpu": 2, "disk": 100]))
        let bad: [(String, String)] = [
            ("16", "--shape: expected CPU,MEMORY"),
            ("x,64Gi", #"--shape cpu: invalid CPU quantity "x""#),
            ("16,64Qi", #"--shape memory: invalid memory quantity "64Qi""#),
            ("16,64Gi,gpu", #"--shape: expected NAME=N (a lowercase resource name and a count) in "gpu""#),
            ("16,64Gi,gpu=1,gpu=2", #"--shape: resource "gpu" given twice"#),
            ("0,64Gi", "--shape: cpu and memory must be positive"),
        ]
        for (text, prefix) in bad {
            let e = error { () throws(WardenError) in _ = try PlanInput.shape(parsing: text) }
            #expect(e?.code == .usage, "\(text)")
            #expect(e?.message.hasPrefix(prefix) == true, "\(text): \(e?.message ?? "no error")")
        }
    }
}
