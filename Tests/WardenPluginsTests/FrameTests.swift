import Glibc
import Testing
import WardenCore
@testable import WardenPlugins

/// The plugin-host channel: frames survive being split across reads, and anything malformed is reported as
/// garbage (never waited on, never crashed on).
@Suite struct FrameTests {
    /// A connected socketpair; the test writes raw bytes on `a` and reads frames from `b`.
    final class Pair {
        let a: Int32, b: Int32
        private var aOpen = true
        init() {
            var fds: [Int32] = [-1, -1]
            precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
            a = fds[0]
            b = fds[1]
        }
        func write(_ bytes: [UInt8]) { _ = FrameWriter.send(a, bytes) }
        func closeWriter() {
            close(a)
            aOpen = false
        }
        deinit {
            if aOpen { close(a) }
            close(b)
        }
    }

    @Test func roundTripOfEveryField() {
        let pair = Pair()
        var call = HostFrame("call", id: 7)
        call.tool = "greet"
        call.input = #"{"name":"Ada \"the\" first","n":[1,2]}"#
        call.timeoutMs = 1500
        var log = HostFrame("log", id: 7)
        log.level = 2
        log.message = "line\nwith newline"
        pair.write(FrameCodec.encode(call) + FrameCodec.encode(log))
        let r = FrameReader(fd: pair.b)
        #expect(r.readBlocking() == .frame(call))
        #expect(r.readBlocking() == .frame(log))
    }

    @Test func aFrameSplitAcrossWritesIsReassembled() {
        let pair = Pair()
        var f = HostFrame("progress", id: 1)
        f.fraction = 0.25
        f.message = String(repeating: "x", count: 100_000)
        let bytes = FrameCodec.encode(f)
        let r = FrameReader(fd: pair.b)
        pair.write(Array(bytes[0..<3]))
        #expect(r.fill() == .data)
        #expect(r.next() == nil)   // not even the header yet
        pair.write(Array(bytes[3...]))
        #expect(r.readBlocking() == .frame(f))
    }

    @Test func aResultCarriesThePluginOutputUnread() {
        let pair = Pair()
        // Even output that is not JSON travels intact: the host, not the channel, judges it.
        let raw = DylibRawResult(rc: 0, output: Array("{not json \u{1} \"quoted\"".utf8), length: 22)
        pair.write(PluginHostProcess.resultFrame(id: 3, raw: raw, cap: 1 << 20))
        guard case .frame(let f) = FrameReader(fd: pair.b).readBlocking() else {
            Issue.record("no frame")
            return
        }
        #expect(f.t == "result" && f.id == 3 && f.rc == 0)
        #expect(f.output == "{not json \u{1} \"quoted\"")
        #expect(Worker.outcome(f, cap: 1 << 20).status == .failed(reason: "the tool returned 0 but its output is not JSON (invalid JSON: The given data was not valid JSON.)", retryable: false))

        var over = HostFrame("result", id: 4)
        over.rc = 0
        over.problem = "output_limit"
        over.length = 16 << 20
        #expect(Worker.outcome(over, cap: 8 << 20).status == .failed(reason: "output_limit: the tool returned 16Mi, over its 8Mi output cap", retryable: false))
    }

    @Test func anOversizeHeaderIsGarbage() {
        let pair = Pair()
        pair.write([0xff, 0xff, 0xff, 0xff] + Array("junk".utf8))
        guard case .garbage(let why) = FrameReader(fd: pair.b, maxFrame: 1 << 20).readBlocking() else {
            Issue.record("expected garbage")
            return
        }
        #expect(why.contains("4294967295 bytes"))
    }

    @Test func aBodyThatIsNotJSONIsGarbage() {
        let pair = Pair()
        pair.write([0, 0, 0, 5] + Array("hello".utf8))
        guard case .garbage(let why) = FrameReader(fd: pair.b).readBlocking() else {
            Issue.record("expected garbage")
            return
        }
        #expect(why.contains("not a flat JSON message"))
    }

