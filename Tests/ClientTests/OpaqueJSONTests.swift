@testable import BatchModels
import Foundation
import Testing

/// A kept-verbatim property read from the text (`OpaqueJSON.Source`) is the value the `Decoder`
/// fallback reads, wherever it sits in the body; text the reader does not take falls back, so the
/// decoder's own error still names the problem.
@Suite struct OpaqueJSONTests {
    static func decode<T: Decodable>(_ type: T.Type, _ text: String, fromText: Bool) throws -> T {
        let decoder = JSONDecoder()
        if fromText { decoder.userInfo[OpaqueJSON.sourceKey] = OpaqueJSON.Source { Array(text.utf8) } }
        return try decoder.decode(type, from: Data(text.utf8))
    }

    static let texts = [
        "null", "true", "false", "0", "-0", "1", "-12.5e3", "1E-7", "12345678901234567890", "0.1",
        #""""#, #""plain""#, #""esc \" \\ \/ \b \f \n \r \t""#, #""\u0041\u00e9\u4e2d\ud83d\ude00""#, "\"é中😀\"",
        "[]", "{}", "[1,[2,[3,[]]],{}]", #"{"a":{"b":[true,false,null]},"c":"d"}"#, " [ 1 , { \"k\" : [ ] } ] ",
        #"{"\u0061":1,"b":2}"#, #"{"3":["x"],"0":{"1":2}}"#,
    ]

    @Test(arguments: texts) func readerAgreesWithTheDecoder(_ text: String) throws {
        let viaDecoder = try Self.decode(OpaqueJSON.self, text, fromText: false)
        #expect(OpaqueJSON.read(Array(text.utf8)) == viaDecoder)
        #expect(try Self.decode(OpaqueJSON.self, text, fromText: true) == viaDecoder)
    }

    /// Inside keyed, unkeyed and dictionary containers (whose numeric keys look like positions), the
    /// coding path leads to the same value the fallback reads.
    @Test func valuesAreFoundByTheirCodingPath() throws {
        struct Item: Decodable, Equatable { let name: String; let settings: OpaqueJSONObject?; let files: OpaqueJSONArray? }
        struct Body: Decodable, Equatable { let items: [Item]; let extra: [String: [OpaqueJSON]]; let deep: OpaqueJSON }
        let text = #"""
            {"items":[{"name":"a","settings":{"image":"x","opts":[1,{"2":"z"}]}},{"name":"b","files":[{"p":"/x"},null,3]}],
             "extra":{"0":[true],"1":[{"k":[]}],"x y":["\u00e9"]},
             "deep":[[[[[[{"a":[[["leaf"]]]}]]]]]]}
            """#
        let fallback = try Self.decode(Body.self, text, fromText: false)
        #expect(try Self.decode(Body.self, text, fromText: true) == fallback)
        #expect(fallback.items[0].settings?["opts"] == .array([.number(1), .object(["2": .string("z")])]))
    }

    /// Random values, written by `JSONEncoder` (escaping as it does), read back both ways.
    @Test func randomValuesReadBackBothWays() throws {
        var random = SystemRandomNumberGenerator()
        func value(_ depth: Int) -> OpaqueJSON {
            switch Int.random(in: 0..<(depth > 5 ? 5 : 7), using: &random) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &random))
            case 2: return .number(Double(Int.random(in: -1_000_000...1_000_000, using: &random)) / 8)
            case 3: return .number(Double(Int.random(in: -99...99, using: &random)))
            case 4:
                let scalars = (0..<Int.random(in: 0...12, using: &random)).compactMap { _ in
                    Unicode.Scalar(UInt32.random(in: [0x01...0x7F, 0xA0...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF].randomElement(using: &random)!, using: &random))
                }
                return .string(String(String.UnicodeScalarView(scalars)))
            case 5: return .array((0..<Int.random(in: 0...4, using: &random)).map { _ in value(depth + 1) })
            default:
                return .object(Dictionary((0..<Int.random(in: 0...4, using: &random)).map { ("k\($0)\(Int.random(in: 0...9, using: &random))", value(depth + 1)) },
                    uniquingKeysWith: { first, _ in first }))
            }
        }
        for _ in 0..<300 {
            let original = value(0)
            let text = String(decoding: try JSONEncoder().encode(original), as: UTF8.self)
            let viaDecoder = try Self.decode(OpaqueJSON.self, text, fromText: false)
            #expect(OpaqueJSON.read(Array(text.utf8)) == viaDecoder, "\(text)")
            #expect(try Self.decode(OpaqueJSON.self, text, fromText: true) == viaDecoder, "\(text)")
        }
    }

    /// Nesting as deep as the decoder allows is read without recursion and without an error per level.
    @Test func deepNestingIsRead() throws {
        let depth = 500
        let text = String(repeating: "[", count: depth) + #"{"a":1}"# + String(repeating: "]", count: depth)
        var node = try Self.decode(OpaqueJSON.self, text, fromText: true)
        for _ in 0..<depth {
            guard case .array(let items) = node, items.count == 1 else { Issue.record("not an array of one"); return }
            node = items[0]
        }
        #expect(node == .object(["a": .number(1)]))
    }

    /// Text the reader does not take reads as nil, and decoding then fails as the decoder alone does.
    @Test(arguments: [#""\ud800""#, "1e400", "[1,]", "{\"a\":1,\"a\":2}", "[1] x", "\"\u{01}\"", #""\x""#, "tru", "[", "{\"a\" 1}"])
    func textTheReaderRefusesFallsBack(_ text: String) {
        #expect(OpaqueJSON.read(Array(text.utf8)) == nil)
        let alone = Result { try Self.decode(OpaqueJSON.self, text, fromText: false) }
        let withSource = Result { try Self.decode(OpaqueJSON.self, text, fromText: true) }
        switch (alone, withSource) {
        case (.success(let a), .success(let b)): #expect(a == b)
        case (.failure(let a), .failure(let b)): #expect("\(a)" == "\(b)")
        default: Issue.record("decoding \(text) alone gave \(alone), with its text \(withSource)")
        }
    }
}
