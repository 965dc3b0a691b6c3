import Foundation
import TestSupport
import Testing

/// Hostile bodies thrown at every create and update route of one live server: every answer must be a
/// 4xx with a Batch error body, and the same server (this process) must still answer afterwards.
@Suite struct HostileBodyTests {
    /// Numbers no integer property accepts: beyond Int64, fractional, beyond Double, or not numbers.
    static let notIntegers = [
        "9223372036854775808", "-9223372036854775809", "1.5", "-0.5", "1e400", "-1e400", "1e20", "\"7\"", "true", "[]", "{}",
    ]
    static let longestDigits = String(repeating: "9", count: 400)
    /// Durations no duration property accepts.
    static let notDurations = [
        "\"P99999999999999999999D\"", "\"PT\(longestDigits)S\"", "\"P10675200D\"", "\"P-1D\"", "\"\"", "\"P\"", "\"x\"",
        "\"P1Y\"", "9223372036854775807", "1.5",
    ]
    static let int64Max = "9223372036854775807"
    static let int64Min = "-9223372036854775808"

    /// One JSON property of a route's body: where `{{name}}` stands in the template, a valid value,
    /// and values that are invalid for it (besides `notIntegers` for integer properties).
    struct Slot {
        let name: String
        let valid: String
        let invalid: [String]
    }

    struct Route: CustomTestStringConvertible {
        let method: Method
        let path: String
        let template: String
        let slots: [Slot]
        var testDescription: String { "\(method.rawValue) \(path)" }

        func body(_ values: [String: String]) -> String {
            var text = template
            for slot in slots { text = text.replacingOccurrences(of: "{{\(slot.name)}}", with: values[slot.name] ?? slot.valid) }
            return text
        }
    }

    static func integer(_ name: String, _ valid: String, _ outOfRange: [String]) -> Slot {
        Slot(name: name, valid: valid, invalid: outOfRange + notIntegers)
    }

    static func duration(_ name: String, _ valid: String = "\"PT1H\"", _ more: [String] = []) -> Slot {
        Slot(name: name, valid: valid, invalid: notDurations + more)
    }

    static let retries = ["-2", int64Min]
    static let fileModes = ["\"4755\"", "\"2755\"", "\"1777\"", "\"7777\"", "\"0o644\"", "\"\"", "\"99999999999999999999\"", "644"]

