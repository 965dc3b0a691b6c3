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
    public func taskFiles(jobID: String, taskID: String, recursive: Bool) throws -> [NodeFileInfo] {
        try FileListing.list(root: taskDirectory(jobID: jobID, taskID: taskID), recursive: recursive)
    }

    /// Files under a node's root directory (`shared/…`, `startup/…`, `workitems/…`).
    public func nodeFiles(poolID: String, nodeID: String, recursive: Bool) throws -> [NodeFileInfo] {
        try FileListing.list(root: node(poolID: poolID, nodeID: nodeID).rootDirectory, recursive: recursive)
    }

    public func taskFileProperties(jobID: String, taskID: String, path: String) throws -> NodeFileInfo {
        try FileListing.properties(root: taskDirectory(jobID: jobID, taskID: taskID), path: path)
    }

    public func nodeFileProperties(poolID: String, nodeID: String, path: String) throws -> NodeFileInfo {
        try FileListing.properties(root: node(poolID: poolID, nodeID: nodeID).rootDirectory, path: path)
    }

    /// Deletes a file of a task; a non-empty directory needs `recursive`.
    public func deleteTaskFile(jobID: String, taskID: String, path: String, recursive: Bool) throws {
        try FileListing.delete(root: taskDirectory(jobID: jobID, taskID: taskID), path: path, recursive: recursive)
    }

    /// Deletes a file of a node; a non-empty directory needs `recursive`.
    public func deleteNodeFile(poolID: String, nodeID: String, path: String, recursive: Bool) throws {
        try FileListing.delete(root: node(poolID: poolID, nodeID: nodeID).rootDirectory, path: path, recursive: recursive)
    }
}

enum FileListing {
    static func list(root: String, recursive: Bool) throws -> [NodeFileInfo] {
        let base = (root as NSString).resolvingSymlinksInPath
        var results: [NodeFileInfo] = []
        func walk(_ relative: String) {
            let directory = relative.isEmpty ? base : (base as NSString).appendingPathComponent(relative)
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
            for name in names.sorted() {
                let child = relative.isEmpty ? name : relative + "/" + name
                // Entries whose real path leaves the root (symlinks out) are not shown.
                guard let info = try? properties(root: base, path: child) else { continue }
                results.append(info)
                var isLink = false
                if let attributes = try? FileManager.default.attributesOfItem(atPath: (base as NSString).appendingPathComponent(child)) {
                    isLink = attributes[.type] as? FileAttributeType == .typeSymbolicLink
                }
                if recursive, info.isDirectory, !isLink { walk(child) }
            }
        }
        walk("")
        return results
    }

    static func properties(root: String, path: String) throws -> NodeFileInfo {
        let resolved = try FileAccess.resolve(root: root, relativePath: path)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: resolved) else {
            throw BookendError(.notFound, "FileNotFound", "The file \(path) does not exist")
        }
        let isDirectory = attributes[.type] as? FileAttributeType == .typeDirectory
        let permissions = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
        let trimmed = path.split(separator: "/").joined(separator: "/")
        return NodeFileInfo(
            name: trimmed, isDirectory: isDirectory, lastModified: attributes[.modificationDate] as? Date ?? Date(),
            contentLength: isDirectory ? 0 : (attributes[.size] as? NSNumber)?.int64Value ?? 0,
            fileMode: String(format: "0%03o", permissions & 0o7777))
    }

    static func delete(root: String, path: String, recursive: Bool) throws {
        let components = path.split(separator: "/")
        let realRoot = (root as NSString).resolvingSymlinksInPath
        guard !components.isEmpty, !components.contains("."),
            try FileAccess.resolve(root: root, relativePath: path) != realRoot
        else {
            throw BookendError(.invalidRequest, "InvalidPropertyValue", "The root directory itself cannot be deleted",
                details: [.init(key: "PropertyName", value: "filePath"), .init(key: "PropertyValue", value: path)])
        }
        let info = try properties(root: root, path: path)
        // Delete the entry itself (a symlink inside the root is removed, not what it points to).
        let unresolvedParent = try FileAccess.resolve(root: root, relativePath: (path as NSString).deletingLastPathComponent)
        let target = (unresolvedParent as NSString).appendingPathComponent((path as NSString).lastPathComponent)
        if info.isDirectory, !recursive,
            let contents = try? FileManager.default.contentsOfDirectory(atPath: target), !contents.isEmpty {
            throw BookendError(.conflict, "DirectoryNotEmpty", "The directory \(path) is not empty; use recursive=true")
        }
        do {
            try FileManager.default.removeItem(atPath: target)
        } catch {
            throw BookendError(.internalError, "InternalError", "The file \(path) could not be deleted")
        }
    }
}
