import BatchModels
import Bookend
import Foundation

/// Engine entities → the BatchModels wire types (the conversions are in Conversion/, one file per
/// resource), and the answers that carry them.
enum Render {
    static func pool(_ pool: Pool, _ base: String) -> BatchPool { BatchPool(pool, base: base) }

    static func node(_ node: Node, pool: Pool, recentTasks: [NodeRecentTask], _ base: String) -> BatchNode {
        BatchNode(node, pool: pool, recentTasks: recentTasks, base: base)
    }

    static func job(_ job: Job, _ base: String, reason: WaitReason? = nil) -> BatchJob { BatchJob(job, base: base, reason: reason) }

    /// `JobStatistics` / `TaskStatistics` (spec §2.4): the counts are int64 strings, as Azure sends
    /// them; CPU and I/O are not measured and are zero.
    static func stats(_ stats: ExecutionStatistics, url: String, job: Bool) -> OpaqueJSON {
        var members: [String: OpaqueJSON] = [
            "url": .string(url), "startTime": .string(stats.startTime), "lastUpdateTime": .string(stats.lastUpdateTime),
            "userCPUTime": .string("PT0S"), "kernelCPUTime": .string("PT0S"),
            "wallClockTime": .string(ISODuration.format(stats.wallClockMilliseconds)),
            "readIOps": .string("0"), "writeIOps": .string("0"), "readIOGiB": .number(0), "writeIOGiB": .number(0),
            "waitTime": .string(ISODuration.format(stats.waitMilliseconds)),
        ]
        if job {
            members["numSucceededTasks"] = .string("\(stats.succeededTasks)")
            members["numFailedTasks"] = .string("\(stats.failedTasks)")
            members["numTaskRetries"] = .string("\(stats.taskRetries)")
        }
        return .object(members)
    }

    static func task(_ task: JobTask, jobID: String, _ base: String, reason: WaitReason? = nil) -> BatchTask {
        BatchTask(task, jobID: jobID, base: base, reason: reason)
    }

    static func prepRelease(_ status: PrepReleaseStatus, _ base: String) -> BatchJobPreparationAndReleaseTaskStatus {
        BatchJobPreparationAndReleaseTaskStatus(status, base: base)
    }

    static func file(_ file: NodeFileInfo, urlPrefix: String) -> BatchNodeFile { BatchNodeFile(file, urlPrefix: urlPrefix) }

    typealias NodeCounts = BatchPoolNodeCounts
    static func nodeCounts(poolID: String, nodes: [Node]) -> NodeCounts { BatchPoolNodeCounts(poolID: poolID, nodes: nodes) }

    static func taskCounts(_ request: APIRequest, _ counts: TaskCounts) throws -> Reply {
        try .json(model: BatchTaskCountsResult(odataMetadata: Wire.metadataURL(request.baseURL, "taskcounts/@Element"), taskCounts: .init(counts.taskCounts),
            taskSlotCounts: .init(counts.taskSlotCounts)))
    }

    /// The answer of `addtaskcollection`: the engine's results, then the items refused before it.
    static func addResults(
        _ request: APIRequest, stored: [TaskAddResult], refused: [(taskID: String, error: BookendError)], jobID: String
    ) throws -> Reply {
        let base = request.baseURL
        let results = stored.map { BatchTaskAddResult($0, jobID: jobID, base: base) } + refused.map { BatchTaskAddResult(refused: $0.taskID, $0.error) }
        return try .json(model: BatchTaskAddCollectionResult(odataMetadata: Wire.metadataURL(base, "taskaddresult"), value: results))
    }

    /// A single entity GET: the entity with `odata.metadata`, `$select` applied, `headers` (its
    /// ETag and Last-Modified), or 304 when `If-None-Match`/`If-Modified-Since` say the client has it.
    static func single<Entity: SingleEntity>(
        _ request: APIRequest, _ entity: Entity, metadata: String, eTag: String, lastModified: String, headers extra: [(String, String)] = []
    ) throws -> Reply {
        let headers = entityHeaders(eTag: eTag, lastModified: lastModified)
        if try Preconditions.notModified(request, eTag: eTag, lastModified: lastModified) {
            return .empty(304, headers: headers)
        }
        let body = try entityBody(entity, base: request.baseURL, metadata: metadata, select: try ListQuery.selection(request))
        return Reply(status: 200, headers: headers + extra, body: body, contentType: Wire.jsonContentType)
    }

    /// `single` in two halves: what depends only on the entity (and the base URL and `$select`),
    /// which a caller may keep while the entity is unchanged, and then the request's conditions.
    struct RenderedEntity: Sendable {
        let eTag: String
        let lastModified: String
        let headers: [(String, String)]
        let body: Data
    }

    static func rendered<Entity: SingleEntity>(
        _ entity: Entity, base: String, metadata: String, eTag: String, lastModified: String, select: Set<String>?
    ) throws -> RenderedEntity {
        RenderedEntity(eTag: eTag, lastModified: lastModified, headers: entityHeaders(eTag: eTag, lastModified: lastModified),
            body: try entityBody(entity, base: base, metadata: metadata, select: select))
    }

    static func single(_ request: APIRequest, _ rendered: RenderedEntity) throws -> Reply {
        if try Preconditions.notModified(request, eTag: rendered.eTag, lastModified: rendered.lastModified) {
            return .empty(304, headers: rendered.headers)
        }
        return Reply(status: 200, headers: rendered.headers, body: rendered.body, contentType: Wire.jsonContentType)
    }

    private static func entityHeaders(eTag: String, lastModified: String) -> [(String, String)] {
        var headers = eTag.isEmpty ? [] : [("ETag", eTag)]
        headers.append(("Last-Modified", Wire.httpDate(iso: lastModified)))
        return headers
    }

    private static func entityBody<Entity: SingleEntity>(_ entity: Entity, base: String, metadata: String, select: Set<String>?) throws -> Data {
        var entity = entity
        entity.odataMetadata = Wire.metadataURL(base, metadata)
        return Data(try JSONBytesEncoder.encode(entity, select: select.map { $0.union(["odata.metadata"]) }))
    }

    /// Headers of a successful mutation (§6.2).
    static func mutation(
        _ status: Int, dataServiceID: String, eTag: String? = nil, lastModified: String? = nil, location: String? = nil
    ) -> Reply {
        var headers = [("DataServiceId", dataServiceID)]
        if let eTag { headers.append(("ETag", eTag)) }
        if let lastModified { headers.append(("Last-Modified", Wire.httpDate(iso: lastModified))) }
        if let location { headers.append(("Location", location)) }
        return .empty(status, headers: headers)
    }
}

/// A wire model a single GET returns: it carries its own `odata.metadata`.
protocol SingleEntity: Encodable {
    var odataMetadata: String? { get set }
}

extension BatchPool: SingleEntity {}
extension BatchNode: SingleEntity {}
extension BatchJob: SingleEntity {}
extension BatchTask: SingleEntity {}
