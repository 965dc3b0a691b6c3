import BatchModels
import Bookend
import Foundation
import HTTPTypes
import Hummingbird

/// `/jobs/{id}/tasks…` and `/jobs/{id}/addtaskcollection`.
struct TaskController: Sendable {
    let engine: Engine

    func addRoutes(to routes: BatchRoutes) {
        let job = BatchRoutes.taking("jobID")
        let task = BatchRoutes.taking("jobID", "taskID")
        routes.on("/jobs/:jobID/tasks", [(.get, job(list)), (.post, job(add))])
        routes.actions(of: "/jobs/:jobID", [("addtaskcollection", job(addCollection))])
        routes.on("/jobs/:jobID/tasks/:taskID", [(.get, task(get)), (.put, task(replace)), (.delete, task(delete))])
        routes.actions(of: "/jobs/:jobID/tasks/:taskID", [("terminate", task(terminate)), ("reactivate", task(reactivate))])
        routes.on("/jobs/:jobID/tasks/:taskID/subtasksinfo", [(.get, task(subtasks))])
    }

    func list(_ request: APIRequest, _ jobID: String) async throws -> Reply {
        let query = try ListQuery(request, properties: FilterProperties.tasks)
        // Each batch of rows is one statement on a reader thread (off the cooperative pool); the job's
        // stored id for the URLs comes with it, so the page reads no job entity of its own.
        let expand = try ListQuery.expandsStats(request)
        // A filter on the state asks for those rows only (stored states are the wire's, lowercase).
        let states = query.filter?.requiredValues(of: ["state"])
        return try await query.page(request: request, metadata: "tasks") { after, limit in
            // With `$expand=stats`, each task's statistics are read with its page (one more read per task).
            let (page, stats) = try await engine.lookup { engine in
                let page = try engine.taskPage(jobID: jobID, afterID: after, limit: limit, states: states)
                let stats = expand ? try (0..<page.count).map { try engine.taskStatistics(jobID: page.jobID, taskID: page.id(at: $0)) } : nil
                return (page, stats)
            }
            return try (0..<page.count).map { (key: try page.id(at: $0), entity: (page: page, index: $0, stats: stats?[$0])) }
        } render: { [base = request.baseURL] (run: ArraySlice<(page: Engine.TaskPage, index: Int, stats: ExecutionStatistics?)>) throws -> [BatchTask] in
            guard let first = run.first else { return [] }
            var urls = TaskURLs(base: base, jobID: first.page.jobID)
            return try run.map { item in
                var task = BatchTask(try item.page.task(at: item.index), urls: &urls)
                if let stats = item.stats { task.stats = Render.stats(stats, url: Wire.taskURL(base, item.page.jobID, task.id ?? ""), job: false) }
                return task
            }
        }
    }

    func add(_ request: APIRequest, _ jobID: String) async throws -> Reply {
        let spec = TaskSpec(try request.decode(BatchTaskCreateOptions.self, refusing: .task))
        try TaskController.reject(spec)
        let job = try engine.job(id: jobID)
        let task = try await engine.addTask(jobID: jobID, spec)
        let url = Wire.taskURL(request.baseURL, job.id, task.id)
        return Render.mutation(201, dataServiceID: url, eTag: task.eTag, lastModified: task.lastModified, location: url)
    }

    /// What the library stores but the daemon must refuse (§2.8).
    static func reject(_ spec: TaskSpec) throws {
        if spec.multiInstanceSettings != nil {
            throw BookendError(.invalidRequest, "InvalidPropertyValue", "The value provided for multiInstanceSettings is invalid: multi-instance tasks are not supported by Bookend",
                details: [.init(key: "PropertyName", value: "multiInstanceSettings")])
        }
    }

