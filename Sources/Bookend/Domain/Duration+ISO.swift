import Foundation

/// An ISO 8601 duration as Azure Batch writes it (`PT15M`, `P7D`, `PT1.5S`), held as milliseconds.
///
/// `nil` stands for "unlimited" everywhere in Bookend; on the wire unlimited is the .NET maximum
/// TimeSpan, `P10675199DT2H48M5.4775807S`, which is accepted on input and emitted on output.
public enum ISODuration {
    /// The wire form of "unlimited".
    public static let unlimited = "P10675199DT2H48M5.4775807S"

    /// Durations at or above this many milliseconds (10675199 days, about 29 000 years) are treated as unlimited.
    static let unlimitedThreshold: Int64 = 10_675_199 * 86_400_000

    /// The wire form of unlimited in milliseconds (the .NET maximum TimeSpan). Anything longer is no
    /// TimeSpan at all, so it is refused rather than silently read as unlimited.
    static let largestMilliseconds = 922_337_203_685_477.5807

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let text: String
        /// Well formed, but longer than the longest duration (the unlimited value).
        public var tooLong = false
        public var description: String {
            tooLong
                ? "'\(text)' is longer than the longest duration, \(ISODuration.unlimited) (unlimited)"
                : "'\(text)' is not an ISO 8601 duration such as PT15M or P7D"
        }
    }

    /// Parses `text` into milliseconds; `nil` means unlimited.
    public static func parse(_ text: String) throws(ParseError) -> Int64? {
        var rest = Substring(text.uppercased())
        guard rest.first == "P", rest.count > 1 else { throw ParseError(text: text) }
        rest = rest.dropFirst()
        var total = 0.0
        var inTime = false
        var number = ""
        var sawComponent = false
        var sawTimeComponent = false
        // Each designator at most once and in ISO order (W, D, then T, H, M, S): `PT1H1H` or `PT1S1M`
        // is a typo, not a sum.
        var lastRank = 0
        for character in rest {
            if character == "T" {
                guard !inTime, number.isEmpty else { throw ParseError(text: text) }
                inTime = true
                continue
            }
            if ("0"..."9").contains(character) || character == "." || character == "," {
                number.append(character == "," ? "." : character)
                continue
            }
            guard let value = Double(number) else { throw ParseError(text: text) }
            number = ""
            sawComponent = true
            let rank: Int
            switch (character, inTime) {
            case ("W", false): total += value * 7 * 86_400_000; rank = 1
            case ("D", false): total += value * 86_400_000; rank = 2
            case ("H", true): total += value * 3_600_000; rank = 3
            case ("M", true): total += value * 60_000; rank = 4
            case ("S", true): total += value * 1000; rank = 5
            default: throw ParseError(text: text)
            }
            guard rank > lastRank else { throw ParseError(text: text) }
            lastRank = rank
            if inTime { sawTimeComponent = true }
        }
        // A `T` says a time part follows: `P1DT` has none.
        guard number.isEmpty, sawComponent, !inTime || sawTimeComponent else { throw ParseError(text: text) }
        // Components are summed as Double, so a huge one becomes a huge or infinite total, never an
        // overflow; that total is range-checked before it becomes an integer.
        let milliseconds = total.rounded()
        guard milliseconds.isFinite, milliseconds <= largestMilliseconds.rounded(.up) else {
            throw ParseError(text: text, tooLong: true)
        }
        if milliseconds >= Double(unlimitedThreshold) { return nil }
        return Int64(milliseconds)
    }

    /// Formats milliseconds (`nil` = unlimited) the way Azure Batch returns durations.
    public static func format(_ milliseconds: Int64?) -> String {
        guard let milliseconds else { return unlimited }
        if milliseconds == 0 { return "PT0S" }
        var remaining = milliseconds
        let days = remaining / 86_400_000
        remaining %= 86_400_000
        let hours = remaining / 3_600_000
        remaining %= 3_600_000
        let minutes = remaining / 60_000
        remaining %= 60_000
        var text = "P"
        if days > 0 { text += "\(days)D" }
        if remaining > 0 || hours > 0 || minutes > 0 {
            text += "T"
            if hours > 0 { text += "\(hours)H" }
            if minutes > 0 { text += "\(minutes)M" }
            if remaining > 0 {
                let seconds = remaining / 1000
                let fraction = remaining % 1000
                text += fraction == 0 ? "\(seconds)S" : String(format: "%lld.%03lldS", seconds, fraction)
                    .replacingOccurrences(of: "0+S$", with: "S", options: .regularExpression)
            }
        }
        return text
    }
}

