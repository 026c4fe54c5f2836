extension StringProtocol {
    /// Without leading and trailing spaces, tabs, carriage returns and newlines. Looks at bytes, not
    /// Characters: all four are ASCII, and a "\r\n" pair (one Character) is trimmed too.
    public var trimmed: String {
        let s = Substring(self), blank: (UInt8) -> Bool = { $0 == 32 || $0 == 10 || $0 == 9 || $0 == 13 }
        guard let start = s.utf8.firstIndex(where: { !blank($0) }), let last = s.utf8.lastIndex(where: { !blank($0) }) else { return "" }
        return String(s[start..<s.utf8.index(after: last)])
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
