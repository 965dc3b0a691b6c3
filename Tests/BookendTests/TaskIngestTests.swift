import Foundation
import TestSupport
import Testing
@testable import Bookend

/// `addTasks` validates a whole collection before it writes, then inserts without a savepoint per
/// task: what a refused task leaves behind (nothing) and what an accepted one reports is checked here
/// against the database file.
@Suite struct TaskIngestTests {
    /// ETags come from a counter through a bijective mixer (`ETagSequence`): the wire form, no
    /// repeats across many tags and threads, and the tags stored for a batch all differ.
    @Test func eTagsAreSixteenHexDigitsAndNeverRepeat() async throws {
        let perThread = 20_000
        let tags = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<4 { group.addTask { (0..<perThread).map { _ in Engine.newETag() } } }
            var all: [String] = []
            for await part in group { all += part }
            return all
        }
        #expect(Set(tags).count == tags.count)
        let hex = Set("0123456789ABCDEF")
        #expect(tags.allSatisfy { $0.count == 18 && $0.hasPrefix("0x") && $0.dropFirst(2).allSatisfy(hex.contains) })
        // Not one short run of values: the tags spread over the whole range.
        #expect(Set(tags.map { $0.dropFirst(2).prefix(1) }).count == 16)

        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.engine.createJob(JobSpec(id: "job", poolID: "nowhere"))
            let results = try await h.engine.addTasks(jobID: "job", (0..<100).map { TaskSpec(id: "t\($0)", commandLine: "/bin/true") })
            let stored = results.compactMap(\.eTag)
            #expect(stored.count == 100 && Set(stored).count == 100)
        }
    }

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

    /// A call's tasks are written by multi-row INSERTs (`TaskStore.insertAll`). A duplicate deep in a
    /// call (of a stored task, or of an earlier task of the same call) fails only itself; the tasks
    /// before and after it are stored once each, in order, with their own dependencies, counts and
    /// events, whatever sizes of statement the call was cut into.
    @Test(arguments: [100, 37, 3])
    func aDuplicateInsideAMultiRowInsertFailsOnlyItself(_ size: Int) async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            var job = JobSpec(id: "job", poolID: "nowhere")
            job.usesTaskDependencies = true
            try await h.engine.createJob(job)
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "old", commandLine: "/bin/true"))
            // First a clean call of `size` tasks, each depending on the task before it.
            let first = (0..<size).map { i in
                TaskSpec(id: "f\(i)", commandLine: "/bin/true", dependsOn: i == 0 ? nil : TaskDependencies(taskIds: ["f\(i - 1)", "x\(i)"]))
            }
            #expect(try await h.engine.addTasks(jobID: "job", first).allSatisfy { $0.status == "success" })
            // Then a call whose late tasks repeat a stored id and an id of the same call.
            var second = (0..<size).map { i in
                TaskSpec(id: "s\(i)", commandLine: "/bin/true", dependsOn: TaskDependencies(taskIds: ["f\(i)"]))
            }
            let stale = size * 2 / 3
            second[stale] = TaskSpec(id: "OLD", commandLine: "/bin/true")
            second[size - 1] = TaskSpec(id: "S0", commandLine: "/bin/true")
            let results = try await h.engine.addTasks(jobID: "job", second)
            let expected = (0..<size).map { $0 == stale || $0 == size - 1 ? "TaskExists" : nil } as [String?]
            #expect(results.map { $0.error?.code } == expected)
            #expect(results.map(\.taskId) == second.map(\.id))
            let storedSecond = second.indices.filter { expected[$0] == nil }.map { second[$0].id }
            let ids = ["old"] + first.map(\.id) + storedSecond
            // Stored once each, keyed in the order given, with one event each in the same order.
            #expect(try await h.sql("SELECT id FROM task ORDER BY pk").map { $0[0] } == ids)
            #expect(try await h.sql("SELECT task_id FROM event WHERE kind = 'task.added' ORDER BY seq").map { $0[0] } == ids)
            #expect(try await h.sql("SELECT tasks FROM task_count WHERE bucket = 'active'") == [["\(ids.count)"]])
            // Every dependency row belongs to the task that named it.
            let dependencies = try await h.sql(
                "SELECT t.id, group_concat(d.depends_on_id, ' ') FROM (SELECT * FROM task_dependency ORDER BY depends_on_id) d "
                    + "JOIN task t ON t.pk = d.task_pk GROUP BY t.id ORDER BY t.pk")
            var wanted: [[String]] = (1..<size).map { i in ["f\(i)", ["f\(i - 1)", "x\(i)"].sorted().joined(separator: " ")] }
            wanted += second.indices.filter { expected[$0] == nil }.map { ["s\($0)", "f\($0)"] }
            #expect(dependencies == wanted)
            // The eTags reported are the stored ones.
            for result in results where result.status == "success" {
                #expect(try await h.sql("SELECT e_tag FROM task WHERE id = '\(result.taskId)'") == [[result.eTag ?? ""]])
            }
        }
    }

    /// Calls made at once may be stored by one transaction; each still gets its own answer, a call
    /// naming a missing job fails alone, and a duplicate id across two calls is stored once.
    /// The command-line check scans for a character that is not blank instead of trimming; it must
    /// refuse and accept exactly what trimming whitespace and newlines with Foundation does.
    @Test(arguments: [
        "", " ", "\t\n\r", "\u{0B}\u{0C}", "\u{85}", "\u{A0}", "\u{2028}\u{2029}", "\u{3000}", "\u{200B}", "\u{0}",
        "x", " /bin/true ", "\t\u{3000}a", "\u{1F600}", "\u{7F}", "\u{1C}", "é",
    ])
    func aCommandLineIsBlankExactlyWhenTrimmingLeavesNothing(_ value: String) {
        #expect(Validate.hasNonBlank(value) == !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    @Test func concurrentCallsAreEachAnsweredForTheirOwnTasks() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.engine.createJob(JobSpec(id: "a", poolID: "nowhere"))
            try await h.engine.createJob(JobSpec(id: "B", poolID: "nowhere"))
            let engine = h.engine
            let answers = try await withThrowingTaskGroup(of: (Int, [TaskAddResult]?, String?).self) { group in
                for call in 0..<8 {
                    group.addTask {
                        let job = call == 7 ? "missing" : (call % 2 == 0 ? "a" : "b")
                        var specs = (0..<50).map { TaskSpec(id: "c\(call)-\($0)", commandLine: "/bin/true") }
                        if call == 0 || call == 2 { specs.append(TaskSpec(id: "shared", commandLine: "/bin/true")) }
                        do {
                            return (call, try await engine.addTasks(jobID: job, specs), nil)
                        } catch let error as BookendError {
                            return (call, nil, error.code)
                        }
                    }
                }
                var answers: [Int: ([TaskAddResult]?, String?)] = [:]
                for try await (call, results, code) in group { answers[call] = (results, code) }
                return answers
            }
            #expect(answers[7]?.1 == "JobNotFound")
            for call in 0..<7 {
                let results = try #require(answers[call]?.0, "call \(call): \(String(describing: answers[call]?.1))")
                let own = results.filter { $0.taskId != "shared" }
                #expect(own.map(\.taskId) == (0..<50).map { "c\(call)-\($0)" })
                #expect(own.allSatisfy { $0.status == "success" })
            }
            // "shared" was added by calls 0 and 2: one stored it, the other was told it exists.
            let shared = [0, 2].compactMap { answers[$0]?.0?.first { $0.taskId == "shared" } }
            #expect(shared.map(\.status).sorted() == ["clienterror", "success"])
            #expect(shared.compactMap { $0.error?.code } == ["TaskExists"])
            #expect(try await h.sql("SELECT j.id, count(*) FROM task t JOIN job j ON j.pk = t.job_pk GROUP BY j.id ORDER BY j.pk") == [["a", "201"], ["B", "150"]])
            #expect(try await h.sql("SELECT bucket, tasks FROM task_count ORDER BY job_pk") == [["active", "201"], ["active", "150"]])
            #expect(try await h.sql("SELECT count(*) FROM event WHERE kind = 'task.added'") == [["351"]])
            // Each reported eTag is the stored one.
            var stored: [String: String] = [:]
            for row in try await h.sql("SELECT j.id || '/' || t.id, t.e_tag FROM task t JOIN job j ON j.pk = t.job_pk") { stored[row[0]] = row[1] }
            for call in 0..<7 {
                for result in answers[call]?.0 ?? [] where result.status == "success" {
                    #expect(stored["\(call % 2 == 0 ? "a" : "B")/\(result.taskId)"] == result.eTag)
                }
            }
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
            // And page reads take it back by hand (TaskPageTests covers the shapes they refuse).
            #expect(StoredTaskSpec.commonIdentity(direct) == stored.userIdentity)
        }
    }
}
