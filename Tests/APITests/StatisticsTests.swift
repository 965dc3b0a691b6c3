import Foundation
import HTTPTypes
import Testing

/// `$expand=stats` (spec §8.2) adds `stats` to jobs and tasks, from the executions Bookend recorded;
/// without it there is none.
@Suite struct StatisticsTests {
    @Test func expandStatsReportsWhatTheTasksDid() async throws {
        try await withRouter { api in
            #expect(try await api.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":1}"#).status == 201)
            #expect(try await api.send(.post, "/jobs", body: #"{"id":"j","poolInfo":{"poolId":"p"}}"#).status == 201)
            let tasks = #"{"value":[{"id":"ok","commandLine":"/bin/sleep 0.3"},{"id":"bad","commandLine":"/bin/false","constraints":{"maxTaskRetryCount":1}}]}"#
            #expect(try await api.send(.post, "/jobs/j/addtaskcollection", body: tasks).status == 200)
            #expect(try await eventually(60) {
                let counts = try await api.send(.get, "/jobs/j/taskcounts").json["taskCounts"] as? [String: Any]
                return counts?["completed"] as? Int == 2
            })
            #expect(try await api.send(.get, "/jobs/j").json["stats"] == nil, "only when asked for")
            let job = try await api.send(.get, "/jobs/j", query: [("$expand", "stats")]).json
            let stats = try #require(job["stats"] as? [String: Any], "\(job)")
            #expect(stats["numSucceededTasks"] as? String == "1")
            #expect(stats["numFailedTasks"] as? String == "1")
            #expect(stats["numTaskRetries"] as? String == "1")
            #expect((stats["url"] as? String)?.hasSuffix("/jobs/j") == true)
            let wall = try #require(stats["wallClockTime"] as? String)
            #expect(wall != "PT0S" && wall.hasPrefix("PT"), "three executions ran, one of them 0.3 s: \(wall)")
            for key in ["startTime", "lastUpdateTime", "userCPUTime", "kernelCPUTime", "readIOps", "writeIOps", "readIOGiB", "writeIOGiB", "waitTime"] {
                #expect(stats[key] != nil, "\(key)")
            }
            let task = try await api.send(.get, "/jobs/j/tasks/ok", query: [("$expand", "stats")]).json
            let taskStats = try #require(task["stats"] as? [String: Any], "\(task)")
            #expect((taskStats["url"] as? String)?.hasSuffix("/jobs/j/tasks/ok") == true)
            #expect(taskStats["numSucceededTasks"] == nil, "a task's statistics have no task counts")
            #expect((taskStats["wallClockTime"] as? String).map { $0 != "PT0S" } == true)
            let page = try await api.send(.get, "/jobs/j/tasks", query: [("$expand", "stats")]).json["value"] as? [[String: Any]] ?? []
            #expect(page.compactMap { ($0["stats"] as? [String: Any])?["url"] as? String }.sorted().map { $0.hasSuffix("/jobs/j/tasks/bad") || $0.hasSuffix("/jobs/j/tasks/ok") } == [true, true])
            let plainPage = try await api.send(.get, "/jobs/j/tasks").json["value"] as? [[String: Any]] ?? []
            #expect(plainPage.count == 2 && plainPage.allSatisfy { $0["stats"] == nil })
            let pool = try await api.send(.get, "/pools/p", query: [("$expand", "stats")]).json
            let poolStats = try #require(pool["stats"] as? [String: Any], "\(pool)")
            #expect((poolStats["url"] as? String)?.hasSuffix("/pools/p") == true && poolStats["startTime"] != nil && poolStats["lastUpdateTime"] != nil)
            let listed = try await api.send(.get, "/jobs", query: [("$expand", "stats")]).json["value"] as? [[String: Any]] ?? []
            #expect(listed.count == 1 && (listed.first?["stats"] as? [String: Any])?["numSucceededTasks"] as? String == "1")
        }
    }
}
