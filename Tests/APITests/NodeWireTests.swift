import Foundation
import Testing

/// What a node shows beyond the stored row: `nodeAgentInfo`, `virtualMachineInfo.imageReference`
/// (the pool's), and `recentTasks` once a task ran on it.
@Suite struct NodeWireTests {
    @Test func nodesCarryAgentInfoTheImageAndRecentTasks() async throws {
        try await withServer { server in
            let image = #"{"publisher":"canonical","offer":"ubuntu-24_04-lts","sku":"server","version":"latest"}"#
            let created = try await server.send(.post, "/pools", body: #"""
                {"id":"wp","vmSize":"small","targetDedicatedNodes":1,
                 "virtualMachineConfiguration":{"imageReference":\#(image),"nodeAgentSKUId":"batch.node.ubuntu 24.04"}}
                """#)
            #expect(created.status == 201, "\(created.text)")
            var node: [String: Any] = [:]
            #expect(try await eventually(60) {
                let nodes = try await server.send(.get, "/pools/wp/nodes", query: [("$filter", "state eq 'idle'")])
                node = (nodes.json["value"] as? [[String: Any]])?.first ?? [:]
                return !node.isEmpty
            })
            let nodeID = node["id"] as? String ?? ""
            let agent = node["nodeAgentInfo"] as? [String: Any]
            #expect(agent?["version"] as? String == "1.0.0")
            #expect(agent?["lastUpdateTime"] as? String == node["allocationTime"] as? String)
            let reference = (node["virtualMachineInfo"] as? [String: Any])?["imageReference"] as? [String: String]
            #expect(reference == ["publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"])
            #expect(node["recentTasks"] == nil)

            #expect(try await server.send(.post, "/jobs", body: #"{"id":"wj","poolInfo":{"poolId":"wp"}}"#).status == 201)
            #expect(try await server.send(.post, "/jobs/wj/tasks", body: #"{"id":"ran","commandLine":"/bin/sh -c 'exit 3'"}"#).status == 201)
            #expect(try await eventually(60) {
                (try await server.send(.get, "/jobs/wj/tasks/ran").json["state"] as? String) == "completed"
            })
            let single = try await server.send(.get, "/pools/wp/nodes/\(nodeID)")
            let recent = single.json["recentTasks"] as? [[String: Any]] ?? []
            #expect(recent.count == 1, "\(single.text)")
            let info = recent.first ?? [:]
            #expect(info["jobId"] as? String == "wj")
            #expect(info["taskId"] as? String == "ran")
            #expect(info["taskState"] as? String == "completed")
            #expect((info["taskUrl"] as? String)?.hasSuffix("/jobs/wj/tasks/ran") == true)
            #expect((info["executionInfo"] as? [String: Any])?["exitCode"] as? Int == 3)
            let listed = try await server.send(.get, "/pools/wp/nodes")
            let listedRecent = (listed.json["value"] as? [[String: Any]])?.first?["recentTasks"] as? [[String: Any]]
            #expect(listedRecent?.map { $0["taskId"] as? String } == ["ran"])
        }
    }

    /// A pool created without an image still gives its nodes a `virtualMachineInfo` object: the 15.x
    /// SDK requires the property.
    @Test func aPoolWithoutAnImageStillHasVirtualMachineInfo() async throws {
        try await withServer { server async throws in
            #expect(try await server.send(.post, "/pools", body: #"{"id":"bare","vmSize":"small","targetDedicatedNodes":1}"#).status == 201)
            var node: [String: Any] = [:]
            #expect(try await eventually(60) {
                node = (try await server.send(.get, "/pools/bare/nodes").json["value"] as? [[String: Any]])?.first ?? [:]
                return !node.isEmpty
            })
            #expect((node["virtualMachineInfo"] as? [String: Any])?.isEmpty == true)
            #expect((node["nodeAgentInfo"] as? [String: Any])?["version"] as? String == "1.0.0")
        }
    }
}
