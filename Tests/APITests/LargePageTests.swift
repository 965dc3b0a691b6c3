import Foundation
import Testing

/// Pages large enough to be written on several threads at once (`PageBody.append(rendering:)`) hold
/// every task once, in id order, each exactly as a single GET renders it.
@Suite struct LargePageTests {
    @Test func largeTaskPagesMatchSingleReadsAndMissNothing() async throws {
        try await withServer { server in
            let pool = try await server.send(.post, "/pools", body: #"{"id":"pool","vmSize":"small","targetDedicatedNodes":2,"taskSlotsPerNode":4}"#)
            #expect(pool.status == 201, "\(pool.text)")
            #expect(try await server.send(.post, "/jobs", body: #"{"id":"big","poolInfo":{"poolId":"pool"}}"#).status == 201)
            // Ids in both cases (the order is case-insensitive), some with a display name and an
            // environment, so items differ in shape as well as in values.
            let count = 900
            let ids = (0..<count).map { $0 % 3 == 0 ? String(format: "T%04d", $0) : String(format: "t%04d", $0) }
            for start in stride(from: 0, to: count, by: 100) {
                let tasks = ids[start..<min(count, start + 100)].enumerated().map { offset, id in
                    offset % 4 == 0
                        ? #"{"id":"\#(id)","commandLine":"true","displayName":"n \#(id)","environmentSettings":[{"name":"K","value":"\#(id)"}]}"#
                        : #"{"id":"\#(id)","commandLine":"true"}"#
                }
                let added = try await server.send(.post, "/jobs/big/addtaskcollection", body: #"{"value":[\#(tasks.joined(separator: ","))]}"#)
                #expect(added.status == 200)
            }
            // Let them run, so most items carry node and execution details.
            #expect(try await eventually(120) {
                let counts = try await server.send(.get, "/jobs/big/taskcounts").json["taskCounts"] as? [String: Any]
                return counts?["completed"] as? Int == count
            })
            let expected = ids.sorted { $0.lowercased() < $1.lowercased() }

            func follow(_ query: [(String, String)]) async throws -> [[String: Any]] {
                var items: [[String: Any]] = []
                var page = try await server.send(.get, "/jobs/big/tasks", query: query)
                while true {
                    #expect(page.status == 200, "\(page.text.prefix(300))")
                    items += page.json["value"] as? [[String: Any]] ?? []
                    guard let next = page.json["odata.nextLink"] as? String, let url = URLComponents(string: next) else { break }
                    page = try await server.send(.get, url.path, query: (url.queryItems ?? []).filter { $0.name != "api-version" }.map { ($0.name, $0.value ?? "") })
                }
                return items
            }

            let whole = try await server.send(.get, "/jobs/big/tasks")
            #expect(whole.json["odata.nextLink"] == nil)
            let items = whole.json["value"] as? [[String: Any]] ?? []
            #expect(items.compactMap { $0["id"] as? String } == expected)
            for size in ["500", "401", "7"] {
                #expect(try await follow([("maxresults", size)]).compactMap { $0["id"] as? String } == expected, "maxresults=\(size)")
            }
            let selected = try await follow([("maxresults", "1000"), ("$select", "id,nodeInfo")])
            #expect(selected.compactMap { $0["id"] as? String } == expected)
            #expect(selected.allSatisfy { Set($0.keys).isSubset(of: ["id", "nodeInfo"]) })

            // Every 9th item against its own GET, which renders one task on one thread.
            for item in stride(from: 0, to: items.count, by: 9).map({ items[$0] }) {
                let id = item["id"] as? String ?? ""
                var single = try await server.send(.get, "/jobs/big/tasks/\(id)").json
                single["odata.metadata"] = nil
                single["bookendWaitReason"] = nil
                #expect(NSDictionary(dictionary: single).isEqual(to: item), "\(id)")
            }
        }
    }
}
