import Bookend
import Foundation

/// RFC 8259, checked over the bytes before any decoder sees them: Foundation's decoders accept some
/// text the RFC does not (and what they accept differs between platforms and releases), and a client
/// should learn that its body is malformed rather than have it read one way here and another way on
/// Azure. Rejects trailing commas, comments, `NaN`/`Infinity`, leading zeros, `+` signs, single quotes,
/// raw control characters in strings, bad escapes, text after the value, and a key repeated in one
/// object (compared as sent: `"a"` and `"\u0061"` are not recognised as the same key).
///
/// Iterative, with its own stack of open containers: nesting as deep as a 1 MiB body allows cannot
/// exhaust the thread's stack, and an open container costs a few bytes (no set per object), so a
/// hostile body of 100 000 nested objects stays cheap. Expects valid UTF-8 (checked before).
enum StrictJSON {
    static func check(_ body: Data, refusing readOnly: ReadOnlyProperties? = nil) throws {
        try body.withUnsafeBytes { raw in
            var parser = Parser(bytes: Array(raw.bindMemory(to: UInt8.self)))
            if let readOnly {
                parser.refused = Set(readOnly.names.map { ArraySlice(Array($0.utf8)) })
                parser.refusedDepth = readOnly.depth
            }
            try parser.document()
        }
    }

    /// Properties the service sets that a create must not send (spec §6.6: 400 `UnsupportedProperty`),
    /// and the depth of the objects they are refused in: 1 for the body itself, 3 for each task of
    /// `{"value": [ {…}, … ]}`. Checked in the same pass over the bytes as the syntax.
    struct ReadOnlyProperties: Sendable {
        var names: Set<String>
        var depth: Int

        private static let common: Set<String> = ["url", "eTag", "lastModified", "creationTime", "state", "stateTransitionTime", "stats"]
        static let pool = ReadOnlyProperties(names: common.union(["allocationState", "allocationStateTransitionTime", "currentDedicatedNodes",
            "currentLowPriorityNodes", "resizeErrors", "autoScaleRun", "currentNodeCommunicationMode"]), depth: 1)
        static let job = ReadOnlyProperties(names: common.union(["previousState", "previousStateTransitionTime", "executionInfo"]), depth: 1)
        static let task = ReadOnlyProperties(names: common.union(["previousState", "previousStateTransitionTime", "executionInfo", "nodeInfo"]), depth: 1)
        static let tasksOfACollection = ReadOnlyProperties(names: task.names, depth: 3)
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0
        /// The open containers, innermost last. A fresh container has no member yet, so it may close
        /// at once but takes no comma. An object's keys are `keys[firstKey...]`.
        var open: [(isObject: Bool, isFresh: Bool, firstKey: Int)] = []
        /// The keys of every open object, outermost first: an object's own keys are contiguous,
        /// since its nested objects close (and drop theirs) before its next key.
        var keys: [ArraySlice<UInt8>] = []
        /// Objects with many keys (by depth) also keep them in a set, so a wide object is not checked
        /// key by key against all before it.
        var wide: [Int: Set<ArraySlice<UInt8>>] = [:]
        static let linearKeys = 16
        /// Keys refused in the objects `refusedDepth` deep (see `ReadOnlyProperties`).
        var refused: Set<ArraySlice<UInt8>> = []
        var refusedDepth = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func failure(_ why: String) -> BookendError {
            BookendError(.invalidRequest, "InvalidRequestBody", "The request body is not valid JSON: \(why) at byte \(index)",
                details: [.init(key: "Reason", value: why), .init(key: "Offset", value: String(index))])
        }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        mutating func document() throws {
            try value()
            while let container = open.last {
                skipSpace()
                let closing = container.isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                guard let byte = current else { throw failure("the body ends inside an \(container.isObject ? "object" : "array")") }
                if container.isFresh {
                    open[open.count - 1].isFresh = false
                    if byte == closing {
                        index += 1
                        close()
                    } else if container.isObject {
                        try member()
                    } else {
                        try value()
                    }
                } else if byte == UInt8(ascii: ",") {
                    index += 1
                    skipSpace()
                    if current == closing { throw failure("a trailing comma") }
                    if container.isObject { try member() } else { try value() }
                } else if byte == closing {
                    index += 1
                    close()
                } else if byte == UInt8(ascii: "/") {
                    throw failure("a comment")
                } else {
                    throw failure(container.isObject ? "expected ',' or '}'" : "expected ',' or ']'")
                }
            }
            skipSpace()
            guard index == bytes.count else { throw failure("text after the JSON value") }
        }

