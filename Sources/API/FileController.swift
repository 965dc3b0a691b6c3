import Bookend
import Foundation
import HTTPTypes
import Hummingbird

/// Task and node files: list, GET (with `ocp-range`, streamed), HEAD properties, DELETE. Paths are
/// decoded after routing and opened by the library beneath the task directory or node root, never
/// through a symbolic link.
struct FileController: Sendable {
    let engine: Engine

    enum Target: Sendable {
        case task(jobID: String, taskID: String)
        case node(poolID: String, nodeID: String)
    }

    func addRoutes(to routes: BatchRoutes) {
        routes.on("/pools/:poolID/nodes/:nodeID/files", [(.get, BatchRoutes.taking("poolID", "nodeID")(listNode))])
        routes.on("/pools/:poolID/nodes/:nodeID/files/**", fileHandlers { .node(poolID: try $0.id("poolID"), nodeID: try $0.id("nodeID")) })
        routes.on("/jobs/:jobID/tasks/:taskID/files", [(.get, BatchRoutes.taking("jobID", "taskID")(listTask))])
        routes.on("/jobs/:jobID/tasks/:taskID/files/**", fileHandlers { .task(jobID: try $0.id("jobID"), taskID: try $0.id("taskID")) })
    }

    /// GET the file, HEAD its properties, DELETE it; the path is what `**` caught, decoded per segment.
    private func fileHandlers(_ target: @escaping @Sendable (BatchRequestContext) throws -> Target) -> [(HTTPRequest.Method, BatchRoutes.Handler)] {
        [
            (.get, { try await get($0, try target($1), $1.filePath()) }),
            (.head, { try await properties($0, try target($1), $1.filePath()) }),
            (.delete, { try await delete($0, try target($1), $1.filePath()) }),
        ]
    }

    private func filesURL(_ request: APIRequest, _ target: Target) async throws -> String {
        switch target {
        case .task(let jobID, let taskID):
            let job = try engine.job(id: jobID)
            let task = try engine.task(jobID: jobID, taskID: taskID)
            return Wire.taskURL(request.baseURL, job.id, task.id) + "/files"
        case .node(let poolID, let nodeID):
            let pool = try await engine.pool(id: poolID)
            return Wire.nodeURL(request.baseURL, pool.id, nodeID) + "/files"
        }
    }

