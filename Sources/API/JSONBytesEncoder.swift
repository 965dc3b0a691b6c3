import BatchModels
import Foundation

/// Encodes an `Encodable` (the BatchModels wire types) straight into JSON bytes: no tree, no
/// dictionaries, no key sorting. Properties come out in the order the type encodes them; nil
/// optionals are omitted (the models encode them with `encodeIfPresent`).
///
/// `Encoder` has no "container finished" call, so the writer keeps a stack of open containers and
/// closes the deeper ones when a shallower one is written to again, and when a value's `encode(to:)`
/// returns. Any nesting a sequential `encode(to:)` produces is written correctly that way.
/// `codingPath` stays empty: nothing here throws with a path, and building one per property cost
/// more than writing the property.
///
/// `select`, when given, keeps only those top-level properties of the root object (`$select`): a
/// property that is not kept is written and then cut off again, which is simpler than muting every
/// write beneath it and as cheap for the few properties a selection drops.
enum JSONBytesEncoder {
    static func encode<T: Encodable>(_ value: T, select: Set<String>? = nil, into out: inout [UInt8]) throws {
        // Task and job types write themselves (see DirectJSON); one cast per value written
        // at the top, never per nested value.
        if let direct = value as? any DirectJSON {
            try direct.writeJSON(into: &out, select: select)
            return
        }
        try encodeThroughEncoder(value, select: select, into: &out)
    }

    /// Every value through `Encodable`, even one that writes itself (what `DirectJSONTests` compares with).
    static func encodeThroughEncoder<T: Encodable>(_ value: T, select: Set<String>?, into out: inout [UInt8]) throws {
        let writer = Writer(bytes: out, select: select)
        out = []
        try writer.encodeValue(value, codingPath: [])
        out = writer.bytes
    }

