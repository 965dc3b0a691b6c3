import Bookend
import Foundation
import Testing

@testable import Dashboard

/// The sign-in rules as pure decisions: the form's key check, one-time links (signature, expiry,
/// single use) and session expiry.
@Suite struct SignInTests {
    static let key = Data((0..<32).map { UInt8($0 * 7 % 256) })
    static let credentials = DashboardCredentials(accountName: "acct", key: key)
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test(arguments: [
        ("acct", key.base64EncodedString(), true),
        ("acct", " \(key.base64EncodedString())\n", true),
        ("other", key.base64EncodedString(), false),
        ("acct", Data(key.dropLast()).base64EncodedString(), false),
        ("acct", Data(key.reversed()).base64EncodedString(), false),
        ("acct", "not base64!", false),
        ("acct", "", false),
        ("", "", false),
    ])
    func theFormAcceptsOnlyTheAccountAndItsKey(account: String, key: String, accepted: Bool) {
        #expect(Self.credentials.accepts(accountName: account, base64Key: key) == accepted)
    }

    static func parameters(_ query: String) -> [String: String] {
        Web.formFields(Substring(query))
    }

    static func link(account: String = "acct", expires: Int64, nonce: String = "abcdefghijklmnopqrstuvwx", key: Data = key) -> [String: String] {
        ["account": account, "expires": String(expires), "nonce": nonce,
         "signature": SignInLink.signature(accountName: account, expires: expires, nonce: nonce, key: key)]
    }

    @Test func aFreshLinkSignsInOnceAndNeverAgain() {
        let used = UsedNonces()
        let query = SignInLink.query(credentials: Self.credentials, lifetime: 300, now: Self.now)
        #expect(SignInLink.verify(Self.parameters(query), credentials: Self.credentials, usedNonces: used, now: Self.now) == nil)
        #expect(SignInLink.verify(Self.parameters(query), credentials: Self.credentials, usedNonces: used, now: Self.now.addingTimeInterval(1)) == .alreadyUsed)
        // Another link made the same second has its own nonce.
        let other = SignInLink.query(credentials: Self.credentials, lifetime: 300, now: Self.now)
        #expect(other != query)
        #expect(SignInLink.verify(Self.parameters(other), credentials: Self.credentials, usedNonces: used, now: Self.now) == nil)
    }

    /// Used links stay used across a restart: the nonces are kept in a file (0600) read back at start,
    /// and only those whose links would still be valid are kept.
    @Test func aUsedLinkStaysUsedAfterARestart() throws {
        let folder = NSTemporaryDirectory() + "bookend-nonces-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/ui-link-nonces"
        let query = SignInLink.query(credentials: Self.credentials, lifetime: 300, now: Self.now)
        let old = SignInLink.query(credentials: Self.credentials, lifetime: 10, now: Self.now)
        let first = UsedNonces(file: file, now: Self.now)
        #expect(SignInLink.verify(Self.parameters(query), credentials: Self.credentials, usedNonces: first, now: Self.now) == nil)
        #expect(SignInLink.verify(Self.parameters(old), credentials: Self.credentials, usedNonces: first, now: Self.now) == nil)
        var info = stat()
        #expect(stat(file, &info) == 0 && info.st_mode & 0o777 == 0o600)
        // "Restarted" a minute later: the 300 s link is still refused; the 10 s one has expired (and
        // its nonce is dropped from the file).
        let later = Self.now.addingTimeInterval(60)
        let second = UsedNonces(file: file, now: later)
        #expect(SignInLink.verify(Self.parameters(query), credentials: Self.credentials, usedNonces: second, now: later) == .alreadyUsed)
        #expect(SignInLink.verify(Self.parameters(old), credentials: Self.credentials, usedNonces: second, now: later) == .expired)
        #expect(try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").count == 1)
    }

    static let expiry = Int64(now.timeIntervalSince1970) + 300

