import BatchModels
import Foundation

/// The REST operations the CLI uses, one function each, named after the Azure operation; ids are
/// percent-encoded here so callers pass them as users typed them.
public enum BatchOperations {
    private static func seg(_ text: String) -> String { BatchHTTPClient.segment(text) }
    private static func json<T: Encodable>(_ value: T) throws -> Data { try BatchJSON.encode(value) }

    // MARK: Pools

    public static func createPool(_ pool: BatchPoolCreateOptions) throws -> BatchRequest<NoContent> {
        BatchRequest("POST", "/pools", body: try json(pool), expect: [201])
    }
    public static func listPools(filter: String? = nil) -> BatchRequest<BatchPoolList> {
        BatchRequest("GET", "/pools", query: filterQuery(filter), expect: [200])
    }
    public static func getPool(_ poolId: String) -> BatchRequest<BatchPool> {
        BatchRequest("GET", "/pools/\(seg(poolId))", expect: [200])
    }
    public static func resizePool(_ poolId: String, _ options: BatchPoolResizeOptions) throws -> BatchRequest<NoContent> {
        BatchRequest("POST", "/pools/\(seg(poolId))/resize", body: try json(options), expect: [202])
    }
    public static func deletePool(_ poolId: String) -> BatchRequest<NoContent> {
        BatchRequest("DELETE", "/pools/\(seg(poolId))", expect: [202])
    }

    // MARK: Nodes

    public static func listNodes(_ poolId: String, filter: String? = nil) -> BatchRequest<BatchNodeList> {
        BatchRequest("GET", "/pools/\(seg(poolId))/nodes", query: filterQuery(filter), expect: [200])
    }
    public static func getNode(_ poolId: String, _ nodeId: String) -> BatchRequest<BatchNode> {
        BatchRequest("GET", "/pools/\(seg(poolId))/nodes/\(seg(nodeId))", expect: [200])
    }
    public static func rebootNode(_ poolId: String, _ nodeId: String, _ options: BatchNodeRebootOptions) throws -> BatchRequest<NoContent> {
        BatchRequest("POST", "/pools/\(seg(poolId))/nodes/\(seg(nodeId))/reboot", body: try json(options), expect: [202])
    }

    // MARK: Jobs

    public static func createJob(_ job: BatchJobCreateOptions) throws -> BatchRequest<NoContent> {
        BatchRequest("POST", "/jobs", body: try json(job), expect: [201])
    }
    public static func listJobs(filter: String? = nil) -> BatchRequest<BatchJobList> {
        BatchRequest("GET", "/jobs", query: filterQuery(filter), expect: [200])
    }
    public static func getJob(_ jobId: String) -> BatchRequest<BatchJob> {
        BatchRequest("GET", "/jobs/\(seg(jobId))", expect: [200])
    }
    public static func terminateJob(_ jobId: String, _ options: BatchJobTerminateOptions) throws -> BatchRequest<NoContent> {
        BatchRequest("POST", "/jobs/\(seg(jobId))/terminate", body: try json(options), expect: [202])
    }
    public static func deleteJob(_ jobId: String) -> BatchRequest<NoContent> {
        BatchRequest("DELETE", "/jobs/\(seg(jobId))", expect: [202])
    }
    public static func disableJob(_ jobId: String, _ options: BatchJobDisableOptions) throws -> BatchRequest<NoContent> {
        BatchRequest("POST", "/jobs/\(seg(jobId))/disable", body: try json(options), expect: [202])
    }
    public static func enableJob(_ jobId: String) -> BatchRequest<NoContent> {
        BatchRequest("POST", "/jobs/\(seg(jobId))/enable", expect: [202])
    }
    public static func getJobTaskCounts(_ jobId: String) -> BatchRequest<BatchTaskCountsResult> {
        BatchRequest("GET", "/jobs/\(seg(jobId))/taskcounts", expect: [200])
    }
    public static func listJobPreparationAndReleaseTaskStatus(
        _ jobId: String, filter: String? = nil
    ) -> BatchRequest<BatchJobPreparationAndReleaseTaskStatusList> {
        BatchRequest("GET", "/jobs/\(seg(jobId))/jobpreparationandreleasetaskstatus", query: filterQuery(filter), expect: [200])
    }

    // MARK: Tasks

    public static func createTask(_ jobId: String, _ task: BatchTaskCreateOptions) throws -> BatchRequest<NoContent> {
        BatchRequest("POST", "/jobs/\(seg(jobId))/tasks", body: try json(task), expect: [201])
    }
    public static func createTaskCollection(_ jobId: String, _ group: BatchTaskGroup) throws -> BatchRequest<BatchTaskAddCollectionResult> {
        BatchRequest("POST", "/jobs/\(seg(jobId))/addtaskcollection", body: try json(group), expect: [200])
    }
    public static func listTasks(_ jobId: String, filter: String? = nil) -> BatchRequest<BatchTaskList> {
        BatchRequest("GET", "/jobs/\(seg(jobId))/tasks", query: filterQuery(filter), expect: [200])
    }
    public static func getTask(_ jobId: String, _ taskId: String) -> BatchRequest<BatchTask> {
        BatchRequest("GET", "/jobs/\(seg(jobId))/tasks/\(seg(taskId))", expect: [200])
    }
    public static func terminateTask(_ jobId: String, _ taskId: String) -> BatchRequest<NoContent> {
        BatchRequest("POST", "/jobs/\(seg(jobId))/tasks/\(seg(taskId))/terminate", expect: [204])
    }
    public static func deleteTask(_ jobId: String, _ taskId: String) -> BatchRequest<NoContent> {
        BatchRequest("DELETE", "/jobs/\(seg(jobId))/tasks/\(seg(taskId))", expect: [200])
    }
    public static func reactivateTask(_ jobId: String, _ taskId: String) -> BatchRequest<NoContent> {
        BatchRequest("POST", "/jobs/\(seg(jobId))/tasks/\(seg(taskId))/reactivate", expect: [204])
    }
    public static func listTaskFiles(_ jobId: String, _ taskId: String, recursive: Bool = false, filter: String? = nil) -> BatchRequest<BatchNodeFileList> {
        BatchRequest("GET", "/jobs/\(seg(jobId))/tasks/\(seg(taskId))/files",
            query: (recursive ? [("recursive", "true")] : []) + filterQuery(filter), expect: [200])
    }
    public static func listNodeFiles(_ poolId: String, _ nodeId: String, recursive: Bool = false, filter: String? = nil) -> BatchRequest<BatchNodeFileList> {
        BatchRequest("GET", "/pools/\(seg(poolId))/nodes/\(seg(nodeId))/files",
            query: (recursive ? [("recursive", "true")] : []) + filterQuery(filter), expect: [200])
    }
    /// A file of the task's directory; `path` may contain `/` (sent as `%2F`).
    public static func getTaskFile(_ jobId: String, _ taskId: String, path: String) -> BatchRequest<Data> {
        BatchRequest("GET", "/jobs/\(seg(jobId))/tasks/\(seg(taskId))/files/\(seg(path))", expect: [200])
    }

    private static func filterQuery(_ filter: String?) -> [(String, String)] {
        filter.map { [("$filter", $0)] } ?? []
    }
}
