import Bookend
import Foundation

/// Maps method + raw path segments to the controllers. Literal segments match case-insensitively;
/// id segments are percent-decoded only after matching.
struct BatchRouter: Sendable {
    let pools: PoolController
    let nodes: NodeController
    let jobs: JobController
    let tasks: TaskController
    let files: FileController

    init(engine: Engine) {
        pools = PoolController(engine: engine)
        nodes = NodeController(engine: engine)
        jobs = JobController(engine: engine)
        tasks = TaskController(engine: engine)
        files = FileController(engine: engine)
    }

    typealias Handler = @Sendable () async throws -> Reply

    func route(_ request: APIRequest) async throws -> Reply {
        try request.checkSegments()
        let s = request.segments.map { $0.lowercased() }
        let method = request.method
        let handlers: [String: Handler]
        switch s.count {
        case 1 where s[0] == "pools":
            handlers = ["GET": { try await pools.list(request) }, "POST": { try await pools.add(request) }]
        case 2 where s[0] == "pools":
            let id = request.decodedSegment(1)
            handlers = [
                "GET": { try await pools.get(request, id) }, "HEAD": { try await pools.get(request, id) },
                "DELETE": { try await pools.delete(request, id) }, "PATCH": { try await pools.patch(request, id) },
            ]
        case 3 where s[0] == "pools" && s[2] == "resize":
            handlers = ["POST": { try await pools.resize(request, request.decodedSegment(1)) }]
        case 3 where s[0] == "pools" && s[2] == "stopresize":
            handlers = ["POST": { try await pools.stopResize(request, request.decodedSegment(1)) }]
        case 3 where s[0] == "pools" && s[2] == "nodes":
            handlers = ["GET": { try await nodes.list(request, request.decodedSegment(1)) }]
        case 4 where s[0] == "pools" && s[2] == "nodes":
            handlers = ["GET": { try await nodes.get(request, request.decodedSegment(1), request.decodedSegment(3)) }]
        case 5 where s[0] == "pools" && s[2] == "nodes" && ["reboot", "disablescheduling", "enablescheduling"].contains(s[4]):
            let (poolID, nodeID) = (request.decodedSegment(1), request.decodedSegment(3))
            switch s[4] {
            case "reboot": handlers = ["POST": { try await nodes.reboot(request, poolID, nodeID) }]
            case "disablescheduling": handlers = ["POST": { try await nodes.disableScheduling(request, poolID, nodeID) }]
            default: handlers = ["POST": { try await nodes.enableScheduling(request, poolID, nodeID) }]
            }
        case 5 where s[0] == "pools" && s[2] == "nodes" && s[4] == "files":
            handlers = ["GET": { try await files.listNode(request, request.decodedSegment(1), request.decodedSegment(3)) }]
        case 6... where s[0] == "pools" && s[2] == "nodes" && s[4] == "files":
            let target = FileController.Target.node(poolID: request.decodedSegment(1), nodeID: request.decodedSegment(3))
            let path = (5..<s.count).map { request.decodedSegment($0) }.joined(separator: "/")
            handlers = fileHandlers(request, target, path)
        case 1 where s[0] == "nodecounts":
            handlers = ["GET": { try await nodes.counts(request) }]
        case 1 where s[0] == "jobs":
            handlers = ["GET": { try await jobs.list(request) }, "POST": { try await jobs.add(request) }]
        case 2 where s[0] == "jobs":
            let id = request.decodedSegment(1)
            handlers = [
                "GET": { try await jobs.get(request, id) }, "PATCH": { try await jobs.patch(request, id) },
                "PUT": { try await jobs.replace(request, id) }, "DELETE": { try await jobs.delete(request, id) },
            ]
        case 3 where s[0] == "jobs":
            let id = request.decodedSegment(1)
            switch s[2] {
            case "terminate": handlers = ["POST": { try await jobs.terminate(request, id) }]
            case "disable": handlers = ["POST": { try await jobs.disable(request, id) }]
            case "enable": handlers = ["POST": { try await jobs.enable(request, id) }]
            case "jobpreparationandreleasetaskstatus": handlers = ["GET": { try await jobs.prepReleaseStatus(request, id) }]
            case "taskcounts": handlers = ["GET": { try await jobs.taskCounts(request, id) }]
            case "tasks": handlers = ["GET": { try await tasks.list(request, id) }, "POST": { try await tasks.add(request, id) }]
            case "addtaskcollection": handlers = ["POST": { try await tasks.addCollection(request, id) }]
            default: throw APIErrors.resourceNotFound(request.rawPath)
            }
        case 4 where s[0] == "jobs" && s[2] == "tasks":
            let (jobID, taskID) = (request.decodedSegment(1), request.decodedSegment(3))
            handlers = [
                "GET": { try await tasks.get(request, jobID, taskID) }, "PUT": { try await tasks.replace(request, jobID, taskID) },
                "DELETE": { try await tasks.delete(request, jobID, taskID) },
            ]
        case 5 where s[0] == "jobs" && s[2] == "tasks":
            let (jobID, taskID) = (request.decodedSegment(1), request.decodedSegment(3))
            switch s[4] {
            case "terminate": handlers = ["POST": { try await tasks.terminate(request, jobID, taskID) }]
            case "reactivate": handlers = ["POST": { try await tasks.reactivate(request, jobID, taskID) }]
            case "subtasksinfo": handlers = ["GET": { try await tasks.subtasks(request, jobID, taskID) }]
            case "files": handlers = ["GET": { try await files.listTask(request, jobID, taskID) }]
            default: throw APIErrors.resourceNotFound(request.rawPath)
            }
        case 6... where s[0] == "jobs" && s[2] == "tasks" && s[4] == "files":
            let target = FileController.Target.task(jobID: request.decodedSegment(1), taskID: request.decodedSegment(3))
            let path = (5..<s.count).map { request.decodedSegment($0) }.joined(separator: "/")
            handlers = fileHandlers(request, target, path)
        default:
            throw APIErrors.resourceNotFound(request.rawPath)
        }
        guard let handler = handlers[method] else { throw APIErrors.unsupportedVerb(method) }
        return try await handler()
    }

    private func fileHandlers(_ request: APIRequest, _ target: FileController.Target, _ path: String) -> [String: Handler] {
        [
            "GET": { try await files.get(request, target, path) },
            "HEAD": { try await files.properties(request, target, path) },
            "DELETE": { try await files.delete(request, target, path) },
        ]
    }
}
