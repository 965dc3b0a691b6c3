import Bookend
import Foundation
import SQLite
import Testing

/// The example queries of docs/sql.md, run against `SampleData`. Each query must appear verbatim in
/// the document, and the document must have no `sql` block that is not tested here.
@Suite struct DocumentationExampleTests {
    struct Example: Sendable, CustomTestStringConvertible {
        let name: String
        let sql: String
        let expected: [[SQLiteValue]]
        var testDescription: String { name }
    }

    static let examples: [Example] = [
        Example(
            name: "prep failed this week",
            sql: """
                SELECT job_id, node_id, prep_exit_code, prep_end_time
                FROM prep_release_status
                WHERE prep_result = 'failure'
                  AND prep_end_time >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days')
                ORDER BY prep_end_time DESC;
                """,
            // prep_end_time is "yesterday" in the sample data; the test checks the other columns.
            expected: [[.text("nightly"), .text("node-2"), .integer(3)]]),
        Example(
            name: "average duration per job",
            sql: """
                SELECT job_id,
                       count(*) AS attempts,
                       round(avg((julianday(end_time) - julianday(start_time)) * 86400000)) AS avg_ms
                FROM task_history
                WHERE state = 'completed'
                GROUP BY job_id
                ORDER BY job_id;
                """,
            expected: [
                [.text("etl"), .integer(1), .real(300500)],
                [.text("render"), .integer(4), .real(52500)],
            ]),
        Example(
            name: "jobs owing a release",
            sql: """
                SELECT r.job_id, r.node_id, r.prep_state, r.release_state, j.state AS job_state
                FROM prep_release_status r
                JOIN job_history j ON j.job_id = r.job_id
                WHERE r.release_state IN ('pending', 'running')
                   OR (r.prep_state = 'completed' AND r.release_state IS NULL AND j.state = 'terminating')
                ORDER BY r.job_id, r.node_id;
                """,
            expected: [
                [.text("etl"), .text("node-1"), .text("completed"), .text("pending"), .text("terminating")],
                [.text("etl"), .text("node-3"), .text("completed"), .null, .text("terminating")],
            ]),
        Example(
            name: "retried tasks",
            sql: """
                SELECT job_id, task_id, count(*) AS attempts, max(retry_count) AS retries
                FROM task_history
                GROUP BY job_id, task_id
                HAVING max(retry_count) > 0
                ORDER BY job_id, task_id;
                """,
            expected: [[.text("render"), .text("t2"), .integer(2), .integer(1)]]),
        Example(
            name: "failure codes by count",
            sql: """
                SELECT failure_code, count(*) AS failures
                FROM task_history
                WHERE result = 'failure'
                GROUP BY failure_code
                ORDER BY failures DESC, failure_code;
                """,
            expected: [[.text("FailureExitCode"), .integer(2)], [.text("TaskEnded"), .integer(1)]]),
        Example(
            name: "event log of one job",
            sql: """
                SELECT seq, time, kind, node_id, task_id, from_state, to_state
                FROM event
                WHERE job_id = 'render'
                ORDER BY seq;
                """,
            expected: [
                [.integer(1), .text("2026-11-20T10:00:00.000Z"), .text("job.created"), .null, .null, .null, .text("active")],
                [
                    .integer(2), .text("2026-11-20T10:01:00.000Z"), .text("task.running"), .text("node-1"), .text("t1"),
                    .text("active"), .text("running"),
                ],
                [
                    .integer(3), .text("2026-11-20T10:02:00.000Z"), .text("task.completed"), .text("node-1"), .text("t1"),
                    .text("running"), .text("completed"),
                ],
                [
                    .integer(4), .text("2026-11-20T10:04:00.000Z"), .text("job.completed"), .null, .null, .text("active"),
                    .text("completed"),
                ],
            ]),
    ]

    static func document() throws -> String {
        try String(contentsOfFile: Repository.path("docs/sql.md"), encoding: .utf8)
    }

    /// The ```sql blocks of the document.
    static func sqlBlocks(_ document: String) -> [String] {
        document.components(separatedBy: "```sql\n").dropFirst().compactMap { $0.components(separatedBy: "```").first }
    }

    @Test(arguments: examples)
    func exampleReturnsTheDocumentedRows(_ example: Example) throws {
        #expect(try Self.document().contains("```sql\n\(example.sql)\n```"), "docs/sql.md shows this query verbatim")
        let data = try MigratedDirectory()
        try SampleData.insert(into: data.connection, version: Schema.version)
        // Read as a user would: a separate read-only connection on the live WAL file.
        let reader = try Connection(path: data.connection.path, options: ConnectionOptions(readOnly: true))
        var rows = try reader.values(example.sql)
        if example.name == "prep failed this week" { rows = rows.map { Array($0.prefix(3)) } }
        #expect(rows == example.expected)
    }

    @Test func everyQueryInTheDocumentIsTested() throws {
        let blocks = Self.sqlBlocks(try Self.document()).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(blocks == Self.examples.map(\.sql))
    }
}
