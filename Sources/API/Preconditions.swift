import Bookend
import Foundation

/// `If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since` (§6.1).
enum Preconditions {
    private static func tags(_ header: String) -> [String] {
        header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
    }

    private static func date(_ request: APIRequest, _ name: String) throws -> Date? {
        guard let text = request.header(name) else { return nil }
        guard let date = Wire.parseHTTPDate(text) else {
            throw BookendError(.invalidRequest, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.",
                details: [.init(key: "HeaderName", value: name), .init(key: "HeaderValue", value: text)])
        }
        return date
    }

    /// Whole seconds, as HTTP dates carry.
    private static func seconds(_ iso: String) -> TimeInterval {
        (Timestamp.date(iso)?.timeIntervalSince1970 ?? 0).rounded(.down)
    }

    /// Whether the request carries any condition.
    static func present(_ request: APIRequest) -> Bool {
        ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since"].contains { request.header($0) != nil }
    }

    /// 400 `MultipleConditionHeadersNotSupported` for `If-Match` with `If-None-Match`.
    private static func refuseConflicting(_ request: APIRequest) throws {
        if request.header("if-match") != nil, request.header("if-none-match") != nil { throw APIErrors.multipleConditionHeaders }
    }

    /// Writes: throws 412 `ConditionNotMet` when a condition fails.
    static func checkWrite(_ request: APIRequest, eTag: String, lastModified: String) throws {
        try refuseConflicting(request)
        if let match = request.header("if-match"), !tags(match).contains(where: { $0 == "*" || $0 == eTag }) {
            throw APIErrors.conditionNotMet
        }
        if let noneMatch = request.header("if-none-match"), tags(noneMatch).contains(where: { $0 == "*" || $0 == eTag }) {
            throw APIErrors.conditionNotMet
        }
        if let since = try date(request, "if-modified-since"), seconds(lastModified) <= since.timeIntervalSince1970 {
            throw APIErrors.conditionNotMet
        }
        if let since = try date(request, "if-unmodified-since"), seconds(lastModified) > since.timeIntervalSince1970 {
            throw APIErrors.conditionNotMet
        }
    }

    /// Reads: true when the client's copy is current (answer 304); If-Match failures are 412.
    static func notModified(_ request: APIRequest, eTag: String, lastModified: String) throws -> Bool {
        try refuseConflicting(request)
        if let match = request.header("if-match"), !tags(match).contains(where: { $0 == "*" || $0 == eTag }) {
            throw APIErrors.conditionNotMet
        }
        if let since = try date(request, "if-unmodified-since"), seconds(lastModified) > since.timeIntervalSince1970 {
            throw APIErrors.conditionNotMet
        }
        if let noneMatch = request.header("if-none-match") {
            return tags(noneMatch).contains { $0 == "*" || $0 == eTag }
        }
        if let since = try date(request, "if-modified-since") { return seconds(lastModified) <= since.timeIntervalSince1970 }
        return false
    }
}