/// Times as Bookend stores and returns them: ISO 8601 UTC with milliseconds and a `Z`.
///
/// The stored text is compared as text in SQL (`deadline <= ?`), which orders correctly only while
/// the year has four digits. So no time after `latest` is ever written: a deadline beyond it is no
/// deadline (`deadline(after:milliseconds:)`), and any other later time (a file's modification time,
/// which a task can set) is shown as `latest`.
public enum Timestamp {
    /// 9999-12-31T23:59:59.999Z in milliseconds, the last time the fixed-width form can hold.
    static let latestMilliseconds: Int64 = 253_402_300_799_999
    /// 0000-01-01T00:00:00.000Z, the first.
    static let earliestMilliseconds: Int64 = -62_167_219_200_000
    static var latestSeconds: Double { Double(latestMilliseconds) / 1000 }

    public static func string(_ date: Date) -> String {
        // Clamped while still a Double: converting one beyond Int64 to an integer would trap.
        let exact = (date.timeIntervalSince1970 * 1000).rounded(.down)
        let clamped = exact.isNaN ? 0 : min(max(exact, Double(earliestMilliseconds)), Double(latestMilliseconds))
        let total = Int64(clamped)
        let (quotient, remainder) = total.quotientAndRemainder(dividingBy: 1000)
        var time = time_t(remainder < 0 ? quotient - 1 : quotient)
        var parts = tm()
        gmtime_r(&time, &parts)
        let milliseconds = Int(remainder < 0 ? remainder + 1000 : remainder)
        // Digits written into a fixed buffer: `String(format:)` went through Foundation's formatter
        // on every call, and every scheduler pass step and every state change formats the time (in a
        // profile of task ingest it was about a tenth of the engine thread). Same text as
        // "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ"; the year is 0...9999 after the clamp above.
        let fields: [(value: Int, width: Int, after: UInt8)] = [
            (Int(parts.tm_year) + 1900, 4, UInt8(ascii: "-")), (Int(parts.tm_mon) + 1, 2, UInt8(ascii: "-")),
            (Int(parts.tm_mday), 2, UInt8(ascii: "T")), (Int(parts.tm_hour), 2, UInt8(ascii: ":")),
            (Int(parts.tm_min), 2, UInt8(ascii: ":")), (Int(parts.tm_sec), 2, UInt8(ascii: ".")),
            (milliseconds, 3, UInt8(ascii: "Z")),
        ]
        return String(unsafeUninitializedCapacity: 24) { buffer in
            var at = 0
            for field in fields {
                var value = field.value
                for position in stride(from: at + field.width - 1, through: at, by: -1) {
                    buffer[position] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
                at += field.width
                buffer[at] = field.after
                at += 1
            }
            return at
        }
    }

    /// The stored form of `start` plus `milliseconds`, or nil (no deadline) when that is past `latest`:
    /// a limit that far away can never be reached, and written as text it would sort before today.
    public static func deadline(after start: Date, milliseconds: Int64) -> String? {
        let seconds = start.timeIntervalSince1970 + Double(milliseconds) / 1000
        guard seconds <= latestSeconds else { return nil }
        return string(Date(timeIntervalSince1970: seconds))
    }

    /// Parses the stored form (and any ISO 8601 UTC time with up to 7 fractional digits).
    public static func date(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20 else { return nil }
        func number(_ from: Int, _ count: Int) -> Int? {
            var value = 0
            for index in from..<(from + count) {
                let byte = bytes[index]
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
            let minute = number(14, 2), let second = number(17, 2)
        else { return nil }
        // A calendar date and a time of day as written, not ones `timegm` would carry over
        // (`2020-02-30T25:00:00Z` is no time at all, not 2 March at 01:00).
        let separators: [(Int, UInt8)] = [(4, UInt8(ascii: "-")), (7, UInt8(ascii: "-")), (13, UInt8(ascii: ":")), (16, UInt8(ascii: ":"))]
        guard separators.allSatisfy({ bytes[$0.0] == $0.1 }), bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"),
            (1...12).contains(month), hour <= 23, minute <= 59, second <= 59
        else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else { return nil }
        var fraction = 0.0
        var index = 19
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            let first = index
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                fraction += Double(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > first else { return nil }
        }
        // Then `Z`, or an offset `±HH:MM` from UTC, and nothing else.
        var offset = 0
        guard index < bytes.count else { return nil }
        if bytes[index] == UInt8(ascii: "Z") || bytes[index] == UInt8(ascii: "z") {
            index += 1
        } else if bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-"), index + 6 == bytes.count,
            bytes[index + 3] == UInt8(ascii: ":"), let hours = number(index + 1, 2), let minutes = number(index + 4, 2), hours <= 23, minutes <= 59 {
            offset = (hours * 3600 + minutes * 60) * (bytes[index] == UInt8(ascii: "+") ? 1 : -1)
            index += 6
        }
        guard index == bytes.count else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts) - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }
}
