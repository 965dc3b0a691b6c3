import Foundation
import Testing

/// Every limit on client numbers and query text, each answered by a 400 that names what is wrong,
/// with the server still answering afterwards (a trap would end this test process).
@Suite struct InputLimitTests {
    static func expectInvalid(
        _ reply: Reply, _ property: String, value: String? = nil, code: String = "InvalidPropertyValue",
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(reply.status == 400, "\(property): \(reply.text)", sourceLocation: sourceLocation)
        #expect(reply.code == code, "\(property): \(reply.text)", sourceLocation: sourceLocation)
        #expect(reply.values["PropertyName"] == property, "\(reply.text)", sourceLocation: sourceLocation)
        if let value { #expect(reply.values["PropertyValue"] == value, "\(reply.text)", sourceLocation: sourceLocation) }
    }

    static func expectAlive(_ server: LiveServer, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(try await server.send(.get, "/health", apiVersion: nil, sign: false).status == 200, sourceLocation: sourceLocation)
        #expect(try await server.send(.get, "/pools").status == 200, sourceLocation: sourceLocation)
    }

    /// The verified report: these two counts once overflowed their sum and ended the daemon.
    @Test func nodeCountsThatOverflowAreRefused() async throws {
        try await withServer { server in
            let overflow = try await server.send(.post, "/pools",
                body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":9223372036854775807,"targetLowPriorityNodes":1}"#)
            InputLimitTests.expectInvalid(overflow, "targetDedicatedNodes", value: "9223372036854775807")
            let swapped = try await server.send(.post, "/pools",
                body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":1,"targetLowPriorityNodes":9223372036854775807}"#)
            InputLimitTests.expectInvalid(swapped, "targetLowPriorityNodes", value: "9223372036854775807")
            let sum = try await server.send(.post, "/pools",
                body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":600,"targetLowPriorityNodes":401}"#)
            InputLimitTests.expectInvalid(sum, "targetDedicatedNodes")
            let negative = try await server.send(.post, "/pools",
                body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":-9223372036854775808}"#)
            InputLimitTests.expectInvalid(negative, "targetDedicatedNodes", value: "-9223372036854775808")
            #expect(try await server.send(.get, "/pools/p").status == 404)
            try await InputLimitTests.expectAlive(server)

            // Resize takes the same counts.
            #expect(try await server.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":0}"#).status == 201)
            #expect(try await eventually {
                (try await server.send(.get, "/pools/p").json["allocationState"] as? String) == "steady"
            })
            let resize = try await server.send(.post, "/pools/p/resize",
                body: #"{"targetDedicatedNodes":9223372036854775807,"targetLowPriorityNodes":1}"#)
            InputLimitTests.expectInvalid(resize, "targetDedicatedNodes", value: "9223372036854775807")
            let resizeLow = try await server.send(.post, "/pools/p/resize", body: #"{"targetDedicatedNodes":1,"targetLowPriorityNodes":9223372036854775807}"#)
            InputLimitTests.expectInvalid(resizeLow, "targetLowPriorityNodes")
            #expect((try await server.send(.get, "/pools/p").json["allocationState"] as? String) == "steady")
            try await InputLimitTests.expectAlive(server)
        }
    }

    /// JSONDecoder calls 1.5 or 2^63 for an Int "not valid JSON"; the answer names the property instead.
    @Test func wholeNumbersThatDoNotFitAreNamed() async throws {
        try await withServer { server in
            for value in ["1.5", "9223372036854775808", "-9223372036854775809", "1e30", "-0.5"] {
                let reply = try await server.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":0,"taskSlotsPerNode":\#(value)}"#)
                InputLimitTests.expectInvalid(reply, "taskSlotsPerNode")
            }
            let nested = try await server.send(.post, "/jobs",
                body: #"{"id":"j","poolInfo":{"poolId":"p"},"constraints":{"maxTaskRetryCount":2.5}}"#)
            InputLimitTests.expectInvalid(nested, "constraints.maxTaskRetryCount", value: "2.5")
            // Beyond Double: still a 400, never a trap.
            let huge = try await server.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":0,"taskSlotsPerNode":1e400}"#)
            #expect(huge.status == 400, "\(huge.text)")
            try await InputLimitTests.expectAlive(server)
        }
    }

    /// One call may make the engine write at most 200,000 dependency rows, all its tasks together:
    /// 100 tasks of a 5 KB body, each depending on a range of 100,000 ids, wrote 10 million rows (140
    /// MB) and held every write back for 20 s. The tasks past the budget are refused one by one.
    @Test func theDependenciesOfOneCallAreBounded() async throws {
        try await withServer { server in
            try await InputLimitTests.dependencyJob(server)
            let task = #"{"id":"ID","commandLine":"true","dependsOn":{"taskIdRanges":[{"start":1000000,"end":1099998}]}}"#
            let body = #"{"value":["# + ["a", "b", "c"].map { task.replacingOccurrences(of: "ID", with: $0) }.joined(separator: ",") + "]}"
            let reply = try await server.send(.post, "/jobs/j/addtaskcollection", body: body)
            #expect(reply.status == 200, "\(reply.text)")
            let items = reply.json["value"] as? [[String: Any]] ?? []
            #expect(items.map { $0["status"] as? String } == ["success", "success", "clienterror"])
            #expect((items.last?["error"] as? [String: Any])?["code"] as? String == "InvalidPropertyValue")
            #expect(try await server.send(.get, "/jobs/j/tasks/c").status == 404)
            try await InputLimitTests.expectAlive(server)
        }
    }

    static func dependencyJob(_ server: LiveServer) async throws {
        #expect(try await server.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":0}"#).status == 201)
        #expect(try await server.send(.post, "/jobs", body: #"{"id":"j","poolInfo":{"poolId":"p"},"usesTaskDependencies":true}"#).status == 201)
    }

    @Test func taskIdRangesAreBounded() async throws {
        try await withServer { server in
            try await InputLimitTests.dependencyJob(server)
            func add(_ id: String, _ ranges: String) async throws -> Reply {
                try await server.send(.post, "/jobs/j/tasks", body: #"{"id":"\#(id)","commandLine":"true","dependsOn":{"taskIdRanges":[\#(ranges)]}}"#)
            }
            // end - start overflowed here before.
            InputLimitTests.expectInvalid(
                try await add("t1", #"{"start":-9223372036854775808,"end":9223372036854775807}"#), "dependsOn.taskIdRanges[0]")
            InputLimitTests.expectInvalid(try await add("t1", #"{"start":5,"end":4}"#), "dependsOn.taskIdRanges[0]", value: "5-4")
            // Each range alone is small; together they expand past the limit.
            InputLimitTests.expectInvalid(
                try await add("t1", #"{"start":0,"end":59999},{"start":100000,"end":159999}"#), "dependsOn.taskIdRanges[1]")
            InputLimitTests.expectInvalid(
                try await add("t1", #"{"start":0,"end":0},{"start":9223372036854775806,"end":9223372036854775807},{"start":-9223372036854775808,"end":9223372036854775807}"#),
                "dependsOn.taskIdRanges[2]")
            #expect(try await server.send(.get, "/jobs/j/tasks/t1").status == 404)
            let fine = try await add("t2", #"{"start":1,"end":3},{"start":10,"end":10}"#)
            #expect(fine.status == 201, "\(fine.text)")
            let task = try await server.send(.get, "/jobs/j/tasks/t2")
            let ranges = ((task.json["dependsOn"] as? [String: Any])?["taskIdRanges"] as? [[String: Any]]) ?? []
            #expect(ranges.count == 2)
            try await InputLimitTests.expectAlive(server)
        }
    }

    @Test func slotsPriorityAndParallelismAreBounded() async throws {
        try await withServer { server in
            try await InputLimitTests.dependencyJob(server)
            for slots in ["0", "257", "9223372036854775807", "-9223372036854775808"] {
                let reply = try await server.send(.post, "/jobs/j/tasks", body: #"{"id":"t","commandLine":"true","requiredSlots":\#(slots)}"#)
                InputLimitTests.expectInvalid(reply, "requiredSlots", value: slots)
            }
            #expect(try await server.send(.post, "/jobs/j/tasks", body: #"{"id":"t","commandLine":"true","requiredSlots":256}"#).status == 201)
            for priority in ["1001", "9223372036854775807", "-9223372036854775808"] {
                InputLimitTests.expectInvalid(
                    try await server.send(.patch, "/jobs/j", body: #"{"priority":\#(priority)}"#), "priority", value: priority)
            }
            for parallel in ["0", "-2", "-9223372036854775808"] {
                InputLimitTests.expectInvalid(
                    try await server.send(.patch, "/jobs/j", body: #"{"maxParallelTasks":\#(parallel)}"#), "maxParallelTasks", value: parallel)
            }
            for slots in ["0", "257", "9223372036854775807"] {
                InputLimitTests.expectInvalid(
                    try await server.send(.post, "/pools", body: #"{"id":"q","vmSize":"small","targetDedicatedNodes":0,"taskSlotsPerNode":\#(slots)}"#), "taskSlotsPerNode")
            }
            try await InputLimitTests.expectAlive(server)
        }
    }

    @Test func fileModeIsPermissionBitsOnly() async throws {
        try await withServer { server in
            try await InputLimitTests.dependencyJob(server)
            for mode in ["4755", "2755", "1777", "7777", "6644", "0o644", "999", "-644", "", "12345", "0x1ff", "٠٦٤٤"] {
                let body = #"{"id":"t","commandLine":"true","resourceFiles":[{"httpUrl":"http://127.0.0.1:1/x","filePath":"x","fileMode":"\#(mode)"}]}"#
                let reply = try await server.send(.post, "/jobs/j/tasks", body: body)
                InputLimitTests.expectInvalid(reply, "resourceFiles[0].fileMode", value: mode)
            }
            let pool = try await server.send(.post, "/pools",
                body: #"{"id":"q","vmSize":"small","targetDedicatedNodes":0,"startTask":{"commandLine":"true","resourceFiles":[{"httpUrl":"http://127.0.0.1:1/x","filePath":"x","fileMode":"4755"}]}}"#)
            InputLimitTests.expectInvalid(pool, "startTask.resourceFiles[0].fileMode", value: "4755")
            for mode in ["0644", "755", "0777", "0"] {
                let body = #"{"id":"t\#(mode)","commandLine":"true","resourceFiles":[{"httpUrl":"http://127.0.0.1:1/x","filePath":"x","fileMode":"\#(mode)"}]}"#
                let reply = try await server.send(.post, "/jobs/j/tasks", body: body)
                #expect(reply.status == 201, "\(mode): \(reply.text)")
            }
        }
    }

    @Test func durationsBeyondTheLongestAreRefused() async throws {
        try await withServer { server in
            try await InputLimitTests.dependencyJob(server)
            let digits = String(repeating: "9", count: 400)
            for duration in ["P99999999999999999999D", "PT\(digits)S", "P\(digits)W", "P10675200D", "P1Y", "P-1D", "PT", "P1.2.3D"] {
                let reply = try await server.send(.post, "/jobs/j/tasks",
                    body: #"{"id":"t","commandLine":"true","constraints":{"maxWallClockTime":"\#(duration)"}}"#)
                InputLimitTests.expectInvalid(reply, "constraints.maxWallClockTime", value: duration)
                let retention = try await server.send(.post, "/jobs/j/tasks",
                    body: #"{"id":"t","commandLine":"true","constraints":{"retentionTime":"\#(duration)"}}"#)
                InputLimitTests.expectInvalid(retention, "constraints.retentionTime", value: duration)
            }
            let resize = try await server.send(.post, "/pools", body: #"{"id":"q","vmSize":"small","targetDedicatedNodes":0,"resizeTimeout":"PT\#(digits)M"}"#)
            InputLimitTests.expectInvalid(resize, "resizeTimeout")
            // Azure's unlimited is accepted and echoed as unlimited.
            let unlimited = try await server.send(.post, "/jobs/j/tasks",
                body: #"{"id":"t","commandLine":"true","constraints":{"maxWallClockTime":"P10675199DT2H48M5.4775807S"}}"#)
            #expect(unlimited.status == 201, "\(unlimited.text)")
            let task = try await server.send(.get, "/jobs/j/tasks/t")
            #expect((task.json["constraints"] as? [String: Any])?["maxWallClockTime"] as? String == "P10675199DT2H48M5.4775807S")
            try await InputLimitTests.expectAlive(server)
        }
    }

    @Test func filterTextIsBounded() async throws {
        try await withServer { server in
            #expect(try await server.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":0}"#).status == 201)
            func list(_ filter: String) async throws -> Reply { try await server.send(.get, "/pools", query: [("$filter", filter)]) }
            func expectRefused(_ filter: String, _ why: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let reply = try await list(filter)
                #expect(reply.status == 400, "\(why): \(reply.text.prefix(300))", sourceLocation: sourceLocation)
                #expect(reply.code == "InvalidQueryParameterValue", "\(why)", sourceLocation: sourceLocation)
                #expect(reply.values["QueryParameterName"] == "$filter", "\(why)", sourceLocation: sourceLocation)
            }
            // Deep enough to overflow a recursive parser's stack if it were let through.
            try await expectRefused(String(repeating: "(", count: 4000) + "id eq 'p'" + String(repeating: ")", count: 4000), "too long")
            try await expectRefused(String(repeating: "(", count: 33) + "id eq 'p'" + String(repeating: ")", count: 33), "33 deep")
            try await expectRefused(String(repeating: "not ", count: 33) + "id eq 'p'", "33 nots")
            try await expectRefused(String(repeating: "(", count: 2000), "unbalanced")
            try await expectRefused(Array(repeating: "id eq 'p'", count: 101).joined(separator: " or "), "101 terms")
            try await expectRefused("id eq " + String(repeating: "9", count: 400), "huge number")

            let deep = try await list(String(repeating: "(", count: 32) + "id eq 'p'" + String(repeating: ")", count: 32))
            #expect(deep.status == 200, "\(deep.text)")
            #expect((deep.json["value"] as? [Any])?.count == 1)
            let many = try await list(Array(repeating: "id eq 'p'", count: 100).joined(separator: " or "))
            #expect((many.json["value"] as? [Any])?.count == 1, "\(many.text.prefix(300))")
            try await InputLimitTests.expectAlive(server)
        }
    }

    @Test func queryNumbersAreChecked() async throws {
        try await withServer { server in
            for value in ["0", "1001", "99999999999999999999999", "-1", "1.5", "1e3"] {
                let reply = try await server.send(.get, "/pools", query: [("maxresults", value)])
                #expect(reply.status == 400, "\(value): \(reply.text)")
            }
            for value in ["0", "-1", "99999999999999999999999", "1e400", "abc"] {
                let reply = try await server.send(.get, "/pools", query: [("timeout", value)])
                #expect(reply.status == 400, "\(value): \(reply.text)")
                #expect(reply.code == "InvalidQueryParameterValue")
            }
            let token = try await server.send(.get, "/pools", query: [("$skiptoken", "%%%not-base64")])
            #expect(token.status == 400)
            try await InputLimitTests.expectAlive(server)
        }
    }

    /// `$skiptoken` is only what a `nextLink` carried: a token no page could have handed out (not
    /// base64url, bytes that are not UTF-8, a NUL) is refused, not read as some key to page on from,
    /// while the tokens the server issues page through a list to its end.
    @Test func skipTokensAreOnlyTheServersOwn() async throws {
        try await withServer { server in
            for id in ["p1", "p2", "p3"] {
                #expect(try await server.send(.post, "/pools", body: #"{"id":"\#(id)","vmSize":"small","targetDedicatedNodes":0}"#).status == 201)
            }
            // "zzzz" is base64url for bytes that are not UTF-8; "AAAA" for three NULs; "A" has no
            // encoding of that length; "+/" is the other base64 alphabet.
            for token in ["zzzz", "AAAA", "A", "cDE+", "cDE/", "cDE=", "p 1"] {
                let reply = try await server.send(.get, "/pools", query: [("$skiptoken", token)])
                #expect(reply.status == 400, "\(token): \(reply.text)")
                #expect(reply.code == "InvalidQueryParameterValue", "\(token)")
                #expect(reply.values["QueryParameterName"] == "$skiptoken", "\(token)")
            }
            var seen: [String] = []
            var page = try await server.send(.get, "/pools", query: [("maxresults", "1")])
            while true {
                seen += (page.json["value"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                guard let next = page.json["odata.nextLink"] as? String, let url = URLComponents(string: next) else { break }
                let query = (url.queryItems ?? []).filter { $0.name != "api-version" }.map { ($0.name, $0.value ?? "") }
                page = try await server.send(.get, url.path, query: query)
                #expect(page.status == 200, "\(next): \(page.text)")
            }
            #expect(seen == ["p1", "p2", "p3"])
        }
    }

    /// `$expand` names `stats` or `metadata`; anything else (a misspelling) is refused rather than
    /// answered without the statistics the client asked for.
    @Test func expandNamesOnlyWhatExists() async throws {
        try await withServer { server in
            #expect(try await server.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":0}"#).status == 201)
            for path in ["/pools", "/pools/p", "/jobs"] {
                for value in ["statz", "stats,bogus", "stats,", "*"] {
                    let reply = try await server.send(.get, path, query: [("$expand", value)])
                    #expect(reply.status == 400, "\(path) $expand=\(value): \(reply.text)")
                    #expect(reply.code == "InvalidQueryParameterValue", "\(path) $expand=\(value)")
                    #expect(reply.values["QueryParameterName"] == "$expand", "\(path) $expand=\(value)")
                }
            }
            let stats = try await server.send(.get, "/pools/p", query: [("$expand", "Stats, metadata")])
            #expect(stats.status == 200, "\(stats.text)")
            #expect(stats.json["stats"] != nil)
            #expect(try await server.send(.get, "/pools/p").json["stats"] == nil)
        }
    }

    /// A body labelled as something other than JSON (`curl -d` says form data) is refused with 415
    /// and stores nothing; JSON with any parameters, or with no Content-Type at all, is read.
    @Test func bodiesThatAreNotJSONAreRefused() async throws {
        try await withServer { server in
            let body = #"{"id":"form","vmSize":"small","targetDedicatedNodes":0}"#
            for type in ["application/x-www-form-urlencoded", "text/plain", "application/jsonx", "multipart/form-data; boundary=x"] {
                let reply = try await server.send(.post, "/pools", body: body, headers: ["Content-Type": type])
                #expect(reply.status == 415, "\(type): \(reply.text)")
                #expect(reply.code == "UnsupportedMediaType", "\(type)")
                #expect(reply.values["HeaderName"] == "Content-Type", "\(type)")
            }
            #expect(try await server.send(.get, "/pools/form").status == 404)
            for (id, type) in [("a", "application/json"), ("b", "Application/JSON; charset=utf-8"), ("c", "application/json;odata=minimalmetadata")] {
                let reply = try await server.send(.post, "/pools", body: #"{"id":"\#(id)","vmSize":"small","targetDedicatedNodes":0}"#,
                                                  headers: ["Content-Type": type])
                #expect(reply.status == 201, "\(type): \(reply.text)")
            }
            // Signed without a Content-Type line: the client sent none.
            let bare = try await server.send(.post, "/pools", body: #"{"id":"d","vmSize":"small","targetDedicatedNodes":0}"#,
                                             headers: ["Content-Type": ""])
            #expect(bare.status == 201, "\(bare.text)")
        }
    }

    /// `ocp-range` numbers at the edges of Int64, and a file whose modification time is far in the future.
    @Test func fileRangesAtTheEdges() async throws {
        try await withServer { server in
            #expect(try await server.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":1}"#).status == 201)
            var nodeID = ""
            #expect(try await eventually {
                let nodes = try await server.send(.get, "/pools/p/nodes").json["value"] as? [[String: Any]] ?? []
                nodeID = nodes.first?["id"] as? String ?? ""
                return nodes.first?["state"] as? String == "idle"
            })
            let file = (server.dataDirectory as NSString).appendingPathComponent("nodes/\(nodeID)/shared/data.txt")
            try Data("0123456789".utf8).write(to: URL(fileURLWithPath: file))
            let path = "/pools/p/nodes/\(nodeID)/files/shared/data.txt"
            let whole = try await server.send(.get, path, headers: ["ocp-range": "bytes=0-9223372036854775807"])
            #expect(whole.status == 200)
            #expect(whole.text == "0123456789")
            let suffix = try await server.send(.get, path, headers: ["ocp-range": "bytes=-9223372036854775807"])
            #expect(suffix.text == "0123456789")
            let past = try await server.send(.get, path, headers: ["ocp-range": "bytes=9223372036854775807-"])
            #expect(past.status == 416, "\(past.text)")
            for bad in ["bytes=99999999999999999999-", "bytes=5-2", "bytes=--1", "bytes=-0", "bytes=-99999999999999999999"] {
                let reply = try await server.send(.get, path, headers: ["ocp-range": bad])
                #expect(reply.status == 400, "\(bad): \(reply.text)")
                #expect(reply.code == "InvalidHeaderValue")
            }
            // A task can set any modification time; how far the file system keeps it varies, and
            // whatever it keeps must be shown, never trap.
            // (Through Foundation: a C `timespec` literal compiles only where the module that owns the
            // C header happens to be visible, which differs between a clean and an incremental build.)
            try? FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1e15)], ofItemAtPath: file)
            let head = try await server.send(.head, path)
            #expect(head.status == 200)
            let listed = try await server.send(.get, "/pools/p/nodes/\(nodeID)/files", query: [("recursive", "true")])
            #expect(listed.status == 200, "\(listed.text)")
            let entry = (listed.json["value"] as? [[String: Any]] ?? []).first { ($0["name"] as? String) == "shared/data.txt" }
            let modified = (entry?["properties"] as? [String: Any])?["lastModified"] as? String ?? ""
            #expect(modified.count == 24 && modified <= "9999-12-31T23:59:59.999Z", "\(modified)")
            try await InputLimitTests.expectAlive(server)
        }
    }
}
