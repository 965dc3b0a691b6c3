import Bookend
import Foundation

/// Library entities → wire objects with `url`s (and the per-entity fields Azure adds).
enum Render {
    static func pool(_ pool: Pool, _ base: String) throws -> [String: JSONValue] {
        var object = try Wire.object(pool)
        object["url"] = .string(Wire.poolURL(base, pool.id))
        return object
    }

    /// The version a node's agent reports (`nodeAgentInfo.version`): Bookend's nodes have no agent
    /// apart from the daemon, so this names the level of the node API it serves.
    static let nodeAgentVersion = "1.0.0"

    /// A node with what Azure adds around the stored one: the pool's image reference (the 15.x SDK
    /// requires `virtualMachineInfo`), `nodeAgentInfo`, and `recentTasks` once the node ran a task.
    static func node(_ node: Node, pool: Pool, recentTasks: [NodeRecentTask], _ base: String) throws -> [String: JSONValue] {
        var object = try Wire.object(node)
        // Bookend-only fields: the pool is in the URL, and local paths are not part of the API.
        object["poolId"] = nil
        object["rootDirectory"] = nil
        object["url"] = .string(Wire.nodeURL(base, node.poolId, node.id))
        // The agent is installed when the node is allocated and never updated apart from the daemon.
        object["nodeAgentInfo"] = .object(["version": .string(nodeAgentVersion), "lastUpdateTime": .string(node.allocationTime)])
        var machine: [String: JSONValue] = [:]
        if case .object(let configuration)? = pool.virtualMachineConfiguration, let image = configuration["imageReference"] {
            machine["imageReference"] = image
        }
        object["virtualMachineInfo"] = .object(machine)
        if !recentTasks.isEmpty {
            object["recentTasks"] = .array(try recentTasks.map { recent in
                var info: [String: JSONValue] = [
                    "taskUrl": .string(Wire.taskURL(base, recent.jobId, recent.task.id)), "jobId": .string(recent.jobId),
                    "taskId": .string(recent.task.id), "taskState": .string(recent.task.state.rawValue),
                ]
                info["executionInfo"] = try Wire.object(recent.task)["executionInfo"]
                return .object(info)
            })
        }
        return object
    }

    /// With `reason` (single GETs only: lists would pay a query per item), the job carries the Bookend
    /// extension `bookendWaitReason`, and a blocked job's reason is its Azure `schedulingError`.
    static func job(_ job: Job, _ base: String, reason: WaitReason? = nil) throws -> [String: JSONValue] {
        var object = try Wire.object(job)
        object["url"] = .string(Wire.jobURL(base, job.id))
        if let reason {
            object[waitReasonProperty] = .object(try Wire.object(reason))
            if reason.state == .blocked, case .object(var info)? = object["executionInfo"] {
                info["schedulingError"] = .object(try Wire.object(reason.schedulingError))
                object["executionInfo"] = .object(info)
            }
        }
        return object
    }

    /// The one name of Bookend's wait explanation on the wire (docs/daemon.md). Official SDKs ignore
    /// properties they do not know.
    static let waitReasonProperty = "bookendWaitReason"

    static func task(_ task: JobTask, jobID: String, _ base: String, reason: WaitReason? = nil) throws -> [String: JSONValue] {
        var object = try Wire.object(task)
        object["url"] = .string(Wire.taskURL(base, jobID, task.id))
        if let reason { object[waitReasonProperty] = .object(try Wire.object(reason)) }
        if let info = task.nodeInfo, case .object(var nodeInfo)? = object["nodeInfo"] {
            let nodeURL = Wire.nodeURL(base, info.poolId, info.nodeId)
            nodeInfo["nodeUrl"] = .string(nodeURL)
            nodeInfo["taskRootDirectoryUrl"] = .string("\(nodeURL)/files/\(info.taskRootDirectory)")
            object["nodeInfo"] = .object(nodeInfo)
        }
        return object
    }

    static func prepRelease(_ status: PrepReleaseStatus, _ base: String) throws -> [String: JSONValue] {
        var object = try Wire.object(status)
        let nodeURL = Wire.nodeURL(base, status.poolId, status.nodeId)
        object["nodeUrl"] = .string(nodeURL)
        for key in ["jobPreparationTaskExecutionInfo", "jobReleaseTaskExecutionInfo"] {
            if case .object(var info)? = object[key], case .string(let directory)? = info["taskRootDirectory"] {
                info["taskRootDirectoryUrl"] = .string("\(nodeURL)/files/\(directory)")
                object[key] = .object(info)
            }
        }
        return object
    }

    static func file(_ file: NodeFileInfo, urlPrefix: String) -> [String: JSONValue] {
        var object: [String: JSONValue] = [
            "name": .string(file.name),
            "url": .string("\(urlPrefix)/\(Wire.escape(file.name))"),
            "isDirectory": .bool(file.isDirectory),
        ]
        if !file.isDirectory {
            object["properties"] = .object([
                "lastModified": .string(Wire.isoString(file.lastModified)),
                "contentLength": .string(String(file.contentLength)),
                "contentType": .string("application/octet-stream"),
                "fileMode": .string(file.fileMode),
            ])
        }
        return object
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
