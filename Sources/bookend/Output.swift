import ArgumentParser
import Client
import Foundation

/// How a command prints: a table for people, or JSON for scripts.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

struct OutputOptions: ParsableArguments {
    @Option(name: .customLong("output"), help: "Output: table (for people) or json (the service's JSON, for scripts).")
    var format: OutputFormat = .table
}

/// One column of a table: its title, and the cell of an item (empty when absent).
struct Column<Item>: Sendable {
    let title: String
    let cell: @Sendable (Item) -> (any CustomStringConvertible)?

    init(_ title: String, _ cell: @escaping @Sendable (Item) -> (any CustomStringConvertible)?) {
        self.title = title
        self.cell = cell
    }
}

/// Prints items as an aligned table.
func printTable<Item>(_ items: [Item], columns: [Column<Item>]) {
    printTable(titles: columns.map(\.title), rows: items.map { item in columns.map { $0.cell(item)?.description ?? "" } })
}

/// Prints rows of cells under titles, each column as wide as its widest cell.
func printTable(titles: [String], rows: [[String]]) {
    let widths = titles.indices.map { index in max(titles[index].count, rows.map { $0[index].count }.max() ?? 0) }
    func line(_ cells: [String]) -> String {
        zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces)
    }
    print(line(titles))
    for row in rows { print(line(row)) }
}

/// Prints a model as the service's JSON (sorted keys, absent properties left out).
func printJSON<T: Encodable>(_ value: T) throws {
    print(String(decoding: try BatchJSON.encode(value, pretty: true), as: UTF8.self))
}
