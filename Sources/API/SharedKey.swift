import Bookend
import Crypto
import Foundation

/// Verifies `Authorization: SharedKey <account>:<signature>` (§7). Clients canonicalize the query and
/// an empty body's Content-Length differently, so the four strings-to-sign of §7.2 are tried (and, only
/// when a client sends both `Date` and `ocp-date`, each with and without the Date line); any match passes.
struct SharedKeyVerifier: Sendable {
    let accountName: String
    /// Kept as bytes (SymmetricKey is not Sendable); a key is made per verification.
    let keyBytes: Data
    /// Allowed distance between the request's `ocp-date`/`Date` and the server clock.
    var maxSkew: TimeInterval = 15 * 60

    init(accountName: String, keyBytes: Data) {
        self.accountName = accountName
        self.keyBytes = keyBytes
    }

    static let signedHeaders = [
        "content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
        "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range",
    ]

    /// Throws 403 `AuthenticationFailed` (with an `AuthenticationErrorDetail` that never reveals the
    /// expected signature) unless the request is signed with the account key.
    func verify(method: String, rawPath: String, rawQuery: String?, headers: [String: String], now: Date = Date()) throws {
        guard let authorization = headers["authorization"], !authorization.isEmpty else {
            throw APIErrors.authentication("The Authorization header is missing.")
        }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0] == "SharedKey" else {
            throw APIErrors.authentication("The Authorization header must use the SharedKey scheme.")
        }
        guard let colon = parts[1].lastIndex(of: ":") else {
            throw APIErrors.authentication("The Authorization header is not of the form SharedKey account:signature.")
        }
        let account = String(parts[1][..<colon])
        // Trimmed by hand: Foundation's trimmingCharacters went through NSString on every request.
        let presented = String(parts[1][parts[1].index(after: colon)...].trimmingSpacesAndTabs())
        guard account == accountName else {
            throw APIErrors.authentication("The account name in the Authorization header is not this account.")
        }
        let ocpDate = headers["ocp-date"].flatMap { $0.isEmpty ? nil : $0 }
        guard let dateText = ocpDate ?? headers["date"] else {
            throw APIErrors.authentication("The request has neither an ocp-date nor a Date header.")
        }
        guard let date = Wire.parseHTTPDate(dateText) else {
            throw APIErrors.authentication("The ocp-date header is not an RFC 1123 date.")
        }
        guard abs(date.timeIntervalSince(now)) <= maxSkew else {
            throw APIErrors.authentication("The request time is skewed by more than 15 minutes from the server time.")
        }
        guard let presentedBytes = Data(base64Encoded: presented), presentedBytes.count == 32 else {
            throw APIErrors.authentication("The signature is not a base64 HMAC-SHA256 value.")
        }
        let key = SymmetricKey(data: keyBytes)
        // Candidates are tried in order of how often clients sign that way, and the first match ends
        // the search: each comparison is constant-time, and which candidate matched depends only on
        // the request, which the signer already knows, so stopping early tells nobody anything about
        // the key. A request that matches none costs every candidate, as before.
        var matched = false
        forEachStringToSign(method: method, rawPath: rawPath, rawQuery: rawQuery, headers: headers) { candidate in
            let mac = Data(HMAC<SHA256>.authenticationCode(for: Data(candidate.utf8), using: key))
            matched = SharedKeyVerifier.constantTimeEqual(mac, presentedBytes)
            return matched
        }
        guard matched else {
            throw APIErrors.authentication("The MAC signature found in the HTTP request is not the same as any computed signature.")
        }
    }

    static func constantTimeEqual(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    /// Calls `body` with each distinct string-to-sign over {python, doc} query styles × {as sent,
    /// empty-when-zero} lengths × the Date lines, the common forms first (the length and Date as
    /// sent, the SDKs' query form), until it answers true.
    func forEachStringToSign(method: String, rawPath: String, rawQuery: String?, headers: [String: String], _ body: (String) -> Bool) {
        let length = headers["content-length"] ?? ""
        let lengths = length == "0" ? [length, ""] : [length]
        let pairs = QueryParameters(rawQuery: rawQuery).pairs.map { ($0.name, $0.value) }
        let python = SharedKeyVerifier.pythonQuery(pairs)
        let doc = SharedKeyVerifier.docQuery(pairs)
        let queries = python == doc ? [python] : [python, doc]
        var ocp = headers.filter { $0.key.hasPrefix("ocp-") && !$0.value.isEmpty }.map { ($0.key, $0.value) }
        ocp.sort { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
        let canonicalHeaders = ocp.map { "\($0.0):\($0.1)\n" }.joined()
        // The docs leave the Date line empty when ocp-date is sent; the Python SDKs sign whatever Date they send.
        let date = headers["date"] ?? ""
        let otherDate = (headers["ocp-date"] ?? "").isEmpty ? date : ""
        let dates = otherDate == date ? [date] : [date, otherDate]
        for contentLength in lengths {
            for dateLine in dates {
                var lines = [method.uppercased()]
                for name in SharedKeyVerifier.signedHeaders {
                    switch name {
                    case "content-length": lines.append(contentLength)
                    case "date": lines.append(dateLine)
                    default: lines.append(headers[name] ?? "")
                    }
                }
                let head = lines.joined(separator: "\n") + "\n" + canonicalHeaders + "/" + accountName + rawPath
                for query in queries where body(head + query) { return }
            }
        }
    }

    /// Python SDK14/SDK15: names as sent, sorted; first value only; empty values skipped.
    static func pythonQuery(_ pairs: [(String, String)]) -> String {
        var firsts: [String: String] = [:]
        var order: [String] = []
        for (name, value) in pairs where firsts[name] == nil {
            firsts[name] = value
            order.append(name)
        }
        return order.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            .compactMap { name in firsts[name].flatMap { $0.isEmpty ? nil : "\n\(name):\($0)" } }.joined()
    }

    /// Docs and .NET: names lowercased, sorted; values sorted and comma-joined; empty values kept.
    static func docQuery(_ pairs: [(String, String)]) -> String {
        var values: [String: [String]] = [:]
        for (name, value) in pairs { values[name.lowercased(), default: []].append(value) }
        return values.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            .map { "\n\($0):\((values[$0] ?? []).sorted().joined(separator: ","))" }.joined()
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    func trimmingSpacesAndTabs() -> Substring {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !blank($0) }), let last = lastIndex(where: { !blank($0) }) else { return self[endIndex...] }
        return self[first...last]
    }
}
