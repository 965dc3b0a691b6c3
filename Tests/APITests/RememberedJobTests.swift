import Foundation
import TestSupport
import Testing

/// GET job answers from what the last GET rendered while nothing was committed: every change, by a
/// client or by the engine itself, must show on the next GET, for every `$select`.
@Suite struct RememberedJobTests {
    @Test func everyCommittedChangeShowsOnTheNextGet() async throws {
        try await withServer { server in
            #expect(try await server.send(.post, "/pools", body: #"{"id":"rp","vmSize":"small","targetDedicatedNodes":1,"taskSlotsPerNode":1}"#).status == 201)
            #expect(try await server.send(.post, "/jobs", body: #"{"id":"rj","poolInfo":{"poolId":"rp"}}"#).status == 201)
            let first = try await server.send(.get, "/jobs/rj")
            let again = try await server.send(.get, "/jobs/rj")
            #expect(first.status == 200 && again.status == 200)
            #expect(first.text == again.text)
            #expect(first.header("ETag") == again.header("ETag"))
            // The If-None-Match of each request is still checked against what was kept.
            #expect(try await server.send(.get, "/jobs/rj", headers: ["If-None-Match": first.header("ETag") ?? ""]).status == 304)

            // A change by a client.
            let patched = try await server.send(.patch, "/jobs/rj", body: #"{"priority":7}"#)
            #expect(patched.status == 200, "\(patched.text)")
            let afterPatch = try await server.send(.get, "/jobs/rj")
            #expect(afterPatch.json["priority"] as? Int == 7)
            #expect(afterPatch.header("ETag") == patched.header("ETag"))
            #expect(try await server.send(.get, "/jobs/rj", headers: ["If-None-Match": first.header("ETag") ?? ""]).status == 200)

            // Another `$select` is another answer, not the whole job kept above.
            let selected = try await server.send(.get, "/jobs/rj", query: [("$select", "id,priority")])
            #expect(Set(selected.json.keys) == ["odata.metadata", "id", "priority"], "\(selected.text)")
            #expect(try await server.send(.get, "/jobs/rj").json["poolInfo"] != nil)

            // Changes the engine makes on its own: a task starts, then finishes; the reason follows.
            #expect(try await server.send(.post, "/jobs/rj/tasks", body: #"{"id":"t","commandLine":"/bin/sh -c 'sleep 2'"}"#).status == 201)
            func reason() async throws -> String? {
                (try await server.send(.get, "/jobs/rj").json["bookendWaitReason"] as? [String: Any])?["code"] as? String
            }
            #expect(try await eventually(60) { try await reason() == "TasksRunning" })
            #expect(try await eventually(60) { try await reason() == "NoActiveTasks" })

            // Deleted: never the kept 200.
            #expect(try await server.send(.delete, "/jobs/rj").status == 202)
            #expect(try await eventually(60) { try await server.send(.get, "/jobs/rj").status == 404 })
        }
    }
}