        mutating func close() {
            if let container = open.popLast(), container.isObject {
                keys.removeSubrange(container.firstKey...)
                wide[open.count] = nil
            }
        }

        /// One member of the innermost object: a key not seen in it before, ':', and the value.
        mutating func member() throws {
            guard current == UInt8(ascii: "\"") else { throw failure("expected a property name in double quotes") }
            let start = index
            try string()
            var key = bytes[(start + 1)..<(index - 1)]
            // A key written with escapes (`"\u0069d"`) is the same key as `"id"`: compared decoded,
            // or a second `id` slipped past the check (and the first value won).
            if key.contains(UInt8(ascii: "\\")),
               let decoded = try? JSONSerialization.jsonObject(with: Data(bytes[start..<index]), options: .fragmentsAllowed) as? String {
                key = ArraySlice(Array(decoded.utf8))
            }
            if open.count == refusedDepth, refused.contains(key) {
                let name = String(decoding: key, as: UTF8.self)
                throw BookendError(.invalidRequest, "UnsupportedProperty", "The property \(name) is set by the service and cannot be sent on create",
                    details: [.init(key: "PropertyName", value: name)])
            }
            let depth = open.count - 1
            let first = open[depth].firstKey
            // By index, not through a slice of `keys`: a live slice would make the append below
            // copy the whole array, once per key.
            var repeated = false
            if keys.count - first < Parser.linearKeys {
                for position in first..<keys.count where keys[position] == key { repeated = true }
            } else {
                if wide[depth] == nil { wide[depth] = Set(keys[first..<keys.count]) }
                repeated = wide[depth]?.insert(key).inserted == false
            }
            keys.append(key)
            guard !repeated else {
                let name = String(decoding: key, as: UTF8.self)
                throw BookendError(.invalidRequest, "InvalidRequestBody", "The request body is not valid JSON: the property \(name) appears twice in one object",
                    details: [.init(key: "PropertyName", value: name)])
            }
            skipSpace()
            guard current == UInt8(ascii: ":") else { throw failure("expected ':' after a property name") }
            index += 1
            try value()
        }

        /// A scalar, or the opening of a container (pushed on `open`, read and closed by `document`).
        mutating func value() throws {
            skipSpace()
            guard let byte = current else { throw failure("expected a value") }
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                // Only opened here; `document` reads the members, so nesting never recurses.
                index += 1
                open.append((byte == UInt8(ascii: "{"), true, keys.count))
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "/"): throw failure("a comment")
            case UInt8(ascii: "'"): throw failure("a single-quoted string")
            default: throw failure("expected a value")
            }
        }

        mutating func literal(_ word: String) throws {
            let expected = Array(word.utf8)
            guard index + expected.count <= bytes.count, Array(bytes[index..<(index + expected.count)]) == expected else {
                throw failure("expected a value")
            }
            index += expected.count
        }

        mutating func string() throws {
            index += 1
            while let byte = current {
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return
                case UInt8(ascii: "\\"):
                    index += 1
                    guard let escaped = current else { throw failure("the body ends inside a string") }
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        index += 1
                    case UInt8(ascii: "u"):
                        index += 1
                        for _ in 0..<4 {
                            guard let digit = current, isHex(digit) else { throw failure("\\u needs four hexadecimal digits") }
                            index += 1
                        }
                    default:
                        throw failure("an invalid escape in a string")
                    }
                case 0..<0x20:
                    throw failure("a control character in a string")
                default:
                    index += 1
                }
            }
            throw failure("the body ends inside a string")
        }

        func isHex(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
        }

        func isDigit(_ byte: UInt8?) -> Bool {
            byte.map { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? false
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        mutating func number() throws {
            if current == UInt8(ascii: "-") { index += 1 }
            if current == UInt8(ascii: "0") {
                index += 1
                if isDigit(current) { throw failure("a number with a leading zero") }
            } else {
                guard isDigit(current) else { throw failure("a number without digits") }
                while isDigit(current) { index += 1 }
            }
            if current == UInt8(ascii: ".") {
                index += 1
                guard isDigit(current) else { throw failure("a number without digits after '.'") }
                while isDigit(current) { index += 1 }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                index += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
                guard isDigit(current) else { throw failure("a number without digits in its exponent") }
                while isDigit(current) { index += 1 }
            }
        }
    }
}
