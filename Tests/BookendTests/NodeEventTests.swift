import Bookend
import Foundation
import TestSupport
import Testing

/// Every node transition leaves an event, a transition time and a new ETag, including the two that
/// wrote none before the stores: a rebooted node booting again, and a node that has left its pool.
@Suite struct NodeEventTests {
    static func nodeEvents(_ h: EngineHarness, _ node: String) async throws -> [[String]] {
        try await h.sql("SELECT kind, coalesce(from_state, '-'), coalesce(to_state, '-') FROM event WHERE node_id = '\(node)' AND kind LIKE 'node.%' ORDER BY seq")
    }

    @Test func aRebootedNodeRecordsEveryStepOfItsSecondBoot() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let node = try #require(try await h.pool().first)
            try await h.engine.rebootNode(poolID: "pool", nodeID: node.id)
            // The seventh node event is the second boot's idle; the engine's own event log says when.
            try await h.engine.wait(timeout: .seconds(60)) { _ in
                try h.sqlOnCallingThread("SELECT count(*) FROM event WHERE node_id = '\(node.id)' AND kind LIKE 'node.%'") == [["7"]]
            }
            #expect(try await Self.nodeEvents(h, node.id) == [
                ["node.created", "-", "creating"],
                ["node.starting", "creating", "starting"],
                ["node.idle", "starting", "idle"],
                ["node.rebooting", "idle", "rebooting"],
                ["node.creating", "rebooting", "creating"],
                ["node.starting", "creating", "starting"],
                ["node.idle", "starting", "idle"],
            ])
            let rebooted = try await h.engine.node(poolID: "pool", nodeID: node.id)
            #expect(rebooted.state == .idle)
            #expect(rebooted.stateTransitionTime > node.stateTransitionTime)
            #expect(try await h.sql("SELECT boot_count, reboot_option IS NULL FROM node WHERE id = '\(node.id)'") == [["2", "1"]])
        }
    }

    @Test func aNodeThatLeavesItsPoolRecordsItsRemoval() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let nodes = try await h.pool(nodes: 2)
            let eTags = try await h.sql("SELECT id, e_tag FROM node ORDER BY pk")
            try await h.engine.resizePool(id: "pool", targetDedicatedNodes: 1)
            try await h.engine.wait(timeout: .seconds(60)) { engine in
                try engine.pool(id: "pool").allocationState == .steady && engine.nodes(poolID: "pool").count == 1
            }
            let remaining = try #require(try await h.engine.nodes(poolID: "pool").first)
            let gone = try #require(nodes.first { $0.id != remaining.id })
            #expect(try await Array(Self.nodeEvents(h, gone.id).suffix(2)) == [["node.leavingpool", "idle", "leavingpool"], ["node.removed", "leavingpool", "-"]])
            let after = try await h.sql("SELECT id, e_tag FROM node ORDER BY pk")
            #expect(after.first { $0.first == gone.id } != eTags.first { $0.first == gone.id })
            #expect(after.first { $0.first == remaining.id } == eTags.first { $0.first == remaining.id })
        }
    }
}
