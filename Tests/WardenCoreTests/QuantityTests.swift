import Testing
@testable import WardenCore

@Suite struct QuantityTests {
    @Test(arguments: [("2", 2000), ("0.5", 500), ("500m", 500), ("1.25", 1250), ("0", 0), ("0.001", 1), ("16", 16000), ("0.1000", 100)])
    func cpuParsesExactly(text: String, millis: Int64) throws {
        #expect(try Quantity.cpuMillis(text, field: "cpu") == millis)
    }

    @Test(arguments: ["", "-1", "1e400", "abc", "0.0001", "1.5m", "12Zi", "1..2", " 1", "1 ", "99999999999999999999", "45555555555555555555555m"])
    func cpuRejectsGarbageNamingFieldAndValue(text: String) {
        do {
            _ = try Quantity.cpuMillis(text, field: "$.resources.cpu")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.code == .dataError)
            #expect(error.message.hasPrefix("$.resources.cpu: "))
            #expect(error.message.contains(quoted(text)))
        }
    }

    @Test func cpuOnTheCommandLineIsAUsageError() {
        #expect(throws: WardenError.self) { try Quantity.cpuMillis("x", field: "--cpu", code: .usage) }
        do { _ = try Quantity.cpuMillis("x", field: "--cpu", code: .usage) } catch { #expect(error.code == .usage) }
    }

    @Test(arguments: [("64Mi", 67_108_864), ("1Gi", 1_073_741_824), ("1.5Gi", 1_610_612_736), ("1G", 1_000_000_000),
                      ("1k", 1000), ("1Ki", 1024), ("100", 100), ("2Ti", 2_199_023_255_552), ("0.5Ki", 512)])
    func memoryParsesExactly(text: String, bytes: Int64) throws {
        #expect(try Quantity.bytes(text, field: "memory") == bytes)
    }

    @Test(arguments: ["12Zi", "-1", "1e400", "", "0.5", "1.1Ki", "1K", "1m", "9Ei", "99999999999999999999"])
    func memoryRejectsGarbage(text: String) {
        #expect(throws: WardenError.self) { try Quantity.bytes(text, field: "memory") }
    }

    @Test func overflowIsAnErrorNotAWrap() {
        do {
            _ = try Quantity.bytes("9000000Ti", field: "m")
            Issue.record("accepted an overflowing quantity")
        } catch {
            #expect(error.message.contains("out of range"))
        }
    }

    @Test(arguments: [("500ms", 500), ("30s", 30_000), ("2m", 120_000), ("1h", 3_600_000), ("1m30s", 90_000), ("1.5s", 1500)])
    func durations(text: String, ms: Int64) throws {
        #expect(try Quantity.durationMillis(text, field: "timeout") == ms)
    }

    @Test(arguments: ["30", "1x", "", "s", "-1s", "0.0001s"])
    func badDurations(text: String) {
        #expect(throws: WardenError.self) { try Quantity.durationMillis(text, field: "timeout") }
    }

    @Test func rates() throws {
        let r = try Quantity.rate("50/s", field: "rateLimit")
        #expect(r.perSecond == 50)
        #expect(r.burst == 50)
        #expect(try Quantity.rate("600/m", field: "r").perSecond == 10)
        #expect(throws: WardenError.self) { try Quantity.rate("0/s", field: "r") }
        #expect(throws: WardenError.self) { try Quantity.rate("5/d", field: "r") }
    }

    @Test func formatting() {
        #expect(Quantity.formatCPU(1500) == "1500m")
        #expect(Quantity.formatCPU(2000) == "2")
        #expect(Quantity.formatBytes(1_610_612_736) == "1.5Gi")
        #expect(Quantity.formatBytes(64 << 20) == "64Mi")
        #expect(Quantity.formatBytes(100) == "100")
        // Found by fuzzing: 10^18 ("1E") overflowed while rounding; every Int64 formats.
        #expect(Quantity.formatBytes(1_000_000_000_000_000_000) == "888.2Pi")
        #expect(Quantity.formatBytes(Int64.max) == "8Ei")
        #expect(Quantity.formatBytes(Int64.min) == "-8Ei")
        #expect(Quantity.formatBytes(-1_610_612_736) == "-1.5Gi")
        #expect(Quantity.formatBytes((1 << 30) - 1) == "1024Mi")
    }

    @Test func extendedResourcesAndTypos() throws {
        var r = try JSONObjectReader(["cpu": "1", "memory": "1Gi", "resources": ["gpu": 2]])
        let res = try Resources.read(from: &r)
        try r.finish()
        #expect(res.extended["gpu"] == 2)
        var typo = try JSONObjectReader(["cpu": "1", "memroy": "1Gi"], path: "$.resources")
        _ = try Resources.read(from: &typo)
        do {
            try typo.finish()
            Issue.record("a typo was accepted")
        } catch {
            #expect(error.message.hasPrefix("$.resources.memroy: unknown key"))
        }
    }
}
