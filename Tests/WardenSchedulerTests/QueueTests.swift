import Testing
import WardenCore
@testable import WardenScheduler

@Suite struct QueueTests {
    /// One 4-cpu node, a stream of small 1-cpu tasks (two arrive every round, each runs two rounds) and, from
    /// round 2 on, a big 4-cpu task of the highest priority. Returns the round the big task was placed in (nil: never) and
    /// whether it ever held a reservation.
    private func simulate(reserveAfter: Int, rounds: Int = 30) -> (placedAt: Int?, reserved: Bool, firstRound: RoundOutcome) {
        let p = Placer()
        p.upsertNode(NodeSpec(name: "n", capacity: Resources(cpuMillis: 4000, memoryBytes: 16 << 30)))
        var pending: [PendingTask] = []
        var running: [(id: String, left: Int)] = []
        var next = 0
        var reserved = false
        var first: RoundOutcome? = nil
        for round in 1...rounds {
            for r in running where r.left == 0 { p.release(taskID: r.id) }
            running = running.filter { $0.left > 0 }.map { ($0.id, $0.left - 1) }
            if round == 2 {
                pending.append(PendingTask(demand: TaskDemand(id: "big", resources: Resources(cpuMillis: 4000, memoryBytes: 1 << 30), priority: 10)))
            }
            for _ in 0..<2 {
                pending.append(PendingTask(demand: TaskDemand(id: "s\(next)", resources: Resources(cpuMillis: 1000, memoryBytes: 1 << 30))))
                next += 1
            }
            let out = p.scheduleRound(pending, reserveAfter: reserveAfter)
            if first == nil { first = out }
            if out.reservations["big"] == "n" { reserved = true }
            if out.placed.contains(where: { $0.task == "big" }) { return (round, reserved, first!) }
            for d in out.placed { running.append((d.task, 1)) }
            let placed = Set(out.placed.map(\.task))
            pending = pending.filter { !placed.contains($0.demand.id) }.map { PendingTask(demand: $0.demand, waitedRounds: $0.waitedRounds + 1) }
        }
        return (nil, reserved, first!)
    }

    @Test func smallTasksAreNotBlockedByABigOneAtTheHead() {
        // The big task at the head of the queue cannot fit; the small ones behind it still go.
        let p = Placer()
        p.upsertNode(NodeSpec(name: "n", capacity: Resources(cpuMillis: 4000, memoryBytes: 16 << 30)))
        try? p.allocate(node: "n", resources: Resources(cpuMillis: 1000))
        let out = p.scheduleRound([
            PendingTask(demand: TaskDemand(id: "big", resources: Resources(cpuMillis: 4000), priority: 10)),
            PendingTask(demand: TaskDemand(id: "a", resources: Resources(cpuMillis: 1000))),
            PendingTask(demand: TaskDemand(id: "b", resources: Resources(cpuMillis: 1000))),
        ])
        #expect(out.placed.map(\.task) == ["a", "b"])
        #expect(out.waiting.map(\.task) == ["big"])
        #expect(out.waiting[0].explanation == "0/1 nodes fit: 1 insufficient cpu (need 4, best free 3)")
    }

    @Test func withoutReservationsTheBigTaskStarves() {
        let r = simulate(reserveAfter: .max)
        #expect(r.placedAt == nil)
        #expect(!r.reserved)
    }

    @Test func aReservationEndsTheStarvation() {
        let r = simulate(reserveAfter: 3)
        #expect(r.reserved)
        #expect(r.placedAt != nil && r.placedAt! <= 8, "placed at \(String(describing: r.placedAt))")
        #expect(r.firstRound.placed.count == 2)   // backfill still ran before the reservation
    }

    @Test func aHeldNodeOnlyTakesWhatTheBigTaskLeaves() {
        let p = Placer()
        p.upsertNode(NodeSpec(name: "n", capacity: Resources(cpuMillis: 8000, memoryBytes: 16 << 30)))
        try? p.allocate(node: "n", resources: Resources(cpuMillis: 5000))
        let big = PendingTask(demand: TaskDemand(id: "big", resources: Resources(cpuMillis: 6000)), waitedRounds: 10)
        let first = p.scheduleRound([big])
        #expect(first.reservations == ["big": "n"])
        #expect(first.waiting.first?.reservedNode == "n")
        // 3 cpu are free but the hold keeps 6 for the big task: a 1-cpu task must wait.
        let small = p.scheduleRound([PendingTask(demand: TaskDemand(id: "s", resources: Resources(cpuMillis: 1000)))])
        #expect(small.placed.isEmpty)
        // Work finishes; the big task fits on its node.
        try? p.release(node: "n", resources: Resources(cpuMillis: 5000))
        let done = p.scheduleRound([big])
        #expect(done.placed.map(\.task) == ["big"] && done.placed[0].node == "n")
        #expect(done.reservations.isEmpty)
        #expect(p.allocation(of: "n") == Resources(cpuMillis: 6000))
    }

    /// An engine that rebuilds its placer every round hands the holds back with `hold(_:on:)`.
    @Test func holdsSurviveARebuiltPlacer() throws {
        func fresh(used: Int64) -> Placer {
            let p = Placer()
            p.upsertNode(NodeSpec(name: "n", capacity: Resources(cpuMillis: 8000, memoryBytes: 16 << 30)))
            try? p.allocate(node: "n", resources: Resources(cpuMillis: used))
            return p
        }
        let big = PendingTask(demand: TaskDemand(id: "big", resources: Resources(cpuMillis: 6000)), waitedRounds: 10)
        let small = PendingTask(demand: TaskDemand(id: "s", resources: Resources(cpuMillis: 1000), priority: 5))
        let first = fresh(used: 5000).scheduleRound([big])
        #expect(first.reservations == ["big": "n"])
        let p = fresh(used: 4000)
        try p.hold(big.demand, on: "n")
        let next = p.scheduleRound([small, big])   // the small task comes first in this order
        #expect(next.placed.isEmpty)               // 4 free, but 6 are held for "big"
        #expect(next.reservations == ["big": "n"])
    }

    @Test func benchReportsTheContractFields() {
        let j = ScheduleBench.run(nodes: 300, tasks: 3000)
        for key in ["name", "n", "nodes", "median_ms", "p90_ms", "per_second", "baseline_per_second", "ratio"] {
            #expect(j[key] != nil, "missing \(key)")
        }
        #expect(j["name"] == "schedule")
        #expect(j["agree_with_baseline"] == true)
        #expect((j["per_second"]?.doubleValue ?? 0) > 0)
    }
}
