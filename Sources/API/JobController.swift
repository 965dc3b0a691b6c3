import BatchModels
import Bookend
import Foundation
import HTTPTypes
import Hummingbird

/// `/jobs`, `/jobs/{id}` and the job actions.
struct JobController: Sendable {
    let engine: Engine

    func addRoutes(to routes: BatchRoutes) {
        routes.resource("/jobs", id: "jobID", list: list, add: add,
                        entity: [(.get, get), (.patch, patch), (.put, replace), (.delete, delete)],
                        actions: [("terminate", terminate), ("disable", disable), ("enable", enable)])
        let job = BatchRoutes.taking("jobID")
        routes.on("/jobs/:jobID/jobpreparationandreleasetaskstatus", [(.get, job(prepReleaseStatus))])
        routes.on("/jobs/:jobID/taskcounts", [(.get, job(taskCounts))])
    }

    func list(_ request: APIRequest) async throws -> Reply {
        let query = try ListQuery(request, properties: FilterProperties.jobs)
        let base = request.baseURL
        let expand = try ListQuery.expandsStats(request)
        // Stored job states are the wire's, lowercase: a filter on the state reads only those rows.
        let states = query.filter?.requiredValues(of: ["state"])
        // A page at a time from a reader (never the engine's queue), each job's statistics with it.
        return try await query.page(request: request, metadata: "jobs") { after, limit in
            try await engine.lookup { engine in
                try engine.jobPage(afterID: after, limit: limit, states: states).map { job in
                    var item = Render.job(job, base)
                    if expand { item.stats = Render.stats(try engine.jobStatistics(id: job.id), url: Wire.jobURL(base, job.id), job: true) }
                    return (key: job.id, entity: item)
                }
            }
        } render: { items in Array(items) }
    }

    func add(_ request: APIRequest) async throws -> Reply {
        let job = try await engine.createJob(JobSpec(try request.decode(BatchJobCreateOptions.self, refusing: .job)))
        let url = Wire.jobURL(request.baseURL, job.id)
        return Render.mutation(201, dataServiceID: url, eTag: job.eTag, lastModified: job.lastModified, location: url)
    }

    func get(_ request: APIRequest, _ id: String) async throws -> Reply {
        let select = try ListQuery.selection(request)
        let base = request.baseURL
        if try ListQuery.expandsStats(request) {
            // Not the kept answer: a running task's wall clock grows without any commit.
            let (job, reason, stats) = try await engine.lookup { engine in
                let job = try engine.job(id: id)
                return (job, try engine.whyWaiting(jobID: job.id), try engine.jobStatistics(id: job.id))
            }
            var model = Render.job(job, base, reason: reason)
            model.stats = Render.stats(stats, url: Wire.jobURL(base, job.id), job: true)
            return try Render.single(request, model, metadata: "jobs/@Element", eTag: job.eTag, lastModified: job.lastModified)
        }
        // Everything the rendered job depends on besides the database.
        let variant = base + "\u{0}" + (select.map { $0.sorted().joined(separator: ",") } ?? "*")
        // One hop to a reader thread; there one read transaction for the job and its wait reason,
        // or the same answer as last time when nothing was committed since.
        let rendered = try await engine.lookup { engine in
            try engine.rememberedJob(id: id, variant: variant) { job, reason in
                let rendered = try Render.rendered(Render.job(job, base, reason: reason), base: base, metadata: "jobs/@Element",
                    eTag: job.eTag, lastModified: job.lastModified, select: select)
                // What it holds: the body, and about 256 bytes of ETag, Last-Modified and their names.
                return (rendered, rendered.body.count + 256)
            }
        }
        return try Render.single(request, rendered)
    }

    private func write(_ request: APIRequest, _ id: String) -> ConditionalWrite<Job> {
        ConditionalWrite(request: request, key: "job/\(id)", fetch: { try engine.job(id: id) }, url: { Wire.jobURL(request.baseURL, $0.id) })
    }

    func patch(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(200) { _ in try await engine.updateJob(id: id, try request.decode(JobUpdate.self)) }
    }

    func replace(_ request: APIRequest, _ id: String) async throws -> Reply {
        try await write(request, id).run(200) { job in
            try await engine.updateJob(id: id, JobUpdate(try request.decode(BatchJobReplaceOptions.self), current: job))
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

