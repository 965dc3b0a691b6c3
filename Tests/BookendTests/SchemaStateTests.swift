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

    /// The values of `CHECK (<column> IN ('a', 'b', ...))` in the table's CREATE statement.
    static func allowed(_ sql: String, column: String) throws -> [String] {
        let pattern = #"CHECK \(\s*"# + column + #" IN \(([^)]*)\)\)"#
        let expression = try NSRegularExpression(pattern: pattern)
        let matches = expression.matches(in: sql, range: NSRange(sql.startIndex..., in: sql))
        #expect(matches.count == 1, "exactly one CHECK (\(column) IN (...))")
        let match = try #require(matches.first)
        let range = try #require(Range(match.range(at: 1), in: sql))
        let list = String(sql[range])
        return list.split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines).trimmingCharacters(in: CharacterSet(charactersIn: "'"))
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