    @Test func aFrameWithoutItsTypeIsGarbage() {
        let pair = Pair()
        pair.write(FrameCodec.prefixed(Array(#"{"id": 1}"#.utf8)))
        guard case .garbage = FrameReader(fd: pair.b).readBlocking() else {
            Issue.record("expected garbage")
            return
        }
    }

    func decode(_ text: String) -> Result<HostFrame, FrameError> { FrameCodec.decode(ArraySlice(Array(text.utf8))) }

    @Test func theReaderTakesEscapesNumbersNullsAndArrays() throws {
        let f = try decode(#" { "t" : "ready", "id": -12, "fraction": 2.5e-1, "message": "a\"b\\c\/d\n\u00e9\ud83d\ude00\ud800x", "tools": ["a", "b\tc"], "stage": null } "#).get()
        #expect(f.t == "ready" && f.id == -12 && f.fraction == 0.25)
        #expect(f.message == "a\"b\\c/d\né😀\u{FFFD}x")
        #expect(f.tools == ["a", "b\tc"] && f.stage == nil)
    }

    @Test(arguments: [
        "", "{}", "[]", #"{"t":"x",}"#, #"{"t":"x"} extra"#, #"{"t":"x","nested":{"a":1}}"#, #"{"t":"x","id":1.5}"#,
        #"{"t":"x","id":99999999999999999999}"#, #"{"t":"x","rc":4294967296}"#, #"{"t":1}"#, #"{"t":"x\q"}"#,
        #"{"t":"unterminated}"#, "{\"t\":\"a\u{1}b\"}", #"{"t":"x","fraction":-}"#, #"{"t":"x","tools":["a",]}"#, #"{"id":1}"#,
    ])
    func theReaderRefusesAnythingElse(_ text: String) {
        guard case .failure = decode(text) else {
            Issue.record("accepted \(text)")
            return
        }
    }

    @Test func everyFrameTheCodecWritesReadsBack() throws {
        var f = HostFrame("ready", id: 3)
        f.abi = 1
        f.name = "n \"quoted\"\n"
        f.tools = ["x", "y"]
        f.fraction = 0.125
        f.level = -1
        f.rc = 75
        f.message = "\u{7}bell é"
        let bytes = FrameCodec.encode(f)
        #expect(try FrameCodec.decode(bytes[4...]).get() == f)
        let call = FrameCodec.encodeCall(id: 9, tool: "greet", input: Array(#"{"name":"Ada"}"#.utf8), timeoutMs: 500)
        let c = try FrameCodec.decode(call[4...]).get()
        #expect(c.t == "call" && c.id == 9 && c.tool == "greet" && c.input == #"{"name":"Ada"}"# && c.timeoutMs == 500)
        // A result carrying bytes that are not UTF-8 still makes a valid frame.
        let r = FrameCodec.encodeResult(id: 1, rc: 0, output: [0x22, 0xff, 0xfe, 0x22])
        #expect(try FrameCodec.decode(r[4...]).get().output == "\"\u{FFFD}\u{FFFD}\"")
    }

    @Test func randomBytesAreGarbageNeverACrash() {
        var rng = SystemRandomNumberGenerator()
        let valid = Array(FrameCodec.encode(HostFrame("log", id: 1))[4...])
        for round in 0..<20_000 {
            var bytes = valid
            // Flip, drop or insert a few bytes of a valid frame, or use pure noise.
            if round % 4 == 0 {
                bytes = (0..<Int.random(in: 0..<40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                for _ in 0..<Int.random(in: 1...3, using: &rng) where !bytes.isEmpty {
                    let i = Int.random(in: 0..<bytes.count, using: &rng)
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)
                    case 1: bytes.remove(at: i)
                    default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: i)
                    }
                }
            }
            _ = FrameCodec.decode(ArraySlice(bytes))
        }
    }

    @Test func endOfChannelMidFrameIsGarbageButACleanEndIsEOF() {
        let pair = Pair()
        let bytes = FrameCodec.encode(HostFrame("ready"))
        pair.write(Array(bytes.dropLast(2)))
        pair.closeWriter()
        guard case .garbage(let why) = FrameReader(fd: pair.b).readBlocking() else {
            Issue.record("expected garbage")
            return
        }
        #expect(why.contains("truncated"))

        let clean = Pair()
        clean.write(bytes)
        clean.closeWriter()
        let r = FrameReader(fd: clean.b)
        #expect(r.readBlocking() == .frame(HostFrame("ready")))
        #expect(r.readBlocking() == .eof)
    }
}

/// How a call's code and output become a task outcome (the same in a worker and in-process).
@Suite struct DylibReplyTests {
    func raw(_ rc: Int32, _ s: String?, length: Int? = nil) -> DylibRawResult {
        DylibRawResult(rc: rc, output: s.map { Array($0.utf8) }, length: length ?? s?.utf8.count ?? 0)
    }

    @Test func successNeedsOneJSONValue() {
        #expect(DylibReply.interpret(raw(0, #"{"a": 1}"#), cap: 100).outcome(cap: 100).status == .succeeded(["a": 1]))
        #expect(DylibReply.interpret(raw(0, ""), cap: 100).outcome(cap: 100).status == .succeeded(.null))
        let bad = DylibReply.interpret(raw(0, "{not json"), cap: 100)
        guard case .failed(let why, let retryable) = bad.outcome(cap: 100).status else {
            Issue.record("invalid output succeeded")
            return
        }
        #expect(why.contains("not JSON") && !retryable)
    }

    @Test func outputOverTheCapIsAnOutputLimitFailure() {
        let r = DylibReply.interpret(raw(0, nil, length: 16 << 20), cap: 8 << 20)
        #expect(r.problem == .outputLimit(16 << 20))
        #expect(r.outcome(cap: 8 << 20).status
            == .failed(reason: "output_limit: the tool returned 16Mi, over its 8Mi output cap", retryable: false))
    }

    @Test func errorCodesCarryTheMessageAnd75IsRetryable() {
        #expect(DylibReply.interpret(raw(1, #"{"error": "no widgets"}"#), cap: 100).outcome(cap: 100).status
            == .failed(reason: "the tool failed (1): no widgets", retryable: false))
        #expect(DylibReply.interpret(raw(75, "busy\nnow"), cap: 100).outcome(cap: 100).status
            == .failed(reason: "the tool asked to be retried (75): busy now", retryable: true))
        #expect(DylibReply.interpret(raw(3, ""), cap: 100).outcome(cap: 100).status
            == .failed(reason: "the tool failed (3)", retryable: false))
    }
}

@Suite struct HostBinaryTests {
    @Test func bindsOnlyLibrariesOutsideTheSystemDirectories() {
        let maps = """
        55d0-55d1 r--p 00000000 08:01 1 /work/repo/.build/debug/warden
        7f00-7f01 r-xp 00000000 08:01 2 /opt/swift/usr/lib/swift/linux/libswiftCore.so
        7f01-7f02 r-xp 00000000 08:01 3 /opt/swift/usr/lib/swift/linux/libFoundationEssentials.so
        7f02-7f03 r-xp 00000000 08:01 4 /usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6
        7f03-7f04 r-xp 00000000 08:01 5 /lib/x86_64-linux-gnu/libc.so.6
        7f04-7f05 rw-p 00000000 00:00 0 [heap]
        7f05-7f06 r--p 00000000 08:01 6 /usr/lib/locale/C.utf8/LC_CTYPE
        """
        #expect(HostBinary.libraryDirs(maps: maps, exe: "/work/repo/.build/debug/warden") == ["/opt/swift/usr/lib/swift/linux"])
    }
}
