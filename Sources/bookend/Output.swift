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

/// A cell as a terminal may show it: control characters (C0, DEL, C1) written as `\u{1B}`.
///
/// Why: a cell can hold what a task chose (a file's name), and a name holding an escape sequence
/// printed as it is would be run by the terminal: it could clear the screen, rewrite lines above
/// it or set the window's title. JSON output (`--output json`) escapes them anyway.
func printable(_ cell: String) -> String {
    guard cell.unicodeScalars.contains(where: isControl) else { return cell }
    var shown = ""
    for scalar in cell.unicodeScalars {
        if isControl(scalar) {
            shown += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        } else {
            shown.unicodeScalars.append(scalar)
        }
    }
    return shown
}

private func isControl(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
}

/// Prints rows of cells under titles, each column as wide as its widest cell.
func printTable(titles: [String], rows: [[String]]) {
    let titles = titles.map(printable)
    let rows = rows.map { $0.map(printable) }
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
