import Bookend
import Foundation
import Testing

@Suite struct NodeAndConditionTests {
    func idleNode(_ server: LiveServer, pool: String) async throws -> String {
        #expect(try await server.send(.post, "/pools", body: #"{"id":"\#(pool)","vmSize":"small","targetDedicatedNodes":1}"#).status == 201)
        var nodeID = ""
        #expect(try await eventually {
            let nodes = try await server.send(.get, "/pools/\(pool)/nodes", query: [("$filter", "state eq 'idle'")])
            nodeID = (nodes.json["value"] as? [[String: Any]])?.first?["id"] as? String ?? ""
            return !nodeID.isEmpty
        })
        return nodeID
    }

    @Test func schedulingAndReboot() async throws {
        try await withServer { server in
            let nodeID = try await idleNode(server, pool: "np")
            let base = "/pools/np/nodes/\(nodeID)"
            let counts = try await server.send(.get, "/nodecounts")
            let dedicated = (counts.json["value"] as? [[String: Any]])?.first?["dedicated"] as? [String: Any]
            #expect(dedicated?["idle"] as? Int == 1)
            #expect(dedicated?["total"] as? Int == 1)
            #expect(dedicated?["startTaskFailed"] as? Int == 0)
            #expect(try await server.send(.post, "\(base)/disablescheduling", body: #"{"nodeDisableSchedulingOption":"taskcompletion"}"#).status == 200)
            #expect(try await server.send(.post, "\(base)/disablescheduling").code == "NodeAlreadyInTargetSchedulingState")
            #expect(try await server.send(.get, base).json["schedulingState"] as? String == "disabled")
            #expect(try await server.send(.post, "/jobs", body: #"{"id":"nj","poolInfo":{"poolId":"np"}}"#).status == 201)
            #expect(try await server.send(.post, "/jobs/nj/tasks", body: #"{"id":"t","commandLine":"/bin/true"}"#).status == 201)
            // A task of another pool, added after `t`, runs to completion: dispatch has passed `t` over.
            try await server.engine.createPool(PoolSpec(id: "sentinel", targetDedicatedNodes: 1, taskSlotsPerNode: 1))
            try await server.engine.createJob(JobSpec(id: "sentinel", poolID: "sentinel"))
            try await server.engine.addTask(jobID: "sentinel", TaskSpec(id: "s", commandLine: "/bin/true"))
            try await server.engine.waitForTasks(jobID: "sentinel", timeout: .seconds(60))
            #expect(try await server.send(.get, "/jobs/nj/tasks/t").json["state"] as? String == "active")
            #expect(try await ResourceTests.sql(server, "SELECT count(*) FROM event WHERE job_id = 'nj' AND kind = 'task.running'") == "0\n")
            #expect(try await server.send(.post, "\(base)/enablescheduling").status == 200)
            #expect(try await eventually { (try await server.send(.get, "/jobs/nj/tasks/t").json["state"] as? String) == "completed" })

            let reboot = try await server.send(.post, "\(base)/reboot", body: #"{"nodeRebootOption":"requeue"}"#)
            #expect(reboot.status == 202)
            let sideways = try await server.send(.post, "\(base)/reboot", body: #"{"nodeRebootOption":"sideways"}"#)
            #expect(sideways.status == 400, "\(sideways.text)")
            #expect(sideways.code == "InvalidPropertyValue")
            #expect(sideways.values["PropertyName"] == "nodeRebootOption")
            #expect(try await eventually { (try await server.send(.get, base).json["state"] as? String) == "idle" })
            #expect(try await server.send(.post, "/pools/np/nodes/nonode/reboot").code == "NodeNotFound")
        }
    }

    @Test func preconditionsOnJobsAndTasks() async throws {
        try await withServer { server in
            #expect(try await server.send(.post, "/jobs", body: #"{"id":"cj","poolInfo":{"poolId":"none"}}"#).status == 201)
            let job = try await server.send(.get, "/jobs/cj")
            let eTag = job.header("ETag") ?? ""
            let stale = try await server.send(.patch, "/jobs/cj", body: #"{"priority":3}"#, headers: ["If-Match": "0xDEADBEEF"])
            #expect(stale.status == 412)
            #expect(stale.code == "ConditionNotMet")
            #expect(try await server.send(.get, "/jobs/cj").json["priority"] as? Int == 0)
            let fresh = try await server.send(.patch, "/jobs/cj", body: #"{"priority":3}"#, headers: ["If-Match": eTag])
            #expect(fresh.status == 200)
            #expect(fresh.header("ETag") != eTag)
            #expect(try await server.send(.get, "/jobs/cj", headers: ["If-None-Match": eTag]).status == 200)
            // Both ETag conditions at once: refused as a pair, for writes and reads, and nothing changes.
            let current = try await server.send(.get, "/jobs/cj").header("ETag") ?? ""
            let both = ["If-Match": current, "If-None-Match": current]
            let conflicting = try await server.send(.patch, "/jobs/cj", body: #"{"priority":4}"#, headers: both)
            #expect(conflicting.status == 400 && conflicting.code == "MultipleConditionHeadersNotSupported", "\(conflicting.text)")
            #expect(try await server.send(.get, "/jobs/cj", headers: both).code == "MultipleConditionHeadersNotSupported")
            #expect(try await server.send(.get, "/jobs/cj").json["priority"] as? Int == 3)
            let future = LiveServer.httpDate(Date().addingTimeInterval(3600))
            #expect(try await server.send(.get, "/jobs/cj", headers: ["If-Modified-Since": future]).status == 304)
            #expect(try await server.send(.get, "/jobs/cj", headers: ["If-Modified-Since": "yesterday"]).code == "InvalidHeaderValue")
            #expect(try await server.send(.get, "/jobs", query: [("timeout", "soon")]).code == "InvalidQueryParameterValue")
            #expect(try await server.send(.get, "/jobs", query: [("timeout", "90")]).status == 200)
        }
    }

    /// Twenty updates sent at once with the same `If-Match`: one wins, the others find the ETag it
    /// changed (412), so no update is lost without its client knowing. The same for a task's PUT.
    @Test func concurrentWritesWithOneETagSucceedOnce() async throws {
        try await withServer { server in
            #expect(try await server.send(.post, "/jobs", body: #"{"id":"race","poolInfo":{"poolId":"none"}}"#).status == 201)
            #expect(try await server.send(.post, "/jobs/race/tasks", body: #"{"id":"t","commandLine":"/bin/true"}"#).status == 201)
            let writes: [(String, Method, [String])] = [
                ("/jobs/race", .patch, (1...20).map { #"{"priority":\#($0)}"# }),
                ("/jobs/race/tasks/t", .put, (1...20).map { #"{"constraints":{"maxTaskRetryCount":\#($0)}}"# }),
            ]
            for (path, method, bodies) in writes {
                let eTag = try await server.send(.get, path).header("ETag") ?? ""
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for body in bodies { group.addTask { try await server.send(method, path, body: body, headers: ["If-Match": eTag]).status } }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(statuses.filter { $0 == 200 }.count == 1, "\(path): \(statuses.sorted())")
                #expect(statuses.filter { $0 == 412 }.count == 19, "\(path): \(statuses.sorted())")
            }
        }
    }

    @Test func taskCollectionErrorsLeaveNothingBehind() async throws {
        try await withServer { server in
            #expect(try await server.send(.post, "/jobs", body: #"{"id":"tj","poolInfo":{"poolId":"none"}}"#).status == 201)
            let malformed = try await server.send(.post, "/jobs/tj/addtaskcollection",
                body: #"{"value":[{"id":"a","commandLine":"x"},{"id":"b","commandLine":7}]}"#)
            #expect(malformed.status == 400)
            #expect(malformed.code == "InvalidPropertyValue")
            #expect(malformed.values["PropertyName"] == "value[1].commandLine")
            let tooMany = (0...100).map { #"{"id":"t\#($0)","commandLine":"x"}"# }.joined(separator: ",")
            let many = try await server.send(.post, "/jobs/tj/addtaskcollection", body: #"{"value":[\#(tooMany)]}"#)
            #expect(many.status == 400)
            #expect(many.code == "InvalidPropertyValue")
            #expect(try await server.send(.post, "/jobs/nojob/addtaskcollection", body: #"{"value":[{"id":"a","commandLine":"x"}]}"#).code == "JobNotFound")
            let mixed = try await server.send(.post, "/jobs/tj/addtaskcollection",
                body: #"{"value":[{"id":"ok","commandLine":"x"},{"id":"bad id","commandLine":"x"},{"id":"mi","commandLine":"x","multiInstanceSettings":{"numberOfInstances":2}}]}"#)
            let statuses = Dictionary(uniqueKeysWithValues: (mixed.json["value"] as? [[String: Any]] ?? []).map {
                ($0["taskId"] as? String ?? "", $0["status"] as? String ?? "")
            })
            #expect(statuses == ["ok": "success", "bad id": "clienterror", "mi": "clienterror"])
            let list = try await server.send(.get, "/jobs/tj/tasks")
            #expect((list.json["value"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["ok"])
            #expect(try await server.send(.post, "/jobs/tj/tasks", body: #"{"id":"dep","commandLine":"x","dependsOn":{"taskIds":["ok"]}}"#).code == "TaskDependenciesNotSpecifiedOnJob")
        }
    }
}

/// Conditions on files (§6.1), as on the other entities: a GET or HEAD of a current copy answers 304,
/// a failed `If-Match` or `If-Unmodified-Since` 412, and a conditional DELETE deletes only the file
/// the client saw.
@Suite struct FileConditionTests {
    @Test func fileReadsAndDeletesHonourTheirConditions() async throws {
        try await withServer { server in
            try await FileSafetyTests.run(server, "cond", "echo kept > keep.txt")
            let path = "/jobs/fj/tasks/cond/files/wd%2Fkeep.txt"
            let first = try await server.send(.get, path)
            #expect(first.status == 200 && first.text == "kept\n")
            let eTag = try #require(first.header("ETag"))
            let future = LiveServer.httpDate(Date().addingTimeInterval(3600))
            let past = LiveServer.httpDate(Date(timeIntervalSince1970: 0))
            for method in [Method.get, .head] {
                #expect(try await server.send(method, path, headers: ["If-None-Match": eTag]).status == 304)
                #expect(try await server.send(method, path, headers: ["If-Modified-Since": future]).status == 304)
                #expect(try await server.send(method, path, headers: ["If-Modified-Since": past]).status == 200)
                #expect(try await server.send(method, path, headers: ["If-Match": "0xDEADBEEF"]).status == 412)
                #expect(try await server.send(method, path, headers: ["If-Unmodified-Since": past]).status == 412)
                #expect(try await server.send(method, path, headers: ["If-Match": eTag]).status == 200)
            }
            let stale = try await server.send(.delete, path, headers: ["If-Match": "0xDEADBEEF"])
            #expect(stale.status == 412)
            #expect(stale.code == "ConditionNotMet")
            #expect(try await server.send(.get, path).text == "kept\n")
            #expect(try await server.send(.delete, path, headers: ["If-Unmodified-Since": past]).status == 412)
            #expect(try await server.send(.delete, path, headers: ["If-Match": eTag]).status == 200)
            #expect(try await server.send(.get, path).status == 404)
        }
    }
}
