// libFuzzer targets for the parsers that read untrusted bytes. Built by Tests/Fuzz/fuzz.sh with
// `swiftc -sanitize=fuzzer,address` over WardenCore and the frame codec; WARDEN_FUZZ_TARGET picks one:
//
//   frames     a plugin worker's channel frame (hostile plugins write these): decode; what decodes must
//              encode and decode back to the same frame
//   json       any JSON text: parse; what parses must print canonically and parse back to the same value
//   manifest   a plugin manifest: decode (every error is a WardenError, nothing traps)
//   profile    a sandbox profile, and the same text as an OCI seccomp file
//   policy     an admission policy, and the same text as a workflow file
//   schema     the text as a JSON Schema and as an instance of itself
//   quantity   the text as cpu, bytes, count, duration and rate, formatted again; cpu must round-trip
//   jsonbinary the cached form of parsed profile files (JSONValue(binary:)), as given and after the magic:
//              what decodes must encode and decode back to the same bytes; parsed JSON text must round-trip
//   lines      MCP's line framing (LineReader) over a pipe, the first two bytes picking the line limit and
//              the read size: the lines must be exactly the model's (split at \n, one \r dropped, longer
//              than the limit → tooLong), however the reads cut the input
//
// A trap (precondition, overflow, out-of-bounds index) or an address-sanitizer report is a finding.
import Glibc
import WardenCore

let target: String = {
    guard let v = getenv("WARDEN_FUZZ_TARGET") else { return "" }
    return String(cString: v)
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    switch target {
    case "frames": fuzzFrames(bytes)
    case "json": fuzzJSON(bytes)
    case "manifest": _ = try? PluginManifest.decode(bytes)
    case "profile":
        if let j = try? JSONValue.parse(bytes) {
            _ = try? SandboxProfile.decode(j)
            _ = try? OCISeccomp.decode(j)
        }
    case "policy":
        if let j = try? JSONValue.parse(bytes) {
            _ = try? Policy.decode(j)
            _ = try? WorkflowSpec.decode(j)
        }
    case "schema":
        if let j = try? JSONValue.parse(bytes), (try? JSONSchema.validateSchema(j, path: "$")) != nil {
            _ = try? JSONSchema.validate(j, schema: j)
        }
    case "quantity": fuzzQuantity(String(decoding: bytes, as: UTF8.self))
    case "jsonbinary": fuzzJSONBinary(bytes)
    case "lines": fuzzLines(bytes)
    default:
        fputs("WARDEN_FUZZ_TARGET must be one of: frames json manifest profile policy schema quantity jsonbinary lines\n", stderr)
        exit(2)
    }
    return 0
}

func fuzzFrames(_ bytes: [UInt8]) {
    guard case .success(let f) = FrameCodec.decode(bytes[...]) else { return }
    let again = Array(FrameCodec.encode(f).dropFirst(4))   // the 4-byte length prefix
    guard case .success(let g) = FrameCodec.decode(again[...]) else {
        fatalError("a decoded frame does not re-encode to a valid one: \(String(decoding: again, as: UTF8.self))")
    }
    var expected = f
    if let x = f.fraction, !x.isFinite { expected.fraction = nil }   // encode drops a non-finite fraction
    precondition(g == expected, "frame round trip changed it: \(f) -> \(g)")
}

func fuzzJSON(_ bytes: [UInt8]) {
    guard let v = try? JSONValue.parse(bytes) else { return }
    let text = v.canonical
    guard let w = try? JSONValue.parse(text) else { fatalError("canonical form does not parse: \(text)") }
    precondition(w.canonical == text, "canonical form is not stable: \(text) -> \(w.canonical)")
}

func fuzzQuantity(_ s: String) {
    if let m = try? Quantity.cpuMillis(s, field: "f") {
        precondition((try? Quantity.cpuMillis(Quantity.formatCPU(m), field: "f")) == m, "cpu \(s) -> \(m) -> \(Quantity.formatCPU(m))")
    }
    if let b = try? Quantity.bytes(s, field: "f") { _ = Quantity.formatBytes(b) }   // rounded for people: no round trip
    _ = try? Quantity.count(s, field: "f")
    if let ms = try? Quantity.durationMillis(s, field: "f") { _ = Quantity.formatDuration(ms) }
    _ = try? Quantity.rate(s, field: "f")
}

func fuzzJSONBinary(_ bytes: [UInt8]) {
    for input in [bytes, JSONValue.binaryMagic + bytes] {
        guard let v = JSONValue(binary: input) else { continue }
        // Bytes, not values: a NaN read from the bytes is not equal to itself.
        let again = v.binary
        precondition(JSONValue(binary: again)?.binary == again, "binary round trip changed \(v)")
    }
    if let j = try? JSONValue.parse(bytes) {
        precondition(JSONValue(binary: j.binary) == j, "parsed JSON did not survive the binary form: \(j)")
    }
}

func fuzzLines(_ bytes: [UInt8]) {
    guard bytes.count >= 2 else { return }
    let maxLine = Int(bytes[0] % 64), chunk = Int(bytes[1] % 16) + 1
    let input = Array(bytes.dropFirst(2))
    // A pipe holds 64 KiB and inputs are at most 4 KiB: write everything, close, then read.
    var p: [Int32] = [-1, -1]
    precondition(pipe(&p) == 0, "pipe")
    let fd = p[0]
    defer { close(fd) }
    precondition(input.withUnsafeBytes { write(p[1], $0.baseAddress, $0.count) } == input.count, "short write")
    close(p[1])
    let reader = LineReader(fd: fd, maxLine: maxLine, chunkSize: chunk)
    var got: [LineReader.Line] = []
    while let l = reader.next() { got.append(l) }
    // The model.
    var segments = input.split(separator: 10, omittingEmptySubsequences: false).map(Array.init)
    if input.last == 10 || input.isEmpty { segments.removeLast() }
    let expected: [LineReader.Line] = segments.map { s in
        if s.count > maxLine { return .tooLong }
        return .line(s.last == 13 ? Array(s.dropLast()) : s)
    }
    precondition(got == expected, "lines \(got) != model \(expected) (maxLine \(maxLine), chunk \(chunk))")
}
