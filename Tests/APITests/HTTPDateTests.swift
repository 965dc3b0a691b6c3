@testable import API
import Foundation
import Testing

/// Request dates are parsed, and Last-Modified written, by hand in the canonical RFC 1123 form; any
/// other form is still left to DateFormatter. Both must agree with the DateFormatter they replaced.
@Suite struct HTTPDateTests {
    static let formatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter
    }()

    @Test(arguments: [0, 951_782_400, 1_487_289_600, 1_709_251_199.999, 1_764_460_800.5, 4_102_444_799, 253_402_300_799])
    func writtenAsDateFormatterWritesIt(_ seconds: Double) {
        let date = Date(timeIntervalSince1970: seconds)
        #expect(Wire.httpDate(date) == Self.formatter.string(from: date))
        // And read back by hand, to the second.
        #expect(Wire.parseCanonicalHTTPDate(Wire.httpDate(date)) == Date(timeIntervalSince1970: seconds.rounded(.down)))
    }

    @Test(arguments: [
        "Fri, 17 Feb 2017 00:00:00 GMT", "Tue, 29 Feb 2000 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 GMT", "Sun, 30 Nov 2025 09:10:11 GMT",
    ])
    func theCanonicalFormIsReadByHandAsDateFormatterReadsIt(_ text: String) throws {
        let expected = try #require(Self.formatter.date(from: text))
        #expect(Wire.parseCanonicalHTTPDate(text) == expected)
        #expect(Wire.parseHTTPDate(text) == expected)
    }

    /// Not the canonical form: the hand reader declines, and what is accepted is DateFormatter's call, as before.
    @Test(arguments: [
        "Sat, 17 Feb 2017 00:00:00 GMT", "fri, 17 Feb 2017 00:00:00 GMT", "Fri, 17 feb 2017 00:00:00 GMT", "Fri, 7 Feb 2017 00:00:00 GMT",
        "Tue, 31 Feb 2017 00:00:00 GMT", "Fri, 17 Feb 2017 24:00:00 GMT", "Fri, 17 Feb 2017 00:00:00 UTC", " Fri, 17 Feb 2017 00:00:00 GMT",
        "Fri, 17 Feb 2017 00:00:00 GMT ", "Fri 17 Feb 2017 00:00:00 GMT", "", "Fri, 17 Feb 20x7 00:00:00 GMT",
    ])
    func anythingElseIsLeftToDateFormatter(_ text: String) {
        #expect(Wire.parseCanonicalHTTPDate(text) == nil)
        #expect(Wire.parseHTTPDate(text) == Self.formatter.date(from: text.trimmingCharacters(in: .whitespaces)))
    }
}

/// Query names and values with nothing to decode skip Foundation; the answer must be what the
/// decoding it skips would have given, for plain text and for every kind of escape.
@Suite struct QueryDecodingTests {
    @Test(arguments: [
        "api-version", "2024-07-01.20.0", "", "maxresults", "1000", "a=b", "plain_text-1.2~x",
        "a+b", "%20", "a%2Bb", "%E2%82%AC", "%zz", "100%", "+", "%2", "caf%C3%A9", "ünïcode", "tab\there",
    ])
    func decodesAsFoundationDoes(_ raw: String) {
        let spaced = raw.replacingOccurrences(of: "+", with: " ")
        #expect(QueryParameters.decode(Substring(raw)) == (spaced.removingPercentEncoding ?? spaced))
    }
}
