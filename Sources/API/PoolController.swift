import BatchModels
import Bookend
import Foundation
import HTTPTypes
import Hummingbird

/// `/pools`, `/pools/{id}`, and its actions: `resize`, `stopresize`, `removenodes`, `updateproperties`, and the autoscale
/// calls, which say that Bookend does not autoscale.
struct PoolController: Sendable {
    let engine: Engine

    func addRoutes(to routes: BatchRoutes) {
        routes.resource("/pools", id: "poolID", list: list, add: add,
                        entity: [(.get, get), (.head, get), (.delete, delete), (.patch, patch)],
                        actions: [("resize", resize), ("stopresize", stopResize), ("removenodes", removeNodes),
                                  ("enableautoscale", enableAutoScale), ("evaluateautoscale", evaluateAutoScale),
                                  ("disableautoscale", disableAutoScale), ("updateproperties", updateProperties)])
        routes.on("/poolusagemetrics", [(.get, { request, _ in try usageMetrics(request) })])
    }

    func list(_ request: APIRequest) async throws -> Reply {
        let query = try ListQuery(request, properties: FilterProperties.pools)
        let expand = try ListQuery.expandsStats(request)
        let items = try await engine.pools().map { pool in
            (key: pool.id, item: Self.withStats(Render.pool(pool, request.baseURL), pool, request.baseURL, expand))
        }
        return try query.page(items, request: request, metadata: "pools")
    }

    /// `PoolStatistics` for `$expand=stats`: its URL and times. Usage and resource figures (core
    /// hours, CPU, memory, disk) are not measured on local nodes, so they are left out, as Azure may.
    static func withStats(_ model: BatchPool, _ pool: Pool, _ base: String, _ expand: Bool) -> BatchPool {
        guard expand else { return model }
        var model = model
        model.stats = .object(["url": .string(Wire.poolURL(base, pool.id)), "startTime": .string(pool.creationTime),
            "lastUpdateTime": .string(Timestamp.string(Date()))])
        return model
    }

    /// `GET /poolusagemetrics`: Azure reports core hours per pool per aggregation interval for
    /// billing. Bookend's nodes are processes on one machine with nothing to bill, so the list is
    /// empty; its query is still checked, so a client learns of a bad `$filter` here as on Azure.
    func usageMetrics(_ request: APIRequest) throws -> Reply {
        let query = try ListQuery(request, properties: FilterProperties.poolUsageMetrics)
        return query.emptyPage(request: request, metadata: "poolusagemetrics")
    }

    func add(_ request: APIRequest) async throws -> Reply {
        let pool = try await engine.createPool(try PoolSpec(request.decode(BatchPoolCreateOptions.self, refusing: .pool)))
        let url = Wire.poolURL(request.baseURL, pool.id)
        return Render.mutation(201, dataServiceID: url, eTag: pool.eTag, lastModified: pool.lastModified, location: url)
    }

    func get(_ request: APIRequest, _ id: String) async throws -> Reply {
        let expand = try ListQuery.expandsStats(request)
        let pool = try await engine.pool(id: id)
        let model = Self.withStats(Render.pool(pool, request.baseURL), pool, request.baseURL, expand)
        return try Render.single(request, model, metadata: "pools/@Element", eTag: pool.eTag, lastModified: pool.lastModified)
    }

    private func write(_ request: APIRequest, _ id: String) -> ConditionalWrite<Pool> {
        ConditionalWrite(request: request, key: "pool/\(id)", fetch: { try await engine.pool(id: id) }, url: { Wire.poolURL(request.baseURL, $0.id) })
    }

    func delete(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).delete(202) { _ in try await engine.deletePool(id: id) }
    }

    func patch(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(200) { _ in
            _ = try await engine.updatePool(id: id, request.decode(PoolUpdate.self))
        }
    }

    /// Replaces the start task and metadata (Batch's "replace pool properties"): 204.
    func updateProperties(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(204, suffix: "/updateproperties") { _ in
            let body = try request.decode(BatchPoolReplaceOptions.self)
            _ = try await engine.replacePoolProperties(id: id, startTask: body.startTask, metadata: body.metadata)
        }
    }

    func stopResize(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(202, suffix: "/stopresize") { _ in try await engine.stopPoolResize(id: id) }
    }

    func removeNodes(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(202, suffix: "/removenodes") { _ in
            let body = try request.decode(BatchNodeRemoveOptions.self)
            if let timeout = body.resizeTimeout { try Self.checkResizeTimeout(timeout) }
            try await engine.removeNodes(poolID: id, nodeIDs: body.nodeList, nodeDeallocationOption: body.nodeDeallocationOption?.rawValue)
        }
    }

    // Autoscale is not supported (spec §2.1: a pool asking for it is refused at create). On a pool that
    // exists these say so, rather than 404 ResourceNotFound, which clients read as "the pool is gone".
    func enableAutoScale(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(200, suffix: "/enableautoscale") { _ in
            throw BookendError(.invalidRequest, "InvalidPropertyValue",
                "Bookend does not autoscale pools: their node counts are the ones set at create and with resize",
                details: [.init(key: "PropertyName", value: "autoScaleFormula")])
        }
    }

    func evaluateAutoScale(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(200, suffix: "/evaluateautoscale") { _ in
            throw BookendError(.conflict, "AutoScaleNotEnabled", "Autoscale is not enabled on the pool (Bookend does not autoscale pools)")
        }
    }

    /// Autoscale is never on, so turning it off changes nothing.
    func disableAutoScale(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(200, suffix: "/disableautoscale") { _ in }
    }

    static func checkResizeTimeout(_ timeout: String) throws {
        func invalid(_ why: String) -> BookendError {
            BookendError(.invalidRequest, "InvalidPropertyValue", "The value provided for resizeTimeout is invalid: \(why)",
                details: [.init(key: "PropertyName", value: "resizeTimeout"), .init(key: "PropertyValue", value: timeout)])
        }
        let milliseconds: Int64?
        do throws(ISODuration.ParseError) { milliseconds = try ISODuration.parse(timeout) } catch { throw invalid(error.description) }
        guard let milliseconds, milliseconds >= 300_000 else { throw invalid("must be at least PT5M") }
    }

    func resize(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(202, suffix: "/resize") { _ in
            let body = try request.decode(BatchPoolResizeOptions.self)
            if let timeout = body.resizeTimeout { try Self.checkResizeTimeout(timeout) }
            try await engine.resizePool(id: id, targetDedicatedNodes: body.targetDedicatedNodes,
                targetLowPriorityNodes: body.targetLowPriorityNodes, nodeDeallocationOption: body.nodeDeallocationOption?.rawValue)
        }
    }
}
