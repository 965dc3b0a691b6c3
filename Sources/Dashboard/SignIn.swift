import Crypto
import Foundation
import Glibc
import Synchronization

/// Who may sign in to the dashboard: the one Batch account the daemon serves. Anyone who holds its
/// key may already do everything through the API, so the dashboard asks for nothing less.
public struct DashboardCredentials: Sendable {
    public var accountName: String
    /// The account key bytes (the base64 text people are given, decoded).
    public var key: Data

    public init(accountName: String, key: Data) {
        self.accountName = accountName
        self.key = key
    }

    /// The sign-in form's check: the account name, and the key as base64 text, compared in constant
    /// time so that how long a refusal takes says nothing about how much of the key was right.
    func accepts(accountName presentedName: String, base64Key: String) -> Bool {
        let presentedKey = Data(base64Encoded: base64Key.trimmingCharacters(in: .whitespacesAndNewlines)) ?? Data()
        let nameMatches = Secrets.constantTimeEqual(Data(presentedName.utf8), Data(accountName.utf8))
        let keyMatches = Secrets.constantTimeEqual(presentedKey, key)
        return nameMatches && keyMatches
    }
}

enum Secrets {
    static func constantTimeEqual(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        constantTimeEqual(Data(a.utf8), Data(b.utf8))
    }

    /// `count` random bytes from the system generator as unpadded base64url text.
    static func randomToken(bytes count: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        return base64URL(Data((0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }))
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// Signed-in browsers. A session is an unguessable id in an HttpOnly cookie and a CSRF token that
/// every form of that session carries; both live only in this process, so a restarted daemon asks
/// everyone to sign in again (there is nothing to steal from the database).
public final class SessionStore: Sendable {
    public struct Session: Sendable, Hashable {
        public let id: String
        public let csrfToken: String
        public var lastSeen: Date
    }

    /// A session unused for this long is gone.
    public let idleTimeout: TimeInterval
    private let sessions = Mutex<[String: Session]>([:])

    public init(idleTimeout: TimeInterval = 12 * 3600) {
        self.idleTimeout = idleTimeout
    }

    public func create(now: Date = Date()) -> Session {
        let session = Session(id: Secrets.randomToken(), csrfToken: Secrets.randomToken(), lastSeen: now)
        sessions.withLock { sessions in
            // Expired sessions are dropped here, where sessions are added, so the table cannot grow
            // with sessions nobody will use again.
            sessions = sessions.filter { now.timeIntervalSince($0.value.lastSeen) < idleTimeout }
            sessions[session.id] = session
        }
        return session
    }

    /// The live session with this id, its idle clock restarted; nil (and forgotten) once expired.
    public func use(_ id: String, now: Date = Date()) -> Session? {
        sessions.withLock { sessions in
            guard var session = sessions[id] else { return nil }
            guard now.timeIntervalSince(session.lastSeen) < idleTimeout else {
                sessions[id] = nil
                return nil
            }
            session.lastSeen = now
            sessions[id] = session
            return session
        }
    }

    public func end(_ id: String) {
        _ = sessions.withLock { $0.removeValue(forKey: id) }
    }
}

/// The one-time sign-in links `bookend ui-link` prints, the way Jupyter prints a token URL:
/// `/ui/link?account=…&expires=…&nonce=…&signature=…`, where the signature is HMAC-SHA256 with the
/// account key over the account, the expiry and the nonce. Whoever can sign one holds the key.
public enum SignInLink {
    public static let path = "/ui/link"
    /// Links valid for longer than this are refused whatever they say: a leaked link must not stay
    /// a way in for days.
    public static let longestLifetime: TimeInterval = 24 * 3600
    public static let defaultLifetime: TimeInterval = 300

    public static func signature(accountName: String, expires: Int64, nonce: String, key: Data) -> String {
        let message = Data("bookend-ui-link\n\(accountName)\n\(expires)\n\(nonce)".utf8)
        return Secrets.base64URL(Data(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))))
    }

