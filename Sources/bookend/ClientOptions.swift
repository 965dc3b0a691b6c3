import ArgumentParser
import Client
import Foundation

/// How the CLI reaches a daemon: flags, else environment (`BOOKEND_ENDPOINT`, `BOOKEND_ACCOUNT`,
/// `BOOKEND_KEY` or `BOOKEND_KEY_FILE`, `BOOKEND_CA_CERT`), else `~/.config/bookend/client.json`
/// (`{"endpoint": …, "account": …, "keyFile": …, "caCert": …}`), else the defaults of `bookend serve`.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "The daemon's URL (default http://127.0.0.1:8080).")
    var endpoint: String?

    @Option(help: "The Batch account name (default bookend).")
    var account: String?

    @Option(name: .customLong("key-file"), help: "A file holding the Base64 account key (e.g. <data-dir>/account.key).")
    var keyFile: String?

    @Option(name: .customLong("ca-cert"), help: "For an https endpoint: a PEM file of certificates to trust besides the system's (e.g. the daemon's self-signed --tls-cert).")
    var caCert: String?

    private struct ConfigFile: Decodable {
        var endpoint: String?
        var account: String?
        var keyFile: String?
        var caCert: String?
    }

    func client() throws -> BatchHTTPClient {
        let (url, accountName, key, trust) = try resolve()
        do {
            return BatchHTTPClient(endpoint: url, signer: try SharedKeySigner(account: accountName, base64Key: key), trust: trust)
        } catch {
            throw CLIError("\(error)")
        }
    }

    /// The endpoint, account, Base64 key and trust these options settle on (also what `ui-link` signs with).
    func resolve() throws -> (endpoint: URL, account: String, key: String, trust: TLSTrust?) {
        let environment = ProcessInfo.processInfo.environment
        let configPath = (NSHomeDirectory() as NSString).appendingPathComponent(".config/bookend/client.json")
        let config = (try? SmallFile.read(configPath)).flatMap { try? JSONDecoder().decode(ConfigFile.self, from: $0) }
        let endpointText = endpoint ?? environment["BOOKEND_ENDPOINT"] ?? config?.endpoint ?? "http://127.0.0.1:8080"
        guard let url = URL(string: endpointText), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw CLIError("--endpoint \(endpointText) is not an http(s) URL")
        }
        let accountName = account ?? environment["BOOKEND_ACCOUNT"] ?? config?.account ?? "bookend"
        var key = environment["BOOKEND_KEY"]
        if let path = keyFile ?? (key == nil ? environment["BOOKEND_KEY_FILE"] ?? config?.keyFile : nil) {
            let data: Data
            do {
                data = try SmallFile.read(path)
            } catch .tooLarge {
                throw CLIError(SmallFile.notAKey(path))
            } catch {
                throw CLIError("cannot read the key file \(path)")
            }
            key = String(decoding: data, as: UTF8.self)
        }
        guard let key else {
            throw CLIError("no account key: pass --key-file <data-dir>/account.key, or set BOOKEND_KEY_FILE or BOOKEND_KEY")
        }
        if caCert != nil, url.scheme != "https" {
            throw CLIError("--ca-cert is for https endpoints; \(endpointText) is plain HTTP")
        }
        let caPath = caCert ?? environment["BOOKEND_CA_CERT"] ?? config?.caCert
        do {
            // Loaded before any request, so a bad file is one clear line rather than a failed handshake.
            let trust = url.scheme == "https" ? try TLSTrust(caCertificateFile: caPath) : nil
            return (url, accountName, key, trust)
        } catch {
            throw CLIError("\(error)")
        }
    }
}

/// What every command that talks to a daemon takes: how to reach it, and how to print the answer.
struct ClientOptions: ParsableArguments {
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    var format: OutputFormat { output.format }

    func client() throws -> BatchHTTPClient { try connection.client() }

    /// Connects and runs `body`, turning service and connection errors into one-line CLI errors.
    func withClient<T>(_ body: (BatchHTTPClient) async throws -> T) async throws -> T {
        let client = try client()
        return try await calling { try await body(client) }
    }

    /// Prints an answer: `json` as the service's JSON, or `rows` as a table of `columns`.
    func present<JSON: Encodable, Item>(_ json: JSON, rows: [Item], columns: [Column<Item>]) throws {
        switch format {
        case .json: try printJSON(json)
        case .table: printTable(rows, columns: columns)
        }
    }
}

/// Runs a client call, turning service and connection errors into one-line CLI errors.
func calling<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ClientError {
        throw CLIError(error.description)
    }
}
