import Foundation

/// One file or directory under a task directory or a node root (`BatchNodeFile`).
public struct NodeFileInfo: Sendable, Hashable {
    /// Path relative to the directory that was listed, `/`-separated.
    public var name: String
    public var isDirectory: Bool
    public var lastModified: Date
    public var contentLength: Int64
    /// Octal permission bits, e.g. `0644`.
    public var fileMode: String
}

/// Listing, inspecting and deleting files of tasks and nodes, never outside their directory.
extension Engine {
    /// Files of a task's directory (`stdout.txt`, `wd/…`); `recursive` lists subdirectories' contents too.
    public func taskFiles(jobID: String, taskID: String, recursive: Bool) async throws -> [NodeFileInfo] {
        let root = try taskDirectory(jobID: jobID, taskID: taskID)
        return try await Engine.walk { try FileAccess.list(root: root, recursive: recursive) }
    }

    /// Files under a node's root directory (`shared/…`, `startup/…`, `workitems/…`).
    public func nodeFiles(poolID: String, nodeID: String, recursive: Bool) async throws -> [NodeFileInfo] {
        let root = try node(poolID: poolID, nodeID: nodeID).rootDirectory
        return try await Engine.walk { try FileAccess.list(root: root, recursive: recursive) }
    }

    /// A paged listing of a task's directory, starting after the path `after` (a page's last entry):
    /// read with `FileWalk.next(_:)`, a page at a time, reading only what the pages need.
    public func taskFileWalk(jobID: String, taskID: String, recursive: Bool, after: String?) async throws -> FileWalk {
        let root = try taskDirectory(jobID: jobID, taskID: taskID)
        return try await Engine.walk { try FileWalk(root: root, recursive: recursive, after: after) }
    }

    /// A paged listing of a node's root directory (see `taskFileWalk`).
    public func nodeFileWalk(poolID: String, nodeID: String, recursive: Bool, after: String?) async throws -> FileWalk {
        let root = try node(poolID: poolID, nodeID: nodeID).rootDirectory
        return try await Engine.walk { try FileWalk(root: root, recursive: recursive, after: after) }
    }

    /// Runs a walk of a folder tree on a thread of its own, off the engine's. Why: a task can fill its
    /// folder with hundreds of thousands of files, and walking them on the engine's thread held every
    /// pass and every other request behind it for seconds (GET /pools took 17 s beside four listings).
    static func walk<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    public func taskFileProperties(jobID: String, taskID: String, path: String) throws -> NodeFileInfo {
        try FileAccess.properties(root: taskDirectory(jobID: jobID, taskID: taskID), relativePath: path)
    }

    public func nodeFileProperties(poolID: String, nodeID: String, path: String) throws -> NodeFileInfo {
        try FileAccess.properties(root: node(poolID: poolID, nodeID: nodeID).rootDirectory, relativePath: path)
    }

    /// Opens a regular file of a task for reading; read it (outside the engine) with `FileAccess.readChunk`.
    public func openTaskFile(jobID: String, taskID: String, path: String) throws -> OpenedFile {
        try FileAccess.openForReading(root: taskDirectory(jobID: jobID, taskID: taskID), relativePath: path)
    }

    /// Opens a regular file of a node for reading; read it (outside the engine) with `FileAccess.readChunk`.
    public func openNodeFile(poolID: String, nodeID: String, path: String) throws -> OpenedFile {
        try FileAccess.openForReading(root: node(poolID: poolID, nodeID: nodeID).rootDirectory, relativePath: path)
    }

    /// Deletes a file of a task; a non-empty directory needs `recursive`.
    public func deleteTaskFile(jobID: String, taskID: String, path: String, recursive: Bool) throws {
        try FileAccess.delete(root: taskDirectory(jobID: jobID, taskID: taskID), relativePath: path, recursive: recursive)
    }

    /// Deletes a file of a node; a non-empty directory needs `recursive`.
    public func deleteNodeFile(poolID: String, nodeID: String, path: String, recursive: Bool) throws {
        try FileAccess.delete(root: node(poolID: poolID, nodeID: nodeID).rootDirectory, relativePath: path, recursive: recursive)
    }
}
