import ArgumentParser
import Dashboard
import Foundation

/// `bookend ui-link`: prints a short-lived, single-use URL that signs a browser in to the dashboard,
/// the way Jupyter prints a token URL. It is signed here with the account key (HMAC over the account,
/// the expiry and a random nonce), so the key itself never travels in a URL and the daemon is not asked.
struct UILinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ui-link",
        abstract: "Print a one-time sign-in link to the web dashboard of a daemon (valid for 5 minutes by default).")

    @OptionGroup var connection: ConnectionOptions

    @Option(name: .customLong("valid-for"), parsing: .unconditional, help: "Seconds the link stays valid (at most 86400).")
    var validFor = Int(SignInLink.defaultLifetime)

    func validate() throws {
        guard validFor > 0, Double(validFor) <= SignInLink.longestLifetime else {
            throw ValidationError("--valid-for must be between 1 and \(Int(SignInLink.longestLifetime)) seconds")
        }
    }

    func run() throws {
        let (endpoint, account, key, _) = try connection.resolve()
        guard let keyBytes = Data(base64Encoded: key.trimmingCharacters(in: .whitespacesAndNewlines)), !keyBytes.isEmpty else {
            throw CLIError("the account key is not valid Base64")
        }
        let query = SignInLink.query(credentials: DashboardCredentials(accountName: account, key: keyBytes), lifetime: TimeInterval(validFor))
        var base = endpoint.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        print("\(base)\(SignInLink.path)?\(query)")
    }
}
