// hello-swift: an example Warden dylib plugin in Swift, exported through @_cdecl (see include/warden_plugin.h
// and docs/PLUGINS.md). Built by plugins/Makefile with the Swift runtime linked statically into the .so
// (-static-stdlib, runtime symbols hidden), so it loads inside a sandbox that has no Swift toolchain.
// No Foundation: only the standard library and Glibc (malloc/free), so the library stays self-contained.
//
//   reverse {"text": "héllo"} → {"reversed": "olléh"}           (by user-perceived characters)
//   stats   {"text": "a b\nc"} → {"characters": 5, "words": 3, "lines": 2}

import Glibc

/// The descriptor Warden reads; allocated once, never freed (it must outlive every call).
nonisolated(unsafe) let descriptor: UnsafeMutablePointer<warden_plugin> = {
    let p = UnsafeMutablePointer<warden_plugin>.allocate(capacity: 1)
    p.initialize(to: warden_plugin(
        abi_version: WARDEN_PLUGIN_ABI_VERSION,
        name: staticCString("hello-swift"),
        version: staticCString("1.0.0"),
        init: { host, _, state in
            // No per-instance state beyond the host: keep the host pointer, for logging.
            state?.pointee = UnsafeMutableRawPointer(mutating: host)
            return WARDEN_OK
        },
        invoke: { state, tool, input, inputLen, output, outputLen in
            let host = state?.assumingMemoryBound(to: warden_host.self)
            let toolName = tool.map { String(cString: $0) } ?? ""
            let text = input.map { String(cString: $0) } ?? "{}"
            let (code, json) = handle(tool: toolName, input: text, host: host)
            output?.pointee = copyToC(json)
            outputLen?.pointee = json.utf8.count
            return code
        },
        free_output: { free($0) },
        shutdown: { _ in }))
    return p
}()

@_cdecl("warden_plugin_entry")
public func wardenPluginEntry() -> UnsafePointer<warden_plugin> { UnsafePointer(descriptor) }

@_cdecl("warden_plugin_tools")
public func wardenPluginTools() -> UnsafePointer<CChar> { staticCString("[\"reverse\", \"stats\"]") }

func handle(tool: String, input: String, host: UnsafePointer<warden_host>?) -> (Int32, String) {
    guard let text = stringField(input, "text") else {
        return (WARDEN_ERROR, #"{"error": "text must be a string"}"#)
    }
    switch tool {
    case "reverse":
        return (WARDEN_OK, "{\"reversed\": \(jsonString(String(text.reversed())))}")
    case "stats":
        if let host, text.utf8.count > 1 << 20 {
            host.pointee.log(host.pointee.ctx, WARDEN_LOG_INFO, "counting a large text")
        }
        let words = text.split(whereSeparator: { $0.isWhitespace }).count
        let lines = text.isEmpty ? 0 : text.split(separator: "\n", omittingEmptySubsequences: false).count
        return (WARDEN_OK, "{\"characters\": \(text.count), \"words\": \(words), \"lines\": \(lines)}")
    default:
        return (WARDEN_ERROR, "{\"error\": \(jsonString("unknown tool \(tool)"))}")
    }
}

// MARK: C strings and a minimal JSON reader/writer (the input has passed the tool's inputSchema)

func staticCString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// A malloc'ed copy, released by `free_output`.
func copyToC(_ s: String) -> UnsafeMutablePointer<CChar>? {
    let bytes = Array(s.utf8)
    guard let p = malloc(bytes.count + 1)?.assumingMemoryBound(to: CChar.self) else { return nil }
    bytes.withUnsafeBufferPointer { buf in
        for (i, b) in buf.enumerated() { p[i] = CChar(bitPattern: b) }
    }
    p[bytes.count] = 0
    return p
}

/// The string value of a top-level `"key": "..."` in a JSON object, unescaped.
func stringField(_ json: String, _ key: String) -> String? {
    let bytes = Array(json.utf8)
    let needle = Array("\"\(key)\"".utf8)
    var i = 0
    while i + needle.count <= bytes.count {
        if Array(bytes[i..<(i + needle.count)]) == needle {
            var j = i + needle.count
            while j < bytes.count, bytes[j] == 32 || bytes[j] == 9 || bytes[j] == 10 || bytes[j] == 13 { j += 1 }
            if j < bytes.count, bytes[j] == UInt8(ascii: ":") {
                j += 1
                while j < bytes.count, bytes[j] == 32 || bytes[j] == 9 || bytes[j] == 10 || bytes[j] == 13 { j += 1 }
                return j < bytes.count && bytes[j] == UInt8(ascii: "\"") ? unescape(bytes, from: j + 1) : nil
            }
        }
        i += 1
    }
    return nil
}

func unescape(_ b: [UInt8], from start: Int) -> String? {
    var out: [UInt8] = []
    var i = start
    while i < b.count {
        let c = b[i]
        if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
        if c != UInt8(ascii: "\\") {
            out.append(c)
            i += 1
            continue
        }
        guard i + 1 < b.count else { return nil }
        let e = b[i + 1]
        i += 2
        switch e {
        case UInt8(ascii: "n"): out.append(10)
        case UInt8(ascii: "t"): out.append(9)
        case UInt8(ascii: "r"): out.append(13)
        case UInt8(ascii: "b"): out.append(8)
        case UInt8(ascii: "f"): out.append(12)
        case UInt8(ascii: "u"):
            guard i + 4 <= b.count, var code = UInt32(String(decoding: b[i..<(i + 4)], as: UTF8.self), radix: 16) else { return nil }
            i += 4
            // A surrogate pair: \uD83D\uDE00.
            if (0xD800..<0xDC00).contains(code), i + 6 <= b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u"),
               let low = UInt32(String(decoding: b[(i + 2)..<(i + 6)], as: UTF8.self), radix: 16), (0xDC00..<0xE000).contains(low)
            {
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                i += 6
            }
            out.append(contentsOf: String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8)
        default: out.append(e)   // \" \\ \/
        }
    }
    return nil
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}
