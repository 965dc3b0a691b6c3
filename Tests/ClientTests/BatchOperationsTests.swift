import BatchModels
import Client
import Foundation
import Testing

/// Each operation's method, path, success statuses and body, against the REST surface of the wire
/// contract: a wrong verb or status here would only show as a confusing error from a live daemon.
@Suite struct BatchOperationsTests {
    struct Expected: Sendable, CustomTestStringConvertible {
        let method: String
        let path: String
        let expect: Set<Int>
        let body: String?
        /// The operation built, or why building it failed (encoding its body).
        let request: Result<Sent, any Error>
        var testDescription: String { "\(method) \(path)" }
    }

    /// A request with its response type erased, so one table holds them all.
    struct Sent: Sendable {
        let method: String
        let path: String
        let query: [(String, String)]
        let expect: Set<Int>
        let body: Data?
        init<T>(_ request: BatchRequest<T>) {
            (method, path, query, expect, body) = (request.method, request.path, request.query, request.expect, request.body)
        }
    }

    static func row<T>(_ method: String, _ path: String, _ expect: Set<Int>, body: String? = nil,
                       _ request: @autoclosure () throws -> BatchRequest<T>) -> Expected {
        Expected(method: method, path: path, expect: expect, body: body, request: Result { Sent(try request()) })
    }

    static let operations: [Expected] = [
        row("POST", "/pools", [201], body: #"{"id":"p","targetDedicatedNodes":2}"#,
            try BatchOperations.createPool(BatchPoolCreateOptions(id: "p", targetDedicatedNodes: 2))),
        row("GET", "/pools", [200], BatchOperations.listPools()),
        row("GET", "/pools/p", [200], BatchOperations.getPool("p")),
        row("POST", "/pools/p/resize", [202], body: #"{"targetDedicatedNodes":0}"#,
            try BatchOperations.resizePool("p", BatchPoolResizeOptions(targetDedicatedNodes: 0))),
        row("DELETE", "/pools/p", [202], BatchOperations.deletePool("p")),
        row("GET", "/pools/p/nodes", [200], BatchOperations.listNodes("p")),
        row("GET", "/pools/p/nodes/n", [200], BatchOperations.getNode("p", "n")),
        row("POST", "/pools/p/nodes/n/reboot", [202], body: #"{"nodeRebootOption":"taskcompletion"}"#,
            try BatchOperations.rebootNode("p", "n", BatchNodeRebootOptions(nodeRebootOption: .taskCompletion))),
        row("POST", "/jobs", [201], body: #"{"id":"j","poolInfo":{"poolId":"p"}}"#,
            try BatchOperations.createJob(BatchJobCreateOptions(id: "j", poolInfo: BatchPoolInfo(poolId: "p")))),
        row("GET", "/jobs", [200], BatchOperations.listJobs()),
        row("GET", "/jobs/j", [200], BatchOperations.getJob("j")),
        row("POST", "/jobs/j/terminate", [202], body: "{}", try BatchOperations.terminateJob("j", BatchJobTerminateOptions())),
        row("DELETE", "/jobs/j", [202], BatchOperations.deleteJob("j")),
        row("POST", "/jobs/j/disable", [202], body: #"{"disableTasks":"wait"}"#,
            try BatchOperations.disableJob("j", BatchJobDisableOptions(disableTasks: .wait))),
        row("POST", "/jobs/j/enable", [202], BatchOperations.enableJob("j")),
        row("GET", "/jobs/j/taskcounts", [200], BatchOperations.getJobTaskCounts("j")),
        row("GET", "/jobs/j/jobpreparationandreleasetaskstatus", [200], BatchOperations.listJobPreparationAndReleaseTaskStatus("j")),
        row("POST", "/jobs/j/tasks", [201], body: #"{"commandLine":"/bin/true","id":"t"}"#,
            try BatchOperations.createTask("j", BatchTaskCreateOptions(id: "t", commandLine: "/bin/true"))),
        row("POST", "/jobs/j/addtaskcollection", [200], body: #"{"value":[{"commandLine":"/bin/true","id":"t"}]}"#,
            try BatchOperations.createTaskCollection("j", BatchTaskGroup(value: [BatchTaskCreateOptions(id: "t", commandLine: "/bin/true")]))),
        row("GET", "/jobs/j/tasks", [200], BatchOperations.listTasks("j")),
        row("GET", "/jobs/j/tasks/t", [200], BatchOperations.getTask("j", "t")),
        row("POST", "/jobs/j/tasks/t/terminate", [204], BatchOperations.terminateTask("j", "t")),
        row("DELETE", "/jobs/j/tasks/t", [200], BatchOperations.deleteTask("j", "t")),
        row("POST", "/jobs/j/tasks/t/reactivate", [204], BatchOperations.reactivateTask("j", "t")),
        row("GET", "/jobs/j/tasks/t/files", [200], BatchOperations.listTaskFiles("j", "t")),
        // Ids and file paths travel as one segment each: `/` and spaces percent-encoded.
        row("GET", "/jobs/j%201/tasks/t/files/wd%2Fout%20dir%2Fx.txt", [200], BatchOperations.getTaskFile("j 1", "t", path: "wd/out dir/x.txt")),
    ]

    @Test(arguments: operations) func operationMatchesTheRESTSurface(_ expected: Expected) throws {
        let request = try expected.request.get()
        #expect(request.method == expected.method)
        #expect(request.path == expected.path)
        #expect(request.expect == expected.expect)
        #expect(request.body.map { String(decoding: $0, as: UTF8.self) } == expected.body)
    }

    @Test func aFilterTravelsAsDollarFilter() {
        let request = BatchOperations.listTasks("j", filter: "state eq 'completed'")
        #expect(request.query.map(\.0) == ["$filter"])
        #expect(request.query.map(\.1) == ["state eq 'completed'"])
        #expect(BatchOperations.listTasks("j").query.isEmpty)
    }
}
