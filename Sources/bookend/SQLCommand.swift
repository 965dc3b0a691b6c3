import ArgumentParser
import Bookend
import Foundation
import SQLite

/// Runs read-only SQL against a data directory's database, for people without the sqlite3 shell.
struct SQLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql",
        abstract: "Run a read-only SQL query on <data-dir>/bookend.db (e.g. SELECT * FROM job_history).",
        discussion: "The connection is read-only: statements that would change the database fail. See docs/sql.md for the views.")

    @OptionGroup var options: DataDirectoryOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The SQL query.")
    var query: String

    func run() async throws {
        let rows: [Row]
        let columns: [String]
        do {
            let database = try DataDirectory.openReadOnly(options.dataDirectory)
            let sql = query
            (columns, rows) = try await database.read { db in
                // One statement: the second of "SELECT …; DELETE …" was ignored without a word.
                let statements = try Statement.count(in: sql, on: db)
                guard statements == 1 else {
                    throw CLIError(statements == 0 ? "no SQL statement given" : "give one SQL statement, not \(statements)")
                }
                let statement = try db.statement(sql)
                let rows = try statement.rows()
                // A query that matched nothing still says which columns it asked for.
                return (rows.first?.columns ?? statement.columnNames, rows)
            }
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(error)")
        }
        switch output.format {
        case .json:
            let objects = rows.map { row in
                Dictionary(uniqueKeysWithValues: zip(row.columns, row.values.map(\.jsonValue)))
            }
            // `[]` for no row (the serializer writes an empty line between the brackets).
            let data = objects.isEmpty ? Data("[]".utf8) : try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        case .table:
            guard !columns.isEmpty else { return }
            printTable(titles: columns, rows: rows.map { $0.values.map(\.display) })
        }
    }
}

extension SQLiteValue {
    var display: String {
        switch self {
        case .integer(let value): "\(value)"
        case .real(let value): "\(value)"
        case .text(let value): value
        case .blob(let bytes): "<\(bytes.count) bytes>"
        case .null: ""
        }
    }

    var jsonValue: Any {
        switch self {
        case .integer(let value): value
        case .real(let value): value
        case .text(let value): value
        case .blob(let bytes): Data(bytes).base64EncodedString()
        case .null: NSNull()
        }
    }
}