    @Test(arguments: [
        (link(expires: expiry), nil),
        (link(expires: Int64(now.timeIntervalSince1970) - 1), SignInLink.Refusal.expired),
        (link(expires: Int64(now.timeIntervalSince1970)), .expired),
        (link(expires: Int64(now.timeIntervalSince1970) + 2 * 86400), .tooLongLived),
        (link(expires: expiry, key: Data(repeating: 1, count: 32)), .badSignature),
        (link(account: "other", expires: expiry), .wrongAccount),
        (link(expires: expiry, nonce: "short"), .malformed),
        (link(expires: expiry, nonce: "has spaces in it and more"), .malformed),
        (["account": "acct", "expires": "soon", "nonce": "abcdefghijklmnopqrstuvwx", "signature": "x"], .malformed),
        ([:], .malformed),
    ] as [([String: String], SignInLink.Refusal?)])
    func linksAreCheckedForSignatureAccountAndTime(parameters: [String: String], refusal: SignInLink.Refusal?) {
        #expect(SignInLink.verify(parameters, credentials: Self.credentials, usedNonces: UsedNonces(), now: Self.now) == refusal)
    }

    @Test func aTamperedExpiryBreaksTheSignature() {
        var parameters = Self.link(expires: Self.expiry)
        parameters["expires"] = String(Self.expiry + 3600)
        #expect(SignInLink.verify(parameters, credentials: Self.credentials, usedNonces: UsedNonces(), now: Self.now) == .badSignature)
    }

    @Test func usedNoncesAreForgottenOnlyOnceTheirLinkHasExpired() {
        let used = UsedNonces()
        #expect(used.claim("n1", expires: 100, now: Date(timeIntervalSince1970: 50)))
        #expect(!used.claim("n1", expires: 100, now: Date(timeIntervalSince1970: 99)))
        // After expiry the nonce may be dropped: the link's expiry refuses it by itself from then on.
        let parameters = Self.link(expires: 100)
        #expect(SignInLink.verify(parameters, credentials: Self.credentials, usedNonces: used, now: Date(timeIntervalSince1970: 101)) == .expired)
    }

    @Test func sessionsExpireWhenIdleAndEndOnSignOut() {
        let store = SessionStore(idleTimeout: 60)
        let session = store.create(now: Self.now)
        #expect(session.id != session.csrfToken)
        #expect(session.id.count >= 43)
        #expect(store.use(session.id, now: Self.now.addingTimeInterval(59))?.csrfToken == session.csrfToken)
        // Use restarts the idle clock.
        #expect(store.use(session.id, now: Self.now.addingTimeInterval(118)) != nil)
        #expect(store.use(session.id, now: Self.now.addingTimeInterval(179)) == nil)
        #expect(store.use(session.id, now: Self.now.addingTimeInterval(180)) == nil)
        let second = store.create(now: Self.now)
        store.end(second.id)
        #expect(store.use(second.id, now: Self.now) == nil)
        #expect(store.use("made-up", now: Self.now) == nil)
    }

    @Test(arguments: [
        (nil, "/ui"),
        ("/ui/jobs/a?state=active", "/ui/jobs/a?state=active"),
        ("https://elsewhere.example/", "/ui"),
        ("//elsewhere.example/ui", "/ui"),
        ("/api/jobs", "/ui"),
        ("/ui\\..\\x", "/ui"),
        ("/ui/sign-in", "/ui"),
        ("/ui/link?nonce=x", "/ui"),
        ("/ui/x\r\nSet-Cookie: a=b", "/ui"),
    ] as [(String?, String)])
    func afterSignInOnlyDashboardPagesAreFollowed(next: String?, target: String) {
        #expect(Dashboard.safeNext(next) == target)
    }

    @Test(arguments: [
        (TaskAction.terminate, TaskState.active, false, true), (.terminate, .running, false, true), (.terminate, .completed, true, false),
        (.reactivate, .completed, true, true), (.reactivate, .completed, false, false), (.reactivate, .running, false, false),
    ])
    func taskActionsAreOfferedOnlyWhereTheyApply(action: TaskAction, state: TaskState, failed: Bool, offered: Bool) {
        #expect(action.applies(to: state, failed: failed) == offered)
    }
}
