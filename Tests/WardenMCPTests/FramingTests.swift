import Glibc
import Testing
import WardenCore
import WardenSystem
@testable import WardenMCP

@Suite struct FramingTests {
    func lines(_ input: String, maxLine: Int = 1 << 20, chunkSize: Int = 1 << 16) -> [LineReader.Line] {
        let p = makePipe()
        let bytes = Array(input.utf8)
        startThread {
            try? FS.writeAll(fd: p.write, bytes)
            close(p.write)
        }
        defer { close(p.read) }
        let r = LineReader(fd: p.read, maxLine: maxLine, chunkSize: chunkSize)
        var out: [LineReader.Line] = []
        while let l = r.next() { out.append(l) }
        return out
    }

    @Test func splitsLinesDropsCRAndKeepsALastLineWithoutNewline() {
        #expect(lines("a\r\nbb\n\nccc") == [.line(Array("a".utf8)), .line(Array("bb".utf8)), .line([]), .line(Array("ccc".utf8))])
    }

    @Test func aTooLongLineIsSkippedAndTheNextOneSurvives() {
        let long = String(repeating: "x", count: 300_000)
        #expect(lines("\(long)\nok\n", maxLine: 1000) == [.tooLong, .line(Array("ok".utf8))])
        #expect(lines("short\n\(long)", maxLine: 1000) == [.line(Array("short".utf8)), .tooLong])
    }

    /// The limit does not depend on how the bytes arrive: a long line read whole, or split across reads at
    /// any byte, is refused the same way (it used to pass when it came in one read).
    @Test func theLimitHoldsHoweverTheLineArrives() {
        let input = "ok\n" + String(repeating: "y", count: 2000) + "\r\nafter\n"
        let expected: [LineReader.Line] = [.line(Array("ok".utf8)), .tooLong, .line(Array("after".utf8))]
        for chunk in [1, 2, 3, 7, 1000, 1 << 16] {
            #expect(lines(input, maxLine: 1000, chunkSize: chunk) == expected, "chunk \(chunk)")
        }
    }

    /// A too-long last line without a newline is one `.tooLong`, not that and then its tail as a line
    /// (found by the `lines` fuzz target).
    @Test func theTailOfATooLongLastLineIsNotALine() {
        let input = "short\n" + String(repeating: "z", count: 1500)
        for chunk in [1, 7, 600, 1 << 16] {
            #expect(lines(input, maxLine: 1000, chunkSize: chunk) == [.line(Array("short".utf8)), .tooLong], "chunk \(chunk)")
        }
    }

    @Test func cursorsRoundTripAndForeignCursorsAreRefused() {
        for name in ["a.b", "wordcount.count", "ü-tool.x"] {
            #expect(MCPFrontDoor.decodeCursor(MCPFrontDoor.encodeCursor(name)) == name)
        }
        for bad in ["", "abc", "w1.zz", "w1.6", "w2.61", "w1.ff"] {
            #expect(MCPFrontDoor.decodeCursor(bad) == nil, "\(bad)")
        }
    }

    @Test func progressBecomesAGrowingFraction() {
        #expect(MCPPluginExecutor.fraction(1, 4) == 0.25)
        #expect(MCPPluginExecutor.fraction(8, 4) == 1)
        #expect(MCPPluginExecutor.fraction(.nan, 4) == 0)
        // Without a total the fraction still grows with the count and stays below 1.
        let f = [1.0, 2, 10, 1000].map { MCPPluginExecutor.fraction($0, nil) }
        #expect(f == f.sorted() && Set(f).count == 4 && f.allSatisfy { $0 > 0 && $0 < 1 })
    }

    @Test func aCallToolResultBecomesAnOutcome() {
        let ok = MCPPluginExecutor.interpret(["content": [["type": "text", "text": "7"]], "structuredContent": ["result": 7], "isError": false])
        #expect(ok.status == .succeeded(["content": [["type": "text", "text": "7"]], "structuredContent": ["result": 7]]))
        let bad = MCPPluginExecutor.interpret(["content": [["type": "text", "text": "boom"]], "isError": true])
        #expect(bad.status == .failed(reason: "the tool reported an error: boom", retryable: false))
    }

    @Test func restartsBackOffExponentiallyUpTo30Seconds() {
        let b = (0...12).map { MCPPluginExecutor.Slot.backoffMs(failures: $0) }
        #expect(b.prefix(5) == [0, 100, 200, 400, 800])
        #expect(b.last == 30_000 && b == b.sorted())
        #expect(MCPPluginExecutor.Slot.backoffMs(failures: 10_000) == 30_000)
    }
}
