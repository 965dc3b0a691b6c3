@testable import API
import Foundation
import Testing

/// `PercentDecoding` replaced Foundation's `removingPercentEncoding` on every request's path and
/// query. Whatever the text, it must answer exactly as Foundation does, nil included.
@Suite struct PercentDecodingTests {
    @Test func agreesWithFoundationOnEveryShape() {
        let pieces = ["%", "%2", "%2F", "%2f", "%zz", "%00", "%0A", "%C3%A9", "%C3", "%FF", "%E2%9C%93", "a", "/", "+", "é", "😀", " ", "%%", "%4"]
        var generator = SystemRandomNumberGenerator()
        var decodedSomething = 0
        for _ in 0..<5_000 {
            let text = (0..<Int.random(in: 0...6, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let expected = text.removingPercentEncoding
            #expect(PercentDecoding.decode(text) == expected, "\(text.debugDescription)")
            #expect(PercentDecoding.decode(text[...]) == expected, "\(text.debugDescription)")
            if let expected, expected != text { decodedSomething += 1 }
        }
        #expect(decodedSomething > 500)
        #expect(PercentDecoding.decode("a%2Fb") == "a/b")
        #expect(PercentDecoding.decode("%00") == "\u{0}")
        #expect(PercentDecoding.decode("%C3") == nil)
        #expect(PercentDecoding.decode("%g0") == nil)
    }

    @Test func requestIDsAreLowercaseGUIDs() {
        var seen: Set<String> = []
        for _ in 0..<1_000 {
            let id = BatchEnvelopeMiddleware.newRequestID()
            #expect(UUID(uuidString: id) != nil, "\(id)")
            #expect(id == id.lowercased())
            #expect(id.count == 36)
            // A version 4 (random) GUID of the RFC 4122 variant, as Batch's own read.
            let characters = Array(id)
            #expect(characters[14] == "4" && "89ab".contains(characters[19]), "\(id)")
            seen.insert(id)
        }
        #expect(seen.count == 1_000)
    }
}
