import BatchModels
import Bookend
import Foundation

/// Engine entities → wire objects: each is converted to its BatchModels type (Conversion/, one
/// file per resource) and encoded as a JSON object, which `$select`, `$filter` and paging work on.
enum Render {
    static func pool(_ pool: Pool, _ base: String) throws -> [String: JSONValue] {
        try Wire.object(BatchPool(pool, base: base))
    }

    static func node(_ node: Node, pool: Pool, recentTasks: [NodeRecentTask], _ base: String) throws -> [String: JSONValue] {
        try Wire.object(BatchNode(node, pool: pool, recentTasks: recentTasks, base: base))
    }

    static func job(_ job: Job, _ base: String, reason: WaitReason? = nil) throws -> [String: JSONValue] {
        try Wire.object(BatchJob(job, base: base, reason: reason))
    }

    static func task(_ task: JobTask, jobID: String, _ base: String, reason: WaitReason? = nil) throws -> [String: JSONValue] {
        try Wire.object(BatchTask(task, jobID: jobID, base: base, reason: reason))
    }

    static func prepRelease(_ status: PrepReleaseStatus, _ base: String) throws -> [String: JSONValue] {
        try Wire.object(BatchJobPreparationAndReleaseTaskStatus(status, base: base))
    }

    static func file(_ file: NodeFileInfo, urlPrefix: String) throws -> [String: JSONValue] {
        try Wire.object(BatchNodeFile(file, urlPrefix: urlPrefix))
    }

    static func taskCounts(_ counts: TaskCounts) throws -> [String: JSONValue] {
        try Wire.object(BatchTaskCountsResult(counts))
    }

    static func nodeCounts(poolID: String, nodes: [Node]) throws -> [String: JSONValue] {
        try Wire.object(BatchPoolNodeCounts(poolID: poolID, nodes: nodes))
    }

    /// The answer of `addtaskcollection`: the engine's results, then the items refused before it.
    static func addResults(
        stored: [TaskAddResult], refused: [(taskID: String, error: BookendError)], jobID: String, _ base: String
    ) throws -> [String: JSONValue] {
        let results = stored.map { BatchTaskAddResult($0, jobID: jobID, base: base) } + refused.map { BatchTaskAddResult(refused: $0.taskID, $0.error) }
        return try Wire.object(BatchTaskAddCollectionResult(odataMetadata: Wire.metadataURL(base, "taskaddresult"), value: results))
    }

    /// A single entity GET: the object with `odata.metadata`, `$select` applied, ETag headers,
    /// or 304 when `If-None-Match`/`If-Modified-Since` say the client has it.
    static func single(
        _ request: APIRequest, _ object: [String: JSONValue], metadata: String, eTag: String, lastModified: String
    ) throws -> Reply {
        let headers = [("ETag", eTag), ("Last-Modified", Wire.httpDate(iso: lastModified))]
        if try Preconditions.notModified(request, eTag: eTag, lastModified: lastModified) {
            return .empty(304, headers: headers)
        }
        var body = ListQuery.apply(select: try ListQuery.selection(request), to: object)
        body["odata.metadata"] = Wire.metadata(request.baseURL, metadata)
        return .json(body, headers: headers)
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
