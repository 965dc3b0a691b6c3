@testable import API
import Bookend
import Foundation
import HTTPTypes
import Testing

/// Strict input at the edge: bodies must be RFC 8259 JSON, every property its wire type (those
/// Bookend keeps without acting on too), and `$filter` may use each property only as its kind allows.
@Suite struct StrictInputTests {
    static let notJSON: [(String, String)] = [
        ("trailing comma in an object", #"{"id":"p","vmSize":"small",}"#),
        ("trailing comma in an array", #"{"id":"p","vmSize":"small","metadata":[{"name":"a","value":"b"},]}"#),
        ("block comment", #"{"id":"p" /* c */,"vmSize":"small","targetDedicatedNodes":0}"#),
        ("line comment", "// c\n{\"id\":\"p\",\"vmSize\":\"small\"}"),
        ("NaN", #"{"id":"p","vmSize":"small","targetDedicatedNodes":NaN}"#),
        ("Infinity", #"{"id":"p","vmSize":"small","targetDedicatedNodes":-Infinity}"#),
        ("leading zero", #"{"id":"p","vmSize":"small","targetDedicatedNodes":01}"#),
        ("plus sign", #"{"id":"p","vmSize":"small","targetDedicatedNodes":+1}"#),
        ("bare fraction", #"{"id":"p","vmSize":"small","targetDedicatedNodes":.5}"#),
        ("single quotes", #"{'id':'p','vmSize':'small'}"#),
        ("unquoted key", #"{id:"p","vmSize":"small","targetDedicatedNodes":0}"#),
        ("duplicate key", #"{"id":"p","id":"q","vmSize":"small","targetDedicatedNodes":0}"#),
        ("raw tab in a string", "{\"id\":\"p\",\"vmSize\":\"sm\tall\"}"),
        ("bad escape", #"{"id":"p","vmSize":"sm\all"}"#),
        ("short unicode escape", #"{"id":"p","vmSize":"\u00"}"#),
        ("two values", #"{"id":"p","vmSize":"small","targetDedicatedNodes":0} {}"#),
        ("missing colon", #"{"id" "p","vmSize":"small","targetDedicatedNodes":0}"#),
        ("leading comma", #"{,"id":"p","vmSize":"small","targetDedicatedNodes":0}"#),
        ("capitalised literal", #"{"id":"p","vmSize":"small","enableAutoScale":True}"#),
        ("unclosed array", #"{"id":"p","vmSize":"small","metadata":["#),
        ("duplicate key in a wide object", "{" + (0..<20).map { #""k\#($0)":\#($0)"# }.joined(separator: ",") + #","k3":0}"#),
        ("duplicate key after a nested object", #"{"a":{"a":1},"b":[{"a":1,"b":2}],"a":2}"#),
        ("duplicate key written with an escape", #"{"id":"p","\u0069d":"q","vmSize":"small"}"#),
        ("duplicate key written with an escape in a wide object", "{" + (0..<20).map { #""k\#($0)":\#($0)"# }.joined(separator: ",") + #","\u006b3":0}"#),
    ]

    @Test(arguments: notJSON)
    func malformedJSONIsRefusedBeforeDecoding(_ why: String, _ body: String) throws {
        let error = #expect(throws: BookendError.self, "\(why)") { try StrictJSON.check(Data(body.utf8)) }
        #expect(error?.code == "InvalidRequestBody", "\(why)")
    }

    static let wellFormed: [String] = [
        #"{"id":"p","vmSize":"small","targetDedicatedNodes":0}"#, "  {\n\t\"a\" : [ 1 , -0.5e+3 , 2E-2 , 0 , true , false , null ] }\r\n", #"[]"#, #"{}"#,
        #""\u00e9\"\\\/\b\f\n\r\t""#, "-0", "[[[[[]]]]]", #"{"a":{"a":{"a":1}},"b":{"a":2}}"#, "\"é 😀\"",
        String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000),
        String(repeating: #"{"a":"#, count: 100_000) + "1" + String(repeating: "}", count: 100_000),
        "{" + (0..<40).map { #""k\#($0)":{"k\#($0)":[]}"# }.joined(separator: ",") + "}",
        #"{"\u0069d":"p","i\"d":1,"i\\d":2}"#,
    ]

    @Test(arguments: wellFormed)
    func wellFormedJSONPasses(_ body: String) throws {
        try StrictJSON.check(Data(body.utf8))
    }

    @Test func malformedBodiesAre400InvalidRequestBodyAndCreateNothing() async throws {
        try await withRouter { api in
            for (why, body) in StrictInputTests.notJSON {
                let reply = try await api.send(.post, "/pools", body: body)
                #expect(reply.status == 400, "\(why): \(reply.text)")
                #expect(reply.code == "InvalidRequestBody", "\(why): \(reply.text)")
            }
            let pools = try await api.send(.get, "/pools")
            #expect((pools.json["value"] as? [Any])?.isEmpty == true, "\(pools.text)")
            #expect(try await api.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":0,"metadata":[{"name":"a","value":"\u00e9"}]}"#).status == 201)
        }
    }

    /// Properties the service sets, sent on a create: 400 `UnsupportedProperty` naming the property
    /// (spec §6.6, Decision), and nothing is created; in a task collection the whole call. They were
    /// accepted and dropped without a word. Nested properties of the same name are the user's own.
    @Test func readOnlyPropertiesSentOnACreateAreRefused() async throws {
        try await withRouter { api in
            #expect(try await api.send(.post, "/jobs", body: #"{"id":"j","poolInfo":{"poolId":"p"}}"#).status == 201)
            let cases: [(String, String, String)] = [
                ("/pools", #"{"id":"p1","vmSize":"small","targetDedicatedNodes":0,"state":"deleting"}"#, "state"),
                ("/pools", #"{"id":"p2","vmSize":"small","targetDedicatedNodes":0,"url":"http://x"}"#, "url"),
                ("/jobs", #"{"id":"j2","poolInfo":{"poolId":"p"},"executionInfo":{"startTime":"2026-01-01T00:00:00Z"}}"#, "executionInfo"),
                ("/jobs/j/tasks", #"{"id":"t1","commandLine":"/bin/true","nodeInfo":{}}"#, "nodeInfo"),
                ("/jobs/j/addtaskcollection", #"{"value":[{"id":"t2","commandLine":"/bin/true"},{"id":"t3","commandLine":"/bin/true","eTag":"0x1"}]}"#, "eTag"),
            ]
            for (path, body, property) in cases {
                let reply = try await api.send(.post, path, body: body)
                #expect(reply.status == 400 && reply.code == "UnsupportedProperty", "\(path) \(property): \(reply.text)")
                #expect(reply.values["PropertyName"] == property, "\(reply.text)")
            }
            #expect((try await api.send(.get, "/pools").json["value"] as? [Any])?.isEmpty == true)
            #expect((try await api.send(.get, "/jobs/j/tasks").json["value"] as? [Any])?.isEmpty == true)
            #expect(try await api.send(.get, "/jobs/j2").status == 404)
            // The same names deeper down are not the entity's: a metadata item, an environment setting.
            #expect(try await api.send(.post, "/jobs/j/tasks",
                body: #"{"id":"t4","commandLine":"/bin/true","environmentSettings":[{"name":"state","value":"url"}]}"#).status == 201)
        }
    }

    static let wrongTypes: [(path: String, body: String, property: String)] = [
        ("/pools", #"{"id":"p","vmSize":"small","targetDedicatedNodes":"two"}"#, "targetDedicatedNodes"),
        ("/pools", #"{"id":"p","vmSize":"small","enableAutoScale":"yes"}"#, "enableAutoScale"),
        ("/pools", #"{"id":"p","vmSize":"small","startTask":{"commandLine":"x","containerSettings":"c"}}"#, "startTask.containerSettings"),
        ("/jobs", #"{"id":"j","poolInfo":{"poolId":"p"},"networkConfiguration":[]}"#, "networkConfiguration"),
        ("/jobs", #"{"id":"j","poolInfo":{"poolId":"p","autoPoolSpecification":1}}"#, "poolInfo.autoPoolSpecification"),
        ("/jobs", #"{"id":"j","poolInfo":{"poolId":"p"},"jobManagerTask":{"id":"m","commandLine":"x","outputFiles":{}}}"#, "jobManagerTask.outputFiles"),
        ("/jobs", #"{"id":"j","poolInfo":"p"}"#, "poolInfo"),
        ("/jobs/j/tasks", #"{"id":"t","commandLine":7}"#, "commandLine"),
        ("/jobs/j/tasks", #"{"id":"t","commandLine":"x","outputFiles":"all"}"#, "outputFiles"),
        ("/jobs/j/tasks", #"{"id":"t","commandLine":"x","outputFiles":{"filePattern":"*"}}"#, "outputFiles"),
        ("/jobs/j/tasks", #"{"id":"t","commandLine":"x","userIdentity":5}"#, "userIdentity"),
        ("/jobs/j/tasks", #"{"id":"t","commandLine":"x","affinityInfo":[]}"#, "affinityInfo"),
        ("/jobs/j/tasks", #"{"id":"t","commandLine":"x","containerSettings":true}"#, "containerSettings"),
        ("/jobs/j/tasks", #"{"id":"t","commandLine":"x","applicationPackageReferences":{}}"#, "applicationPackageReferences"),
        ("/jobs/j/tasks", #"{"id":"t","commandLine":"x","environmentSettings":{"name":"A"}}"#, "environmentSettings"),
    ]

    @Test func propertiesOfTheWrongTypeAreNamed() async throws {
        try await withRouter { api in
            #expect(try await api.send(.post, "/jobs", body: #"{"id":"j","poolInfo":{"poolId":"none"}}"#).status == 201)
            for (path, body, property) in StrictInputTests.wrongTypes {
                let reply = try await api.send(.post, path, body: body)
                #expect(reply.status == 400, "\(body): \(reply.text)")
                #expect(reply.code == "InvalidPropertyValue", "\(body): \(reply.text)")
                #expect(reply.values["PropertyName"] == property, "\(body): \(reply.text)")
            }
            #expect((try await api.send(.get, "/jobs/j/tasks").json["value"] as? [Any])?.isEmpty == true)
            #expect((try await api.send(.get, "/pools").json["value"] as? [Any])?.isEmpty == true)
            // The right types are accepted and kept.
            let kept = try await api.send(.post, "/jobs/j/tasks",
                body: #"{"id":"t","commandLine":"x","outputFiles":[{"filePattern":"*"}],"containerSettings":{"imageName":"i"}}"#)
            #expect(kept.status == 201, "\(kept.text)")
        }
    }

    /// Nested properties of create bodies and the bodies of updates: the body is decoded into its wire
    /// model once, so a wrong type anywhere in it is refused naming its full path, and nothing is stored
    /// or changed.
    static let wrongNestedTypes: [(method: HTTPRequest.Method, path: String, body: String, property: String)] = [
        (.post, "/jobs", #"{"id":"j2","poolInfo":{"poolId":"p"},"jobPreparationTask":{"commandLine":"x","containerSettings":"c"}}"#,
            "jobPreparationTask.containerSettings"),
        (.post, "/jobs", #"{"id":"j2","poolInfo":{"poolId":"p"},"jobManagerTask":{"id":"m","commandLine":"x","containerSettings":[]}}"#,
            "jobManagerTask.containerSettings"),
        (.post, "/jobs", #"{"id":"j2","poolInfo":{"poolId":"p"},"onTaskFailure":1}"#, "onTaskFailure"),
        (.post, "/jobs/j/tasks", #"{"id":"t","commandLine":"x","resourceFiles":[{"httpUrl":"http://h/f","filePath":"f","identityReference":"me"}]}"#,
            "resourceFiles[0].identityReference"),
        (.post, "/jobs/j/tasks", #"{"id":"t","commandLine":"x","userIdentity":{"autoUser":{"scope":1}}}"#, "userIdentity.autoUser.scope"),
        (.post, "/jobs/j/tasks", #"{"id":"t","commandLine":"x","exitConditions":{"exitCodes":[{"code":1,"exitOptions":{"jobAction":true}}]}}"#,
            "exitConditions.exitCodes[0].exitOptions.jobAction"),
        (.post, "/jobs/j/addtaskcollection", #"{"value":[{"id":"a","commandLine":"x"},{"id":"b","commandLine":"x","multiInstanceSettings":[]}]}"#,
            "value[1].multiInstanceSettings"),
        (.patch, "/pools/p", #"{"startTask":{"commandLine":"x","containerSettings":"c"}}"#, "startTask.containerSettings"),
        (.patch, "/jobs/j", #"{"onAllTasksComplete":3}"#, "onAllTasksComplete"),
        (.put, "/jobs/j", #"{"poolInfo":{"poolId":"none","autoPoolSpecification":1}}"#, "poolInfo.autoPoolSpecification"),
        (.put, "/jobs/j/tasks/t0", #"{"constraints":{"maxTaskRetryCount":"many"}}"#, "constraints.maxTaskRetryCount"),
    ]

    @Test func nestedAndUpdatePropertiesOfTheWrongTypeAreNamed() async throws {
        try await withRouter { api in
            #expect(try await api.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":0}"#).status == 201)
            #expect(try await api.send(.post, "/jobs", body: #"{"id":"j","poolInfo":{"poolId":"none"}}"#).status == 201)
            #expect(try await api.send(.post, "/jobs/j/tasks", body: #"{"id":"t0","commandLine":"x"}"#).status == 201)
            let before = [try await api.send(.get, "/pools/p").text, try await api.send(.get, "/jobs/j").text,
                try await api.send(.get, "/jobs/j/tasks/t0").text]
            for (method, path, body, property) in StrictInputTests.wrongNestedTypes {
                let reply = try await api.send(method, path, body: body)
                #expect(reply.status == 400, "\(method) \(path) \(body): \(reply.text)")
                #expect(reply.code == "InvalidPropertyValue", "\(body): \(reply.text)")
                #expect(reply.values["PropertyName"] == property, "\(body): \(reply.text)")
            }
            // The message says which JSON type was expected, as for any other property.
            let object = try await api.send(.post, "/jobs/j/tasks", body: #"{"id":"t","commandLine":"x","containerSettings":"c"}"#)
            #expect(object.text.contains("The value provided for containerSettings is invalid: must be of type object"), "\(object.text)")
            let array = try await api.send(.post, "/jobs/j/tasks", body: #"{"id":"t","commandLine":"x","outputFiles":{}}"#)
            #expect(array.text.contains("The value provided for outputFiles is invalid: must be of type array"), "\(array.text)")
            let tasks = (try await api.send(.get, "/jobs/j/tasks").json["value"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(tasks == ["t0"])
            #expect((try await api.send(.get, "/jobs").json["value"] as? [Any])?.count == 1)
            let after = [try await api.send(.get, "/pools/p").text, try await api.send(.get, "/jobs/j").text,
                try await api.send(.get, "/jobs/j/tasks/t0").text]
            #expect(after == before)
        }
    }

    /// A wire enum value this version does not know is refused by validation, naming the property and
    /// the value as sent.
    static let unknownEnumValues: [(body: String, property: String, value: String)] = [
        (#"{"id":"t","commandLine":"x","userIdentity":{"autoUser":{"elevationLevel":"Root"}}}"#, "userIdentity.autoUser.elevationLevel", "Root"),
        (#"{"id":"t","commandLine":"x","userIdentity":{"autoUser":{"scope":"node"}}}"#, "userIdentity.autoUser.scope", "node"),
        (#"{"id":"t","commandLine":"x","exitConditions":{"default":{"dependencyAction":"Ignore"}}}"#, "exitConditions.dependencyAction", "Ignore"),
        (#"{"id":"t","commandLine":"x","exitConditions":{"default":{"jobAction":"explode"}}}"#, "exitConditions.jobAction", "explode"),
    ]

    @Test func unknownEnumValuesAreRefusedAsSent() async throws {
        try await withRouter { api in
            #expect(try await api.send(.post, "/jobs", body: #"{"id":"j","poolInfo":{"poolId":"none"},"onTaskFailure":"performExitOptionsJobAction"}"#).status == 201)
            for (body, property, value) in StrictInputTests.unknownEnumValues {
                let reply = try await api.send(.post, "/jobs/j/tasks", body: body)
                #expect(reply.status == 400, "\(body): \(reply.text)")
                #expect(reply.code == "InvalidPropertyValue", "\(body): \(reply.text)")
                #expect(reply.values["PropertyName"] == property, "\(body): \(reply.text)")
                #expect(reply.values["PropertyValue"] == value, "\(body): \(reply.text)")
            }
            // Known values in any case are kept in the wire's lowercase.
            let kept = try await api.send(.post, "/jobs/j/tasks",
                body: #"{"id":"t","commandLine":"x","userIdentity":{"autoUser":{"scope":"Task","elevationLevel":"NonAdmin"}},"exitConditions":{"default":{"jobAction":"Disable"}}}"#)
            #expect(kept.status == 201, "\(kept.text)")
            let task = try await api.send(.get, "/jobs/j/tasks/t")
            let identity = (task.json["userIdentity"] as? [String: Any])?["autoUser"] as? [String: Any]
            #expect(identity?["scope"] as? String == "task")
            #expect(identity?["elevationLevel"] as? String == "nonadmin")
            let conditions = (task.json["exitConditions"] as? [String: Any])?["default"] as? [String: Any]
            #expect(conditions?["jobAction"] as? String == "disable")
            // A job's PATCH body is the wire's model too.
            let patch = try await api.send(.patch, "/jobs/j", body: #"{"onAllTasksComplete":"Sometimes"}"#)
            #expect(patch.status == 400, "\(patch.text)")
            #expect(patch.values["PropertyName"] == "onAllTasksComplete", "\(patch.text)")
            #expect(patch.values["PropertyValue"] == "Sometimes", "\(patch.text)")
            #expect(try await api.send(.patch, "/jobs/j", body: #"{"onAllTasksComplete":"TerminateJob"}"#).status == 200)
            #expect(try await api.send(.get, "/jobs/j").json["onAllTasksComplete"] as? String == "terminatejob")
        }
    }

    static let refusedFilters: [(list: String, filter: String)] = [
        ("/jobs", "state gt 'active'"),
        ("/jobs", "state eq 'sleeping'"),
        ("/jobs", "state eq 3"),
        ("/jobs", "startswith(state,'act')"),
        ("/jobs", "creationTime gt 'yesterday'"),
        ("/jobs", "creationTime gt datetime'2025-13-45'"),
        ("/jobs", "creationTime gt '2020-02-30T25:00:00Z'"),
        ("/jobs", "creationTime gt datetime'2021-02-29T00:00:00Z'"),
        ("/jobs", "creationTime gt '2020-01-01T00:00:00Zjunk'"),
        ("/jobs", "creationTime gt '2020-01-01 00:00:00Z'"),
        ("/jobs", "creationTime gt 5"),
        ("/jobs", "priority eq 'high'"),
        ("/jobs", "priority gt null"),
        ("/jobs", "id eq 5"),
        ("/jobs", "bogus eq 'x'"),
        ("/pools", "enableAutoScale gt false"),
        ("/pools", "enableAutoScale eq 'no'"),
        ("/pools", "allocationState eq 'growing'"),
        ("/pools/p/nodes", "isDedicated eq 1"),
        ("/pools/p/nodes", "state ge 'idle'"),
        ("/pools/p/nodes", "startswith(schedulingState,'en')"),
        ("/jobs/j/tasks", "executionInfo/exitCode eq 'zero'"),
        ("/jobs/j/tasks", "executionInfo/result eq 'maybe'"),
        ("/jobs/j/tasks", "state lt 'running'"),
    ]

    static let acceptedFilters: [(list: String, filter: String)] = [
        ("/jobs", "state eq 'active'"),
        ("/jobs", "state ne 'Completed' and priority ge -10"),
        ("/jobs", "creationTime gt datetime'2020-01-01T00:00:00Z'"),
        ("/jobs", "creationTime lt '2999-01-01T00:00:00.000Z'"),
        ("/jobs", "executionInfo/endTime eq null"),
        ("/jobs", "startswith(id,'j') or displayName eq 'x'"),
        ("/pools", "enableAutoScale eq false and allocationState eq 'steady'"),
        ("/pools/p/nodes", "isDedicated eq true and state eq 'starttaskfailed'"),
        ("/jobs/j/tasks", "executionInfo/exitCode ne 0 and executionInfo/result eq 'failure'"),
    ]

    @Test func filtersUseEachPropertyAsItsKindAllows() async throws {
        try await withRouter { api in
            #expect(try await api.send(.post, "/pools", body: #"{"id":"p","vmSize":"small","targetDedicatedNodes":0}"#).status == 201)
            #expect(try await api.send(.post, "/jobs", body: #"{"id":"j","poolInfo":{"poolId":"p"}}"#).status == 201)
            for (list, filter) in StrictInputTests.refusedFilters {
                let reply = try await api.send(.get, list, query: [("$filter", filter)])
                #expect(reply.status == 400, "\(list) \(filter): \(reply.text)")
                #expect(reply.code == "InvalidQueryParameterValue", "\(list) \(filter): \(reply.text)")
                #expect(reply.values["QueryParameterName"] == "$filter", "\(list) \(filter)")
            }
            for (list, filter) in StrictInputTests.acceptedFilters {
                let reply = try await api.send(.get, list, query: [("$filter", filter)])
                #expect(reply.status == 200, "\(list) \(filter): \(reply.text)")
            }
        }
    }
}
