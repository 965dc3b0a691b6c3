import BatchModels
import Bookend
import Foundation
import HTTPTypes
import Hummingbird

/// `/jobs`, `/jobs/{id}` and the job actions.
struct JobController: Sendable {
    let engine: Engine

    /// PUT body: omitted fields return to their defaults.
    struct ReplaceBody: Decodable {
        var poolInfo: PoolInfo
        var priority: Int?
        var maxParallelTasks: Int?
        var allowTaskPreemption: Bool?
        var constraints: JobConstraints?
        var metadata: [MetadataItem]?
        var onAllTasksComplete: String?
    }

    func addRoutes(to routes: BatchRoutes) {
        routes.on("/jobs", [(.get, { request, _ in try await list(request) }), (.post, { request, _ in try await add(request) })])
        routes.on("/jobs/:jobID", [
            (.get, { try await get($0, $1.id("jobID")) }), (.patch, { try await patch($0, $1.id("jobID")) }),
            (.put, { try await replace($0, $1.id("jobID")) }), (.delete, { try await delete($0, $1.id("jobID")) }),
        ])
        routes.on("/jobs/:jobID/terminate", [(.post, { try await terminate($0, $1.id("jobID")) })])
        routes.on("/jobs/:jobID/disable", [(.post, { try await disable($0, $1.id("jobID")) })])
        routes.on("/jobs/:jobID/enable", [(.post, { try await enable($0, $1.id("jobID")) })])
        routes.on("/jobs/:jobID/jobpreparationandreleasetaskstatus", [(.get, { try await prepReleaseStatus($0, $1.id("jobID")) })])
        routes.on("/jobs/:jobID/taskcounts", [(.get, { try await taskCounts($0, $1.id("jobID")) })])
    }

    func list(_ request: APIRequest) async throws -> Reply {
        let query = try ListQuery(request, properties: FilterProperties.jobs)
        let items = try await engine.jobs().map { (key: $0.id, item: Render.job($0, request.baseURL)) }
        return try query.page(items, request: request, metadata: "jobs")
    }

    func add(_ request: APIRequest) async throws -> Reply {
        let spec = try request.decode(JobSpec.self)
        try APIErrors.expect(spec.networkConfiguration, .object, "networkConfiguration")
        try APIErrors.expect(spec.poolInfo.autoPoolSpecification, .object, "poolInfo.autoPoolSpecification")
        try APIErrors.expect(spec.jobManagerTask?.outputFiles, .array, "jobManagerTask.outputFiles")
        try APIErrors.expect(spec.jobPreparationTask?.containerSettings, .object, "jobPreparationTask.containerSettings")
        try APIErrors.expect(spec.jobReleaseTask?.containerSettings, .object, "jobReleaseTask.containerSettings")
        let job = try await engine.createJob(spec)
        let url = Wire.jobURL(request.baseURL, job.id)
        return Render.mutation(201, dataServiceID: url, eTag: job.eTag, lastModified: job.lastModified, location: url)
    }

    func get(_ request: APIRequest, _ id: String) async throws -> Reply {
        // One hop to a reader thread for both reads, not two blocking reads on this one.
        let (job, reason) = try await engine.lookup { engine in
            let job = try engine.job(id: id)
            return (job, try engine.whyWaiting(jobID: job.id))
        }
        return try Render.single(request, Render.job(job, request.baseURL, reason: reason), metadata: "jobs/@Element",
            eTag: job.eTag, lastModified: job.lastModified)
    }

    private func write(_ request: APIRequest, _ id: String) -> ConditionalWrite<Job> {
        ConditionalWrite(request: request, fetch: { try engine.job(id: id) }, url: { Wire.jobURL(request.baseURL, $0.id) })
    }

    func patch(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(200) { _ in try await engine.updateJob(id: id, try request.decode(JobUpdate.self)) }
    }

    func replace(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(200) { job in
            let body = try request.decode(ReplaceBody.self)
            try APIErrors.expect(body.poolInfo.autoPoolSpecification, .object, "poolInfo.autoPoolSpecification")
            var update = JobUpdate(
                priority: body.priority ?? 0, maxParallelTasks: body.maxParallelTasks ?? -1,
                onAllTasksComplete: body.onAllTasksComplete ?? "noaction", constraints: body.constraints ?? JobConstraints())
            update.allowTaskPreemption = body.allowTaskPreemption ?? false
            update.metadata = body.metadata ?? []
            if body.poolInfo.poolId?.lowercased() != job.poolInfo.poolId?.lowercased() || body.poolInfo.autoPoolSpecification != nil {
                update.poolInfo = body.poolInfo
            }
            try await engine.updateJob(id: id, update)
        }
    }

    func delete(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).delete(202) { _ in try await engine.deleteJob(id: id) }
    }

    func terminate(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(202, suffix: "/terminate") { _ in
            let body = try request.decodeOptional(BatchJobTerminateOptions.self)
            try await engine.terminateJob(id: id, terminateReason: body?.terminateReason)
        }
    }

    func disable(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(202, suffix: "/disable") { _ in
            try await engine.disableJob(id: id, disableTasks: try request.decode(BatchJobDisableOptions.self).disableTasks.rawValue)
        }
    }

    func enable(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(202, suffix: "/enable") { _ in try await engine.enableJob(id: id) }
    }

    func prepReleaseStatus(_ request: APIRequest, _ id: String) async throws -> Reply {
        let query = try ListQuery(request, properties: FilterProperties.prepRelease)
        let items = try engine.prepReleaseStatus(jobID: id).map {
            (key: $0.nodeId, item: Render.prepRelease($0, request.baseURL))
        }
        return try query.page(items, request: request, metadata: "jobpreparationandreleasetaskstatuslist")
    }

    func taskCounts(_ request: APIRequest, _ id: String) async throws -> Reply {
        try Render.taskCounts(request, try engine.taskCounts(jobID: id))
    }
}
