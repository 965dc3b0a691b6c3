import BatchModels
import Client
import Foundation
import Testing

/// Every entity the API returns decodes into BatchModels and encodes back to the same JSON: the same
/// key paths and the same values. A property the API adds without a model breaks this test, so the
/// models and the wire cannot drift apart.
@Suite struct ModelRoundTripTests {
    /// Decodes `reply` as `T`, encodes it again, and expects the JSON the server sent.
    @discardableResult
    func roundTrip<T: Codable>(_ type: T.Type, _ reply: Reply, sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
        let model = try JSONDecoder().decode(T.self, from: reply.body)
        let again = try BatchJSON.encode(model)
        let sent = try JSONSerialization.jsonObject(with: reply.body)
        let back = try JSONSerialization.jsonObject(with: again)
        let sentPaths = Self.keyPaths(sent)
        let backPaths = Self.keyPaths(back)
        #expect(sentPaths.subtracting(backPaths).sorted() == [], "lost by \(T.self)", sourceLocation: sourceLocation)
        #expect(backPaths.subtracting(sentPaths).sorted() == [], "added by \(T.self)", sourceLocation: sourceLocation)
        #expect(try Self.canonical(sent) == Self.canonical(back), "values changed by \(T.self): \(reply.text)", sourceLocation: sourceLocation)
        return model
    }

    /// Every key path of a JSON value (`executionInfo.failureInfo.code`, `value[].id`).
    static func keyPaths(_ value: Any, prefix: String = "") -> Set<String> {
        var paths: Set<String> = []
        if let object = value as? [String: Any] {
            for (key, member) in object {
                let path = prefix.isEmpty ? key : "\(prefix).\(key)"
                paths.insert(path)
                paths.formUnion(keyPaths(member, prefix: path))
            }
        } else if let array = value as? [Any] {
            for item in array { paths.formUnion(keyPaths(item, prefix: prefix + "[]")) }
        }
        return paths
    }

