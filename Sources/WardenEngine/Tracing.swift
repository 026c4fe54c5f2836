import Glibc
import WardenCore
import WardenStore
import WardenSystem

/// W3C trace context and spans. Spans are rows in the store's `spans` table, written inside the
/// transactions that already record the work (no extra fsync); `serve --otlp-file F` exports them as
/// OTLP/JSON, one ExportTraceServiceRequest per line.
public final class Tracer: @unchecked Sendable {
    public let store: Store

    public init(store: Store) { self.store = store }

    static func randomHex(_ bytes: Int) -> String {
        // Eight bytes per draw: each draw is a getrandom(2) call, and this runs for every submission.
        var rng = SystemRandomNumberGenerator()
        var out: [UInt8] = []
        out.reserveCapacity(bytes)
        while out.count < bytes {
            var r = rng.next()
            for _ in 0..<min(8, bytes - out.count) {
                out.append(UInt8(truncatingIfNeeded: r))
                r >>= 8
            }
        }
        return SHA256.hexString(out)
    }

    /// A fresh `00-<trace>-<span>-01`.
    public static func newTraceparent() -> String { "00-\(randomHex(16))-\(randomHex(8))-01" }

    /// A child context: same trace, new span id.
    public static func child(of traceparent: String?) -> String {
        guard let p = parse(traceparent) else { return newTraceparent() }
        return "00-\(p.traceID)-\(randomHex(8))-01"
    }

    /// Validates a W3C traceparent (version 00, 32+16 lowercase hex, non-zero ids).
    public static func parse(_ tp: String?) -> (traceID: String, spanID: String)? {
        guard let tp else { return nil }
        let parts = tp.split(separator: "-")
        guard parts.count == 4, parts[0] == "00", parts[1].count == 32, parts[2].count == 16, parts[3].count == 2 else { return nil }
        let hex = Set("0123456789abcdef")
        guard parts[1].allSatisfy(hex.contains), parts[2].allSatisfy(hex.contains),
              parts[1] != Substring(String(repeating: "0", count: 32)), parts[2] != Substring(String(repeating: "0", count: 16))
        else { return nil }
        return (String(parts[1]), String(parts[2]))
    }

    /// Records one span of `task` (its traceparent's trace; the task's span is the parent).
    public func span(_ name: String, task: TaskRecord, startNs: UInt64, endNs: UInt64 = Time.monotonicNs(),
                     attributes: [String: String] = [:])
    {
        try? store.write { tx in try Self.insert(tx, name: name, task: task, startNs: startNs, endNs: endNs, attributes: attributes) }
    }

    /// Wall-clock nanoseconds for a monotonic instant (spans carry epoch times).
    static func wallNs(_ monotonic: UInt64) -> Int64 {
        let nowMono = Time.monotonicNs()
        let nowWall = Time.nowMs() * 1_000_000
        return nowWall - Int64(nowMono) + Int64(monotonic)
    }

    /// The monotonic instant of a wall-clock time (to start a span at a stored timestamp).
    public static func monotonic(fromWallMs ms: Int64) -> UInt64 {
        let delta = Time.nowMs() - ms
        let now = Time.monotonicNs()
        return delta > 0 ? now - min(now, UInt64(delta) * 1_000_000) : now
    }

    public static func insert(_ tx: SQLExecutor, name: String, task: TaskRecord, startNs: UInt64, endNs: UInt64,
                              attributes: [String: String]) throws
    {
        guard let p = parse(task.traceparent) else { return }
        let attrs = JSONValue.object(attributes.mapValues { .string($0) }.merging(["task": .string(task.id), "tenant": .string(task.tenant),
                                                                                   "tool": .string("\(task.plugin).\(task.tool)")]) { a, _ in a })
        try tx.execute("INSERT INTO spans (trace_id, span_id, parent_span, name, task, start_ns, end_ns, attrs) VALUES (?,?,?,?,?,?,?,?)",
                       [.text(p.traceID), .text(randomHex(8)), .text(p.spanID), .text(name), .text(task.id),
                        .int(wallNs(startNs)), .int(wallNs(max(endNs, startNs))), .text(attrs.canonical)])
    }

    /// Spans with id > `after`, as OTLP/JSON (resourceSpans → scopeSpans → spans).
    public static func otlp(_ store: Store, after: Int64, limit: Int = 5000) throws(WardenError) -> (json: JSONValue?, last: Int64) {
        let rows = try store.read { tx in try tx.query("SELECT * FROM spans WHERE id > ? ORDER BY id LIMIT ?", [.int(after), .int(Int64(limit))]) }
        guard !rows.isEmpty else { return (nil, after) }
        var spans: [JSONValue] = []
        var last = after
        for r in rows {
            last = max(last, r.int("id") ?? last)
            var attrs: [JSONValue] = []
            for (k, v) in (r.json("attrs")?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                attrs.append(["key": .string("warden.\(k)"), "value": ["stringValue": v]])
            }
            spans.append([
                "traceId": .string(r.text("trace_id") ?? ""), "spanId": .string(r.text("span_id") ?? ""),
                "parentSpanId": .string(r.text("parent_span") ?? ""), "name": .string(r.text("name") ?? ""),
                "kind": 1, "startTimeUnixNano": .string(String(r.int("start_ns") ?? 0)),
                "endTimeUnixNano": .string(String(r.int("end_ns") ?? 0)), "attributes": .array(attrs),
            ])
        }
        let doc: JSONValue = ["resourceSpans": [[
            "resource": ["attributes": [["key": "service.name", "value": ["stringValue": "warden"]]]],
            "scopeSpans": [["scope": ["name": "warden"], "spans": .array(spans)]],
        ]]]
        return (doc, last)
    }
}
