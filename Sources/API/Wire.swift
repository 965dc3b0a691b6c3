import Bookend
import Foundation

/// Turning library entities into the exact JSON the Batch clients expect.
enum Wire {
    static let jsonContentType = "application/json;odata=minimalmetadata"

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    static func encode(_ value: JSONValue) -> Data {
        (try? encoder.encode(value)) ?? Data("{}".utf8)
    }

    /// The entity as a JSON object (absent optionals omitted, as the Codable shapes do).
    static func object<T: Encodable>(_ value: T) throws -> [String: JSONValue] {
        let data = try encoder.encode(value)
        guard case .object(let object) = try JSONDecoder().decode(JSONValue.self, from: data) else {
            throw BookendError(.internalError, "InternalError", "An entity did not encode as an object")
        }
        return object
    }

    static func metadata(_ base: String, _ fragment: String) -> JSONValue {
        .string("\(base)/$metadata#\(fragment)")
    }

    /// Path segment escaping for ids in URLs we emit.
    static func escape(_ segment: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#")
        return segment.addingPercentEncoding(withAllowedCharacters: allowed) ?? segment
    }

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