    /// The query string of a new link (without `?`), valid until `now + lifetime`.
    public static func query(credentials: DashboardCredentials, lifetime: TimeInterval = defaultLifetime, now: Date = Date()) -> String {
        let expires = Int64(now.timeIntervalSince1970 + lifetime)
        let nonce = Secrets.randomToken(bytes: 18)
        let signature = signature(accountName: credentials.accountName, expires: expires, nonce: nonce, key: credentials.key)
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_.~"))
        let account = credentials.accountName.addingPercentEncoding(withAllowedCharacters: allowed) ?? credentials.accountName
        return "account=\(account)&expires=\(expires)&nonce=\(nonce)&signature=\(signature)"
    }

    /// Why a link was refused; shown on the sign-in page.
    public enum Refusal: Error, Sendable, Hashable {
        case malformed, wrongAccount, badSignature, expired, tooLongLived, alreadyUsed

        public var message: String {
            switch self {
            case .malformed: "The sign-in link is incomplete."
            // One answer for both, so that the page does not confirm an account name someone guesses.
            case .wrongAccount, .badSignature: "The sign-in link is not valid for this daemon (another account, or not signed with its key)."
            case .expired: "The sign-in link has expired: run bookend ui-link for a new one."
            case .tooLongLived: "The sign-in link is valid for too long to be accepted."
            case .alreadyUsed: "The sign-in link has been used already: run bookend ui-link for a new one."
            }
        }
    }

    /// Checks a link's parameters (signature first, in constant time, then time, then single use).
    static func verify(
        _ parameters: [String: String], credentials: DashboardCredentials, usedNonces: UsedNonces, now: Date = Date()
    ) -> Refusal? {
        guard let account = parameters["account"], let expiresText = parameters["expires"], let expires = Int64(expiresText),
            let nonce = parameters["nonce"], let presented = parameters["signature"],
            (16...64).contains(nonce.count), nonce.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        else { return .malformed }
        guard account == credentials.accountName else { return .wrongAccount }
        let expected = signature(accountName: account, expires: expires, nonce: nonce, key: credentials.key)
        guard Secrets.constantTimeEqual(expected, presented) else { return .badSignature }
        let seconds = now.timeIntervalSince1970
        guard Double(expires) > seconds else { return .expired }
        guard Double(expires) - seconds <= longestLifetime else { return .tooLongLived }
        guard usedNonces.claim(nonce, expires: expires, now: now) else { return .alreadyUsed }
        return nil
    }
}

/// Nonces of links already used, each kept until its link would have expired anyway: after that the
/// expiry refuses the link by itself, so the set stays as small as the links still valid.
///
/// With a `file`, they are also kept on disk (`<data-dir>/ui-link-nonces`, 0600, one `nonce expires`
/// line each, synced before the link is accepted) and read back when the daemon starts: kept only in
/// memory, a used link (in a browser's history, a proxy's log) worked again after a restart, for as
/// long as it was valid (up to a day).
public final class UsedNonces: Sendable {
    private let used = Mutex<[String: Int64]>([:])
    private let file: String?

    public init(file: String? = nil, now: Date = Date()) {
        self.file = file
        guard let file else { return }
        let seconds = Int64(now.timeIntervalSince1970)
        var kept: [String: Int64] = [:]
        if let text = try? String(contentsOfFile: file, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ")
                if fields.count == 2, let expires = Int64(fields[1]), expires >= seconds { kept[String(fields[0])] = expires }
            }
        }
        used.withLock { $0 = kept }
        // Rewritten with what is still valid, so the file stays as small as the set.
        _ = Self.write(kept.map { "\($0.key) \($0.value)\n" }.joined(), to: file, append: false)
    }

    /// True the first time a nonce is presented before its expiry; false ever after. False too when
    /// the claim cannot be kept on disk: a link that might work twice is refused.
    func claim(_ nonce: String, expires: Int64, now: Date) -> Bool {
        used.withLock { used in
            let seconds = Int64(now.timeIntervalSince1970)
            used = used.filter { $0.value >= seconds }
            guard used[nonce] == nil else { return false }
            if let file, !Self.write("\(nonce) \(expires)\n", to: file, append: true) { return false }
            used[nonce] = expires
            return true
        }
    }

    /// Writes (or appends) `text`, never through a link, mode 0600, synced.
    private static func write(_ text: String, to path: String, append: Bool) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        _ = fchmod(fd, 0o600)
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return false }
            offset += n
        }
        return fsync(fd) == 0
    }
}