    static func canonical(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    func get(_ server: LiveServer, _ path: String, query: [(String, String)] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws -> Reply {
        let reply = try await server.send(.get, path, query: query)
        #expect(reply.status == 200, "GET \(path): \(reply.text)", sourceLocation: sourceLocation)
        return reply
    }

    @Test func everyEntityTheAPIReturnsRoundTripsThroughTheModels() async throws {
        try await withServer { server in
            // A pool with a start task and stored-only properties, so every optional group is present.
            let pool = try await server.send(.post, "/pools", body: #"""
                {"id":"rt","displayName":"round trip","vmSize":"small","targetDedicatedNodes":1,"taskSlotsPerNode":2,
                 "virtualMachineConfiguration":{"imageReference":{"publisher":"canonical","offer":"ubuntu","sku":"22_04-lts","version":"latest"},"nodeAgentSKUId":"batch.node.ubuntu 22.04"},
                 "startTask":{"commandLine":"/bin/true","environmentSettings":[{"name":"A","value":"1"}],"waitForSuccess":true,"maxTaskRetryCount":1},
                 "taskSchedulingPolicy":{"nodeFillType":"pack"},"metadata":[{"name":"owner","value":"tests"}]}
                """#)
            #expect(pool.status == 201, "\(pool.text)")
            let job = try await server.send(.post, "/jobs", body: #"""
                {"id":"rtjob","displayName":"round trip","priority":5,"usesTaskDependencies":true,"poolInfo":{"poolId":"rt"},
                 "constraints":{"maxTaskRetryCount":0},"commonEnvironmentSettings":[{"name":"B","value":"2"}],
                 "metadata":[{"name":"owner","value":"tests"}],"onTaskFailure":"performexitoptionsjobaction",
                 "jobPreparationTask":{"commandLine":"/bin/true","environmentSettings":[{"name":"C","value":"3"}]},
                 "jobReleaseTask":{"commandLine":"/bin/true","maxWallClockTime":"PT5M"}}
                """#)
            #expect(job.status == 201, "\(job.text)")
            let added = try await server.send(.post, "/jobs/rtjob/addtaskcollection", body: #"""
                {"value":[
                  {"id":"ok","commandLine":"/bin/sh -c 'echo out > out.txt'","constraints":{"maxTaskRetryCount":0}},
                  {"id":"bad","commandLine":"/bin/sh -c 'exit 3'","exitConditions":{"exitCodes":[{"code":3,"exitOptions":{"jobAction":"none","dependencyAction":"satisfy"}}],"default":{"jobAction":"none"}}},
                  {"id":"after","commandLine":"/bin/true","dependsOn":{"taskIds":["ok"]},"environmentSettings":[{"name":"D","value":"4"}]}
                ]}
                """#)
            #expect(added.status == 200, "\(added.text)")
            let results = try roundTrip(BatchTaskAddCollectionResult.self, added)
            #expect(results.value.map(\.status) == [.success, .success, .success])
            // A refused item carries a Batch error.
            let again = try await server.send(.post, "/jobs/rtjob/addtaskcollection", body: #"{"value":[{"id":"ok","commandLine":"/bin/true"}]}"#)
            let refused = try roundTrip(BatchTaskAddCollectionResult.self, again)
            #expect(refused.value.first?.status == .clientError)
            #expect(refused.value.first?.error?.code == "TaskExists")

            #expect(try await eventually(60) {
                let counts = try JSONDecoder().decode(BatchTaskCountsResult.self, from: try await server.send(.get, "/jobs/rtjob/taskcounts").body)
                return counts.taskCounts.completed == 3
            })
            try roundTrip(BatchTaskCountsResult.self, try await get(server, "/jobs/rtjob/taskcounts"))

            try roundTrip(BatchPoolList.self, try await get(server, "/pools"))
            let shownPool = try roundTrip(BatchPool.self, try await get(server, "/pools/rt"))
            #expect(shownPool.taskSchedulingPolicy?.nodeFillType == .pack)
            let nodes = try roundTrip(BatchNodeList.self, try await get(server, "/pools/rt/nodes"))
            let nodeID = try #require(nodes.value.first?.id)
            let node = try roundTrip(BatchNode.self, try await get(server, "/pools/rt/nodes/\(nodeID)"))
            #expect(node.startTaskInfo?.state == .completed)
            try roundTrip(BatchNodeFileList.self, try await get(server, "/pools/rt/nodes/\(nodeID)/files", query: [("recursive", "true")]))
            let counts = try roundTrip(BatchPoolNodeCountsList.self, try await get(server, "/nodecounts"))
            let poolCounts = try #require(counts.value.first { $0.poolId == "rt" })
            #expect(poolCounts.dedicated?.total == 1)
            #expect(poolCounts.lowPriority?.total == 0)

            try roundTrip(BatchJobList.self, try await get(server, "/jobs"))
            let shownJob = try roundTrip(BatchJob.self, try await get(server, "/jobs/rtjob"))
            #expect(shownJob.bookendWaitReason?.state == .notWaiting)
            let tasks = try roundTrip(BatchTaskList.self, try await get(server, "/jobs/rtjob/tasks"))
            #expect(Set(tasks.value.map(\.id)) == ["ok", "bad", "after"])
            for id in ["ok", "bad", "after"] {
                let task = try roundTrip(BatchTask.self, try await get(server, "/jobs/rtjob/tasks/\(id)"))
                #expect(task.state == .completed)
                #expect(task.executionInfo?.result == (id == "bad" ? .failure : .success))
            }
            // `$select` keeps the named properties of every item, and nothing else.
            let selected = try roundTrip(BatchTaskList.self, try await get(server, "/jobs/rtjob/tasks", query: [("$select", "id,state")]))
            #expect(selected.value.count == 3)
            #expect(selected.value.allSatisfy { $0.state == .completed && $0.commandLine == nil && $0.url == nil })
            let selectedJob = try roundTrip(BatchJob.self, try await get(server, "/jobs/rtjob", query: [("$select", "id,executionInfo")]))
            #expect(selectedJob.odataMetadata != nil && selectedJob.executionInfo?.poolId == "rt" && selectedJob.poolInfo == nil)
            // A page that links to the next one.
            let firstPage = try roundTrip(BatchTaskList.self, try await get(server, "/jobs/rtjob/tasks", query: [("maxresults", "1")]))
            #expect(firstPage.odataNextLink != nil)
            try roundTrip(BatchNodeFileList.self, try await get(server, "/jobs/rtjob/tasks/ok/files", query: [("recursive", "true")]))

            // Release runs once the job ends; then the per-node record carries both executions.
            #expect(try await server.send(.post, "/jobs/rtjob/terminate", body: #"{"terminateReason":"done"}"#).status == 202)
            #expect(try await eventually(60) {
                let job = try JSONDecoder().decode(BatchJob.self, from: try await server.send(.get, "/jobs/rtjob").body)
                return job.state == .completed
            })
            let status = try roundTrip(BatchJobPreparationAndReleaseTaskStatusList.self,
                try await get(server, "/jobs/rtjob/jobpreparationandreleasetaskstatus"))
            #expect(status.value.first?.jobReleaseTaskExecutionInfo?.state == .completed)
            let ended = try roundTrip(BatchJob.self, try await get(server, "/jobs/rtjob"))
            #expect(ended.executionInfo?.terminateReason == "done")

            // A job blocked by a preparation that fails on the only node: its scheduling error and wait reason.
            let blocked = try await server.send(.post, "/jobs", body: #"""
                {"id":"rtblocked","poolInfo":{"poolId":"rt"},"jobPreparationTask":{"commandLine":"/bin/sh -c 'echo boom >&2; exit 3'"}}
                """#)
            #expect(blocked.status == 201, "\(blocked.text)")
            #expect(try await server.send(.post, "/jobs/rtblocked/tasks", body: #"{"id":"t","commandLine":"/bin/true"}"#).status == 201)
            #expect(try await eventually(60) {
                let job = try JSONDecoder().decode(BatchJob.self, from: try await server.send(.get, "/jobs/rtblocked").body)
                return job.bookendWaitReason?.state == .blocked
            })
            let blockedJob = try roundTrip(BatchJob.self, try await get(server, "/jobs/rtblocked"))
            #expect(blockedJob.executionInfo?.schedulingError?.code == "JobPreparationTaskFailed")
            #expect(blockedJob.bookendWaitReason?.failedPreparations?.first?.exitCode == 3)
            try roundTrip(BatchTask.self, try await get(server, "/jobs/rtblocked/tasks/t"))
            try roundTrip(BatchJobPreparationAndReleaseTaskStatusList.self,
                try await get(server, "/jobs/rtblocked/jobpreparationandreleasetaskstatus"))

            // The error body.
            let missing = try await server.send(.get, "/jobs/nope")
            #expect(missing.status == 404)
            let error = try roundTrip(BatchError.self, missing)
            #expect(error.code == "JobNotFound")
        }
    }

    @Test func theTypedClientFollowsNextLinksAndDecodesErrors() async throws {
        try await withServer { server in
            let client = BatchHTTPClient(
                endpoint: try #require(URL(string: "http://127.0.0.1:\(server.port)")),
                signer: try SharedKeySigner(account: server.account, base64Key: server.key.base64EncodedString()))
            _ = try await client.send(try BatchOperations.createPool(BatchPoolCreateOptions(id: "typed", vmSize: "small", targetDedicatedNodes: 1)))
            _ = try await client.send(try BatchOperations.createJob(BatchJobCreateOptions(id: "typedjob", poolInfo: BatchPoolInfo(poolId: "typed"))))
            let group = BatchTaskGroup(value: (1...5).map { BatchTaskCreateOptions(id: "t\($0)", commandLine: "/bin/true") })
            let added = try await client.send(try BatchOperations.createTaskCollection("typedjob", group))
            #expect(added.value.allSatisfy { $0.status == .success })
            // Two items a page: three pages, all followed.
            let tasks = try await client.list(BatchRequest<BatchTaskList>("GET", "/jobs/typedjob/tasks", query: [("maxresults", "2")], expect: [200]))
            #expect(tasks.map(\.id).sorted() == ["t1", "t2", "t3", "t4", "t5"])
            let pool = try await client.get(BatchPool.self, "/pools/typed")
            #expect(pool.id == "typed")
            await #expect {
                try await client.send(BatchOperations.getJob("nope"))
            } throws: { error in
                (error as? ClientError)?.status == 404 && (error as? ClientError)?.code == "JobNotFound"
            }
        }
    }
}
