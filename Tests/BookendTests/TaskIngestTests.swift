import Foundation
import TestSupport
import Testing
@testable import Bookend

/// `addTasks` validates a whole collection before it writes, then inserts without a savepoint per
/// task: what a refused task leaves behind (nothing) and what an accepted one reports is checked here
/// against the database file.
@Suite struct TaskIngestTests {
    @Test func aRefusedTaskWritesNothingAndAcceptedOnesReportWhatWasStored() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.engine.createJob(JobSpec(id: "job", poolID: "nowhere"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "old", commandLine: "/bin/true"))
            var quoted = TaskSpec(id: "q", commandLine: "/bin/sh -c 'echo \"a/b\" \\ x'\ttab")
            quoted.displayName = "line\nbreak"
            let results = try await h.engine.addTasks(jobID: "job", [
                TaskSpec(id: "a", commandLine: "/bin/true"),
                TaskSpec(id: "bad id!", commandLine: "/bin/true"),
                TaskSpec(id: "OLD", commandLine: "/bin/true"),
                TaskSpec(id: "b", commandLine: "/bin/true", requiredSlots: 0),
                quoted,
                TaskSpec(id: "A", commandLine: "/bin/true"),
            ])
            #expect(results.map(\.status) == ["success", "clienterror", "clienterror", "clienterror", "success", "clienterror"])
            #expect(results.map { $0.error?.code } == [nil, "InvalidPropertyValue", "TaskExists", "InvalidPropertyValue", nil, "TaskExists"])
            #expect(try await h.sql("SELECT id FROM task ORDER BY pk") == [["old"], ["a"], ["q"]])
            // The counts kept by trigger and the event log hold only the tasks that were stored.
            #expect(try await h.sql("SELECT tasks FROM task_count WHERE bucket = 'active'") == [["3"]])
            #expect(try await h.sql("SELECT task_id FROM event WHERE kind = 'task.added' ORDER BY rowid") == [["old"], ["a"], ["q"]])
            // The eTag and time reported are the stored ones.
            for result in results where result.status == "success" {
                let stored = try await h.sql("SELECT e_tag, last_modified FROM task WHERE id = '\(result.taskId)'")
                #expect(stored == [[result.eTag ?? "", result.lastModified ?? ""]])
            }
            // The spec written without JSONEncoder reads back as the task that was given.
            let task = try await h.engine.task(jobID: "job", taskID: "q")
            #expect(task.commandLine == quoted.commandLine)
            #expect(task.displayName == "line\nbreak")
        }
    }

    /// The direct encoding of the common stored spec gives the same bytes as the JSONEncoder it replaces.
    @Test(arguments: [
        TaskSpec(id: "t", commandLine: "/bin/true"),
        TaskSpec(id: "t-2_x", commandLine: #"/bin/sh -c 'echo "quoted" \ back/slash'"#),
        TaskSpec(id: "ctl", commandLine: "a\u{01}b\tc\nd\r\u{08}\u{0C}\u{1F}"),
        TaskSpec(id: "u", commandLine: "échec ✓ 😀"),
        TaskSpec(id: "e", commandLine: "x", userIdentity: UserIdentity(autoUser: .init(scope: "task", elevationLevel: "admin"))),
    ])
    func storedSpecMatchesTheEncoder(_ spec: TaskSpec) throws {
        var stored = spec
        stored.userIdentity = try Validate.userIdentity(spec.userIdentity, property: "userIdentity")
        for displayName in [nil, "name \"x\"/y"] as [String?] {
            stored.displayName = displayName
            let direct = StoredTaskSpec.encode(stored)
            #expect(direct == encodeJSON(stored))
            #expect(decodeJSON(TaskSpec.self, direct) == stored)
        }
    }
}
