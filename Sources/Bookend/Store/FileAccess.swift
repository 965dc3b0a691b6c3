import Foundation

/// Reads files under a root directory without ever leaving it, symlinks included.
public enum FileAccess {
    /// Resolves `relativePath` under `root`; fails if the real path (after following links) is outside.
    public static func resolve(root: String, relativePath: String) throws -> String {
        let trimmed = relativePath.hasPrefix("/") ? String(relativePath.drop(while: { $0 == "/" })) : relativePath
        guard !trimmed.split(separator: "/").contains("..") else {
            throw BookendError(.invalidRequest, "InvalidPropertyValue", "The file path must not contain '..'")
        }
        let realRoot = (root as NSString).resolvingSymlinksInPath
        let candidate = ((root as NSString).appendingPathComponent(trimmed) as NSString).resolvingSymlinksInPath
        guard candidate == realRoot || candidate.hasPrefix(realRoot + "/") else {
            throw BookendError(.notFound, "FileNotFound", "The file \(relativePath) does not exist")
        }
        return candidate
    }

    public static func read(root: String, relativePath: String) throws -> Data {
        let path = try resolve(root: root, relativePath: relativePath)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw BookendError(.notFound, "FileNotFound", "The file \(relativePath) does not exist")
        }
        guard !isDirectory.boolValue else {
            throw BookendError(.conflict, "OperationInvalidForCurrentState", "\(relativePath) is a directory")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BookendError(.notFound, "FileNotFound", "The file \(relativePath) cannot be read")
        }
        return data
    }
}
