import Foundation
import Testing

@Suite struct AuthTests {
    @Test func healthNeedsNoAuth() async throws {
        try await withServer { server in
            let reply = try await server.send(.get, "/health", apiVersion: nil, sign: false)
            #expect(reply.status == 200)
            #expect(reply.text == "ok")
        }
    }

    @Test(arguments: SignStyle.allCases)
    func everySigningVariantIsAccepted(style: SignStyle) async throws {
        try await withServer { server in
            // A GET whose query has a mixed-case name (SDK15 `timeOut`) and a POST with an empty body.
            let list = try await server.send(.get, "/jobs", query: [("timeOut", "30"), ("maxresults", "10")], style: style)
            #expect(list.status == 200, "\(style): \(list.text)")
            let create = try await server.send(.post, "/pools", body: #"{"id":"p1","vmSize":"small","targetDedicatedNodes":0}"#, style: style)
            #expect(create.status == 201, "\(style): \(create.text)")
            let missing = try await server.send(.post, "/jobs/nojob/enable", style: style)
            #expect(missing.status == 404, "\(style): \(missing.text)")
            #expect(missing.code == "JobNotFound")
        }
    }

    @Test func dateHeaderNextToOcpDate() async throws {
        try await withServer { server in
            let date = LiveServer.httpDate(Date())
            // Python signs the Date it sends; the docs leave the Date line empty when ocp-date is present.
            #expect(try await server.send(.get, "/pools", headers: ["Date": date]).status == 200)
            #expect(try await server.send(.get, "/pools", headers: ["Date": date], style: .docs, signDateLine: false).status == 200)
            // With an empty ocp-date, Date is the request time and must be signed.
            let onlyDate = try await server.send(.get, "/pools", headers: ["Date": date, "ocp-date": ""], signDateLine: false)
            #expect(onlyDate.status == 403)
            #expect(onlyDate.values["AuthenticationErrorDetail"]?.contains("signature") == true)
            #expect(try await server.send(.get, "/pools", headers: ["Date": date, "ocp-date": ""]).status == 200)
        }
    }

    @Test func wrongKeyIsRefused() async throws {
        try await withServer { server in
            let reply = try await server.send(.get, "/pools", signingKey: Data(repeating: 7, count: 32))
            #expect(reply.status == 403)
            #expect(reply.code == "AuthenticationFailed")
            #expect(reply.values["AuthenticationErrorDetail"] != nil)
            #expect(reply.header("request-id") != nil)
        }
    }

    @Test func staleDateIsRefused() async throws {
        try await withServer { server in
            let reply = try await server.send(.get, "/pools", date: Date().addingTimeInterval(-20 * 60))
            #expect(reply.status == 403)
            #expect(reply.code == "AuthenticationFailed")
            #expect(reply.values["AuthenticationErrorDetail"]?.contains("skew") == true)
            let future = try await server.send(.get, "/pools", date: Date().addingTimeInterval(20 * 60))
            #expect(future.status == 403)
            let nearly = try await server.send(.get, "/pools", date: Date().addingTimeInterval(-10 * 60))
            #expect(nearly.status == 200)
        }
    }

    @Test func missingAuthorizationIsRefused() async throws {
        try await withServer { server in
            let reply = try await server.send(.get, "/pools", sign: false)
            #expect(reply.status == 403)
            #expect(reply.code == "AuthenticationFailed")
            let scheme = try await server.send(.get, "/pools", headers: ["Authorization": "Bearer abc"], sign: false)
            #expect(scheme.status == 403)
        }
    }

    @Test func tamperedRequestIsRefused() async throws {
        try await withServer { server in
            // Signed for one path, sent to another: the signature covers the raw path.
            let reply = try await server.send(.get, "/pools", headers: ["ocp-date": LiveServer.httpDate(Date())])
            #expect(reply.status == 200)
            let wrongAccount = try await server.send(.get, "/pools", headers: ["Authorization": "SharedKey other:AAAA"], sign: false)
            #expect(wrongAccount.status == 403)
            #expect(!wrongAccount.text.contains(server.key.base64EncodedString()))
        }
    }

    @Test func clientRequestIDIsEchoedAndCommonHeadersSet() async throws {
        try await withServer { server in
            let reply = try await server.send(.get, "/pools", headers: ["client-request-id": "abc-123"])
            #expect(reply.header("client-request-id") == "abc-123")
            #expect(reply.header("DataServiceVersion") == "3.0")
            #expect(reply.header("Content-Type") == "application/json;odata=minimalmetadata")
        }
    }
}
