import Client
import Foundation
import TestSupport
import Testing

/// The CLI's signatures must be what Azure Batch clients compute: checked against an independent
/// implementation of the string-to-sign in Python (hmac + base64), written from the spec.
@Suite struct SharedKeySignerTests {
    static let python = #"""
import base64, hashlib, hmac, sys, urllib.parse
method, url, account, key = sys.argv[1:5]
headers = dict(arg.split("=", 1) for arg in sys.argv[5:])
lower = {k.lower(): v for k, v in headers.items()}
parts = [method.upper()] + [lower.get(h, "") for h in ["content-encoding", "content-language", "content-length", "content-md5",
    "content-type", "date", "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range"]]
text = "\n".join(parts) + "\n"
for name in sorted(k for k in lower if k.startswith("ocp-") and lower[k]):
    text += name + ":" + lower[name] + "\n"
parsed = urllib.parse.urlparse(url)
text += "/" + account + parsed.path
for name, values in sorted(urllib.parse.parse_qs(parsed.query).items()):
    text += "\n" + name + ":" + values[0]
print(base64.b64encode(hmac.new(base64.b64decode(key), text.encode(), hashlib.sha256).digest()).decode())
"""#

    func pythonSignature(_ method: String, _ url: String, _ account: String, _ key: String, _ headers: [String: String]) throws -> String {
        try spawnAndWait("/usr/bin/env", ["python3", "-c", Self.python, method, url, account, key] + headers.map { "\($0.key)=\($0.value)" })
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(arguments: [
        ("GET", "http://127.0.0.1:8080/jobs?api-version=2025-06-01", [:]),
        ("GET", "http://127.0.0.1:8080/jobs/j1/tasks?api-version=2025-06-01&%24filter=state%20eq%20%27completed%27&maxresults=10", [:]),
        ("POST", "http://127.0.0.1:8080/jobs?api-version=2025-06-01", ["Content-Type": "application/json; odata=minimalmetadata", "Content-Length": "42"]),
        ("GET", "http://127.0.0.1:8080/jobs/j1/tasks/t1/files/wd%2Fout%20dir%2Fx.txt?api-version=2025-06-01", ["ocp-range": "bytes=0-9"]),
        ("DELETE", "http://localhost:9/pools/p%201?api-version=2025-06-01&timeOut=30", [:]),
    ] as [(String, String, [String: String])])
    func signaturesMatchAnIndependentImplementation(method: String, url: String, headers: [String: String]) throws {
        let key = Data((0..<32).map { UInt8($0 * 7 % 256) }).base64EncodedString()
        var all = headers
        all["ocp-date"] = "Sat, 28 Nov 2026 12:00:00 GMT"
        let signer = try SharedKeySigner(account: "bookend", base64Key: key)
        let ours = signer.signature(method: method, url: try #require(URL(string: url)), headers: all)
        #expect(ours == (try pythonSignature(method, url, "bookend", key, all)))
        // A different key or account gives a different signature.
        let other = try SharedKeySigner(account: "other", base64Key: key)
        #expect(other.signature(method: method, url: try #require(URL(string: url)), headers: all) != ours)
    }

    @Test func aKeyThatIsNotBase64IsRefused() {
        #expect(throws: ClientError.self) { try SharedKeySigner(account: "a", base64Key: "not base64 !!") }
    }

    @Test func pathSegmentsEncodeSlashes() {
        #expect(BatchHTTPClient.segment("wd/out dir/x.txt") == "wd%2Fout%20dir%2Fx.txt")
        #expect(BatchHTTPClient.segment("task-1_A") == "task-1_A")
    }
}
