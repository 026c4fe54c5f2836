extension StringProtocol {
    /// Without leading and trailing spaces, tabs and newlines.
    public var trimmed: String {
        let ws: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !ws($0) }) else { return "" }
        let end = lastIndex(where: { !ws($0) })!
        return String(self[start...end])
    }

    /// Splits on a multi-character separator.
    public func split(separatorString sep: String) -> [String] {
        var out: [String] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: sep) {
            out.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        out.append(String(rest))
        return out
    }
}
