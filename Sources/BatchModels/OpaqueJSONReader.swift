/// Reading a kept-verbatim property (`OpaqueJSON`) straight from the text it came in, instead of
/// through `Decoder`.
///
/// Why: `Decoder` cannot say what kind of value is next, so `OpaqueJSON.init(from:)` has to try Bool,
/// Double, String and array in turn, and each miss is a `DecodingError` whose coding path Foundation
/// builds by copying the path once per level, a cost that grows with the square of the depth. A
/// `virtualMachineConfiguration` of 500 nested arrays took 2.3 s to decode in a debug build (and
/// tens of seconds on a loaded machine); a megabyte of numbers in one array paid one error per number.
/// Read from the text, a value costs what its bytes cost.
///
/// A decoder that knows the text it is reading puts a `Source` in its `userInfo` under `sourceKey`;
/// `OpaqueJSON.init(from:)` then finds its value by the decoder's coding path (which, for
/// `JSONDecoder` without a key strategy, names the JSON keys and array positions it went through).
/// When the text is not JSON this reader takes, or the path does not lead to a value, it falls back
/// to `Decoder`, so an error is still the one `JSONDecoder` names.
extension OpaqueJSON {
    public static let sourceKey = CodingUserInfoKey(rawValue: "BatchModels.OpaqueJSON.source")!

    /// The text one decode reads. Made for one `decode` call and read on its thread only: parsed on
    /// first use, then looked up by path.
    public final class Source: @unchecked Sendable {
        private let text: () -> [UInt8]
        private var root: OpaqueJSON??

        /// `text` is called at most once, when the first kept-verbatim property is decoded, so a body
        /// without one is never copied.
        public init(_ text: @escaping () -> [UInt8]) { self.text = text }

        func value(at path: [any CodingKey]) -> OpaqueJSON? {
            if root == nil { root = .some(OpaqueJSON.read(text())) }
            guard var node = root ?? nil else { return nil }
            for key in path {
                switch node {
                case .object(let members):
                    guard let member = members[key.stringValue] else { return nil }
                    node = member
                case .array(let items):
                    guard let position = key.intValue, items.indices.contains(position) else { return nil }
                    node = items[position]
                case .null, .bool, .number, .string:
                    return nil
                }
            }
            return node
        }
    }

    /// The value of `bytes`, or nil when they are not one JSON value (with nothing after it but
    /// space). Iterative, with stacks of its own: nesting depth costs heap, never thread stack.
    static func read(_ bytes: [UInt8]) -> OpaqueJSON? {
        var reader = OpaqueJSONReader(bytes: bytes)
        return reader.document()
    }
}

private struct OpaqueJSONReader {
    let bytes: [UInt8]
    var index = 0
    /// Open containers, innermost last: `true` for an object. Members of the open arrays and objects
    /// live in `arrays` and `objects` (each innermost last), so appending never copies a container.
    var isObject: [Bool] = []
    var arrays: [[OpaqueJSON]] = []
    var objects: [(members: [String: OpaqueJSON], key: String)] = []

    init(bytes: [UInt8]) { self.bytes = bytes }

    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skipSpace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
    }

    mutating func document() -> OpaqueJSON? {
        while true {
            // A value: a scalar, an empty container, or the opening of one (then its first member).
            skipSpace()
            guard let byte = current else { return nil }
            var value: OpaqueJSON
            switch byte {
            case UInt8(ascii: "["):
                index += 1
                skipSpace()
                if current == UInt8(ascii: "]") {
                    index += 1
                    value = .array([])
                } else {
                    isObject.append(false)
                    arrays.append([])
                    continue
                }
            case UInt8(ascii: "{"):
                index += 1
                skipSpace()
                if current == UInt8(ascii: "}") {
                    index += 1
                    value = .object([:])
                } else {
                    guard let key = memberKey() else { return nil }
                    isObject.append(true)
                    objects.append(([:], key))
                    continue
                }
            case UInt8(ascii: "\""):
                guard let text = string() else { return nil }
                value = .string(text)
            case UInt8(ascii: "t"):
                guard literal("true") else { return nil }
                value = .bool(true)
            case UInt8(ascii: "f"):
                guard literal("false") else { return nil }
                value = .bool(false)
            case UInt8(ascii: "n"):
                guard literal("null") else { return nil }
                value = .null
            default:
                guard let number = number() else { return nil }
                value = .number(number)
            }
            // Hand the value to its container; a container it completes is handed on in turn.
            while true {
                guard let object = isObject.last else {
                    skipSpace()
                    return index == bytes.count ? value : nil
                }
                skipSpace()
                if object {
                    let last = objects.count - 1
                    guard objects[last].members.updateValue(value, forKey: objects[last].key) == nil else { return nil }
                    if current == UInt8(ascii: ",") {
                        index += 1
                        guard let key = memberKey() else { return nil }
                        objects[last].key = key
                        break
                    }
                    guard current == UInt8(ascii: "}") else { return nil }
                    index += 1
                    value = .object(objects.removeLast().members)
                } else {
                    arrays[arrays.count - 1].append(value)
                    if current == UInt8(ascii: ",") {
                        index += 1
                        break
                    }
                    guard current == UInt8(ascii: "]") else { return nil }
                    index += 1
                    value = .array(arrays.removeLast())
                }
                isObject.removeLast()
            }
        }
    }

    /// `"name"` and the `:` after it.
    mutating func memberKey() -> String? {
        skipSpace()
        guard current == UInt8(ascii: "\""), let key = string() else { return nil }
        skipSpace()
        guard current == UInt8(ascii: ":") else { return nil }
        index += 1
        return key
    }

    mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
        index += count
        return true
    }

    /// A number as JSON writes one, as the nearest Double; nil for one a Double cannot hold (the
    /// decoder then names it).
    mutating func number() -> Double? {
        let start = index
        while let byte = current,
              (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            index += 1
        }
        guard index > start, let value = Double(String(decoding: bytes[start..<index], as: UTF8.self)), value.isFinite else {
            return nil
        }
        return value
    }

    /// A string from its opening quote to past its closing one, escapes resolved; nil for a raw
    /// control character, a bad escape, a lone surrogate or bytes that are not UTF-8.
    mutating func string() -> String? {
        index += 1
        var text: [UInt8] = []
        while let byte = current {
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(validating: text, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let escape = current else { return nil }
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escape)
                case UInt8(ascii: "b"): text.append(0x08)
                case UInt8(ascii: "f"): text.append(0x0C)
                case UInt8(ascii: "n"): text.append(0x0A)
                case UInt8(ascii: "r"): text.append(0x0D)
                case UInt8(ascii: "t"): text.append(0x09)
                case UInt8(ascii: "u"):
                    guard var scalar = hex4() else { return nil }
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard current == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else { return nil }
                        index += 2
                        guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { return nil }
                    text.append(contentsOf: UTF8.encode(unicode)!)
                default:
                    return nil
                }
            default:
                guard byte >= 0x20 else { return nil }
                text.append(byte)
            }
        }
        return nil
    }

    mutating func hex4() -> UInt32? {
        guard index + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for byte in bytes[index..<(index + 4)] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        index += 4
        return value
    }
}
