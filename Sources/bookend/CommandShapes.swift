import ArgumentParser
import BatchModels
import Client
import Foundation

// The three shapes of a command that talks to a daemon. A command says what to send and what to
// print; connecting, error lines and output formats live here once.

/// Sends one operation and prints one line saying what was done (`deleting pool p`).
protocol ActionCommand: AsyncParsableCommand {
    associatedtype Answer: Sendable
    var options: ClientOptions { get }
    func action() throws -> Action<Answer>
}

/// What an `ActionCommand` sends, and the line it prints once the daemon has accepted it.
struct Action<Answer: Sendable> {
    let request: BatchRequest<Answer>
    let done: (Answer) -> String

    init(_ request: BatchRequest<Answer>, done: @escaping (Answer) -> String) {
        self.request = request
        self.done = done
    }
}

extension ActionCommand {
    mutating func run() async throws {
        let action = try action()
        let answer = try await options.withClient { try await $0.send(action.request) }
        print(action.done(answer))
    }
}

/// An operation that needs nothing but the ids of what it acts on (delete a pool, enable a job,
/// terminate a task): its subcommand, its request, and the line printed once it is accepted.
struct Verb<Target: ParsableArguments>: Sendable {
    let configuration: CommandConfiguration
    let request: @Sendable (Target) -> BatchRequest<NoContent>
    let done: @Sendable (Target) -> String

    init(_ name: String, abstract: String, done: @escaping @Sendable (Target) -> String,
         request: @escaping @Sendable (Target) -> BatchRequest<NoContent>) {
        self.configuration = CommandConfiguration(commandName: name, abstract: abstract)
        self.request = request
        self.done = done
    }
}

protocol VerbDefinition {
    associatedtype Target: ParsableArguments
    static var verb: Verb<Target> { get }
}

/// The command of a `Verb`: so such operations are one line each, not one struct each.
struct VerbCommand<Definition: VerbDefinition>: ActionCommand {
    static var configuration: CommandConfiguration { Definition.verb.configuration }
    @OptionGroup var options: ClientOptions
    @OptionGroup var target: Definition.Target

    func action() -> Action<NoContent> {
        let target = target
        return Action(Definition.verb.request(target)) { _ in Definition.verb.done(target) }
    }
}

/// What a `Verb` acts on: the ids, as positional arguments.
struct PoolID: ParsableArguments {
    @Argument(help: "The pool id.") var id: String
}

struct JobID: ParsableArguments {
    @Argument(help: "The job id.") var id: String
}

struct TaskPath: ParsableArguments {
    @Argument(help: "The job id.") var job: String
    @Argument(help: "The task id.") var id: String
}

/// Gets one entity and prints it as a one-row table or as JSON.
protocol ShowCommand: AsyncParsableCommand {
    associatedtype Item: Encodable & Sendable
    var options: ClientOptions { get }
    func request() -> BatchRequest<Item>
    static var columns: [Column<Item>] { get }
}

extension ShowCommand {
    mutating func run() async throws {
        let request = request()
        let item = try await options.withClient { try await $0.send(request) }
        try options.present(item, rows: [item], columns: Self.columns)
    }
}

/// Gets every page of a list and prints the items as a table or as a JSON array.
protocol ListCommand: AsyncParsableCommand {
    associatedtype Item: Codable & Sendable & Hashable
    var options: ClientOptions { get }
    func request() -> BatchRequest<BatchPage<Item>>
    static var columns: [Column<Item>] { get }
}

extension ListCommand {
    mutating func run() async throws {
        let request = request()
        let items = try await options.withClient { try await $0.list(request) }
        try options.present(items, rows: items, columns: Self.columns)
    }
}

/// Enum options take the wire values (`--node-fill-type pack`), checked before anything is sent.
extension WireEnum where Self: ExpressibleByArgument {
    public init?(argument: String) {
        let value = Self(rawValue: argument)
        guard value.isKnown else { return nil }
        self = value
    }

    public static var allValueStrings: [String] { known.map(\.rawValue) }
}

extension BatchNodeFillType: ExpressibleByArgument {}
extension BatchNodeRebootOption: ExpressibleByArgument {}
extension DisableBatchJobOption: ExpressibleByArgument {}
extension OnAllBatchTasksComplete: ExpressibleByArgument {}

/// Reads `--json PATH` (or `-` for stdin) as `T`; a file that is not JSON, or not a `T`, is one line
/// naming the file and the property.
func readJSONFile<T: Decodable>(_ path: String, as type: T.Type, what: String) throws -> T {
    try decodeJSON(type, try readJSONFile(path), from: path, what: what)
}

/// The bytes of `--json PATH` (or `-`: stdin, which can be read only once), checked to be JSON.
func readJSONFile(_ path: String) throws -> Data {
    guard let data = path == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: path) else {
        throw CLIError("cannot read \(path)")
    }
    guard (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil else {
        throw CLIError("\(path) is not valid JSON")
    }
    return data
}

func decodeJSON<T: Decodable>(_ type: T.Type, _ data: Data, from path: String, what: String) throws -> T {
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch let error as DecodingError {
        throw CLIError("\(path) is not \(what): \(describe(error))")
    }
}

/// A decoding failure in one line: where (a dotted property path) and what.
func describe(_ error: DecodingError) -> String {
    func path(_ codingPath: [any CodingKey]) -> String {
        let text = codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            .replacingOccurrences(of: ".[", with: "[")
        return text.isEmpty ? "the top level" : text
    }
    switch error {
    case .keyNotFound(let key, let context):
        return "\(path(context.codingPath + [key])) is missing"
    case .typeMismatch(let type, let context):
        return "\(path(context.codingPath)) is not \(describe(type))"
    case .valueNotFound(let type, let context):
        return "\(path(context.codingPath)) is null, expected \(describe(type))"
    case .dataCorrupted(let context):
        return "\(path(context.codingPath)): \(context.debugDescription)"
    @unknown default:
        return "\(error)"
    }
}

private func describe(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Int.Type, is Double.Type: "a number"
    case is Bool.Type: "true or false"
    case is [Any].Type: "an array"
    default: "an object"
    }
}
