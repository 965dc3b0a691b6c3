import BatchModels
import Bookend
import Foundation
import HTTPTypes
import Hummingbird

/// `/pools/{id}/nodes…`.
struct NodeController: Sendable {
    let engine: Engine

    func addRoutes(to routes: BatchRoutes) {
        let pool = BatchRoutes.taking("poolID")
        let node = BatchRoutes.taking("poolID", "nodeID")
        routes.on("/pools/:poolID/nodes", [(.get, pool(list))])
        routes.on("/pools/:poolID/nodes/:nodeID", [(.get, node(get))])
        routes.actions(of: "/pools/:poolID/nodes/:nodeID", [
            ("reboot", node(reboot)), ("disablescheduling", node(disableScheduling)), ("enablescheduling", node(enableScheduling)),
        ])
        routes.on("/nodecounts", [(.get, { request, _ in try await counts(request) })])
    }

    func list(_ request: APIRequest, _ poolID: String) async throws -> Reply {
        let query = try ListQuery(request, properties: FilterProperties.nodes)
        let pool = try await engine.pool(id: poolID)
        let items = try await engine.nodes(poolID: poolID).map { node in
            (key: node.id, item: try render(node, pool, request))
        }
        return try query.page(items, request: request, metadata: "nodes")
    }

    func get(_ request: APIRequest, _ poolID: String, _ nodeID: String) async throws -> Reply {
        let pool = try await engine.pool(id: poolID)
        let node = try await engine.node(poolID: poolID, nodeID: nodeID)
        // Nodes have no ETag: Last-Modified is their state's transition time.
        return try Render.single(request, try render(node, pool, request), metadata: "nodes/@Element", eTag: "",
            lastModified: node.stateTransitionTime, headers: [("DataServiceId", Wire.nodeURL(request.baseURL, poolID, nodeID))])
    }

    private func render(_ node: Node, _ pool: Pool, _ request: APIRequest) throws -> some SingleEntity {
        let recent = try engine.recentTasks(poolID: pool.id, nodeID: node.id)
        return Render.node(node, pool: pool, recentTasks: recent, request.baseURL)
    }

    func disableScheduling(_ request: APIRequest, _ poolID: String, _ nodeID: String) async throws -> Reply {
        let body = try request.decodeOptional(BatchNodeDisableSchedulingOptions.self)
        try await engine.disableNodeScheduling(poolID: poolID, nodeID: nodeID, nodeDisableSchedulingOption: body?.nodeDisableSchedulingOption?.rawValue)
        return Render.mutation(200, dataServiceID: Wire.nodeURL(request.baseURL, poolID, nodeID) + "/disablescheduling")
    }

    func enableScheduling(_ request: APIRequest, _ poolID: String, _ nodeID: String) async throws -> Reply {
        try await engine.enableNodeScheduling(poolID: poolID, nodeID: nodeID)
        return Render.mutation(200, dataServiceID: Wire.nodeURL(request.baseURL, poolID, nodeID) + "/enablescheduling")
    }

    func reboot(_ request: APIRequest, _ poolID: String, _ nodeID: String) async throws -> Reply {
        let body = try request.decodeOptional(BatchNodeRebootOptions.self)
        try await engine.rebootNode(poolID: poolID, nodeID: nodeID, nodeRebootOption: body?.nodeRebootOption?.rawValue)
        return Render.mutation(202, dataServiceID: Wire.nodeURL(request.baseURL, poolID, nodeID) + "/reboot")
    }

    /// `GET /nodecounts`: nodes per pool by state, dedicated and low-priority apart.
    func counts(_ request: APIRequest) async throws -> Reply {
        let query = try ListQuery(request, properties: FilterProperties.nodeCounts)
        var items = [(key: String, item: Render.NodeCounts)]()
        for pool in try await engine.pools() {
            items.append((key: pool.id, item: Render.nodeCounts(poolID: pool.id, nodes: try await engine.nodes(poolID: pool.id))))
        }
        return try query.page(items, request: request, metadata: "poolnodecounts")
    }
}
