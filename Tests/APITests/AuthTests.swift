import Crypto
import Foundation
import TestSupport
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
            // Present but not `SharedKey account:signature`: malformed, 400 (§6.6).
            let scheme = try await server.send(.get, "/pools", headers: ["Authorization": "Bearer abc"], sign: false)
            #expect(scheme.status == 400)
            #expect(scheme.code == "InvalidAuthenticationInfo")
        }
    }

    /// An Authorization header signed (python style) for exactly this request; tests then send
    /// something else under it.
    static func authorization(
        _ server: LiveServer, _ method: Method, _ path: String, query: [(String, String)] = [], headers: [String: String]
    ) -> String {
        let pairs = [("api-version", LiveServer.apiVersion)] + query
        let toSign = LiveServer.stringToSign(method: method.rawValue, path: path, query: pairs, headers: headers, account: server.account, style: .python)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(toSign.utf8), using: SymmetricKey(data: server.key))
        return "SharedKey \(server.account):\(Data(mac).base64EncodedString())"
    }

    static func expectRefused(_ reply: Reply, _ what: String) {
        #expect(reply.status == 403, "\(what): \(reply.text)")
        #expect(reply.code == "AuthenticationFailed", "\(what)")
        #expect(reply.values["AuthenticationErrorDetail"] != nil, "\(what)")
    }

    @Test func tamperedRequestIsRefused() async throws {
        try await withServer { server in
            let now = Date()
            let date = LiveServer.httpDate(now)
            // The signature each tampered request reuses; sent unchanged it passes, so every 403 below
            // comes from the change alone.
            let listAuth = AuthTests.authorization(server, .get, "/pools", query: [("maxresults", "10")], headers: ["ocp-date": date])
            let genuine = try await server.send(.get, "/pools", query: [("maxresults", "10")], headers: ["Authorization": listAuth], date: now, sign: false)
            #expect(genuine.status == 200, "\(genuine.text)")

            AuthTests.expectRefused(
                try await server.send(.get, "/jobs", query: [("maxresults", "10")], headers: ["Authorization": listAuth], date: now, sign: false),
                "signed for /pools, sent to /jobs")
            AuthTests.expectRefused(
                try await server.send(.get, "/pools", query: [("maxresults", "5")], headers: ["Authorization": listAuth], date: now, sign: false),
                "query value changed")
            AuthTests.expectRefused(
                try await server.send(.get, "/pools", query: [("maxresults", "10"), ("$filter", "id eq 'x'")],
                    headers: ["Authorization": listAuth], date: now, sign: false),
                "query parameter added")
            AuthTests.expectRefused(
                try await server.send(.get, "/pools", headers: ["Authorization": listAuth], date: now, sign: false),
                "query parameter removed")

            // A body of another length under a signature for the original Content-Length.
            let body = #"{"id":"signed","vmSize":"small","targetDedicatedNodes":0}"#
            let createHeaders = ["ocp-date": date, "Content-Length": String(body.utf8.count), "Content-Type": "application/json; odata=minimalmetadata"]
            let createAuth = AuthTests.authorization(server, .post, "/pools", headers: createHeaders)
            AuthTests.expectRefused(
                try await server.send(.post, "/pools", body: #"{"id":"tampered-longer","vmSize":"small","targetDedicatedNodes":0}"#,
                    headers: ["Authorization": createAuth], date: now, sign: false),
                "body length changed")
            #expect(try await server.send(.get, "/pools/tampered-longer").status == 404)
            let signedCreate = try await server.send(.post, "/pools", body: body, headers: ["Authorization": createAuth], date: now, sign: false)
            #expect(signedCreate.status == 201, "\(signedCreate.text)")

            // No date at all, a date that does not parse, a date outside the 15-minute window:
            // each signed correctly, each refused.
            AuthTests.expectRefused(try await server.send(.get, "/pools", headers: ["ocp-date": ""]), "no date header")
            AuthTests.expectRefused(try await server.send(.get, "/pools", headers: ["ocp-date": "yesterday at noon"]), "unparsable ocp-date")
            AuthTests.expectRefused(
                try await server.send(.get, "/pools", headers: ["ocp-date": "", "Date": "Sun, 99 Foo 2026 25:61:61 GMT"]), "unparsable Date")
            // Dated from the clock at the moment of sending: `now` above may be a minute old on a loaded
            // machine, and 16 minutes ahead of it is then inside the window.
            AuthTests.expectRefused(try await server.send(.get, "/pools", date: Date().addingTimeInterval(-16 * 60)), "16 minutes old")
            AuthTests.expectRefused(try await server.send(.get, "/pools", date: Date().addingTimeInterval(16 * 60)), "16 minutes ahead")

            let wrongAccount = try await server.send(.get, "/pools", headers: ["Authorization": "SharedKey other:AAAA"], sign: false)
            #expect(wrongAccount.status == 403)
            #expect(!wrongAccount.text.contains(server.key.base64EncodedString()))
        }
    }

    /// The Authorization value is cut into scheme, account and signature on its bytes: spaces before
    /// the scheme and around the signature are tolerated; anything else malformed is refused with
    /// the reason, and nothing (a non-ASCII account, a colon in the signature, a missing part) ends
    /// in a 200 or a 500.
    @Test func authorizationShapes() async throws {
        try await withServer { server in
            let now = Date()
            let date = LiveServer.httpDate(now)
            let genuine = AuthTests.authorization(server, .get, "/pools", headers: ["ocp-date": date])
            let signature = String(genuine.dropFirst("SharedKey \(server.account):".count))
            func send(_ authorization: String) async throws -> Reply {
                try await server.send(.get, "/pools", headers: ["Authorization": authorization], date: now, sign: false)
            }
            for accepted in [genuine, "  " + genuine, genuine + " \t", "SharedKey \(server.account): \t\(signature)"] {
                let reply = try await send(accepted)
                #expect(reply.status == 200, "\(accepted.debugDescription): \(reply.text)")
            }
            let refused: [(String, String)] = [
                ("SharedKey", "SharedKey scheme"),
                ("SharedKey ", "SharedKey scheme"),
                ("sharedkey \(server.account):\(signature)", "SharedKey scheme"),
                ("Bearer \(server.account):\(signature)", "SharedKey scheme"),
                ("SharedKey  \(server.account):\(signature)", "not this account"),
                ("SharedKey \(server.account)\(signature)", "account:signature"),
                ("SharedKey \(server.account)é:\(signature)", "not this account"),
                ("SharedKey \(server.account)::\(signature)", "not this account"),
                ("SharedKey \(server.account):", "base64"),
                ("SharedKey \(server.account):\(signature):", "not this account"),
                ("SharedKey \(server.account):\(signature.dropLast(4))", "base64"),
                ("SharedKey \(server.account):\(String(repeating: "A", count: 43))=", "not the same"),
            ]
            for (authorization, reason) in refused {
                let reply = try await send(authorization)
                if ["SharedKey scheme", "account:signature"].contains(reason) {
                    // Not of the form `SharedKey account:signature` at all: malformed, 400 (§6.6).
                    #expect(reply.status == 400, "\(authorization.debugDescription): \(reply.text)")
                    #expect(reply.code == "InvalidAuthenticationInfo", "\(authorization.debugDescription)")
                } else {
                    AuthTests.expectRefused(reply, authorization.debugDescription)
                }
                #expect(reply.values["AuthenticationErrorDetail"]?.contains(reason) == true,
                    "\(authorization.debugDescription): \(reply.values["AuthenticationErrorDetail"] ?? "no detail")")
            }
        }
    }

    /// A chunked body has no Content-Length, so no signature covers its bytes: refused before use.
    @Test func bodyWithoutContentLengthIsRefused() async throws {
        try await withServer { server in
            let now = Date()
            let date = LiveServer.httpDate(now)
            let headers = ["ocp-date": date, "Content-Type": "application/json; odata=minimalmetadata", "Transfer-Encoding": "chunked"]
            let auth = AuthTests.authorization(server, .post, "/pools", headers: headers.filter { $0.key != "Transfer-Encoding" })
            let json = Data(#"{"id":"chunked","vmSize":"small","targetDedicatedNodes":0}"#.utf8)
            var chunked = Data(String(json.count, radix: 16).utf8 + Array("\r\n".utf8))
            chunked.append(json)
            chunked.append(Data("\r\n0\r\n\r\n".utf8))
            let payload = chunked
            let port = server.port
            let list = (headers.map { ($0.key, $0.value) }) + [("Authorization", auth)]
            let target = "/pools?api-version=\(LiveServer.apiVersion)"
            let response = try await onOwnThread { try RawHTTP.send(port: port, method: "POST", target: target, headers: list, body: payload) }
            #expect(response.status == 411, "\(String(decoding: response.body, as: UTF8.self))")
            #expect(String(decoding: response.body, as: UTF8.self).contains("MissingContentLengthHeader"))
            #expect(try await server.send(.get, "/pools/chunked").status == 404)

            // A write with no body must still say so (`Content-Length: 0`): without the header, 411.
            #expect(try await server.send(.post, "/jobs", body: #"{"id":"cl","poolInfo":{"poolId":"none"}}"#).status == 201)
            let bare = ["ocp-date": date]
            let bareAuth = AuthTests.authorization(server, .post, "/jobs/cl/disable", headers: bare)
            let bareList = bare.map { ($0.key, $0.value) } + [("Authorization", bareAuth)]
            let bareTarget = "/jobs/cl/disable?api-version=\(LiveServer.apiVersion)"
            let noLength = try await onOwnThread { try RawHTTP.send(port: port, method: "POST", target: bareTarget, headers: bareList, body: Data()) }
            #expect(noLength.status == 411, "\(String(decoding: noLength.body, as: UTF8.self))")
            #expect(String(decoding: noLength.body, as: UTF8.self).contains("MissingContentLengthHeader"))
            #expect(try await server.send(.get, "/jobs/cl").json["state"] as? String == "active")
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
