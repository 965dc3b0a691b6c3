import Bookend
import Foundation
import SQLite
import Testing

/// The state enums and the schema's CHECK lists are one list: read the CHECK constraints from the
/// `sqlite_schema` of a real migrated database and compare each with the enum's cases, both ways.
@Suite struct SchemaStateTests {
    struct Column: Sendable, CustomTestStringConvertible {
        var table: String
        var column: String
        var cases: [String]
        var testDescription: String { "\(table).\(column)" }
    }

    static func column<E: CaseIterable & RawRepresentable>(_ table: String, _ column: String, _ type: E.Type) -> Column
    where E.RawValue == String {
        Column(table: table, column: column, cases: type.allCases.map(\.rawValue))
    }

    static let columns: [Column] = [
        column("pool", "state", PoolState.self),
        column("pool", "allocation_state", AllocationState.self),
        column("node", "state", NodeState.self),
        column("node", "reboot_option", NodeRebootOption.self),
        column("job", "state", JobState.self),
        column("job", "previous_state", JobState.self),
        column("job", "disable_tasks", DisableJobOption.self),
        column("task", "state", TaskState.self),
        column("task", "previous_state", TaskState.self),
        column("task", "result", ExecutionResult.self),
        column("execution", "state", ExecutionState.self),
        column("execution", "kind", ExecutionKind.self),
        column("execution", "kill_reason", KillReason.self),
        column("execution", "result", ExecutionResult.self),
        column("job_node", "prep_state", PreparationState.self),
        column("job_node", "prep_result", ExecutionResult.self),
        column("job_node", "release_state", ReleaseState.self),
        column("job_node", "release_result", ExecutionResult.self),
    ]

    /// The values of `CHECK (<column> IN ('a', 'b'))` or, from schema version 10 for lists of three or
    /// more, `CHECK (<column> = 'a' OR <column> = 'b' OR ...)` in the table's CREATE statement.
    static func allowed(_ sql: String, column: String) throws -> [String] {
        let value = #"'[^']*'"#
        let list = #"\s*"# + column + #" IN \(([^)]*)\)"#
        let chain = #"\s*("# + column + " = " + value + #"(?:\s+OR\s+"# + column + " = " + value + ")+)"
        let expression = try NSRegularExpression(pattern: #"CHECK \((?:"# + list + "|" + chain + #")\)"#)
        let matches = expression.matches(in: sql, range: NSRange(sql.startIndex..., in: sql))
        #expect(matches.count == 1, "exactly one CHECK (\(column) IN (...)) or CHECK (\(column) = ... OR ...)")
        let match = try #require(matches.first)
        let group = match.range(at: 1).location != NSNotFound ? 1 : 2
        let range = try #require(Range(match.range(at: group), in: sql))
        let values = try NSRegularExpression(pattern: value)
        return values.matches(in: sql, range: NSRange(range, in: sql)).map {
            String((sql as NSString).substring(with: $0.range).dropFirst().dropLast())
        }
    }

    @Test(arguments: columns)
    func checkListIsTheEnum(_ column: Column) throws {
        let data = try MigratedDirectory()
        let sql = try #require(data.connection.scalar("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", [column.table]).string)
        let allowed = try Self.allowed(sql, column: column.column)
        #expect(Set(allowed).subtracting(column.cases).sorted() == [], "allowed by SQL, no case in the enum")
        #expect(Set(column.cases).subtracting(allowed).sorted() == [], "a case of the enum the SQL refuses")
        #expect(allowed.count == Set(allowed).count)
    }
}
