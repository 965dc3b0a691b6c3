import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The headers every dashboard answer carries. The policy allows scripts and styles only from the
/// dashboard's own `/ui/static/` files, so an injected `<script>` or `style=` would not run even if
/// escaping ever failed; no page may be framed (clickjacking of the action buttons).
enum SecurityHeaders {
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    static func apply(to headers: inout HTTPFields) {
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[.xFrameOptions] = "DENY"
        // A one-time link carries its token in the URL: no page hands its address to another site.
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
    }
}

extension HTTPField.Name {
    static let xFrameOptions = Self("X-Frame-Options")!
}

enum Web {
    static func html(_ body: String, status: HTTPResponse.Status = .ok, cookies: [String] = []) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        // Pages show live state and a CSRF token: never stored by a browser or a proxy.
        headers[.cacheControl] = "no-store"
        for cookie in cookies { headers.append(HTTPField(name: .setCookie, value: cookie)) }
        SecurityHeaders.apply(to: &headers)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    static func text(_ data: Data, contentType: String, status: HTTPResponse.Status = .ok, cache: String = "no-store") -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = cache
        SecurityHeaders.apply(to: &headers)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// 303 See Other: after a form, the browser GETs the new page, so a reload does not repeat the POST.
    static func redirect(_ location: String, cookies: [String] = []) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        headers[.cacheControl] = "no-store"
        for cookie in cookies { headers.append(HTTPField(name: .setCookie, value: cookie)) }
        SecurityHeaders.apply(to: &headers)
        return Response(status: .seeOther, headers: headers)
    }

    /// The value of one cookie of the request.
    static func cookie(_ name: String, in request: Request) -> String? {
        for field in request.headers[values: .cookie] {
            for pair in field.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }

    /// `application/x-www-form-urlencoded` (a form's body, or a query string) as name → first value.
    static func formFields(_ text: Substring) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String {
                let spaced = part.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            let name = decode(parts[0])
            if fields[name] == nil { fields[name] = parts.count > 1 ? decode(parts[1]) : "" }
        }
        return fields
    }

    static func query(_ request: Request) -> [String: String] {
        formFields(Substring(request.uri.query ?? ""))
    }

    /// The posted form, at most 64 KiB (the dashboard's forms are a few fields).
    static func form(_ request: Request) async throws -> [String: String] {
        var request = request
        let buffer = try await request.collectBody(upTo: 64 * 1024)
        return formFields(Substring(String(buffer: buffer)))
    }

    /// One path segment for a link: ids may hold characters that mean something in a URL.
    static func segment(_ text: String) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_.~"))
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// A relative file path for a link, each segment encoded and the slashes kept.
    static func filePath(_ path: String) -> String {
        path.split(separator: "/").map { segment(String($0)) }.joined(separator: "/")
    }

    static func queryValue(_ text: String) -> String {
        segment(text)
    }
}
