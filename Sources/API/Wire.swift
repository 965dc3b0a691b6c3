import Bookend
import Foundation

/// Turning library entities into the exact JSON the Batch clients expect.
enum Wire {
    static let jsonContentType = "application/json;odata=minimalmetadata"

    /// Serializes by hand: JSONEncoder's generic path dominated a 1000-task list page (make bench).
    /// The bytes are `JSONBytesEncoder`'s for stored JSON (sorted keys, whole numbers as integers),
    /// so a value reads the same whichever of the two wrote it.
    static func encode(_ value: JSONValue) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        let writer = JSONBytesEncoder.Writer(bytes: out, select: nil)
        writer.writeOpaque(value)
        return Data(writer.bytes)
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
