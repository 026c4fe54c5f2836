import Testing
import WardenCore

@Suite("string helpers")
struct StringsTests {
    @Test func trimmedDropsOnlyOuterBlanks() {
        #expect("  héllo wörld \r\n".trimmed == "héllo wörld")
        #expect("\t€\n".trimmed == "€")
        #expect("a  b".trimmed == "a  b")
        #expect("".trimmed == "")
        #expect(" \r\n\t ".trimmed == "")
        #expect("x \n y"[...].trimmed == "x \n y")
        #expect("  日本  ".dropFirst().trimmed == "日本")
    }
}
