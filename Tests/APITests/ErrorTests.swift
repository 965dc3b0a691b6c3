import Foundation
import Testing

@Suite struct ErrorTests {
    @Test func apiVersionIsChecked() async throws {
        try await withServer { server in
            let missing = try await server.send(.get, "/pools", apiVersion: nil)
            #expect(missing.status == 400)
            #expect(missing.code == "MissingRequiredQueryParameter")
            let unknown = try await server.send(.get, "/pools", apiVersion: "2019-01-01.1.0")
            #expect(unknown.status == 400)
            #expect(unknown.code == "UnsupportedRequestVersion")
            for version in ["2023-05-01.17.0", "2024-02-01.19.0", "2024-07-01.20.0", "2025-06-01"] {
                #expect(try await server.send(.get, "/pools", apiVersion: version).status == 200)
            }
        }
    }

    @Test func badBodiesAreRejectedAndChangeNothing() async throws {
        try await withServer { server in
            let created = try await server.send(.post, "/pools", body: #"{"id":"keep","vmSize":"small","targetDedicatedNodes":0}"#)
            #expect(created.status == 201)
            let cases: [(String, Int, String)] = [
                (#"{"id":"p2","vmSize":"small""#, 400, "InvalidRequestBody"),
                (#"not json"#, 400, "InvalidRequestBody"),
                (#"{"id":"p2","vmSize":"small","targetDedicatedNodes":"two"}"#, 400, "InvalidPropertyValue"),
                (#"{"vmSize":"small","targetDedicatedNodes":0}"#, 400, "MissingRequiredProperty"),
                (#"{"id":"bad id!","vmSize":"small","targetDedicatedNodes":0}"#, 400, "InvalidPropertyValue"),
                (#"{"id":"p2"}"#, 400, "MissingRequiredProperty"),
                (#"{"id":"KEEP","vmSize":"small","targetDedicatedNodes":0}"#, 409, "PoolExists"),
                (#"{"id":"p2","vmSize":"small","targetDedicatedNodes":0,"taskSlotsPerNode":0}"#, 400, "InvalidPropertyValue"),
            ]
            for (body, status, code) in cases {
                let reply = try await server.send(.post, "/pools", body: body)
                #expect(reply.status == status, "\(body): \(reply.text)")
                #expect(reply.code == code, "\(body): \(reply.text)")
                #expect((reply.json["message"] as? [String: Any])?["value"] as? String != nil)
            }
            let missingID = try await server.send(.post, "/pools", body: #"{"vmSize":"small","targetDedicatedNodes":0}"#)
            #expect(missingID.values["PropertyName"] == "id")
            // Without autoscale one of the two node counts is required (zero is an answer).
            let noCount = try await server.send(.post, "/pools", body: #"{"id":"p3","vmSize":"small"}"#)
            #expect(noCount.status == 400 && noCount.code == "MissingRequiredProperty", "\(noCount.text)")
            #expect(noCount.values["PropertyName"] == "targetDedicatedNodes")
            let list = try await server.send(.get, "/pools")
            let ids = (list.json["value"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(ids == ["keep"])
            #expect(try await server.send(.post, "/pools", body: #"{"id":"p4","vmSize":"small","targetLowPriorityNodes":0}"#).status == 201)
        }
    }

    @Test func oversizeBodyIs413() async throws {
        try await withServer { server in
            let filler = String(repeating: "x", count: 1 << 20)
            let reply = try await server.send(.post, "/pools", body: #"{"id":"big","vmSize":"small","targetDedicatedNodes":0,"displayName":"\#(filler)"}"#)
            #expect(reply.status == 413)
            #expect(reply.code == "RequestBodyTooLarge")
            #expect(try await server.send(.get, "/pools/big").status == 404)
        }
    }

    @Test func unknownPathsAndVerbs() async throws {
        try await withServer { server in
            let path = try await server.send(.get, "/nothing")
            #expect(path.status == 404)
            #expect(path.code == "ResourceNotFound")
            let verb = try await server.send(.put, "/pools", body: "{}")
            #expect(verb.status == 405)
            #expect(verb.code == "UnsupportedHttpVerb")
            // A method no route serves at all is the verb's fault on any path, known or not.
            for path in ["/pools", "/jobs/j", "/nothing"] {
                let unknown = try await server.send(.propfind, path)
                #expect(unknown.status == 405, "PROPFIND \(path): \(unknown.text)")
                #expect(unknown.code == "UnsupportedHttpVerb", "PROPFIND \(path)")
            }
            let pool = try await server.send(.get, "/pools/none")
            #expect(pool.status == 404)
            #expect(pool.code == "PoolNotFound")
            let head = try await server.send(.head, "/pools/none")
            #expect(head.status == 404)
            #expect(head.body.isEmpty)
        }
    }

    @Test func queryParametersAreValidated() async throws {
        try await withServer { server in
            let range = try await server.send(.get, "/jobs", query: [("maxresults", "0")])
            #expect(range.status == 400)
            #expect(range.code == "OutOfRangeQueryParameterValue")
            let notANumber = try await server.send(.get, "/jobs", query: [("maxresults", "abc")])
            #expect(notANumber.status == 400)
            #expect(notANumber.code == "InvalidQueryParameterValue")
            let filter = try await server.send(.get, "/jobs", query: [("$filter", "bogus eq 'x'")])
            #expect(filter.status == 400)
            #expect(filter.code == "InvalidQueryParameterValue")
            let syntax = try await server.send(.get, "/jobs", query: [("$filter", "state eq")])
            #expect(syntax.code == "InvalidQueryParameterValue")
        }
    }
}
