import Bookend
import Crypto
import Foundation

/// Verifies `Authorization: SharedKey <account>:<signature>` (§7). Clients canonicalize the query and
/// an empty body's Content-Length differently, so the four strings-to-sign of §7.2 are tried (and, only
/// when a client sends both `Date` and `ocp-date`, each with and without the Date line); any match passes.
struct SharedKeyVerifier: Sendable {
    let accountName: String
    /// Made once from the account key's bytes (`SymmetricKey` copies them into storage of its own on
    /// every init), and keyed once: each signature check starts from a copy.
    private let key: SharedKeyBox
    /// Allowed distance between the request's `ocp-date`/`Date` and the server clock.
    var maxSkew: TimeInterval = 15 * 60

    init(accountName: String, keyBytes: Data) {
        self.accountName = accountName
        key = SharedKeyBox(HMAC<SHA256>(key: SymmetricKey(data: keyBytes)))
    }

    static let signedHeaders = [
        "content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
        "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range",
    ]

    /// Throws 403 `AuthenticationFailed` (with an `AuthenticationErrorDetail` that never reveals the
    /// expected signature) unless the request is signed with the account key.
    /// `query` is the request's, parsed once by the middleware for everything that reads it.
    func verify(method: String, rawPath: String, query: QueryParameters, headers: [String: String], now: Date = Date()) throws {
        guard let authorization = headers["authorization"], !authorization.isEmpty else {
            throw APIErrors.authentication("The Authorization header is missing.")
        }
        // Parsed on UTF-8 bytes: `split`, `lastIndex(of:)` and trimming on Characters walked grapheme
        // boundaries and were about a third of a signature check.
        guard let (scheme, credential) = SharedKeyVerifier.schemeAndCredential(authorization), scheme.elementsEqual("SharedKey".utf8) else {
            throw APIErrors.malformedAuthorization("The Authorization header must use the SharedKey scheme.")
        }
        guard let colon = credential.lastIndex(of: UInt8(ascii: ":")) else {
            throw APIErrors.malformedAuthorization("The Authorization header is not of the form SharedKey account:signature.")
        }
        guard credential[..<colon].elementsEqual(accountName.utf8) else {
            throw APIErrors.authentication("The account name in the Authorization header is not this account.")
        }
        var presented = credential[credential.index(after: colon)...]
        while let first = presented.first, first == 32 || first == 9 { presented = presented.dropFirst() }
        while let last = presented.last, last == 32 || last == 9 { presented = presented.dropLast() }
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
        guard let presentedBytes = Data(base64Encoded: Data(presented)).map(Array.init), presentedBytes.count == 32 else {
            throw APIErrors.authentication("The signature is not a base64 HMAC-SHA256 value.")
        }
        let keyed = self.key.keyed
        // Candidates are tried in order of how often clients sign that way, and the first match ends
        // the search: each comparison is constant-time, and which candidate matched depends only on
        // the request, which the signer already knows, so stopping early tells nobody anything about
        // the key. A request that matches none costs every candidate, as before.
        var matched = false
        forEachStringToSign(method: method, rawPath: rawPath, query: query, headers: headers) { candidate in
            // A copy of the HMAC already keyed: the key's padding and first block are not hashed again
            // for every candidate of every request.
            var hmac = keyed
            hmac.update(data: candidate)
            let mac = hmac.finalize()
            matched = mac.withUnsafeBytes { SharedKeyVerifier.constantTimeEqual($0, presentedBytes) }
            return matched
        }
        guard matched else {
            throw APIErrors.authentication("The MAC signature found in the HTTP request is not the same as any computed signature.")
        }
    }

    /// The scheme and the credential of an Authorization value, as `split(separator: " ", maxSplits: 1)`
    /// cut them: spaces before the scheme skipped, the credential everything after the space that ends
    /// it (nil when nothing follows).
    static func schemeAndCredential(_ authorization: String) -> (Substring.UTF8View, Substring.UTF8View)? {
        let bytes = Substring(authorization).utf8
        guard let schemeStart = bytes.firstIndex(where: { $0 != 32 }) else { return nil }
        guard let space = bytes[schemeStart...].firstIndex(of: 32) else { return nil }
        let credential = bytes[bytes.index(after: space)...]
        guard !credential.isEmpty else { return nil }
        return (bytes[schemeStart..<space], credential)
    }

