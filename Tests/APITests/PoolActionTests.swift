import Foundation
import HTTPTypes
import Testing

/// The pool actions beyond resize: removing named nodes, and the autoscale calls, which say that
/// Bookend does not autoscale instead of answering 404 as if the pool were gone.
@Suite struct PoolActionTests {
    @Test func removeNodesTakesTheNamedNodeOutAndLowersTheTarget() async throws {
        try await withRouter { api in
            #expect(try await api.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":2}"#).status == 201)
            func nodes() async throws -> [[String: Any]] {
                try await api.send(.get, "/pools/p/nodes").json["value"] as? [[String: Any]] ?? []
            }
            #expect(try await eventually { try await nodes().filter { $0["state"] as? String == "idle" }.count == 2 })
            let removed = try #require(try await nodes().first?["id"] as? String)
            let missing = try await api.send(.post, "/pools/p/removenodes", body: #"{"nodeList":["no-such-node"]}"#)
            #expect(missing.status == 404 && missing.json["code"] as? String == "NodeNotFound")
            let reply = try await api.send(.post, "/pools/p/removenodes", body: #"{"nodeList":["\#(removed)"],"nodeDeallocationOption":"taskcompletion"}"#)
            #expect(reply.status == 202, "\(reply.json)")
            #expect(try await eventually {
                let pool = try await api.send(.get, "/pools/p").json
                let ids = try await nodes().compactMap { $0["id"] as? String }
                return pool["allocationState"] as? String == "steady" && ids.count == 1 && !ids.contains(removed)
            })
            let pool = try await api.send(.get, "/pools/p").json
            #expect(pool["targetDedicatedNodes"] as? Int == 1)
            let empty = try await api.send(.post, "/pools/p/removenodes", body: #"{"nodeList":[]}"#)
            #expect(empty.status == 400 && empty.json["code"] as? String == "InvalidPropertyValue")
        }
    }

    /// `updateproperties` (the SDK's `replace_pool_properties`, `az batch pool reset`) replaces the
    /// start task and metadata as a whole: 204; a start task left out is removed. It answered 404.
    @Test func updatePropertiesReplacesTheStartTaskAndMetadata() async throws {
        try await withRouter { api in
            #expect(try await api.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":0,"metadata":[{"name":"a","value":"1"}]}"#).status == 201)
            let before = try await api.send(.get, "/pools/p").header("ETag")
            let replaced = try await api.send(.post, "/pools/p/updateproperties",
                body: #"{"startTask":{"commandLine":"/bin/true"},"certificateReferences":[],"applicationPackageReferences":[],"metadata":[{"name":"b","value":"2"}]}"#)
            #expect(replaced.status == 204, "\(replaced.text)")
            let pool = try await api.send(.get, "/pools/p")
            #expect((pool.json["startTask"] as? [String: Any])?["commandLine"] as? String == "/bin/true")
            #expect((pool.json["metadata"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["b"])
            #expect(pool.header("ETag") != before)
            // Everything it names is replaced: no start task means none.
            #expect(try await api.send(.post, "/pools/p/updateproperties",
                body: #"{"certificateReferences":[],"applicationPackageReferences":[],"metadata":[]}"#).status == 204)
            let cleared = try await api.send(.get, "/pools/p").json
            #expect(cleared["startTask"] == nil && (cleared["metadata"] as? [Any] ?? []).isEmpty, "\(cleared)")
            let missing = try await api.send(.post, "/pools/p/updateproperties", body: #"{"metadata":[]}"#)
            #expect(missing.status == 400, "\(missing.text)")
            #expect(try await api.send(.post, "/pools/nope/updateproperties",
                body: #"{"certificateReferences":[],"applicationPackageReferences":[],"metadata":[]}"#).json["code"] as? String == "PoolNotFound")
        }
    }

    @Test func autoscaleCallsSayBookendDoesNotAutoscale() async throws {
        try await withRouter { api in
            #expect(try await api.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":0}"#).status == 201)
            let enable = try await api.send(.post, "/pools/p/enableautoscale", body: #"{"autoScaleFormula":"$TargetDedicatedNodes=1;"}"#)
            #expect(enable.status == 400 && enable.json["code"] as? String == "InvalidPropertyValue")
            let evaluate = try await api.send(.post, "/pools/p/evaluateautoscale", body: #"{"autoScaleFormula":"$TargetDedicatedNodes=1;"}"#)
            #expect(evaluate.status == 409 && evaluate.json["code"] as? String == "AutoScaleNotEnabled")
            #expect(try await api.send(.post, "/pools/p/disableautoscale", body: "").status == 200)
            // A pool that does not exist is still not found.
            let gone = try await api.send(.post, "/pools/nope/disableautoscale", body: "")
            #expect(gone.status == 404 && gone.json["code"] as? String == "PoolNotFound")
        }
    }
}
