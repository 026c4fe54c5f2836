import Foundation
import Testing
@testable import WardenSystem

/// SHA-256 known answers (FIPS 180-2 examples), through every entry point.
@Suite(.timeLimit(.minutes(1)))
struct DigestTests {
    @Test func knownAnswers() throws {
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var h = SHA256()
        h.update("ab")
        h.update("c")
        #expect(SHA256.hexString(h.finalize()) == SHA256.hex("abc"))
        let file = NSTemporaryDirectory() + "warden-digest-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Data(repeating: 0x61, count: 1_000_000).write(to: URL(fileURLWithPath: file))   // one million 'a'
        #expect(try SHA256.hex(file: file) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