    static func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    /// Calls `body` with each distinct string-to-sign over {python, doc} query styles × {as sent,
    /// empty-when-zero} lengths × the Date lines, the common forms first (the length and Date as
    /// sent, the SDKs' query form), until it answers true. `body` sees the candidate's UTF-8 bytes,
    /// valid only during the call.
    ///
    /// Every signed request comes through here: arrays joined, dictionaries filtered and names copied
    /// into arrays to be compared were a twentieth of a GET job's CPU, and the candidates grown as
    /// Strings (one more per query form) most of what was left.
    func forEachStringToSign(
        method: String, rawPath: String, query: QueryParameters, headers: [String: String], _ body: (UnsafeRawBufferPointer) -> Bool
    ) {
        let length = headers["content-length"] ?? ""
        let lengths = length == "0" ? [length, ""] : [length]
        let queries = SharedKeyVerifier.canonicalQueries(query.pairs)
        var ocp: [(name: String, value: String)] = []
        for (name, value) in headers where name.utf8.starts(with: "ocp-".utf8) && !value.isEmpty { ocp.append((name, value)) }
        ocp.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        // The docs leave the Date line empty when ocp-date is sent; the Python SDKs sign whatever Date they send.
        let date = headers["date"] ?? ""
        let otherDate = (headers["ocp-date"] ?? "").isEmpty ? date : ""
        let dates = otherDate == date ? [date] : [date, otherDate]
        let verb = method.utf8.contains(where: { $0 >= 0x80 || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) }) ? method.uppercased() : method
        // Every candidate is written into one byte buffer, its head kept while the query forms change.
        var text: [UInt8] = []
        text.reserveCapacity(512)
        let newline = UInt8(ascii: "\n")
        for contentLength in lengths {
            for dateLine in dates {
                text.removeAll(keepingCapacity: true)
                text.append(contentsOf: verb.utf8)
                for name in SharedKeyVerifier.signedHeaders {
                    text.append(newline)
                    switch name {
                    case "content-length": text.append(contentsOf: contentLength.utf8)
                    case "date": text.append(contentsOf: dateLine.utf8)
                    default: if let value = headers[name] { text.append(contentsOf: value.utf8) }
                    }
                }
                text.append(newline)
                for (name, value) in ocp {
                    text.append(contentsOf: name.utf8)
                    text.append(UInt8(ascii: ":"))
                    text.append(contentsOf: value.utf8)
                    text.append(newline)
                }
                text.append(UInt8(ascii: "/"))
                text.append(contentsOf: accountName.utf8)
                text.append(contentsOf: rawPath.utf8)
                let head = text.count
                for query in queries {
                    text.removeSubrange(head...)
                    text.append(contentsOf: query.utf8)
                    if text.withUnsafeBytes(body) { return }
                }
            }
        }
    }

    /// The canonical query forms, python first, once when both are the same. Nearly every request
    /// names each parameter once, in lowercase ASCII, with a value: then both forms are the pairs
    /// sorted by name, and neither needs its dictionaries.
    static func canonicalQueries(_ query: [(name: String, value: String)]) -> [String] {
        let plain = query.allSatisfy { pair in
            !pair.value.isEmpty && pair.name.utf8.allSatisfy { $0 < 0x80 && !($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) }
        }
        if plain {
            let sorted = query.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
            if !zip(sorted, sorted.dropFirst()).contains(where: { $0.name == $1.name }) {
                var text = ""
                for (name, value) in sorted { text += "\n"; text += name; text += ":"; text += value }
                return [text]
            }
        }
        return generalQueries(query)
    }

    /// The canonical query forms built the long way, for any query: python first, once when both are the same.
    static func generalQueries(_ query: [(name: String, value: String)]) -> [String] {
        let pairs = query.map { ($0.name, $0.value) }
        let python = pythonQuery(pairs)
        let doc = docQuery(pairs)
        return python == doc ? [python] : [python, doc]
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

/// An HMAC keyed with the account key, which Swift Crypto does not mark Sendable: it is never changed
/// once made, only copied (a value type whose hash state is copied before the copy is updated), so
/// sharing it between requests is safe.
private struct SharedKeyBox: @unchecked Sendable {
    let keyed: HMAC<SHA256>
    init(_ keyed: HMAC<SHA256>) { self.keyed = keyed }
}
