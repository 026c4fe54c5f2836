import WardenCore

extension PlanReport {
    /// One self-contained HTML page (no script, no network): a summary, a bar per resource for the whole
    /// cluster, inline SVG bars per node and per resource, and the unplaced tasks with their reasons.
    public var html: String {
        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Warden placement plan</title>
        <style>
        body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1f2937;background:#fff}
        h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
        .sub{color:#6b7280;margin-bottom:16px}
        .cards{display:flex;flex-wrap:wrap;gap:12px}
        .card{border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:150px;background:#f9fafb}
        .card b{display:block;font-size:22px}
        .ok{color:#047857} .warn{color:#b45309} .bad{color:#b91c1c}
        table{border-collapse:collapse;margin-top:6px} th,td{padding:3px 10px;text-align:left;vertical-align:middle}
        th{font-weight:600;border-bottom:2px solid #e5e7eb} tr:nth-child(even) td{background:#f9fafb}
        td.num{text-align:right;font-variant-numeric:tabular-nums}
        .legend span{display:inline-block;width:12px;height:12px;border-radius:2px;margin:0 4px -2px 12px}
        code{font-size:13px}
        </style></head><body>

        """
        let total = placements.count + unplaced.count
        h += "<h1>Warden placement plan</h1>\n"
        switch mode {
        case .nodes:
            h += "<div class=\"sub\">\(nodes.count) nodes, strategy \(esc(strategy?.rawValue ?? "binpack")); \(esc(method))</div>\n"
        case .shape:
            let shape = nodes.first.map { "\(formatCores($0.spec.capacity.cpuMillis)) cpu, \(Quantity.formatBytes($0.spec.capacity.memoryBytes)) memory" } ?? "the node shape"
            h += "<div class=\"sub\">Nodes of \(esc(shape)); \(esc(method))\(stopped.map { "; stopped: " + esc($0) } ?? "")</div>\n"
        }
        h += "<div class=\"cards\">\n"
        h += card("tasks placed", "\(placements.count) / \(total)", unplaced.isEmpty ? "ok" : "bad")
        h += card("nodes used", String(nodesUsed), "")
        // The bound covers the placed tasks; it proves nothing about a plan that leaves tasks out.
        let boundNote = !unplaced.isEmpty ? "for the placed tasks" : nodesUsed == lowerBound ? "optimal" : "gap ≤ \(nodesUsed - lowerBound)"
        h += card("lower bound", String(lowerBound), !unplaced.isEmpty ? "" : nodesUsed == lowerBound ? "ok" : "warn", note: boundNote)
        if let ffdNodes { h += card("first-fit decreasing", String(ffdNodes), "", note: "baseline") }
        for d in dimensions { h += card("\(d) utilization", PlanReport.pct(utilization[d] ?? 0), "") }
        h += card("stranded cpu", formatCores(stranded.cpuMillis), stranded.cpuMillis > 0 ? "warn" : "ok",
                  note: "\(stranded.cpuNodes) nodes out of memory")
        h += card("stranded memory", Quantity.formatBytes(stranded.memoryBytes), stranded.memoryBytes > 0 ? "warn" : "ok",
                  note: "\(stranded.memoryNodes) nodes out of cpu")
        h += "</div>\n"

        // Cluster-wide bars.
        h += "<h2>Cluster</h2>\n<table>\n"
        for (k, d) in dimensions.enumerated() {
            var used: Int64 = 0, cap: Int64 = 0
            for n in nodes {
                used += value(n.allocated, d)
                cap += value(n.spec.allocatable, d)
            }
            h += "<tr><td>\(esc(d))</td><td>\(bar(used: used, cap: cap, color: color(k), width: 420))</td>"
            h += "<td class=\"num\">\(esc(format(used, d))) / \(esc(format(cap, d)))</td></tr>\n"
        }
        h += "</table>\n"

        // Per node.
        h += "<h2>Nodes</h2>\n<div class=\"legend\">allocated"
        for (k, d) in dimensions.enumerated() { h += "<span style=\"background:\(color(k))\"></span>\(esc(d))" }
        h += "<span style=\"background:#e5e7eb\"></span>free</div>\n<table>\n<tr><th>node</th>"
        for d in dimensions { h += "<th>\(esc(d))</th>" }
        h += "<th>tasks</th></tr>\n"
        let shown = nodes.prefix(5000)
        for n in shown {
            h += "<tr><td><code>\(esc(n.spec.name))</code></td>"
            for (k, d) in dimensions.enumerated() {
                let used = value(n.allocated, d), cap = value(n.spec.allocatable, d)
                h += "<td>\(bar(used: used, cap: cap, color: color(k), width: 160)) <span class=\"num\">\(esc(format(used, d)))/\(esc(format(cap, d)))</span></td>"
            }
            h += "<td class=\"num\">\(n.tasks.count)</td></tr>\n"
        }
        h += "</table>\n"
        if nodes.count > shown.count { h += "<p>… \(nodes.count - shown.count) more nodes (see the JSON report).</p>\n" }

        h += "<h2>Unplaced tasks (\(unplaced.count))</h2>\n"
        if unplaced.isEmpty {
            h += "<p class=\"ok\">Every task is placed.</p>\n"
        } else {
            h += "<table>\n<tr><th>task</th><th>reason</th></tr>\n"
            for u in unplaced { h += "<tr><td><code>\(esc(u.task))</code></td><td>\(esc(u.reason))</td></tr>\n" }
            h += "</table>\n"
        }
        h += "<p class=\"sub\">Generated by warden plan in \(roundTo(elapsedMs, 1)) ms.</p>\n</body></html>\n"
        return h
    }

    private func card(_ label: String, _ value: String, _ cls: String, note: String? = nil) -> String {
        var s = "<div class=\"card\">\(esc(label))<b class=\"\(cls)\">\(esc(value))</b>"
        if let note { s += "<small>\(esc(note))</small>" }
        return s + "</div>\n"
    }

    private func color(_ k: Int) -> String {
        ["#2563eb", "#059669", "#9333ea", "#db2777", "#ca8a04", "#0891b2"][k % 6]
    }

    private func value(_ r: Resources, _ d: String) -> Int64 {
        switch d {
        case "cpu": return r.cpuMillis
        case "memory": return r.memoryBytes
        default: return r.extended[d, default: 0]
        }
    }

    private func format(_ v: Int64, _ d: String) -> String { d == "cpu" ? formatCores(v) : formatAmount(v, d) }

    /// An SVG bar: the allocated share filled, the rest grey.
    private func bar(used: Int64, cap: Int64, color: String, width: Int) -> String {
        let f = cap > 0 ? min(1, max(0, Double(used) / Double(cap))) : 0
        let w = Int((f * Double(width)).rounded())
        return "<svg width=\"\(width)\" height=\"14\" role=\"img\" aria-label=\"\(PlanReport.pct(f))\">"
            + "<rect width=\"\(width)\" height=\"14\" rx=\"3\" fill=\"#e5e7eb\"/>"
            + "<rect width=\"\(w)\" height=\"14\" rx=\"3\" fill=\"\(color)\"/></svg>"
    }
}

/// Escapes text for HTML content and attribute values.
func esc(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}
