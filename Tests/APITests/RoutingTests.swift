import API
import Foundation
import HTTPTypes
import Testing

/// How the router matches: case-insensitive paths, empty segments, ids decoded after matching,
/// 404 for unknown paths and 405 for known paths with another method, control characters refused
/// before routing, and which routes need Shared Key.
@Suite struct RoutingTests {
    @Test func pathsMatchCaseInsensitivelyAndIgnoreEmptySegments() async throws {
        try await withRouter { api in
            #expect(try await api.send(.post, "/Pools", body: #"{"id":"p1","vmSize":"small","targetDedicatedNodes":0}"#).status == 201)
            for path in ["/pools/p1", "/POOLS/p1", "/pools/P1", "/pools/p1/", "/pools//p1"] {
                let reply = try await api.send(.get, path)
                #expect(reply.status == 200, "\(path): \(reply.text)")
                #expect(reply.json["id"] as? String == "p1", "\(path)")
            }
            #expect(try await api.send(.get, "/JOBS").status == 200)
            #expect(try await api.send(.get, "/pools/").json["value"] as? [Any] != nil)
        }
    }

    @Test func idsAreDecodedAfterMatching() async throws {
        try await withRouter { api in
            // `%2F` stays inside one segment while matching, so this is the pool "a/b" (which is not a valid id).
            let reply = try await api.send(.get, "/pools/a%2Fb")
            #expect(reply.status == 404)
            #expect(reply.code == "PoolNotFound")
            #expect(try await api.send(.post, "/pools", body: #"{"id":"p-2","vmSize":"small","targetDedicatedNodes":0}"#).status == 201)
            #expect(try await api.send(.get, "/pools/p%2D2").json["id"] as? String == "p-2")
        }
    }

    static let unrouted: [(method: HTTPRequest.Method, path: String, status: Int, code: String)] = [
        (.get, "/nothing", 404, "ResourceNotFound"),
        (.get, "/$metadata", 404, "ResourceNotFound"),
        (.get, "/jobs/j/bogus", 404, "ResourceNotFound"),
        (.get, "/pools/p/nodes/n/bogus", 404, "ResourceNotFound"),
        (.get, "/jobs/j/tasks/t/bogus", 404, "ResourceNotFound"),
        (.put, "/pools", 405, "UnsupportedHttpVerb"),
        (.options, "/pools", 405, "UnsupportedHttpVerb"),
        (.head, "/jobs", 405, "UnsupportedHttpVerb"),
        (.get, "/pools/p/resize", 405, "UnsupportedHttpVerb"),
        (.delete, "/jobs/j/terminate", 405, "UnsupportedHttpVerb"),
        (.post, "/jobs/j/tasks/t/files", 405, "UnsupportedHttpVerb"),
        (.post, "/pools/p/nodes/n/files/a/b", 405, "UnsupportedHttpVerb"),
        (.post, "/poolusagemetrics", 405, "UnsupportedHttpVerb"),
    ]

    @Test func unknownPathsAre404AndOtherMethods405() async throws {
        try await withRouter { api in
            for (method, path, status, code) in RoutingTests.unrouted {
                let reply = try await api.send(method, path)
                #expect(reply.status == status, "\(method) \(path): \(reply.text)")
                if method != .head {
                    #expect(reply.code == code, "\(method) \(path): \(reply.text)")
                }
                #expect(reply.header("request-id")?.isEmpty == false, "\(method) \(path)")
                #expect(reply.header("DataServiceVersion") == "3.0", "\(method) \(path)")
            }
            if let merge = HTTPRequest.Method("MERGE") {
                #expect(try await api.send(merge, "/jobs/j").code == "UnsupportedHttpVerb")
            }
        }
    }

    @Test func controlCharactersInThePathAreRefusedOnEveryPath() async throws {
        try await withRouter { api in
            for path in ["/pools/a%00b", "/nothing%01", "/jobs/j/tasks/t/files/a%0Ab", "/pools/p/nodes/n/files/x%7F"] {
                let reply = try await api.send(.get, path)
                #expect(reply.status == 400, "\(path): \(reply.text)")
                #expect(reply.code == "InvalidUri", "\(path): \(reply.text)")
            }
        }
    }

    @Test func onlyHealthAnswersWithoutSharedKey() async throws {
        try await withRouter { api in
            let health = try await api.send(.get, "/health", apiVersion: nil, sign: false)
            #expect(health.status == 200)
            #expect(health.text == "ok")
            #expect(health.header("request-id")?.isEmpty == false)
            let head = try await api.send(.head, "/health", apiVersion: nil, sign: false)
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
            for (method, path) in [(HTTPRequest.Method.post, "/health"), (.get, "/pools"), (.get, "/nothing"), (.get, "/poolusagemetrics")] {
                let reply = try await api.send(method, path, sign: false)
                #expect(reply.status == 403, "\(method) \(path): \(reply.text)")
                #expect(reply.code == "AuthenticationFailed", "\(method) \(path)")
            }
            // api-version is checked on unknown paths too, before they are found missing.
            #expect(try await api.send(.get, "/nothing", apiVersion: nil).code == "MissingRequiredQueryParameter")
        }
    }

    @Test func poolUsageMetricsIsAnEmptyList() async throws {
        try await withRouter { api in
            #expect(try await api.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":0}"#).status == 201)
            let reply = try await api.send(.get, "/poolusagemetrics")
            #expect(reply.status == 200, "\(reply.text)")
            #expect((reply.json["value"] as? [Any])?.isEmpty == true)
            #expect((reply.json["odata.metadata"] as? String)?.hasSuffix("/$metadata#poolusagemetrics") == true)
            let filtered = try await api.send(.get, "/poolusagemetrics", query: [("$filter", "poolId eq 'p' and startTime ge datetime'2025-01-01T00:00:00Z'")])
            #expect(filtered.status == 200, "\(filtered.text)")
            let bad = try await api.send(.get, "/poolusagemetrics", query: [("$filter", "startTime ge 'yesterday'")])
            #expect(bad.code == "InvalidQueryParameterValue")
        }
    }
}