    static func encode<T: Encodable>(_ value: T, select: Set<String>? = nil) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        try encode(value, select: select, into: &out)
        return out
    }

    final class Writer {
        var bytes: [UInt8]
        let select: Set<String>?
        /// Open containers, outermost first: whether each is an object, and how many members it has.
        var open: [(isObject: Bool, count: Int)] = []

        init(bytes: [UInt8], select: Set<String>?) {
            self.bytes = bytes
            self.select = select
        }

        /// Closes every container deeper than `depth` (the number of containers that stay open).
        func close(to depth: Int) {
            while open.count > depth {
                let container = open.removeLast()
                bytes.append(container.isObject ? UInt8(ascii: "}") : UInt8(ascii: "]"))
            }
        }

        func begin(object: Bool) -> Int {
            bytes.append(object ? UInt8(ascii: "{") : UInt8(ascii: "["))
            open.append((object, 0))
            return open.count
        }

        /// Starts a member of the container at `depth`: closes what was nested in it, writes the comma.
        func member(of depth: Int) {
            close(to: depth)
            if open[depth - 1].count > 0 { bytes.append(UInt8(ascii: ",")) }
            open[depth - 1].count += 1
        }

        func key(_ key: String, in depth: Int) {
            member(of: depth)
            writeString(key)
            bytes.append(UInt8(ascii: ":"))
        }

        /// Encodes a whole value at the current position and closes what it opened.
        ///
        /// The special types are told apart by comparing metatypes, not by `as` casts: this function
        /// runs unspecialized for every nested value, and a failed dynamic cast per candidate type was
        /// a visible share of rendering a task page.
        func encodeValue<T: Encodable>(_ value: T, codingPath: [any CodingKey]) throws {
            let depth = open.count
            if T.self == String.self {
                writeString(unsafeBitCast(value, to: String.self))
            } else if T.self == Bool.self {
                writeBool(unsafeBitCast(value, to: Bool.self))
            } else if T.self == Int.self {
                writeInteger(unsafeBitCast(value, to: Int.self))
            } else if T.self == Double.self {
                writeDouble(unsafeBitCast(value, to: Double.self))
            } else if T.self == OpaqueJSON.self {
                writeOpaque(value as! OpaqueJSON)
            } else {
                try value.encode(to: ByteEncoder(writer: self, depth: depth, codingPath: codingPath))
            }
            close(to: depth)
        }

        func writeNull() { bytes += [0x6E, 0x75, 0x6C, 0x6C] }
        func writeBool(_ flag: Bool) { JSONBytesEncoder.writeBool(flag, into: &bytes) }
        func writeInteger<I: BinaryInteger>(_ number: I) {
            // Digits written straight into the buffer: `String(number)` allocated a string per number.
            if let small = Int64(exactly: number) {
                JSONBytesEncoder.writeDecimal(small, into: &bytes)
            } else {
                bytes += String(number).utf8
            }
        }

        /// Whole numbers as integers (counts, exit codes), anything else as Swift prints a Double,
        /// as the `JSONValue` serializer does.
        func writeDouble(_ number: Double) {
            if number == number.rounded(), abs(number) < 1e15 {
                writeInteger(Int64(number))
            } else {
                bytes += "\(number)".utf8
            }
        }

        func writeString(_ text: String) { JSONBytesEncoder.writeString(text, into: &bytes) }

        /// Stored JSON with its object keys sorted, so the same value always gives the same bytes.
        func writeOpaque(_ json: OpaqueJSON) {
            switch json {
            case .null: writeNull()
            case .bool(let flag): writeBool(flag)
            case .number(let number): writeDouble(number)
            case .string(let text): writeString(text)
            case .array(let items):
                bytes.append(UInt8(ascii: "["))
                for (index, item) in items.enumerated() {
                    if index > 0 { bytes.append(UInt8(ascii: ",")) }
                    writeOpaque(item)
                }
                bytes.append(UInt8(ascii: "]"))
            case .object(let members):
                bytes.append(UInt8(ascii: "{"))
                for (index, key) in members.keys.sorted().enumerated() {
                    if index > 0 { bytes.append(UInt8(ascii: ",")) }
                    writeString(key)
                    bytes.append(UInt8(ascii: ":"))
                    if let member = members[key] { writeOpaque(member) }
                }
                bytes.append(UInt8(ascii: "}"))
            }
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// `true` or `false`.
    static func writeBool(_ flag: Bool, into out: inout [UInt8]) {
        out += flag ? [0x74, 0x72, 0x75, 0x65] : [0x66, 0x61, 0x6C, 0x73, 0x65]
    }

    /// `number` in decimal, as `String(number)` writes it.
    static func writeDecimal(_ number: Int64, into out: inout [UInt8]) {
        var magnitude = number.magnitude
        if number < 0 { out.append(UInt8(ascii: "-")) }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[23 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            out.append(contentsOf: buffer[(24 - count)...])
        }
    }

    /// A JSON string: quotes, backslashes and control characters escaped, everything else as UTF-8.
    static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            var start = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
                start = index + 1
                switch byte {
                case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
                case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
                case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
                case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
                default:
                    out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]]
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<utf8.count]))
        }
        out.append(UInt8(ascii: "\""))
    }

    /// The encoder a value's `encode(to:)` sees; `depth` is the number of containers open around it.
    struct ByteEncoder: Encoder {
        let writer: Writer
        let depth: Int
        var codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            // A value asks once; asking again (a superclass, say) writes into the same object.
            if writer.open.count > depth, writer.open[depth].isObject {
                return KeyedEncodingContainer(Keyed<Key>(writer: writer, depth: depth + 1, codingPath: codingPath))
            }
            return KeyedEncodingContainer(Keyed<Key>(writer: writer, depth: writer.begin(object: true), codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if writer.open.count > depth, !writer.open[depth].isObject {
                return Unkeyed(writer: writer, depth: depth + 1, codingPath: codingPath)
            }
            return Unkeyed(writer: writer, depth: writer.begin(object: false), codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer {
            Single(writer: writer, codingPath: codingPath)
        }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let writer: Writer
        /// This object's place in `writer.open` (1-based).
        let depth: Int
        var codingPath: [any CodingKey]

        /// Writes one property; at the root, drops it again when `$select` does not name it.
        private func property(_ key: Key, _ write: () throws -> Void) rethrows {
            let name = key.stringValue
            guard depth == 1, let select = writer.select, !select.contains(name) else {
                writer.key(name, in: depth)
                try write()
                return
            }
            writer.close(to: depth)
            let mark = writer.bytes.count
            let count = writer.open[depth - 1].count
            writer.key(name, in: depth)
            try write()
            writer.close(to: depth)
            writer.bytes.removeSubrange(mark...)
            writer.open[depth - 1].count = count
        }

        mutating func encodeNil(forKey key: Key) throws { property(key) { writer.writeNull() } }
        mutating func encode(_ value: Bool, forKey key: Key) throws { property(key) { writer.writeBool(value) } }
        mutating func encode(_ value: String, forKey key: Key) throws { property(key) { writer.writeString(value) } }
        mutating func encode(_ value: Double, forKey key: Key) throws { property(key) { writer.writeDouble(value) } }
        mutating func encode(_ value: Float, forKey key: Key) throws { property(key) { writer.writeDouble(Double(value)) } }
        mutating func encode(_ value: Int, forKey key: Key) throws { property(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: Int8, forKey key: Key) throws { property(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: Int16, forKey key: Key) throws { property(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: Int32, forKey key: Key) throws { property(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: Int64, forKey key: Key) throws { property(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt, forKey key: Key) throws { property(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { property(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { property(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { property(key) { writer.writeInteger(value) } }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { property(key) { writer.writeInteger(value) } }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try property(key) { try writer.encodeValue(value, codingPath: codingPath) }
        }

        // The models write every optional with `encodeIfPresent`. Without these, each call went through
        // the protocol's generic default (`encode<T>` for a String? too); these write directly.
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Float?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            if let value { try encode(value, forKey: key) }
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            writer.key(key.stringValue, in: depth)
            return KeyedEncodingContainer(Keyed<NestedKey>(writer: writer, depth: writer.begin(object: true), codingPath: codingPath))
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            writer.key(key.stringValue, in: depth)
            return Unkeyed(writer: writer, depth: writer.begin(object: false), codingPath: codingPath)
        }

        mutating func superEncoder() -> any Encoder { superEncoder(forKey: Key(stringValue: "super")!) }

        mutating func superEncoder(forKey key: Key) -> any Encoder {
            writer.key(key.stringValue, in: depth)
            return ByteEncoder(writer: writer, depth: depth, codingPath: codingPath)
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let writer: Writer
        let depth: Int
        var codingPath: [any CodingKey]
        var count: Int { writer.open.count >= depth ? writer.open[depth - 1].count : 0 }

        private func element(_ write: () throws -> Void) rethrows {
            writer.member(of: depth)
            try write()
        }

        mutating func encodeNil() throws { element { writer.writeNull() } }
        mutating func encode(_ value: Bool) throws { element { writer.writeBool(value) } }
        mutating func encode(_ value: String) throws { element { writer.writeString(value) } }
        mutating func encode(_ value: Double) throws { element { writer.writeDouble(value) } }
        mutating func encode(_ value: Int) throws { element { writer.writeInteger(value) } }
        mutating func encode(_ value: Int64) throws { element { writer.writeInteger(value) } }
        mutating func encode<T: Encodable>(_ value: T) throws {
            try element { try writer.encodeValue(value, codingPath: codingPath) }
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            writer.member(of: depth)
            return KeyedEncodingContainer(Keyed<NestedKey>(writer: writer, depth: writer.begin(object: true), codingPath: codingPath))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            writer.member(of: depth)
            return Unkeyed(writer: writer, depth: writer.begin(object: false), codingPath: codingPath)
        }

        mutating func superEncoder() -> any Encoder {
            writer.member(of: depth)
            return ByteEncoder(writer: writer, depth: writer.open.count, codingPath: codingPath)
        }
    }

    struct Single: SingleValueEncodingContainer {
        let writer: Writer
        var codingPath: [any CodingKey]

        mutating func encodeNil() throws { writer.writeNull() }
        mutating func encode(_ value: Bool) throws { writer.writeBool(value) }
        mutating func encode(_ value: String) throws { writer.writeString(value) }
        mutating func encode(_ value: Double) throws { writer.writeDouble(value) }
        mutating func encode(_ value: Float) throws { writer.writeDouble(Double(value)) }
        mutating func encode(_ value: Int) throws { writer.writeInteger(value) }
        mutating func encode(_ value: Int8) throws { writer.writeInteger(value) }
        mutating func encode(_ value: Int16) throws { writer.writeInteger(value) }
        mutating func encode(_ value: Int32) throws { writer.writeInteger(value) }
        mutating func encode(_ value: Int64) throws { writer.writeInteger(value) }
        mutating func encode(_ value: UInt) throws { writer.writeInteger(value) }
        mutating func encode(_ value: UInt8) throws { writer.writeInteger(value) }
        mutating func encode(_ value: UInt16) throws { writer.writeInteger(value) }
        mutating func encode(_ value: UInt32) throws { writer.writeInteger(value) }
        mutating func encode(_ value: UInt64) throws { writer.writeInteger(value) }
        mutating func encode<T: Encodable>(_ value: T) throws { try writer.encodeValue(value, codingPath: codingPath) }
    }
}