    /// One page of a listing: the walk reads only the folders on the way to the page and the entries
    /// it answers with (`FileWalk`), not the whole tree for every page.
    private func list(_ request: APIRequest, _ target: Target) async throws -> Reply {
        let query = try ListQuery(request, properties: FilterProperties.files)
        let recursive = try request.bool("recursive") ?? false
        let prefix = try await filesURL(request, target)
        let walk: FileWalk
        switch target {
        case .task(let jobID, let taskID):
            walk = try await engine.taskFileWalk(jobID: jobID, taskID: taskID, recursive: recursive, after: query.after)
        case .node(let poolID, let nodeID):
            walk = try await engine.nodeFileWalk(poolID: poolID, nodeID: nodeID, recursive: recursive, after: query.after)
        }
        // The walk goes on from where its last batch ended, which is the cursor `page` passes.
        return try await query.page(request: request, metadata: "files", fetch: { _, limit in
            try await walk.page(limit).map { (key: $0.name, entity: $0) }
        }, render: { files in files.map { Render.file($0, urlPrefix: prefix) } })
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
            ("ETag", FileController.eTag(file)),
        ]
    }

    /// A file's version tag: its modification time and size (what a client can tell a change by).
    static func eTag(_ file: NodeFileInfo) -> String {
        String(format: "0x%llX", FileController.microseconds(file.lastModified) ^ UInt64(max(0, file.contentLength)))
    }

    /// GET and HEAD: true when the client's copy is current (304), 412 when `If-Match` or
    /// `If-Unmodified-Since` fail; as for pools, jobs and tasks (§6.1).
    private func notModified(_ request: APIRequest, _ file: NodeFileInfo) throws -> Bool {
        try Preconditions.notModified(request, eTag: FileController.eTag(file), lastModified: Timestamp.string(file.lastModified))
    }

    /// A file's modification time in microseconds, clamped: a task can set any mtime (`touch -d`), and
    /// converting one beyond UInt64 would trap.
    static func microseconds(_ date: Date) -> UInt64 {
        let value = date.timeIntervalSince1970 * 1_000_000
        guard value.isFinite, value > 0 else { return 0 }
        // Double(UInt64.max) is 2^64, the first value UInt64(_:) cannot hold.
        return value >= Double(UInt64.max) ? UInt64.max : UInt64(value)
    }

    func properties(_ request: APIRequest, _ target: Target, _ path: String) async throws -> Reply {
        let file = try await info(target, path)
        let url = try await filesURL(request, target) + "/" + Wire.escape(file.name)
        if try notModified(request, file) { return .empty(304, headers: headers(request, file, url: url)) }
        var reply = Reply.empty(200, headers: headers(request, file, url: url))
        reply.contentType = "application/octet-stream"
        reply.headers.append(("Content-Length", String(file.contentLength)))
        return reply
    }

    func get(_ request: APIRequest, _ target: Target, _ path: String) async throws -> Reply {
        // Opened beneath the root by the engine; read outside it (a large stdout must not hold it
        // up), in chunks, from this descriptor, up to the size it had when it was opened.
        let file: OpenedFile
        switch target {
        case .task(let jobID, let taskID): file = try await engine.openTaskFile(jobID: jobID, taskID: taskID, path: path)
        case .node(let poolID, let nodeID): file = try await engine.openNodeFile(poolID: poolID, nodeID: nodeID, path: path)
        }
        let url = try await filesURL(request, target) + "/" + Wire.escape(file.info.name)
        // A 304 or a 412 drops the descriptor (closed with its last reference) unread.
        if try notModified(request, file.info) { return .empty(304, headers: headers(request, file.info, url: url)) }
        let range = try request.header("ocp-range").map { try FileController.range($0, size: file.info.contentLength) }
            ?? (start: 0, count: file.info.contentLength)
        var reply = Reply(status: 200, headers: headers(request, file.info, url: url), contentType: "application/octet-stream")
        reply.file = FileBody(descriptor: file.descriptor, offset: range.start, length: range.count)
        return reply
    }

    /// `bytes=start-end` (inclusive; `start-` and `-suffix` too) as (start, count) within `size`.
    /// Answered with 200, as Batch does.
    static func range(_ header: String, size: Int64) throws -> (start: Int64, count: Int64) {
        let invalid = BookendError(.invalidRequest, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.",
            details: [.init(key: "HeaderName", value: "ocp-range"), .init(key: "HeaderValue", value: header)])
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes=") else { throw invalid }
        let pieces = trimmed.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard pieces.count == 2 else { throw invalid }
        if pieces[0].isEmpty {
            guard let suffix = Int64(pieces[1]), suffix > 0 else { throw invalid }
            let start = max(0, size - suffix)
            return (start, size - start)
        }
        guard let start = Int64(pieces[0]), start >= 0 else { throw invalid }
        var end = size - 1
        if !pieces[1].isEmpty {
            guard let last = Int64(pieces[1]), last >= start else { throw invalid }
            end = min(last, size - 1)
        }
        guard start < size || (size == 0 && start == 0) else {
            throw BookendError(.invalidRequest, "InvalidRange", "The range specified is invalid for the current size of the resource.")
        }
        return (start, max(0, end - start + 1))
    }

    func delete(_ request: APIRequest, _ target: Target, _ path: String) async throws -> Reply {
        let recursive = try request.bool("recursive") ?? false
        let url = try await filesURL(request, target) + "/" + Wire.escape(path)
        // Conditions are checked against the file as it is now (412 `ConditionNotMet`), as for the
        // other entities' deletes.
        if Preconditions.present(request) {
            let file = try await info(target, path)
            try Preconditions.checkWrite(request, eTag: FileController.eTag(file), lastModified: Timestamp.string(file.lastModified))
        }
        switch target {
        case .task(let jobID, let taskID): try await engine.deleteTaskFile(jobID: jobID, taskID: taskID, path: path, recursive: recursive)
        case .node(let poolID, let nodeID): try await engine.deleteNodeFile(poolID: poolID, nodeID: nodeID, path: path, recursive: recursive)
        }
        return Render.mutation(200, dataServiceID: url)
    }
}
