import Bookend
import Foundation

/// Turning library entities into the exact JSON the Batch clients expect.
enum Wire {
    static let jsonContentType = "application/json;odata=minimalmetadata"

    /// Serializes by hand: JSONEncoder's generic path dominated a 1000-task list page (make bench).
    static func encode(_ value: JSONValue) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        write(value, into: &out)
        return Data(out)
    }

    private static func write(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null: out += Array("null".utf8)
        case .bool(let flag): out += Array((flag ? "true" : "false").utf8)
        case .number(let number):
            // Integers as integers (counts, exit codes); anything else as Swift prints a Double.
            let text = number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : "\(number)"
            out += Array(text.utf8)
        case .string(let text): writeString(text, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            // Sorted keys: the same object always serializes to the same bytes.
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(members[key]!, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// The entity as a JSON object (absent optionals omitted, as the Codable shapes do).
    static func object<T: Encodable>(_ value: T) throws -> [String: JSONValue] {
        guard case .object(let object) = try ValueEncoder.encode(value) else {
            throw BookendError(.internalError, "InternalError", "An entity did not encode as an object")
        }
        return object
    }

    static func metadata(_ base: String, _ fragment: String) -> JSONValue {
        .string(metadataURL(base, fragment))
    }

    static func metadataURL(_ base: String, _ fragment: String) -> String { "\(base)/$metadata#\(fragment)" }

    /// Path segment escaping for ids in URLs we emit.
    static func escape(_ segment: String) -> String {
        // Ids are letters, digits, '-' and '_' (validated on the way in): nothing to escape, and
        // checking is far cheaper than percent-encoding, which a list page does per entity.
        if segment.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }) {
            return segment
        }
        return segment.addingPercentEncoding(withAllowedCharacters: segmentAllowed) ?? segment
    }

    private static let segmentAllowed: CharacterSet = {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#")
        return allowed
    }()

    static func poolURL(_ base: String, _ poolID: String) -> String { "\(base)/pools/\(escape(poolID))" }
    static func nodeURL(_ base: String, _ poolID: String, _ nodeID: String) -> String {
        "\(poolURL(base, poolID))/nodes/\(escape(nodeID))"
    }
    static func jobURL(_ base: String, _ jobID: String) -> String { "\(base)/jobs/\(escape(jobID))" }
    static func taskURL(_ base: String, _ jobID: String, _ taskID: String) -> String {
        "\(jobURL(base, jobID))/tasks/\(escape(taskID))"
    }

    // MARK: Dates

    private static let rfc1123: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter
    }()
    private static let lock = NSLock()

    static func httpDate(_ date: Date) -> String {
        lock.lock()
        defer { lock.unlock() }
        return rfc1123.string(from: date)
    }

    /// RFC 1123 from a stored ISO 8601 timestamp.
    static func httpDate(iso: String) -> String {
        httpDate(Timestamp.date(iso) ?? Date())
    }

    /// Parses RFC 1123 (`Fri, 17 Feb 2017 00:00:00 GMT`).
    static func parseHTTPDate(_ text: String) -> Date? {
        lock.lock()
        defer { lock.unlock() }
        return rfc1123.date(from: text.trimmingCharacters(in: .whitespaces))
    }

    static func isoString(_ date: Date) -> String { Timestamp.string(date) }
}
