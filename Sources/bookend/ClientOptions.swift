import ArgumentParser
import Client
import Foundation

/// How the CLI reaches a daemon: flags, else environment (`BOOKEND_ENDPOINT`, `BOOKEND_ACCOUNT`,
/// `BOOKEND_KEY` or `BOOKEND_KEY_FILE`, `BOOKEND_CA_CERT`), else `~/.config/bookend/client.json`
/// (`{"endpoint": …, "account": …, "keyFile": …, "caCert": …}`), else the defaults of `bookend serve`.
struct ClientOptions: ParsableArguments {
    @Option(help: "The daemon's URL (default http://127.0.0.1:8080).")
    var endpoint: String?

    @Option(help: "The Batch account name (default bookend).")
    var account: String?

    @Option(name: .customLong("key-file"), help: "A file holding the Base64 account key (e.g. <data-dir>/account.key).")
    var keyFile: String?

    @Option(name: .customLong("ca-cert"), help: "For an https endpoint: a PEM file of certificates to trust besides the system's (e.g. the daemon's self-signed --tls-cert).")
    var caCert: String?

    @Option(help: "Output: table (for people) or json (the service's JSON, for scripts).")
    var output: OutputFormat = .table

    enum OutputFormat: String, ExpressibleByArgument { case table, json }

    private struct ConfigFile: Decodable {
        var endpoint: String?
        var account: String?
        var keyFile: String?
        var caCert: String?
    }

    func client() throws -> BatchHTTPClient {
        let environment = ProcessInfo.processInfo.environment
        let configPath = (NSHomeDirectory() as NSString).appendingPathComponent(".config/bookend/client.json")
        let config = FileManager.default.contents(atPath: configPath).flatMap { try? JSONDecoder().decode(ConfigFile.self, from: $0) }
        let endpointText = endpoint ?? environment["BOOKEND_ENDPOINT"] ?? config?.endpoint ?? "http://127.0.0.1:8080"
        guard let url = URL(string: endpointText), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw CLIError("--endpoint \(endpointText) is not an http(s) URL")
        }
        let accountName = account ?? environment["BOOKEND_ACCOUNT"] ?? config?.account ?? "bookend"
        var key = environment["BOOKEND_KEY"]
        if let path = keyFile ?? (key == nil ? environment["BOOKEND_KEY_FILE"] ?? config?.keyFile : nil) {
            guard let data = FileManager.default.contents(atPath: path) else {
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
            return BatchHTTPClient(endpoint: url, signer: try SharedKeySigner(account: accountName, base64Key: key), trust: trust)
        } catch {
            throw CLIError("\(error)")
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

/// Prints JSON objects as an aligned table of the given columns (dotted paths into the object).
func printTable(_ objects: [[String: Any]], columns: [(title: String, path: String)]) {
    func value(_ object: [String: Any], _ path: String) -> String {
        var current: Any? = object
        for key in path.split(separator: ".") { current = (current as? [String: Any])?[String(key)] }
        switch current {
        case nil, is NSNull: return ""
        // JSONSerialization gives NSNumber for both numbers and booleans; only booleans have objCType "c".
        case let number as NSNumber where String(cString: number.objCType) == "c": return number.boolValue ? "true" : "false"
        case let number as NSNumber: return "\(number)"
        case let text as String: return text
        case let list as [Any]: return "\(list.count) items"
        default: return "\(current!)"
        }
    }
    let rows = objects.map { object in columns.map { value(object, $0.path) } }
    let widths = columns.indices.map { index in max(columns[index].title.count, rows.map { $0[index].count }.max() ?? 0) }
    func line(_ cells: [String]) -> String {
        zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces)
    }
    print(line(columns.map(\.title)))
    for row in rows { print(line(row)) }
}

func jsonObject(_ data: Data) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
}

func printJSON(_ value: Any) {
    if let data = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    }
}

/// Lists every item of a collection (following pages) as JSON objects.
func listObjects(_ client: BatchHTTPClient, _ path: String, query: [(String, String)] = []) async throws -> [[String: Any]] {
    struct Raw: Decodable {
        let data: Data
        init(from decoder: any Decoder) throws {
            data = try JSONSerialization.data(withJSONObject: try decoder.singleValueContainer().decode(AnyJSON.self).value)
        }
    }
    return try await client.list(path, query: query, as: Raw.self).map { jsonObject($0.data) }
}

/// Decodes any JSON into Foundation values (for pass-through output).
struct AnyJSON: Decodable {
    let value: Any
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            value = NSNull()
        } else if let bool = try? container.decode(Bool.self) {
            value = bool
        } else if let int = try? container.decode(Int64.self) {
            value = int
        } else if let double = try? container.decode(Double.self) {
            value = double
        } else if let text = try? container.decode(String.self) {
            value = text
        } else if let array = try? container.decode([AnyJSON].self) {
            value = array.map(\.value)
        } else {
            value = try container.decode([String: AnyJSON].self).mapValues(\.value)
        }
    }
}

func readJSONFile(_ path: String) throws -> Data {
    guard let data = path == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: path) else {
        throw CLIError("cannot read \(path)")
    }
    guard (try? JSONSerialization.jsonObject(with: data)) != nil else { throw CLIError("\(path) is not valid JSON") }
    return data
}

func body(_ object: [String: Any]) throws -> Data {
    try JSONSerialization.data(withJSONObject: object)
}

let seg = BatchHTTPClient.segment