    func addCollection(_ request: APIRequest, _ jobID: String) async throws -> Reply {
        let body = try request.decode(BatchTaskGroup.self, refusing: .tasksOfACollection)
        guard !body.value.isEmpty else {
            throw BookendError(.invalidRequest, "InvalidPropertyValue", "The value provided for value is invalid: at least one task is required",
                details: [.init(key: "PropertyName", value: "value")])
        }
        // Only the job's stored id is needed (for the answer's URLs), not the whole job.
        let storedJobID = try await engine.lookup { try $0.storedJobID(jobID) }
        var rejected: [Int: BookendError] = [:]
        var accepted: [TaskSpec] = []
        for (index, options) in body.value.enumerated() {
            let spec = TaskSpec(options)
            do { try TaskController.reject(spec); accepted.append(spec) } catch let error as BookendError { rejected[index] = error }
        }
        let stored = try await engine.addTasks(jobID: jobID, accepted)
        let refused = rejected.sorted(by: { $0.key < $1.key }).map { (taskID: body.value[$0.key].id, error: $0.value) }
        return try Render.addResults(request, stored: stored, refused: refused, jobID: storedJobID)
    }

    func get(_ request: APIRequest, _ jobID: String, _ taskID: String) async throws -> Reply {
        // One hop to a reader thread for the three reads, not three blocking reads on this one.
        let expand = try ListQuery.expandsStats(request)
        let (job, task, reason, stats) = try await engine.lookup { engine in
            let job = try engine.job(id: jobID)
            let task = try engine.task(jobID: jobID, taskID: taskID)
            return (job, task, try engine.whyWaiting(jobID: job.id, taskID: task.id),
                expand ? try engine.taskStatistics(jobID: job.id, taskID: task.id) : nil)
        }
        var model = Render.task(task, jobID: job.id, request.baseURL, reason: reason)
        if let stats { model.stats = Render.stats(stats, url: Wire.taskURL(request.baseURL, job.id, task.id), job: false) }
        return try Render.single(request, model, metadata: "tasks/@Element", eTag: task.eTag, lastModified: task.lastModified)
    }

    private func write(_ request: APIRequest, _ jobID: String, _ taskID: String) -> ConditionalWrite<TaskInJob> {
        ConditionalWrite(
            request: request, key: "task/\(jobID)/\(taskID)",
            fetch: { TaskInJob(job: try engine.job(id: jobID), task: try engine.task(jobID: jobID, taskID: taskID)) },
            url: { Wire.taskURL(request.baseURL, $0.job.id, $0.task.id) })
    }

    func replace(_ request: APIRequest, _ jobID: String, _ taskID: String) async throws -> Reply {
        try await write(request, jobID, taskID).run(200) { _ in
            let body = try request.decodeOptional(BatchTaskUpdateOptions.self)
            try await engine.updateTask(jobID: jobID, taskID: taskID, constraints: body?.constraints)
        }
    }

    func delete(_ request: APIRequest, _ jobID: String, _ taskID: String) async throws -> Reply {
        try await write(request, jobID, taskID).delete(200) { _ in try await engine.deleteTask(jobID: jobID, taskID: taskID) }
    }

    func terminate(_ request: APIRequest, _ jobID: String, _ taskID: String) async throws -> Reply {
        try await write(request, jobID, taskID).run(204, suffix: "/terminate") { _ in
            try await engine.terminateTask(jobID: jobID, taskID: taskID)
        }
    }

    func reactivate(_ request: APIRequest, _ jobID: String, _ taskID: String) async throws -> Reply {
        try await write(request, jobID, taskID).run(204, suffix: "/reactivate") { _ in
            try await engine.reactivateTask(jobID: jobID, taskID: taskID)
        }
    }

    func subtasks(_ request: APIRequest, _ jobID: String, _ taskID: String) async throws -> Reply {
        _ = try engine.task(jobID: jobID, taskID: taskID)
        return .json(["odata.metadata": Wire.metadata(request.baseURL, "subtaskinformationlist"), "value": .array([])])
    }
}