    static let taskTemplate = #"""
        {"id":"fz","commandLine":"true","requiredSlots":{{requiredSlots}},
         "constraints":{"maxTaskRetryCount":{{retry}},"maxWallClockTime":{{wall}},"retentionTime":{{retention}}},
         "dependsOn":{"taskIdRanges":[{"start":{{start}},"end":{{end}}}]},
         "exitConditions":{"exitCodes":[{"code":{{code}},"exitOptions":{"jobAction":"none"}}],
           "exitCodeRanges":[{"start":{{rangeStart}},"end":{{rangeEnd}},"exitOptions":{"jobAction":"none"}}]},
         "resourceFiles":[{"httpUrl":"http://127.0.0.1:1/x","filePath":"x","fileMode":{{fileMode}}}]}
        """#
    static let taskSlots = [
        integer("requiredSlots", "1", ["0", "257", int64Max, int64Min]),
        integer("retry", "0", retries),
        duration("wall"), duration("retention"),
        // With end 1: a start above it, or one so low that end - start overflows.
        integer("start", "1", ["2", int64Max, int64Min]),
        integer("end", "1", ["0", int64Min, int64Max, "200000"]),
        // Any Int64 is a valid exit code, so only non-integers are hostile here.
        Slot(name: "code", valid: "1", invalid: notIntegers),
        Slot(name: "rangeStart", valid: "1", invalid: notIntegers),
        Slot(name: "rangeEnd", valid: "2", invalid: notIntegers),
        Slot(name: "fileMode", valid: "\"0644\"", invalid: fileModes),
    ]

    static let routes: [Route] = [
        Route(
            method: .post, path: "/pools",
            template: #"""
                {"id":"fz","vmSize":"small","targetDedicatedNodes":{{dedicated}},"targetLowPriorityNodes":{{low}},
                 "taskSlotsPerNode":{{slots}},"resizeTimeout":{{resizeTimeout}},
                 "startTask":{"commandLine":"true","maxTaskRetryCount":{{retry}},
                   "resourceFiles":[{"httpUrl":"http://127.0.0.1:1/x","filePath":"x","fileMode":{{fileMode}}}]}}
                """#,
            slots: [
                integer("dedicated", "0", [int64Max, int64Min, "-1", "1001"]),
                integer("low", "0", [int64Max, int64Min, "-1", "1001"]),
                integer("slots", "1", ["0", "257", int64Max, int64Min]),
                duration("resizeTimeout", "\"PT15M\"", ["\"PT1M\""]),
                integer("retry", "0", retries),
                Slot(name: "fileMode", valid: "\"0644\"", invalid: fileModes),
            ]),
        Route(
            method: .patch, path: "/pools/p",
            template: #"{"startTask":{"commandLine":"true","maxTaskRetryCount":{{retry}}}}"#,
            slots: [integer("retry", "0", retries)]),
        Route(
            method: .post, path: "/pools/p/resize",
            template: #"{"targetDedicatedNodes":{{dedicated}},"targetLowPriorityNodes":{{low}},"resizeTimeout":{{resizeTimeout}}}"#,
            slots: [
                integer("dedicated", "0", [int64Max, int64Min, "-1", "1001"]),
                integer("low", "0", [int64Max, int64Min, "-1", "1001"]),
                duration("resizeTimeout", "\"PT15M\"", ["\"PT1M\""]),
            ]),
        Route(
            method: .post, path: "/jobs",
            template: #"""
                {"id":"fz","poolInfo":{"poolId":"p"},"priority":{{priority}},"maxParallelTasks":{{parallel}},
                 "constraints":{"maxWallClockTime":{{wall}},"maxTaskRetryCount":{{retry}}},
                 "jobPreparationTask":{"commandLine":"true","constraints":{"maxTaskRetryCount":{{prepRetry}},"retentionTime":{{prepRetention}},"maxWallClockTime":{{prepWall}}}},
                 "jobReleaseTask":{"commandLine":"true","maxWallClockTime":{{releaseWall}},"retentionTime":{{releaseRetention}}}}
                """#,
            slots: [
                integer("priority", "0", ["1001", "-1001", int64Max, int64Min]),
                integer("parallel", "-1", ["0", "-2", int64Min]),
                duration("wall"), integer("retry", "0", retries),
                integer("prepRetry", "0", retries), duration("prepRetention"), duration("prepWall"),
                duration("releaseWall", "\"PT10M\"", ["\"PT16M\""]), duration("releaseRetention"),
            ]),
        Route(
            method: .patch, path: "/jobs/j",
            template: #"{"priority":{{priority}},"maxParallelTasks":{{parallel}},"constraints":{"maxWallClockTime":{{wall}},"maxTaskRetryCount":{{retry}}}}"#,
            slots: [
                integer("priority", "0", ["1001", "-1001", int64Max, int64Min]),
                integer("parallel", "-1", ["0", "-2", int64Min]),
                duration("wall"), integer("retry", "0", retries),
            ]),
        Route(
            method: .put, path: "/jobs/j",
            template: #"{"poolInfo":{"poolId":"p"},"priority":{{priority}},"maxParallelTasks":{{parallel}},"constraints":{"maxWallClockTime":{{wall}},"maxTaskRetryCount":{{retry}}}}"#,
            slots: [
                integer("priority", "0", ["1001", "-1001", int64Max, int64Min]),
                integer("parallel", "-1", ["0", "-2", int64Min]),
                duration("wall"), integer("retry", "0", retries),
            ]),
        Route(method: .post, path: "/jobs/j/tasks", template: taskTemplate, slots: taskSlots),
        Route(method: .post, path: "/jobs/j/addtaskcollection", template: #"{"value":[\#(taskTemplate)]}"#, slots: taskSlots),
        Route(
            method: .put, path: "/jobs/j/tasks/t",
            template: #"{"constraints":{"maxWallClockTime":{{wall}},"retentionTime":{{retention}},"maxTaskRetryCount":{{retry}}}}"#,
            slots: [duration("wall"), duration("retention"), integer("retry", "0", retries)]),
    ]

    /// Routes that change state on any valid body; only bodies that are not JSON objects are sent there.
    static let stateChangingPaths: [(Method, String)] = [
        (.post, "/jobs/j/terminate"), (.post, "/jobs/j/disable"), (.post, "/pools/p/nodes/n/reboot"),
    ]

    /// Bodies that are never a valid request anywhere.
    static func malformedBodies(_ random: inout SplitMix64) -> [(String, Data)] {
        var bodies: [(String, Data)] = [
            ("invalid UTF-8", Data([0x7B, 0x22, 0x69, 0x64, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0xC0, 0x22, 0x7D])),
            ("truncated UTF-8", Data(#"{"id":""#.utf8) + Data([0xE2, 0x82])),
            ("100000 nested arrays", Data((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8)),
            ("100000 nested objects", Data((String(repeating: #"{"a":"#, count: 100_000) + "1" + String(repeating: "}", count: 100_000)).utf8)),
            ("unclosed nesting", Data(String(repeating: "{\"a\":[", count: 50_000).utf8)),
            ("NUL byte", Data([0x7B, 0x00, 0x7D])),
            ("lone number 1e400", Data("1e400".utf8)),
        ]
        for index in 0..<20 {
            let count = Int.random(in: 1...512, using: &random)
            // Never starting with whitespace, '{' or '[': no chance of a valid body.
            var bytes = [UInt8.random(in: 0x01...0x08, using: &random)]
            bytes += (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            bodies.append(("random bytes \(index)", Data(bytes)))
        }
        return bodies
    }

    /// Valid JSON with an id no route accepts.
    static func hostileIDs(_ random: inout SplitMix64) -> [String] {
        var ids = [
            "a\\u0000b", "a\\u0001b", "line\\nbreak", "tab\\there", "\\u007f", "\\u202eevil", "../../etc", "a/b", "%2e%2e",
            String(repeating: "x", count: 65), String(repeating: "y", count: 100_000), "", " ", "\\ud800",
        ]
        for _ in 0..<10 {
            let scalars = (0..<Int.random(in: 1...40, using: &random)).map { _ in UInt32.random(in: 0...0x1F, using: &random) }
            ids.append(scalars.map { String(format: "\\u%04x", $0) }.joined())
        }
        return ids
    }

    static func expectBatchError(_ reply: Reply, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect((400..<500).contains(reply.status), "\(what): \(reply.status) \(reply.text.prefix(300))", sourceLocation: sourceLocation)
        #expect(reply.code?.isEmpty == false, "\(what): \(reply.text.prefix(300))", sourceLocation: sourceLocation)
        #expect((reply.json["message"] as? [String: Any])?["value"] as? String != nil, "\(what)", sourceLocation: sourceLocation)
    }

    /// addtaskcollection answers 200 with a per-task `clienterror` for tasks that fail validation.
    static func expectRejected(_ reply: Reply, _ route: Route, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        if route.path.hasSuffix("/addtaskcollection"), reply.status == 200 {
            let results = reply.json["value"] as? [[String: Any]] ?? []
            #expect(results.count == 1, "\(what): \(reply.text.prefix(300))", sourceLocation: sourceLocation)
            for result in results {
                #expect(result["status"] as? String == "clienterror", "\(what): \(reply.text.prefix(300))", sourceLocation: sourceLocation)
                #expect((result["error"] as? [String: Any])?["code"] as? String != nil, "\(what)", sourceLocation: sourceLocation)
            }
            return
        }
        expectBatchError(reply, what, sourceLocation: sourceLocation)
    }

    @Test func hostileBodiesNeverEndTheServer() async throws {
        try await withServer { server in
            #expect(try await server.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":0}"#).status == 201)
            #expect(try await eventually { (try await server.send(.get, "/pools/p").json["allocationState"] as? String) == "steady" })
            let job = #"{"id":"j","poolInfo":{"poolId":"p"},"usesTaskDependencies":true,"onTaskFailure":"performexitoptionsjobaction"}"#
            #expect(try await server.send(.post, "/jobs", body: job).status == 201)
            #expect(try await server.send(.post, "/jobs/j/tasks", body: #"{"id":"t","commandLine":"true"}"#).status == 201)

            // The templates themselves are valid (checked where that changes nothing lasting), so each
            // rejection below is caused by the one value swapped in.
            let valid = try await server.send(.post, "/jobs/j/tasks", body: HostileBodyTests.routes[6].body([:]))
            #expect(valid.status == 201, "\(valid.text)")
            #expect(try await server.send(.delete, "/jobs/j/tasks/fz").status == 200)

            var sent = 0
            for route in HostileBodyTests.routes {
                for slot in route.slots {
                    for value in slot.invalid {
                        let reply = try await server.send(route.method, route.path, body: route.body([slot.name: value]))
                        HostileBodyTests.expectRejected(reply, route, "\(route.testDescription) \(slot.name)=\(value.prefix(40))")
                        sent += 1
                    }
                }
            }

            var random = SplitMix64(seed: 0x626F_6F6B_656E_64)
            let bodies = HostileBodyTests.malformedBodies(&random)
            let everyPath = HostileBodyTests.routes.map { ($0.method, $0.path) } + HostileBodyTests.stateChangingPaths
            for (method, path) in everyPath {
                for (name, body) in bodies {
                    let reply = try await server.send(method, path, rawBody: body)
                    HostileBodyTests.expectBatchError(reply, "\(method.rawValue) \(path) \(name)")
                    sent += 1
                }
            }

            for id in HostileBodyTests.hostileIDs(&random) {
                let creates: [(String, String)] = [
                    ("/pools", #"{"id":"\#(id)","vmSize":"small","targetDedicatedNodes":0}"#),
                    ("/jobs", #"{"id":"\#(id)","poolInfo":{"poolId":"p"}}"#),
                    ("/jobs/j/tasks", #"{"id":"\#(id)","commandLine":"true"}"#),
                    ("/jobs", #"{"id":"ok","poolInfo":{"poolId":"\#(id)"}}"#),
                ]
                for (path, body) in creates {
                    let reply = try await server.send(.post, path, body: body)
                    HostileBodyTests.expectBatchError(reply, "POST \(path) id \(id.prefix(40))")
                    sent += 1
                }
            }
            #expect(sent > 500)

            // Same server, same process: still answering, and nothing hostile was stored.
            #expect(try await server.send(.get, "/health", apiVersion: nil, sign: false).status == 200)
            let pools = (try await server.send(.get, "/pools").json["value"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(pools == ["p"])
            let jobs = (try await server.send(.get, "/jobs").json["value"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(jobs == ["j"])
            let tasks = (try await server.send(.get, "/jobs/j/tasks").json["value"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(tasks == ["t"])
            let jobState = try await server.send(.get, "/jobs/j")
            #expect(jobState.json["state"] as? String == "active")
            #expect(jobState.json["priority"] as? Int == 0)
        }
    }

    /// JSON nested as deep as the decoder allows, inside a property kept verbatim, is decoded, stored
    /// and rendered again without exhausting a stack.
    @Test func deepButAcceptedJSONIsServed() async throws {
        try await withServer { server in
            let depth = 500
            let nested = String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
            let reply = try await server.send(.post, "/pools", body: #"{"id":"deep","vmSize":"small","targetDedicatedNodes":0,"virtualMachineConfiguration":\#(nested)}"#)
            #expect(reply.status == 201, "\(reply.text.prefix(300))")
            if reply.status == 201 {
                let pool = try await server.send(.get, "/pools/deep")
                #expect(pool.status == 200)
                #expect(pool.text.contains(nested))
            }
            #expect(try await server.send(.get, "/health", apiVersion: nil, sign: false).status == 200)
        }
    }
}
