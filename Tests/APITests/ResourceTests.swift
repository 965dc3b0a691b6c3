import Dispatch
import Foundation
import TestSupport
import Testing

/// Pools, nodes, jobs and tasks over HTTP with a real engine.
@Suite struct ResourceTests {
    func makePool(_ server: LiveServer, _ id: String, nodes: Int = 1) async throws {
        let reply = try await server.send(.post, "/pools", body: #"{"id":"\#(id)","vmSize":"small","targetDedicatedNodes":\#(nodes),"taskSlotsPerNode":2}"#)
        #expect(reply.status == 201, "\(reply.text)")
    }

    /// `query` on the server's database through the sqlite3 program (read-only), waited for on a
    /// dispatch thread; its standard output.
    static func sql(_ server: LiveServer, _ query: String) async throws -> String {
        let database = server.dataDirectory + "/bookend.db"
        return try await onOwnThread {
            try spawnAndWait("/usr/bin/sqlite3", ["-readonly", database, query]).stdout
        }
    }

    func waitJob(_ server: LiveServer, _ id: String, state: String) async throws -> Bool {
        try await eventually { (try await server.send(.get, "/jobs/\(id)").json["state"] as? String) == state }
    }

    @Test func poolLifecycle() async throws {
        try await withServer { server in
            let create = try await server.send(.post, "/pools", body: #"{"id":"pool1","vmSize":"small","targetDedicatedNodes":1,"metadata":[{"name":"a","value":"b"}]}"#)
            #expect(create.status == 201)
            #expect(create.header("Location") == "http://127.0.0.1:\(server.port)/pools/pool1")
            #expect(create.header("ETag")?.hasPrefix("0x") == true)
            #expect(create.header("Last-Modified")?.hasSuffix("GMT") == true)
            #expect(create.body.isEmpty)

            let get = try await server.send(.get, "/pools/pool1")
            #expect(get.status == 200)
            #expect(get.json["url"] as? String == "http://127.0.0.1:\(server.port)/pools/pool1")
            #expect(get.json["state"] as? String == "active")
            #expect((get.json["odata.metadata"] as? String)?.hasSuffix("#pools/@Element") == true)
            #expect(get.header("ETag") == get.json["eTag"] as? String)

            let selected = try await server.send(.get, "/pools/pool1", query: [("$select", "id,state")])
            #expect(Set(selected.json.keys) == ["id", "state", "odata.metadata"])

            let exists = try await server.send(.head, "/pools/pool1")
            #expect(exists.status == 200)
            #expect(exists.body.isEmpty)

            let notModified = try await server.send(.get, "/pools/pool1", headers: ["If-None-Match": get.header("ETag") ?? ""])
            #expect(notModified.status == 304)

            let stale = try await server.send(.delete, "/pools/pool1", headers: ["If-Match": "0x1234"])
            #expect(stale.status == 412)
            #expect(stale.code == "ConditionNotMet")

            #expect(try await eventually {
                (try await server.send(.get, "/pools/pool1").json["allocationState"] as? String) == "steady"
            })
            let nodes = try await server.send(.get, "/pools/pool1/nodes")
            let nodeList = nodes.json["value"] as? [[String: Any]] ?? []
            #expect(nodeList.count == 1)
            let nodeID = nodeList.first?["id"] as? String ?? ""
            #expect(nodeList.first?["rootDirectory"] == nil)
            #expect((nodeList.first?["url"] as? String)?.hasSuffix("/pools/pool1/nodes/\(nodeID)") == true)
            let node = try await server.send(.get, "/pools/pool1/nodes/\(nodeID)")
            #expect(node.status == 200)
            #expect(try await server.send(.get, "/pools/pool1/nodes/nope").code == "NodeNotFound")

            let patch = try await server.send(.patch, "/pools/pool1", body: #"{"metadata":[]}"#)
            #expect(patch.status == 200)
            #expect(try await server.send(.get, "/pools/pool1").json["metadata"] == nil)

            let resize = try await server.send(.post, "/pools/pool1/resize", body: #"{"targetDedicatedNodes":2}"#)
            #expect(resize.status == 202)
            // Once that resize has ended (steady), the next one is accepted.
            #expect(try await eventually {
                (try await server.send(.get, "/pools/pool1").json["allocationState"] as? String) == "steady"
            })
            let again = try await server.send(.post, "/pools/pool1/resize", body: #"{"targetDedicatedNodes":3}"#)
            #expect(again.status == 202)
            #expect(try await server.send(.post, "/pools/pool1/stopresize").status == 202)
            #expect(try await eventually {
                (try await server.send(.get, "/pools/pool1").json["allocationState"] as? String) == "steady"
            })
            let badTimeout = try await server.send(.post, "/pools/pool1/resize", body: #"{"targetDedicatedNodes":1,"resizeTimeout":"PT1M"}"#)
            #expect(badTimeout.code == "InvalidPropertyValue")

            let delete = try await server.send(.delete, "/pools/pool1")
            #expect(delete.status == 202)
            #expect(try await eventually { try await server.send(.head, "/pools/pool1").status == 404 })
            // It went through `deleting` (read from the event log: the engine may finish the deletion
            // before a GET could see that state).
            #expect(try await Self.sql(server, "SELECT from_state, to_state FROM event WHERE pool_id = 'pool1' AND kind = 'pool.deleting'")
                == "active|deleting\n")
        }
    }

    @Test func jobsAndTasks() async throws {
        try await withServer { server in
            try await makePool(server, "pool")
            let job = #"""
                {"id":"job1","poolInfo":{"poolId":"pool"},
                 "jobPreparationTask":{"commandLine":"/bin/sh -c 'echo prep > $AZ_BATCH_NODE_SHARED_DIR/prep.txt'"},
                 "jobReleaseTask":{"commandLine":"/bin/sh -c 'rm $AZ_BATCH_NODE_SHARED_DIR/prep.txt'"}}
                """#
            let create = try await server.send(.post, "/jobs", body: job)
            #expect(create.status == 201, "\(create.text)")
            #expect(try await server.send(.post, "/jobs", body: job).code == "JobExists")
            let got = try await server.send(.get, "/jobs/JOB1")
            #expect(got.json["id"] as? String == "job1")
            #expect((got.json["jobPreparationTask"] as? [String: Any])?["id"] as? String == "jobpreparation")
            #expect(got.json["onAllTasksComplete"] as? String == "noaction")

            let one = try await server.send(.post, "/jobs/job1/tasks", body: #"{"id":"t0","commandLine":"/bin/sh -c 'echo hi'"}"#)
            #expect(one.status == 201)
            #expect(one.header("Location")?.hasSuffix("/jobs/job1/tasks/t0") == true)
            #expect(try await server.send(.post, "/jobs/job1/tasks", body: #"{"id":"jobpreparation","commandLine":"x"}"#).code == "TaskIdSameAsJobPreparationTask")
            #expect(try await server.send(.post, "/jobs/job1/tasks", body: #"{"id":"t9"}"#).code == "MissingRequiredProperty")

            let tasks = (1...5).map { #"{"id":"t\#($0)","commandLine":"/bin/sh -c 'echo \#($0) > out.txt; exit \#($0 == 5 ? 3 : 0)'"}"# }
            let collection = try await server.send(.post, "/jobs/job1/addtaskcollection",
                body: #"{"value":[\#(tasks.joined(separator: ",")),{"id":"t0","commandLine":"x"}]}"#)
            #expect(collection.status == 200)
            let results = collection.json["value"] as? [[String: Any]] ?? []
            #expect(results.count == 6)
            #expect(results.filter { $0["status"] as? String == "success" }.count == 5)
            let duplicate = results.first { $0["taskId"] as? String == "t0" }
            #expect(duplicate?["status"] as? String == "clienterror")
            #expect((duplicate?["error"] as? [String: Any])?["code"] as? String == "TaskExists")

            #expect(try await eventually {
                let counts = try await server.send(.get, "/jobs/job1/taskcounts").json["taskCounts"] as? [String: Any]
                return counts?["completed"] as? Int == 6
            })
            let counts = try await server.send(.get, "/jobs/job1/taskcounts").json["taskCounts"] as? [String: Any]
            #expect(counts?["failed"] as? Int == 1)

            // Paging: 2 per page, following odata.nextLink.
            var seen: [String] = []
            var page = try await server.send(.get, "/jobs/job1/tasks", query: [("maxresults", "2"), ("$select", "id,state")])
            while true {
                let values = page.json["value"] as? [[String: Any]] ?? []
                seen += values.compactMap { $0["id"] as? String }
                #expect(values.allSatisfy { Set($0.keys) == ["id", "state"] })
                guard let next = page.json["odata.nextLink"] as? String, let url = URLComponents(string: next) else { break }
                let query = (url.queryItems ?? []).filter { $0.name != "api-version" }.map { ($0.name, $0.value ?? "") }
                page = try await server.send(.get, url.path, query: query)
            }
            #expect(seen == ["t0", "t1", "t2", "t3", "t4", "t5"])

            let failed = try await server.send(.get, "/jobs/job1/tasks", query: [("$filter", "executionInfo/result eq 'failure'")])
            #expect((failed.json["value"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["t5"])
            let some = try await server.send(.get, "/jobs/job1/tasks", query: [("$filter", "startswith(id,'t') and (id eq 't1' or id eq 't2') and state eq 'Completed'")])
            #expect((some.json["value"] as? [[String: Any]])?.count == 2)

            let task = try await server.send(.get, "/jobs/job1/tasks/t1")
            #expect(task.json["state"] as? String == "completed")
            let info = task.json["nodeInfo"] as? [String: Any]
            #expect((info?["nodeUrl"] as? String)?.contains("/pools/pool/nodes/") == true)
            #expect((info?["taskRootDirectoryUrl"] as? String)?.hasSuffix("/files/workitems/job1/job-1/t1") == true)

            #expect(try await server.send(.post, "/jobs/job1/tasks/t1/terminate").code == "TaskCompleted")
            #expect(try await server.send(.post, "/jobs/job1/tasks/t1/reactivate").code == "TaskSucceeded")
            let reactivate = try await server.send(.post, "/jobs/job1/tasks/t5/reactivate")
            #expect(reactivate.status == 204)
            #expect(try await server.send(.get, "/jobs/job1/tasks/t1/subtasksinfo").json["value"] as? [Any] != nil)
            #expect(try await server.send(.put, "/jobs/job1/tasks/t1", body: #"{"constraints":{"maxTaskRetryCount":1}}"#).code == "TaskCompleted")
            let deleteTask = try await server.send(.delete, "/jobs/job1/tasks/t2")
            #expect(deleteTask.status == 200)
            #expect(try await server.send(.get, "/jobs/job1/tasks/t2").code == "TaskNotFound")

            let patch = try await server.send(.patch, "/jobs/job1", body: #"{"priority":5}"#)
            #expect(patch.status == 200)
            #expect(try await server.send(.get, "/jobs/job1").json["priority"] as? Int == 5)
            let put = try await server.send(.put, "/jobs/job1", body: #"{"poolInfo":{"poolId":"pool"}}"#)
            #expect(put.status == 200)
            #expect(try await server.send(.get, "/jobs/job1").json["priority"] as? Int == 0)
            #expect(try await server.send(.patch, "/jobs/job1", body: #"{"priority":5000}"#).code == "InvalidPropertyValue")
            #expect(try await server.send(.put, "/jobs/job1", body: #"{"priority":1}"#).code == "MissingRequiredProperty")

            #expect(try await server.send(.post, "/jobs/job1/disable", body: #"{"disableTasks":"requeue"}"#).status == 202)
            #expect(try await server.send(.post, "/jobs/job1/disable", body: "{}").code == "MissingRequiredProperty")
            #expect(try await waitJob(server, "job1", state: "disabled"))
            #expect(try await server.send(.post, "/jobs/job1/enable").status == 202)
            #expect(try await waitJob(server, "job1", state: "active"))

            let terminate = try await server.send(.post, "/jobs/job1/terminate")
            #expect(terminate.status == 202)
            #expect(try await waitJob(server, "job1", state: "completed"))
            let completed = try await server.send(.get, "/jobs/job1")
            #expect((completed.json["executionInfo"] as? [String: Any])?["terminateReason"] as? String == "UserTerminate")
            #expect(try await server.send(.post, "/jobs/job1/terminate").code == "JobCompleted")
            #expect(try await server.send(.post, "/jobs/job1/tasks", body: #"{"id":"late","commandLine":"x"}"#).code == "JobCompleted")

            let status = try await server.send(.get, "/jobs/job1/jobpreparationandreleasetaskstatus")
            let items = status.json["value"] as? [[String: Any]] ?? []
            #expect(items.count == 1)
            let prep = items.first?["jobPreparationTaskExecutionInfo"] as? [String: Any]
            let release = items.first?["jobReleaseTaskExecutionInfo"] as? [String: Any]
            #expect(prep?["exitCode"] as? Int == 0)
            #expect(release?["exitCode"] as? Int == 0)
            #expect((prep?["taskRootDirectoryUrl"] as? String)?.hasSuffix("/files/workitems/job1/job-1/jobpreparation") == true)

            let list = try await server.send(.get, "/jobs", query: [("$filter", "state eq 'completed'")])
            #expect((list.json["value"] as? [[String: Any]])?.count == 1)
            #expect(try await server.send(.delete, "/jobs/job1").status == 202)
            #expect(try await eventually { try await server.send(.get, "/jobs/job1").code == "JobNotFound" })
        }
    }

    @Test func pagingWithFilterAcrossPages() async throws {
        try await withServer { server in
            #expect(try await server.send(.post, "/jobs", body: #"{"id":"pj","poolInfo":{"poolId":"nowhere"}}"#).status == 201)
            let ids = (0..<40).map { String(format: "%@%02d", $0 % 3 == 0 ? "B" : "a", $0) }
            let body = ids.map { #"{"id":"\#($0)","commandLine":"/bin/true"}"# }.joined(separator: ",")
            #expect(try await server.send(.post, "/jobs/pj/addtaskcollection", body: #"{"value":[\#(body)]}"#).status == 200)
            var seen: [String] = []
            var pages = 0
            var query: [(String, String)] = [("maxresults", "4"), ("$filter", "startswith(id,'b') and state eq 'active'")]
            while pages < 20 {
                let page = try await server.send(.get, "/jobs/pj/tasks", query: query)
                #expect(page.status == 200, "\(page.text)")
                pages += 1
                seen += (page.json["value"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                guard let next = page.json["odata.nextLink"] as? String, let url = URLComponents(string: next) else { break }
                query = (url.queryItems ?? []).filter { $0.name != "api-version" }.map { ($0.name, $0.value ?? "") }
            }
            let expected = ids.filter { $0.hasPrefix("B") }.sorted { $0.lowercased() < $1.lowercased() }
            #expect(seen == expected)
            #expect(pages == 4)
            let all = try await server.send(.get, "/jobs/pj/tasks")
            #expect((all.json["value"] as? [Any])?.count == 40)
            #expect(all.json["odata.nextLink"] == nil)
        }
    }

    /// A filter on `state` is answered by reading only the tasks in those states; whatever the shape
    /// of the filter, the answer must be the whole list filtered term by term.
    @Test func stateFiltersGiveWhatTheWholeListFilteredGives() async throws {
        try await withServer { server in
            #expect(try await server.send(.post, "/pools", body: #"{"id":"sp","vmSize":"standard_d2s_v3","targetDedicatedNodes":1,"taskSlotsPerNode":2}"#).status == 201)
            #expect(try await server.send(.post, "/jobs", body: #"{"id":"sj","poolInfo":{"poolId":"sp"}}"#).status == 201)
            func add(_ ids: [String], _ command: String) async throws {
                let body = ids.map { #"{"id":"\#($0)","commandLine":"\#(command)"}"# }.joined(separator: ",")
                #expect(try await server.send(.post, "/jobs/sj/addtaskcollection", body: #"{"value":[\#(body)]}"#).status == 200)
            }
            func states() async throws -> [String: String] {
                let all = try await server.send(.get, "/jobs/sj/tasks")
                return Dictionary(uniqueKeysWithValues: (all.json["value"] as? [[String: Any]] ?? []).compactMap { task in
                    (task["id"] as? String).map { ($0, task["state"] as? String ?? "") }
                })
            }
            try await add(["q1", "Q2", "r3", "q4"], "/bin/true")
            #expect(try await eventually(60) { try await states().values.allSatisfy { $0 == "completed" } })
            try await add(["hold1", "hold2"], "/bin/sleep 300")
            #expect(try await eventually(60) { try await states().values.filter { $0 == "running" }.count == 2 })
            try await add(["q5", "w6", "Q7"], "/bin/true")
            let known = try await states()
            #expect(known.values.sorted() == ["active", "active", "active", "completed", "completed", "completed", "completed", "running", "running"])

            func listed(_ filter: String, pageSize: Int) async throws -> [String] {
                var query: [(String, String)] = [("maxresults", "\(pageSize)"), ("$filter", filter)]
                var ids: [String] = []
                for _ in 0..<20 {
                    let page = try await server.send(.get, "/jobs/sj/tasks", query: query)
                    #expect(page.status == 200, "\(filter): \(page.text)")
                    ids += (page.json["value"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                    guard let next = page.json["odata.nextLink"] as? String, let url = URLComponents(string: next) else { break }
                    query = (url.queryItems ?? []).filter { $0.name != "api-version" }.map { ($0.name, $0.value ?? "") }
                }
                return ids
            }
            let cases: [(String, (String, String) -> Bool)] = [
                ("state eq 'completed'", { $1 == "completed" }),
                ("state eq 'COMPLETED'", { $1 == "completed" }),
                ("state eq 'running' or state eq 'active'", { $1 == "running" || $1 == "active" }),
                ("state eq 'completed' and startswith(id,'q')", { $1 == "completed" && $0.lowercased().hasPrefix("q") }),
                ("startswith(id,'q') and (state eq 'active' or state eq 'completed')", { $0.lowercased().hasPrefix("q") && $1 != "running" }),
                ("state eq 'active' and state eq 'running'", { _, _ in false }),
                ("not (state eq 'completed')", { $1 != "completed" }),
                ("state ne 'completed'", { $1 != "completed" }),
                ("state eq 'active' or id eq 'hold1'", { $1 == "active" || $0 == "hold1" }),
            ]
            for (filter, keeps) in cases {
                let expected = known.filter { keeps($0.key, $0.value) }.keys.sorted { $0.lowercased() < $1.lowercased() }
                for size in [1, 2, 1000] {
                    #expect(try await listed(filter, pageSize: size) == expected, "\(filter), pages of \(size)")
                }
            }
        }
    }

    /// A filter that few tasks of a long list match is answered in pages that each read a bounded
    /// part of the list (short or empty pages with a nextLink), and following them finds every match.
    @Test func aFilterFewTasksMatchIsAnsweredInBoundedPages() async throws {
        try await withServer { server in
            #expect(try await server.send(.post, "/jobs", body: #"{"id":"fj","poolInfo":{"poolId":"nowhere"}}"#).status == 201)
            let count = 12_000
            for start in stride(from: 0, to: count, by: 100) {
                let body = (start..<start + 100).map { #"{"id":"t\#(String(format: "%05d", $0))","commandLine":"/bin/true"}"# }.joined(separator: ",")
                #expect(try await server.send(.post, "/jobs/fj/addtaskcollection", body: #"{"value":[\#(body)]}"#).status == 200)
            }
            // Matches near the start and at the very end.
            let wanted = ["t00007", "t11999"]
            let filter = wanted.map { "id eq '\($0)'" }.joined(separator: " or ")
            var query: [(String, String)] = [("$filter", filter)]
            var found: [String] = []
            var pages: [Int] = []
            for _ in 0..<20 {
                let page = try await server.send(.get, "/jobs/fj/tasks", query: query)
                #expect(page.status == 200, "\(page.text.prefix(300))")
                let ids = (page.json["value"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                found += ids
                pages.append(ids.count)
                guard let next = page.json["odata.nextLink"] as? String, let url = URLComponents(string: next) else { break }
                query = (url.queryItems ?? []).filter { $0.name != "api-version" }.map { ($0.name, $0.value ?? "") }
            }
            #expect(found == wanted)
            // 10,000 tasks read a request at most: two requests, the last one without a nextLink.
            #expect(pages == [1, 1], "\(pages)")
            // Without a filter the page is full as ever.
            let plain = try await server.send(.get, "/jobs/fj/tasks")
            #expect((plain.json["value"] as? [Any])?.count == 1000)
        }
    }

    /// The job list pages from the database like the task list: every job once, in id order
    /// whatever the case, filtered on state, and with `$expand=stats` each job of a page has its own.
    @Test func jobListsPageInIdOrderAndFilterOnState() async throws {
        try await withServer { server in
            let ids = (0..<23).map { String(format: "%@job%02d", $0 % 2 == 0 ? "A" : "a", $0) }
            for id in ids {
                #expect(try await server.send(.post, "/jobs", body: #"{"id":"\#(id)","poolInfo":{"poolId":"nowhere"}}"#).status == 201)
            }
            for id in ids.prefix(5) {
                #expect(try await server.send(.post, "/jobs/\(id)/terminate", body: "{}").status == 202)
            }
            #expect(try await eventually(60) {
                let all = try await server.send(.get, "/jobs", query: [("$filter", "state eq 'completed'")])
                return (all.json["value"] as? [Any])?.count == 5
            })
            func follow(_ query: [(String, String)]) async throws -> [[String: Any]] {
                var query = query
                var found: [[String: Any]] = []
                for _ in 0..<50 {
                    let page = try await server.send(.get, "/jobs", query: query)
                    #expect(page.status == 200, "\(page.text.prefix(300))")
                    found += page.json["value"] as? [[String: Any]] ?? []
                    guard let next = page.json["odata.nextLink"] as? String, let url = URLComponents(string: next) else { break }
                    query = (url.queryItems ?? []).filter { $0.name != "api-version" }.map { ($0.name, $0.value ?? "") }
                }
                return found
            }
            let sorted = ids.sorted { $0.lowercased() < $1.lowercased() }
            #expect(try await follow([("maxresults", "4")]).compactMap { $0["id"] as? String } == sorted)
            let completed = try await follow([("maxresults", "2"), ("$filter", "state eq 'completed'")])
            #expect(completed.compactMap { $0["id"] as? String } == Array(ids.prefix(5)).sorted { $0.lowercased() < $1.lowercased() })
            let active = try await follow([("maxresults", "3"), ("$filter", "state eq 'active' and startswith(id,'a')")])
            #expect(active.compactMap { $0["id"] as? String } == sorted.filter { !ids.prefix(5).contains($0) })
            let withStats = try await follow([("maxresults", "5"), ("$expand", "stats")])
            #expect(withStats.count == ids.count)
            #expect(withStats.allSatisfy { job in
                guard let url = job["url"] as? String, let stats = job["stats"] as? [String: Any] else { return false }
                return stats["url"] as? String == url
            }, "\(withStats.first ?? [:])")
        }
    }

    @Test func prepStatusNeedsPrepTask() async throws {
        try await withServer { server in
            #expect(try await server.send(.post, "/jobs", body: #"{"id":"plain","poolInfo":{"poolId":"nopool"}}"#).status == 201)
            let reply = try await server.send(.get, "/jobs/plain/jobpreparationandreleasetaskstatus")
            #expect(reply.status == 409)
            #expect(reply.code == "JobPreparationTaskNotSpecified")
            let release = try await server.send(.post, "/jobs",
                body: #"{"id":"rel","poolInfo":{"poolId":"p"},"jobReleaseTask":{"commandLine":"x"}}"#)
            #expect(release.code == "InvalidPropertyValue")
            #expect(try await server.send(.get, "/jobs/rel").status == 404)
        }
    }
}
