import Bookend
import Foundation

/// Task and node files: list, GET (with `ocp-range`), HEAD properties, DELETE. Paths are decoded
/// after routing and resolved by the library, which never leaves the task directory or node root.
struct FileController: Sendable {
    let engine: Engine

    enum Target: Sendable {
        case task(jobID: String, taskID: String)
        case node(poolID: String, nodeID: String)
    }

    private func filesURL(_ request: APIRequest, _ target: Target) async throws -> String {
        switch target {
        case .task(let jobID, let taskID):
            let job = try await engine.job(id: jobID)
            let task = try await engine.task(jobID: jobID, taskID: taskID)
            return Wire.taskURL(request.baseURL, job.id, task.id) + "/files"
        case .node(let poolID, let nodeID):
            let pool = try await engine.pool(id: poolID)
            return Wire.nodeURL(request.baseURL, pool.id, nodeID) + "/files"
        }
    }

    private func list(_ request: APIRequest, _ target: Target) async throws -> Reply {
        let query = try ListQuery(request, properties: FilterProperties.files)
        let recursive = try request.bool("recursive") ?? false
        let prefix = try await filesURL(request, target)
        let files: [NodeFileInfo]
        switch target {
        case .task(let jobID, let taskID): files = try await engine.taskFiles(jobID: jobID, taskID: taskID, recursive: recursive)
        case .node(let poolID, let nodeID): files = try await engine.nodeFiles(poolID: poolID, nodeID: nodeID, recursive: recursive)
        }
        return query.page(files.map { (key: $0.name, object: Render.file($0, urlPrefix: prefix)) }, request: request, metadata: "files")
    }

    func listTask(_ request: APIRequest, _ jobID: String, _ taskID: String) async throws -> Reply {
        try await list(request, .task(jobID: jobID, taskID: taskID))
    }

    func listNode(_ request: APIRequest, _ poolID: String, _ nodeID: String) async throws -> Reply {
        try await list(request, .node(poolID: poolID, nodeID: nodeID))
    }

    private func info(_ target: Target, _ path: String) async throws -> NodeFileInfo {
        switch target {
        case .task(let jobID, let taskID): try await engine.taskFileProperties(jobID: jobID, taskID: taskID, path: path)
        case .node(let poolID, let nodeID): try await engine.nodeFileProperties(poolID: poolID, nodeID: nodeID, path: path)
        }
    }

    private func headers(_ request: APIRequest, _ file: NodeFileInfo, url: String) -> [(String, String)] {
        let modified = Wire.httpDate(file.lastModified)
        return [
            ("Last-Modified", modified), ("ocp-creation-time", modified),
            ("ocp-batch-file-isdirectory", file.isDirectory ? "true" : "false"), ("ocp-batch-file-url", url),
            ("ocp-batch-file-mode", file.fileMode),
            ("ETag", String(format: "0x%llX", UInt64(max(0, file.lastModified.timeIntervalSince1970 * 1_000_000)) ^ UInt64(file.contentLength))),
        ]
    }

    func properties(_ request: APIRequest, _ target: Target, _ path: String) async throws -> Reply {
        let file = try await info(target, path)
        let url = try await filesURL(request, target) + "/" + Wire.escape(file.name)
        var reply = Reply.empty(200, headers: headers(request, file, url: url))
        reply.contentType = "application/octet-stream"
        reply.headers.append(("Content-Length", String(file.contentLength)))
        return reply
    }

    func get(_ request: APIRequest, _ target: Target, _ path: String) async throws -> Reply {
        let file = try await info(target, path)
        guard !file.isDirectory else {
            throw BookendError(.conflict, "OperationInvalidForCurrentState", "The path \(path) is a directory")
        }
        let url = try await filesURL(request, target) + "/" + Wire.escape(file.name)
        let data: Data
        switch target {
        case .task(let jobID, let taskID): data = try await engine.readTaskFile(jobID: jobID, taskID: taskID, path: path)
        case .node(let poolID, let nodeID): data = try await engine.readNodeFile(poolID: poolID, nodeID: nodeID, path: path)
        }
        var body = data
        if let range = request.header("ocp-range") {
            body = try FileController.slice(data, range: range)
        }
        return Reply(status: 200, headers: headers(request, file, url: url), body: body, contentType: "application/octet-stream")
    }

    /// `bytes=start-end` (inclusive; `start-` and `-suffix` too). Answered with 200, as Batch does.
    static func slice(_ data: Data, range: String) throws -> Data {
        let invalid = BookendError(.invalidRequest, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.",
            details: [.init(key: "HeaderName", value: "ocp-range"), .init(key: "HeaderValue", value: range)])
        let trimmed = range.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes=") else { throw invalid }
        let spec = trimmed.dropFirst(6)
        let pieces = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard pieces.count == 2 else { throw invalid }
        let count = data.count
        var start: Int
        var end: Int
        if pieces[0].isEmpty {
            guard let suffix = Int(pieces[1]), suffix > 0 else { throw invalid }
            start = max(0, count - suffix)
            end = count - 1
        } else {
            guard let first = Int(pieces[0]), first >= 0 else { throw invalid }
            start = first
            if pieces[1].isEmpty {
                end = count - 1
            } else {
                guard let last = Int(pieces[1]), last >= first else { throw invalid }
                end = min(last, count - 1)
            }
        }
        guard start < count || (count == 0 && start == 0) else {
            throw BookendError(.invalidRequest, "InvalidRange", "The range specified is invalid for the current size of the resource.")
        }
        if count == 0 { return Data() }
        start = min(start, count - 1)
        return data.subdata(in: (data.startIndex + start)..<(data.startIndex + end + 1))
    }

    func delete(_ request: APIRequest, _ target: Target, _ path: String) async throws -> Reply {
        let recursive = try request.bool("recursive") ?? false
        let url = try await filesURL(request, target) + "/" + Wire.escape(path)
        switch target {
        case .task(let jobID, let taskID): try await engine.deleteTaskFile(jobID: jobID, taskID: taskID, path: path, recursive: recursive)
        case .node(let poolID, let nodeID): try await engine.deleteNodeFile(poolID: poolID, nodeID: nodeID, path: path, recursive: recursive)
        }
        return Render.mutation(200, dataServiceID: url)
    }
}
