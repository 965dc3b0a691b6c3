import Foundation
import SQLite
import TestSupport
import Testing
@testable import Bookend

/// A page of tasks is one statement whose rows are built by the same code as a single task's read,
/// and the common stored spec is read back without JSONDecoder. Both must give exactly what the
/// reads they replaced gave: the single-task read and a full decode of the stored spec.
@Suite struct TaskPageTests {
    /// Stored specs and the identity the hand reader must find in them: nil sends the spec to
    /// JSONDecoder (anything but the exact common shape, however close).
    static let storedSpecs: [(String, UserIdentity?)] = [
        (#"{"commandLine":"/bin/true","id":"t","userIdentity":{"autoUser":{"elevationLevel":"nonadmin","scope":"pool"}}}"#,
         UserIdentity(autoUser: .init(scope: "pool", elevationLevel: "nonadmin"))),
        (#"{"commandLine":"a \"b\" \\ c","displayName":"x\"}y","id":"t","userIdentity":{"autoUser":{"elevationLevel":"admin","scope":"task"}}}"#,
         UserIdentity(autoUser: .init(scope: "task", elevationLevel: "admin"))),
        // Anything else present, or the identity in another form, is not the common shape.
        (#"{"commandLine":"x","environmentSettings":[{"name":"A","value":"1"}],"id":"t","userIdentity":{"autoUser":{"elevationLevel":"nonadmin","scope":"pool"}}}"#, nil),
        (#"{"affinityInfo":{"affinityId":"TVM:n"},"commandLine":"x","id":"t","userIdentity":{"autoUser":{"elevationLevel":"nonadmin","scope":"pool"}}}"#, nil),
        (#"{"commandLine":"x","id":"t","resourceFiles":[],"userIdentity":{"autoUser":{"elevationLevel":"nonadmin","scope":"pool"}}}"#, nil),
        (#"{"commandLine":"x","id":"t","userIdentity":{"autoUser":{"elevationLevel":"nonadmin","scope":"pool"},"username":"u"}}"#, nil),
        (#"{"commandLine":"x","id":"t","userIdentity":{"autoUser":{"scope":"pool"}}}"#, nil),
        (#"{"commandLine":"x","id":"t","userIdentity":{"autoUser":{"elevationLevel":"non\u0061dmin","scope":"pool"}}}"#, nil),
        (#"{"commandLine":"x","id":"t","userIdentity":{"autoUser":{"elevationLevel":"nonadmin","scope":"pool"}}} "#, nil),
        (#"{"commandLine":"x","id":"t","userIdentity":{"autoUser":{"elevationLevel":"nonadmin","scope":"pool"}}"#, nil),
        (#"{"commandLine":"x\"#, nil),
        (#"{"id":"t","commandLine":"x","userIdentity":{"autoUser":{"elevationLevel":"nonadmin","scope":"pool"}}}"#, nil),
        ("{}", nil),
    ]

    @Test(arguments: storedSpecs)
    func theHandReaderTakesOnlyTheCommonShapeAndAgreesWithTheDecoder(_ stored: String, _ expected: UserIdentity?) throws {
        let identity = StoredTaskSpec.commonIdentity(stored)
        #expect(identity == expected)
        if let identity {
            // Whatever it takes, JSONDecoder reads the same identity from it.
            #expect(try JSONDecoder().decode(TaskSpec.self, from: Data(stored.utf8)).userIdentity == identity)
        }
    }

    /// The scheduler's reader (`StoredTaskSpec.common`) builds the whole spec from the text: when it
    /// answers, JSONDecoder gives exactly that spec; it answers for the plain common shape (with or
    /// without a display name, any UTF-8) and leaves strings with escapes, and every other shape, to
    /// the decoder.
    @Test(arguments: storedSpecs.map(\.0) + [
        #"{"commandLine":"/bin/echo grüße ✓","displayName":"name","id":"t-1","userIdentity":{"autoUser":{"elevationLevel":"nonadmin","scope":"task"}}}"#,
        #"{"commandLine":"","id":"t","userIdentity":{"autoUser":{"elevationLevel":"admin","scope":"pool"}}}"#,
    ])
    func theSchedulersReaderAgreesWithTheDecoderOnTheWholeSpec(_ stored: String) throws {
        let spec = StoredTaskSpec.common(stored)
        let plain = StoredTaskSpec.commonIdentity(stored) != nil && !stored.contains("\\")
        #expect((spec != nil) == plain)
        if let spec { #expect(try JSONDecoder().decode(TaskSpec.self, from: Data(stored.utf8)) == spec) }
    }

    /// A task with every optional property the library stores set.
    static func fullTask(_ id: String) -> TaskSpec {
        var spec = TaskSpec(
            id: id, commandLine: "/bin/sh -c 'exit 3'", environmentSettings: [EnvironmentSetting(name: "A", value: "1"), EnvironmentSetting(name: "B", value: nil)],
            resourceFiles: [ResourceFile(httpUrl: "https://example.invalid/x", filePath: "x")],
            constraints: TaskConstraints(maxWallClockTime: "PT1H", retentionTime: "P1D", maxTaskRetryCount: 2), requiredSlots: 1,
            userIdentity: UserIdentity(autoUser: .init(scope: "task", elevationLevel: "admin")),
            dependsOn: TaskDependencies(taskIds: ["plain"], taskIdRanges: [TaskIDRange(start: 1, end: 2)]),
            exitConditions: ExitConditions(default: ExitOptions(jobAction: "none", dependencyAction: "satisfy")))
        spec.displayName = "every \"field\""
        spec.affinityInfo = AffinityInfo(affinityId: "TVM:nowhere")
        spec.containerSettings = .object(["imageName": .string("busybox")])
        spec.outputFiles = .array([.object(["filePattern": .string("*.txt")])])
        spec.applicationPackageReferences = .array([.object(["applicationId": .string("app")])])
        return spec
    }

    @Test func aPageIsTheSingleReadsOfItsTasksInIdOrder() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            // A job nothing runs for (every stored property, as added) and one whose task ran on a node
            // (node, execution and failure columns set).
            var waiting = JobSpec(id: "Waiting", poolID: "nowhere")
            waiting.usesTaskDependencies = true
            try await h.engine.createJob(waiting)
            var named = TaskSpec(id: "named", commandLine: "/bin/true")
            named.displayName = "shown"
            let results = try await h.engine.addTasks(jobID: "waiting", [
                TaskSpec(id: "plain", commandLine: "/bin/true"), named, Self.fullTask("full"), Self.fullTask("Full2"),
                TaskSpec(id: "b", commandLine: "/bin/true", environmentSettings: [EnvironmentSetting(name: "ONLY", value: "this")]),
            ])
            #expect(results.allSatisfy { $0.status == "success" }, "\(results)")
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "ran", poolID: "pool"))
            try await h.engine.addTasks(jobID: "ran", [TaskSpec(id: "ok", commandLine: "/bin/true"), TaskSpec(id: "fails", commandLine: "/bin/sh -c 'exit 3'")])
            try await h.engine.waitForTasks(jobID: "ran", timeout: .seconds(60))

            // The reads block on SQLite: they run on a thread of their own, not the test's.
            let engine = h.engine
            for (job, ids) in [("waiting", ["b", "full", "Full2", "named", "plain"]), ("ran", ["fails", "ok"])] {
                let (page, singles, paged) = try await onOwnThread { () throws -> (Engine.TaskPage, [JobTask], [JobTask]) in
                    // Asked for in another case, the page names the job as it was created.
                    let page = try engine.taskPage(jobID: job.uppercased(), afterID: nil, limit: 1000)
                    let singles = try page.tasks.map { try engine.task(jobID: job, taskID: $0.id) }
                    // Pages of two, each starting after the last id of the one before.
                    var paged: [JobTask] = []
                    var after: String?
                    while true {
                        let next = try engine.tasks(jobID: job, afterID: after, limit: 2)
                        paged += next
                        guard next.count == 2, let last = next.last else { break }
                        after = last.id
                    }
                    return (page, singles, paged)
                }
                #expect(page.jobID == (job == "waiting" ? "Waiting" : "ran"))
                let tasks = try page.tasks
                #expect(tasks.map(\.id) == ids)
                #expect(try (0..<page.count).map { try page.id(at: $0) } == ids)
                #expect(tasks == singles)
                #expect(paged == tasks)
                if job == "ran" {
                    #expect(tasks.allSatisfy { $0.nodeInfo?.taskRootDirectory == "workitems/ran/job-1/\($0.id)" })
                    #expect(tasks.first { $0.id == "fails" }?.executionInfo.exitCode == 3)
                }
            }

            // Every row's spec, read by hand or not, is what a full decode of the stored text gives.
            let path = (h.directory as NSString).appendingPathComponent("bookend.db")
            let specs = try await onOwnThread { () throws -> [(read: TaskSpec?, decoded: TaskSpec?, byHand: Bool)] in
                let db = try Connection(path: path, options: ConnectionOptions(readOnly: true, create: false))
                return try db.query(Engine.taskSelect).map { row in
                    (try StoredTaskSpec.decode(row), try row.json(TaskSpec.self, "spec", table: "task"),
                     StoredTaskSpec.commonIdentity(try row.text("spec", table: "task")) != nil)
                }
            }
            #expect(specs.count == 7)
            for spec in specs { #expect(spec.read != nil && spec.read == spec.decoded) }
            let handRead = specs.filter(\.byHand).count
            // plain, named, ok and fails take the hand path; b (an environment) and the full tasks do not.
            #expect(handRead == 4)
        }
    }
}
