import Crypto
import Foundation

/// Signs requests with Azure Batch Shared Key: `Authorization: SharedKey <account>:<signature>`,
/// where the signature is Base64(HMAC-SHA256(Base64Decode(key), string-to-sign)).
public struct SharedKeySigner: Sendable {
    public let account: String
    // Raw key bytes; a SymmetricKey is made per signature because it is not Sendable.
    private let key: Data

    /// `base64Key` is the account key as Batch hands it out (Base64 text).
    public init(account: String, base64Key: String) throws {
        guard let bytes = Data(base64Encoded: base64Key.trimmingCharacters(in: .whitespacesAndNewlines)), !bytes.isEmpty else {
            throw ClientError(status: 0, code: "InvalidKey", message: "the account key is not valid Base64")
        }
        self.account = account
        self.key = bytes
    }

    /// The string to sign (§7.1): the verb, eleven standard headers, the `ocp-*` headers sorted by
    /// name, then `/<account><raw path>` and each query parameter as `\nname:decoded value`, sorted.
    public func stringToSign(method: String, url: URL, headers: [String: String]) -> String {
        func header(_ name: String) -> String {
            headers.first { $0.key.lowercased() == name.lowercased() }?.value ?? ""
        }
        var lines = [method.uppercased()]
        for name in ["Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type", "Date",
                     "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range"] {
            lines.append(header(name))
        }
        var text = lines.joined(separator: "\n") + "\n"
        let ocp = headers.filter { $0.key.lowercased().hasPrefix("ocp-") && !$0.value.isEmpty }
            .map { ($0.key.lowercased(), $0.value) }.sorted { $0.0 < $1.0 }
        for (name, value) in ocp { text += "\(name):\(value)\n" }
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        text += "/\(account)\(components?.percentEncodedPath ?? url.path)"
        let items = (components?.queryItems ?? []).filter { !($0.value ?? "").isEmpty }
        for item in items.sorted(by: { $0.name < $1.name }) {
            text += "\n\(item.name):\(item.value ?? "")"
        }
        return text
    }

    public func signature(method: String, url: URL, headers: [String: String]) -> String {
        let message = Data(stringToSign(method: method, url: url, headers: headers).utf8)
        return Data(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))).base64EncodedString()
    }
}
