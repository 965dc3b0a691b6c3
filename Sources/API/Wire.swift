import Bookend
import Foundation
import Glibc

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

    // Every signed request has its date parsed and every entity answer formats a Last-Modified, so
    // the canonical RFC 1123 form is read and written by hand: DateFormatter (ICU) behind one lock was
    // a per-request cost that every request thread queued for. Anything but the canonical form is
    // still left to DateFormatter, so what is accepted has not changed.
    private static let rfc1123: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter
    }()
    private static let lock = NSLock()

    private static let dayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].map { Array($0.utf8) }
    private static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].map { Array($0.utf8) }

    static func httpDate(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        // gmtime_r covers years 0–9999 here; a date outside them is left to DateFormatter.
        guard seconds.isFinite, seconds >= -62_167_219_200, seconds < 253_402_300_800 else {
            lock.lock()
            defer { lock.unlock() }
            return rfc1123.string(from: date)
        }
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        var out: [UInt8] = []
        out.reserveCapacity(29)
        out += dayNames[Int(parts.tm_wday)]
        out += ", ".utf8
        appendDigits(Int(parts.tm_mday), 2, &out)
        out.append(UInt8(ascii: " "))
        out += monthNames[Int(parts.tm_mon)]
        out.append(UInt8(ascii: " "))
        appendDigits(Int(parts.tm_year) + 1900, 4, &out)
        out.append(UInt8(ascii: " "))
        appendDigits(Int(parts.tm_hour), 2, &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(Int(parts.tm_min), 2, &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(Int(parts.tm_sec), 2, &out)
        out += " GMT".utf8
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendDigits(_ value: Int, _ width: Int, _ out: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            out.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
            rest %= divisor
            divisor /= 10
        }
    }

    /// RFC 1123 from a stored ISO 8601 timestamp.
    static func httpDate(iso: String) -> String {
        httpDate(Timestamp.date(iso) ?? Date())
    }

    /// Parses RFC 1123 (`Fri, 17 Feb 2017 00:00:00 GMT`).
    static func parseHTTPDate(_ text: String) -> Date? {
        if let date = parseCanonicalHTTPDate(text) { return date }
        lock.lock()
        defer { lock.unlock() }
        return rfc1123.date(from: text.trimmingCharacters(in: .whitespaces))
    }

    /// The canonical form only (as `httpDate` writes it and clients send it), with a weekday that
    /// matches the date; nil for anything else, which `parseHTTPDate` leaves to DateFormatter.
    static func parseCanonicalHTTPDate(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 29, bytes[3] == UInt8(ascii: ","), bytes[4] == UInt8(ascii: " "), bytes[7] == UInt8(ascii: " "),
            bytes[11] == UInt8(ascii: " "), bytes[16] == UInt8(ascii: " "), bytes[19] == UInt8(ascii: ":"),
            bytes[22] == UInt8(ascii: ":"), bytes[25...].elementsEqual(" GMT".utf8),
            let weekday = dayNames.firstIndex(where: { $0.elementsEqual(bytes[0..<3]) }),
            let month = monthNames.firstIndex(where: { $0.elementsEqual(bytes[8..<11]) })
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let day = number(5..<7), let year = number(12..<16), let hour = number(17..<19), let minute = number(20..<22),
            let second = number(23..<25), year >= 1970, (1...31).contains(day), hour < 24, minute < 60, second < 60
        else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let time = timegm(&parts)
        // timegm normalizes 31 Feb into March: a day the month does not have is not canonical.
        guard parts.tm_mday == Int32(day), parts.tm_mon == Int32(month), Int(parts.tm_wday) == weekday else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(time))
    }

    static func isoString(_ date: Date) -> String { Timestamp.string(date) }
}
