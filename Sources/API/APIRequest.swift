import BatchModels
import Bookend
import Foundation

/// A request as the controllers see it: raw path segments, decoded query, headers, the body.
struct APIRequest: Sendable {
    let method: String
    /// The path as sent, still percent-encoded (what Shared Key signs).
    let rawPath: String
    /// Raw path segments, for the control-character check (routes read their ids from the context).
    let segments: [String]
    let query: QueryParameters
    /// Header names lowercased; the first value of each.
    let headers: [String: String]
    let body: Data
    /// `scheme://host[:port]` the client used, for URLs in bodies.
    let baseURL: String
    let requestID: String

    func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// Decodes the JSON body into a request shape, mapping decoding failures to Batch errors.
    /// `refusing`: properties the service sets, refused with 400 `UnsupportedProperty` (creates).
    func decode<T: Decodable>(_ type: T.Type, refusing readOnly: StrictJSON.ReadOnlyProperties? = nil) throws -> T {
        guard !body.isEmpty else {
            throw BookendError(.invalidRequest, "InvalidRequestBody", "The request body is missing")
        }
        // JSONDecoder checks the UTF-8 only of strings it decodes: a malformed value under a key
        // the shape ignores would otherwise be accepted, so the whole body is checked first.
        guard String(validating: body, as: UTF8.self) != nil else {
            throw BookendError(.invalidRequest, "InvalidRequestBody", "The request body is not valid UTF-8")
        }
        try StrictJSON.check(body, refusing: readOnly)
        do {
            let decoder = JSONDecoder()
            decoder.userInfo[OpaqueJSON.sourceKey] = OpaqueJSON.Source { [UInt8](body) }
            return try decoder.decode(type, from: body)
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty, let named = APIErrors.unfitNumber(in: body) {
                throw named
            }
            throw APIErrors.decoding(error)
        }
    }

    /// Decodes an optional body: nil when the body is empty (e.g. SDK14 terminate with Content-Length 0).
    func decodeOptional<T: Decodable>(_ type: T.Type) throws -> T? {
        guard !body.isEmpty, !body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else { return nil }
        return try decode(type)
    }

    /// Refuses a path whose segments hold a control character (0x00–0x1F, 0x7F), sent raw or
    /// percent-encoded: ids and file names never contain one, and a NUL would cut the path the
    /// kernel sees short of the one that was checked.
    func checkSegments() throws {
        func control(_ text: some StringProtocol) -> Unicode.Scalar? {
            text.unicodeScalars.first(where: { $0.value < 0x20 || $0.value == 0x7F })
        }
        for (index, raw) in segments.enumerated() {
            // A segment without `%` decodes to itself: one scan, not two.
            let decoded = PercentDecoding.decode(raw) ?? String(raw)
            if let bad = control(raw) ?? (decoded.utf8.elementsEqual(raw.utf8) ? nil : control(decoded)) {
                throw BookendError(.invalidRequest, "InvalidUri",
                    "The request URI is invalid: path segment \(index + 1) contains the control character 0x\(String(format: "%02X", bad.value))",
                    details: [.init(key: "Reason", value: "Control characters are not allowed in the URI path")])
            }
        }
    }

    func bool(_ name: String) throws -> Bool? {
        guard let value = query.first(name) else { return nil }
        switch value.lowercased() {
        case "true": return true
        case "false": return false
        default:
            throw APIErrors.invalidQuery(name, value, "must be true or false")
        }
    }
}

/// Query parameters, percent-decoded (`+` is a space), in the order sent.
struct QueryParameters: Sendable {
    let pairs: [(name: String, value: String)]

    init(rawQuery: String?) {
        var pairs: [(String, String)] = []
        for part in (rawQuery ?? "").split(separator: "&", omittingEmptySubsequences: true) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = QueryParameters.decode(pieces[0])
            let value = pieces.count > 1 ? QueryParameters.decode(pieces[1]) : ""
            pairs.append((name, value))
        }
        self.pairs = pairs
    }

    static func decode(_ text: Substring) -> String {
        // Most names and values (api-version, timeout, maxresults) have nothing to decode; every
        // request parses its query three times (api-version, Shared Key's two canonical forms).
        if !text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) { return String(text) }
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return PercentDecoding.decode(spaced) ?? spaced
    }

    /// First value of a parameter, name matched case-insensitively.
    func first(_ name: String) -> String? {
        let lowered = name.lowercased()
        return pairs.first { $0.name.lowercased() == lowered }?.value
    }
}

/// Percent-decoding of paths and query parts. Foundation's `removingPercentEncoding` went through
/// NSString on every request (3 % of a `GET job`'s CPU), even for the common text with no `%` at all.
enum PercentDecoding {
    /// `text` with each `%XX` replaced by its byte; nil, as Foundation answers, when a `%` is not
    /// followed by two hex digits or the bytes are not UTF-8.
    static func decode(_ text: some StringProtocol) -> String? {
        let utf8 = text.utf8
        guard utf8.contains(UInt8(ascii: "%")) else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
