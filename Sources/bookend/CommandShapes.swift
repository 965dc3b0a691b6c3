import ArgumentParser
import BatchModels
import Client
import Foundation

// The shapes of a command that talks to a daemon: send an action and print one line (`ActionCommand`,
// and `VerbCommand` when the arguments are all it needs), show one entity (`ShowCommand`), list every
// page (`ListCommand`). A command says what to send and what to print, as a definition of a few lines;
// connecting, error lines, `--filter` and output formats live here once.

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

extension Action where Answer == NoContent {
    /// Creating one entity (`pool create`, `job create`): sends `body` and prints `created <kind> <id>`.
    static func creating<Body>(_ kind: String, _ body: Body, id: KeyPath<Body, String>,
                               _ request: (Body) throws -> BatchRequest<NoContent>) throws -> Action {
        let id = body[keyPath: id]
        return Action(try request(body)) { _ in "created \(kind) \(id)" }
    }
}

extension ActionCommand {
    mutating func run() async throws {
        let action = try action()
        let answer = try await options.withClient { try await $0.send(action.request) }
        print(action.done(answer))
    }
}

/// An operation whose arguments are all it needs (delete a pool, resize it, terminate a job with a
/// reason): its subcommand, its request, and the line printed once it is accepted. `Target` holds the
/// positional ids and the operation's own options.
struct Verb<Target: ParsableArguments>: Sendable {
    let configuration: CommandConfiguration
    let request: @Sendable (Target) throws -> BatchRequest<NoContent>
    let done: @Sendable (Target) -> String

    init(_ name: String, abstract: String, done: @escaping @Sendable (Target) -> String,
         request: @escaping @Sendable (Target) throws -> BatchRequest<NoContent>) {
        self.configuration = CommandConfiguration(commandName: name, abstract: abstract)
        self.request = request
        self.done = done
    }
}

/// Ids named by one `id` (`job delete ID`), so a verb's line can be `<doing> <id>`.
protocol IdentifiedTarget: ParsableArguments {
    var id: String { get }
}

extension Verb where Target: IdentifiedTarget {
    /// A verb whose line is what is happening to which id (`deleting job j1`).
    init(_ name: String, abstract: String, says doing: String,
         request: @escaping @Sendable (Target) throws -> BatchRequest<NoContent>) {
        self.init(name, abstract: abstract, done: { "\(doing) \($0.id)" }, request: request)
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

    func action() throws -> Action<NoContent> {
        let target = target
        return Action(try Definition.verb.request(target)) { _ in Definition.verb.done(target) }
    }
}

/// What a `Verb`, a `Listing` or a `Showing` acts on: the ids, as positional arguments (named as the
/// usage line shows them).
struct NoIDs: ParsableArguments {}

struct PoolID: IdentifiedTarget {
    @Argument(help: "The pool id.") var id: String
}

struct JobID: IdentifiedTarget {
    @Argument(help: "The job id.") var id: String
}

struct TaskPath: IdentifiedTarget {
    @Argument(help: "The job id.") var job: String
    @Argument(help: "The task id.") var id: String
}

/// The task whose folder is listed, and how deep.
struct TaskFolder: ParsableArguments {
    @Argument(help: "The job id.") var job: String
    @Argument(help: "The task id.") var id: String
    @Flag(help: "List what is in its subfolders too (wd/...).") var recursive = false
}

/// The pool whose nodes are listed.
struct NodesOfPool: ParsableArguments {
    @Argument(help: "The pool id.") var pool: String
}

struct NodePath: ParsableArguments {
    @Argument(help: "The pool id.") var pool: String
    @Argument(help: "The node id.") var node: String
}

/// The job whose tasks are listed or added.
struct TasksOfJob: ParsableArguments {
    @Argument(help: "The job id.") var job: String
}

/// A `show` subcommand: one entity, printed as a one-row table or as JSON.
struct Showing<Target: ParsableArguments, Item: Encodable & Sendable>: Sendable {
    let configuration: CommandConfiguration
    let request: @Sendable (Target) -> BatchRequest<Item>
    let columns: [Column<Item>]

    init(abstract: String, columns: [Column<Item>], request: @escaping @Sendable (Target) -> BatchRequest<Item>) {
        self.configuration = CommandConfiguration(commandName: "show", abstract: abstract)
        self.request = request
        self.columns = columns
    }
}

protocol ShowDefinition {
    associatedtype Target: ParsableArguments
    associatedtype Item: Encodable & Sendable
    static var showing: Showing<Target, Item> { get }
}

struct ShowCommand<Definition: ShowDefinition>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { Definition.showing.configuration }
    @OptionGroup var options: ClientOptions
    @OptionGroup var target: Definition.Target

    mutating func run() async throws {
        let request = Definition.showing.request(target)
        let item = try await options.withClient { try await $0.send(request) }
        try options.present(item, rows: [item], columns: Definition.showing.columns)
    }
}

/// A `list` subcommand (or another list, such as `job prep-release-status`): every page, printed as a
/// table or as a JSON array, narrowed by `--filter`.
struct Listing<Target: ParsableArguments, Item: Codable & Sendable & Hashable>: Sendable {
    let configuration: CommandConfiguration
    /// The help of `--filter`, with an example that fits the list.
    let filterHelp: String
    let request: @Sendable (Target, _ filter: String?) -> BatchRequest<BatchPage<Item>>
    let columns: [Column<Item>]

    init(_ name: String = "list", abstract: String, filterExample: String, columns: [Column<Item>],
         request: @escaping @Sendable (Target, _ filter: String?) -> BatchRequest<BatchPage<Item>>) {
        self.configuration = CommandConfiguration(commandName: name, abstract: abstract)
        self.filterHelp = "An OData filter, e.g. \"\(filterExample)\"."
        self.request = request
        self.columns = columns
    }
}

protocol ListDefinition {
    associatedtype Target: ParsableArguments
    associatedtype Item: Codable & Sendable & Hashable
    static var listing: Listing<Target, Item> { get }
}

struct ListCommand<Definition: ListDefinition>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { Definition.listing.configuration }
    @OptionGroup var options: ClientOptions
    @OptionGroup var target: Definition.Target
    @Option(help: ArgumentHelp(Definition.listing.filterHelp)) var filter: String?

    mutating func run() async throws {
        let request = Definition.listing.request(target, filter)
        let items = try await options.withClient { try await $0.list(request) }
        try options.present(items, rows: items, columns: Definition.listing.columns)
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

/// The most `--json` reads: far more than any pool, job or task list people write (100,000 tasks of
/// a few hundred bytes each fit), and a bound for `--json /dev/zero` or a log named by mistake, which
/// were read until memory ran out.
let jsonFileLimit = 64 << 20

/// The bytes of `--json PATH` (or `-`: stdin, which can be read only once), checked to be JSON.
func readJSONFile(_ path: String) throws -> Data {
    let data: Data
    do {
        data = path == "-"
            ? try SmallFile.read(descriptor: STDIN_FILENO, path: "standard input", limit: jsonFileLimit)
            : try SmallFile.read(path, limit: jsonFileLimit)
    } catch .tooLarge(let name, let limit) {
        throw CLIError("\(name) holds more than \(limit >> 20) MiB of JSON; split it into several files")
    } catch {
        throw CLIError("\(error)")
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
