import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Downloads an execution's resource files into its working directory before the command runs.
enum ResourceFiles {
    /// Whether `path` is relative and cannot climb out of the directory it is joined to.
    static func isContained(_ path: String) -> Bool {
        guard !path.hasPrefix("/"), !path.isEmpty else { return false }
        var depth = 0
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == ".." { depth -= 1 } else if part != "." { depth += 1 }
            if depth < 0 { return false }
        }
        return depth > 0
    }

    /// The components of a contained relative path with `.` and `..` applied (`a/../b` → `b`).
    static func lexical(_ path: String) -> [String] {
        var parts: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            if part == ".." { _ = parts.popLast() } else { parts.append(String(part)) }
        }
        return parts
    }

    static func mode(_ file: ResourceFile) -> mode_t {
        mode_t(file.fileMode.flatMap { UInt16($0, radix: 8) } ?? 0o770)
    }

    /// Writes `data` to `components` under the working directory by descriptor: the working
    /// directory belongs to the task's user (and to any process an earlier attempt left behind), so
    /// no component is followed if it is a link, and mode and owner are set on the file written.
    static func write(
        _ data: Data, to components: [String], in workingDirectory: String, mode: mode_t, owner: (uid: UInt32, gid: UInt32)?,
        display: String
    ) -> FailureInfo? {
        // The task directory is the daemon's; `wd` under it is where the task's user can write.
        let root: FileDescriptor
        do {
            root = try FileAccess.openRoot(Paths.parent(of: workingDirectory))
        } catch {
            return FailureInfo(code: "ResourceDirectoryCreateFailed", message: "The task directory of \(workingDirectory) is missing")
        }
        let name = (workingDirectory as NSString).lastPathComponent
        do {
            try FileAccess.createFile(root: root, components: [name] + components, data: data, mode: mode, owner: owner)
        } catch {
            let code = error.code == ENOSPC ? "DiskFull" : "ResourceFileWriteFailed"
            return FailureInfo(code: code, message: "Writing \(display) failed: \(error) (links in the working directory are never followed)")
        }
        return nil
    }

    /// Runs a download on a thread of its own: it blocks for as long as the network takes. Not the
    /// engine's queue, and not a global dispatch queue either: on Linux those few threads (twice the
    /// cores) also carry Swift's cooperative pool, so slow downloads would stall the API's handlers.
    static func detach(_ body: @escaping @Sendable () -> Void) {
        Thread(block: body).start()
    }

    /// Fetches every file, blocking the calling thread; returns the failure to record, or nil when
    /// all arrived.
    static func download(
        _ files: [ResourceFile], into workingDirectory: String, storage: String, owner: (uid: UInt32, gid: UInt32)?
    ) -> FailureInfo? {
        for file in files {
            guard let url = file.httpUrl else {
                if let failure = copyContainer(file, into: workingDirectory, storage: storage, owner: owner) { return failure }
                continue
            }
            guard let path = file.filePath, isContained(path) else {
                return FailureInfo(code: "ResourceFileCreateFailed", message: "The resource file path leaves the working directory")
            }
            let data: Data
            do {
                data = try fetch(url)
            } catch let failure as FailureInfo {
                return failure
            } catch {
                return FailureInfo(code: "BlobDownloadMiscError", message: "Downloading \(url) failed: \(error.localizedDescription)")
            }
            if let failure = write(data, to: lexical(path), in: workingDirectory, mode: mode(file), owner: owner, display: path) {
                return failure
            }
        }
        return nil
    }

    /// The local folder standing for a blob container: `<data-dir>/storage/<container>`, where the
    /// container is `autoStorageContainerName`, or the first path segment of `storageContainerUrl`
    /// (`https://account.blob.core.windows.net/<container>?sas` → `<container>`).
    static func containerFolder(_ file: ResourceFile, storage: String) -> String? {
        var name = file.autoStorageContainerName
        if name == nil, let text = file.storageContainerUrl, let url = URL(string: text) {
            name = url.path.split(separator: "/").first.map(String.init)
        }
        guard let name, !name.isEmpty, !name.contains(".."), !name.contains("/") else { return nil }
        return (storage as NSString).appendingPathComponent(name)
    }

    /// Copies every file of a container folder whose relative path starts with `blobPrefix` into
    /// `filePath` (a folder under the working directory, or the working directory itself).
    private static func copyContainer(
        _ file: ResourceFile, into workingDirectory: String, storage: String, owner: (uid: UInt32, gid: UInt32)?
    ) -> FailureInfo? {
        guard let folder = containerFolder(file, storage: storage) else {
            return FailureInfo(code: "BlobDownloadMiscError", message: "The storage container name is missing or invalid")
        }
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            return FailureInfo(code: "BlobNotFound", message: "The container folder \(folder) does not exist")
        }
        let target = file.filePath.map(lexical) ?? []
        let prefix = file.blobPrefix ?? ""
        for case let relative as String in fm.enumerator(atPath: folder)?.allObjects ?? [] where relative.hasPrefix(prefix) {
            let source = (folder as NSString).appendingPathComponent(relative)
            guard fm.fileExists(atPath: source, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            // Links inside the container could point anywhere on this machine: only regular files are copied.
            guard (try? fm.destinationOfSymbolicLink(atPath: source)) == nil else { continue }
            guard let data = fm.contents(atPath: source) else {
                return FailureInfo(code: "ResourceFileWriteFailed", message: "Reading \(relative) from the container failed")
            }
            if let failure = write(data, to: target + lexical(relative), in: workingDirectory, mode: mode(file), owner: owner, display: relative) {
                return failure
            }
        }
        return nil
    }

    private static func fetch(_ text: String) throws -> Data {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased() else {
            throw FailureInfo(code: "BlobDownloadMiscError", message: "\(text) is not a URL")
        }
        switch scheme {
        case "file":
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw FailureInfo(code: "BlobNotFound", message: "\(url.path) does not exist")
            }
            return data
        case "http", "https":
            var request = URLRequest(url: url)
            request.timeoutInterval = 300
            let (data, response) = try blockingData(for: request)
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            switch status {
            case 200..<300: return data
            case 404: throw FailureInfo(code: "BlobNotFound", message: "\(text) answered 404")
            case 401, 403: throw FailureInfo(code: "BlobAccessDenied", message: "\(text) answered \(status)")
            default: throw FailureInfo(code: "BlobDownloadMiscError", message: "\(text) answered \(status)")
            }
        default:
            throw FailureInfo(code: "BlobDownloadMiscError", message: "unsupported URL scheme \(scheme)")
        }
    }

    /// URLSession's completion-handler form, waited for on this (dispatch) thread.
    private static func blockingData(for request: URLRequest) throws -> (Data, URLResponse?) {
        final class Answer: @unchecked Sendable {
            // Written by URLSession's delegate queue before `done` is signalled, read after.
            var result: Result<(Data, URLResponse?), any Error> = .failure(URLError(.unknown))
        }
        let answer = Answer()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            answer.result = error.map { .failure($0) } ?? .success((data ?? Data(), response))
            done.signal()
        }.resume()
        done.wait()
        return try answer.result.get()
    }
}

extension FailureInfo: Error {}
