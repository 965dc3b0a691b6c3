@testable import API
import Bookend
import Foundation
import Testing

/// The hand-written rendering path must produce what the JSONEncoder round trip it replaced did.
@Suite struct WireTests {
    struct Inner: Codable { var name: String; var value: Int? }
    struct Sample: Codable {
        var id: String
        var count: Int
        var ratio: Double
        var enabled: Bool
        var missing: String?
        var present: String?
        var items: [Inner]
        var map: [String: Int]
        var raw: JSONValue
        var empty: [String]
    }

    static let sample = Sample(
        id: "t-1", count: -7, ratio: 1.5, enabled: false, missing: nil, present: "yes",
        items: [Inner(name: "a", value: nil), Inner(name: "b", value: 3)], map: ["x": 1, "y": 2],
        raw: .object(["nested": .array([.number(1), .string("two"), .bool(true), .null])]), empty: [])

    @Test func valueEncoderMatchesTheJSONRoundTrip() throws {
        let direct = try ValueEncoder.encode(Self.sample)
        let roundTrip = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(Self.sample))
        #expect(direct == roundTrip)
        guard case .object(let object) = direct else { Issue.record("not an object"); return }
        #expect(object["missing"] == nil, "nil optionals are omitted")
        #expect(object["count"] == .number(-7))
    }

    /// The byte encoder that writes answers gives the values the tree encoder gives (key order aside).
    @Test func bytesEncoderMatchesTheTreeEncoder() throws {
        var sample = Self.sample
        sample.present = "quote \" backslash \\ newline \n tab \t bell \u{07} é ✓"
        let bytes = try JSONBytesEncoder.encode(sample)
        #expect(try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) == (try ValueEncoder.encode(sample)))
        #expect(!String(decoding: bytes, as: UTF8.self).contains("missing"), "nil optionals are omitted")
    }

    /// Integers are written digit by digit, not through `String(number)`: the same text at the edges.
    @Test(arguments: [0, 1, -1, 9, 10, -10, 42, 999_999, Int64.max, Int64.min, Int64.max - 1, Int64.min + 1])
    func integersAreWrittenAsSwiftPrintsThem(_ number: Int64) throws {
        var out: [UInt8] = []
        JSONBytesEncoder.writeDecimal(number, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == String(number))
        struct Numbers: Encodable { var a: Int64; var b: UInt64?; var c: Int32?; var d: Int? }
        let bytes = try JSONBytesEncoder.encode(Numbers(a: number, b: UInt64.max, c: nil, d: Int(number)))
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"a":\#(number),"b":18446744073709551615,"d":\#(number)}"#)
    }

    @Test(arguments: [
        (["id", "items"], ["id", "items"]),
        (["nothing"], []),
        (["raw", "count", "empty"], ["count", "empty", "raw"]),
    ])
    func selectKeepsOnlyTheNamedTopLevelProperties(select: [String], kept: [String]) throws {
        let bytes = try JSONBytesEncoder.encode(Self.sample, select: Set(select))
        guard case .object(let object) = try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) else {
            Issue.record("not an object: \(String(decoding: bytes, as: UTF8.self))")
            return
        }
        #expect(object.keys.sorted() == kept)
        guard case .object(let full) = try ValueEncoder.encode(Self.sample) else { return }
        for key in kept { #expect(object[key] == full[key], "\(key) is whole") }
    }

    @Test func serializedJSONParsesBackToTheSameValues() throws {
        let tricky = "quote \" backslash \\ newline \n tab \t bell \u{07} slash / é ✓"
        let value: JSONValue = .object(["s": .string(tricky), "i": .number(42), "f": .number(0.25), "b": .bool(true), "n": .null,
                                        "a": .array([.number(-1), .string("")])])
        let data = Wire.encode(value)
        let parsed = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(parsed["s"] as? String == tricky)
        #expect((parsed["i"] as? NSNumber)?.intValue == 42)
        #expect((parsed["f"] as? NSNumber)?.doubleValue == 0.25)
        #expect(parsed["n"] is NSNull)
        #expect(String(decoding: data, as: UTF8.self).contains(#""i":42"#), "integers are written without a fraction")
    }

    @Test func idsNeedNoEscapingButOtherSegmentsAreEncoded() {
        #expect(Wire.escape("Job_1-a") == "Job_1-a")
        #expect(Wire.escape("a b/c?d") == "a%20b%2Fc%3Fd")
        #expect(Wire.escape("é") == "%C3%A9")
    }
}
