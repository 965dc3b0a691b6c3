import CBeneath
import Foundation

/// An open file descriptor, closed when the last reference goes (a streamed response body holds it
/// until the last byte is written, or the client goes away).
public final class FileDescriptor: @unchecked Sendable {
    public let rawValue: Int32

    init(_ rawValue: Int32) { self.rawValue = rawValue }

    deinit { close(rawValue) }
}

/// A regular file opened for reading beneath a root, with its size fixed when it was opened.
public struct OpenedFile: Sendable {
    public let descriptor: FileDescriptor
    public let info: NodeFileInfo
}

/// Every file a client or a task names is reached through here: opened beneath a root directory
/// descriptor, never following a symbolic link, regular files and folders only.
///
/// Tasks own the folders under their root and can plant links, FIFOs or hard links there, or swap
/// a folder for a link while the daemon works; a path is therefore never resolved and then opened,
/// but opened one descriptor at a time (see `CBeneath`). Links are refused anywhere in a path,
/// whether they point inside or out: the rule needs no resolving, so it cannot be raced.
public enum FileAccess {
    /// Opens a folder the daemon itself made and owns (a task directory, a node root); only what is
    /// beneath it is untrusted.
    static func openRoot(_ path: String) throws -> FileDescriptor {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw BookendError(.notFound, "FileNotFound", "The folder of these files no longer exists")
        }
        return FileDescriptor(fd)
    }

    /// The components of a client's relative path (`/`-separated, leading `/` and `.` ignored).
    /// `..` and control characters are refused before anything reaches the file system.
    static func components(_ path: String) throws -> [String] {
        if let bad = path.unicodeScalars.first(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw BookendError(.invalidRequest, "InvalidPropertyValue",
                "The file path contains the control character 0x\(String(format: "%02X", bad.value)), which no file name here may contain",
                details: [.init(key: "PropertyName", value: "filePath")])
        }
        let parts = path.split(separator: "/").map(String.init).filter { $0 != "." }
        guard !parts.contains("..") else {
            throw BookendError(.invalidRequest, "InvalidPropertyValue", "The file path must not contain '..'",
                details: [.init(key: "PropertyName", value: "filePath"), .init(key: "PropertyValue", value: path)])
        }
        return parts
    }

    /// Why `errno` after opening `path` beneath its root, as the error a client sees.
    static func failure(_ code: Int32, _ path: String) -> BookendError {
        switch code {
        case ENOENT, ENOTDIR:
            return BookendError(.notFound, "FileNotFound", "The file \(path) does not exist")
        case ELOOP, EXDEV:
            return BookendError(.notFound, "FileNotFound", "The path \(path) goes through a symbolic link, which is never followed")
        case ENXIO, EWOULDBLOCK:
            return BookendError(.conflict, "OperationInvalidForCurrentState", "\(path) is not a regular file or folder")
        case EACCES, EPERM:
            return BookendError(.conflict, "OperationInvalidForCurrentState", "\(path) cannot be opened: permission denied")
        case ENAMETOOLONG:
            return BookendError(.invalidRequest, "InvalidPropertyValue", "The file path \(path) is too long")
        default:
            return BookendError(.internalError, "InternalError", "Opening \(path) failed: \(String(cString: strerror(code)))")
        }
    }

    /// Opens `components` beneath `root` with `flags`; O_NONBLOCK is added to real opens, so a FIFO
    /// never holds a request (openat2 refuses it with O_PATH, which never waits anyway).
    static func openBeneath(_ root: FileDescriptor, _ components: [String], flags: Int32, display: String) throws -> FileDescriptor {
        let opening = flags & bk_o_path != 0 ? flags : flags | O_NONBLOCK | O_NOCTTY
        let fd = bk_open_beneath(root.rawValue, components.joined(separator: "/"), opening, 0)
        guard fd >= 0 else { throw failure(errno, display) }
        return FileDescriptor(fd)
    }

    static func status(_ descriptor: FileDescriptor, display: String) throws -> stat {
        var info = stat()
        guard fstat(descriptor.rawValue, &info) == 0 else { throw failure(errno, display) }
        return info
    }

    static func isDirectory(_ info: stat) -> Bool { info.st_mode & S_IFMT == S_IFDIR }
    static func isRegular(_ info: stat) -> Bool { info.st_mode & S_IFMT == S_IFREG }

    static func fileInfo(_ name: String, _ info: stat) -> NodeFileInfo {
        let modified = Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
        let directory = isDirectory(info)
        return NodeFileInfo(
            name: name, isDirectory: directory, lastModified: modified,
            contentLength: directory ? 0 : Int64(info.st_size), fileMode: mode(info.st_mode))
    }

    /// A file's permission bits as Azure shows them: `0` and at least three octal digits (`0644`,
    /// `01777`). Written by hand: `String(format:)` was a noticeable part of listing a large folder.
    static func mode(_ bits: mode_t) -> String {
        let value = UInt32(bits) & 0o7777
        var digits = String(value, radix: 8)
        while digits.count < 3 { digits = "0" + digits }
        return "0" + digits
    }

    /// A regular file or folder beneath `root`; links, FIFOs, sockets and devices are refused.
    public static func properties(root: String, relativePath: String) throws -> NodeFileInfo {
        let parts = try components(relativePath)
        let descriptor = try openBeneath(try openRoot(root), parts, flags: bk_o_path, display: relativePath)
        let info = try status(descriptor, display: relativePath)
        guard isRegular(info) || isDirectory(info) else { throw failure(ENXIO, relativePath) }
        return fileInfo(parts.joined(separator: "/"), info)
    }

    /// Opens a regular file beneath `root` for reading. The descriptor reads the file that was
    /// checked: nothing is resolved twice.
    public static func openForReading(root: String, relativePath: String) throws -> OpenedFile {
        let parts = try components(relativePath)
        // O_PATH first: a device is never opened for real, so opening it can have no effect.
        let probe = try openBeneath(try openRoot(root), parts, flags: bk_o_path, display: relativePath)
        let probed = try status(probe, display: relativePath)
        if isDirectory(probed) {
            throw BookendError(.conflict, "OperationInvalidForCurrentState", "The path \(relativePath) is a directory")
        }
        guard isRegular(probed) else { throw failure(ENXIO, relativePath) }
        let descriptor = try openBeneath(try openRoot(root), parts, flags: O_RDONLY, display: relativePath)
        let info = try status(descriptor, display: relativePath)
        // Swapped between the two opens: whatever is there now must still be a regular file.
        guard isRegular(info) else { throw failure(ENXIO, relativePath) }
        return OpenedFile(descriptor: descriptor, info: fileInfo(parts.joined(separator: "/"), info))
    }

    /// The whole content of a regular file beneath `root` (for library callers; the API streams).
    public static func read(root: String, relativePath: String) throws -> Data {
        let file = try openForReading(root: root, relativePath: relativePath)
        var data = Data()
        var offset: Int64 = 0
        while offset < file.info.contentLength {
            let chunk = try readChunk(file.descriptor, at: offset, upTo: Int(min(1 << 20, file.info.contentLength - offset)))
            if chunk.isEmpty { break }
            data.append(chunk)
            offset += Int64(chunk.count)
        }
        return data
    }

    /// Up to `count` bytes at `offset`; empty at the end of the file.
    public static func readChunk(_ descriptor: FileDescriptor, at offset: Int64, upTo count: Int) throws -> Data {
        var data = Data(count: count)
        let read = data.withUnsafeMutableBytes { buffer in
            var result: Int
            repeat { result = pread(descriptor.rawValue, buffer.baseAddress, count, off_t(offset)) } while result < 0 && errno == EINTR
            return result
        }
        guard read >= 0 else {
            throw BookendError(.internalError, "InternalError", "Reading a file failed: \(String(cString: strerror(errno)))")
        }
        data.count = read
        return data
    }

    /// Regular files and folders beneath `root` (everything beneath it when `recursive`), in listing
    /// order (`FileWalk`, which a paged listing uses to read only its page).
    static func list(root: String, recursive: Bool) throws -> [NodeFileInfo] {
        try FileWalk(root: root, recursive: recursive).rest()
    }

    /// The entries of an open folder with their own status (a link is reported as a link).
    ///
    /// A name that is not UTF-8 (a task can make one: `printf 'a\377'`) is left out: it has no exact
    /// form in a JSON string, and a path a client sends is decoded as UTF-8, so no request could name
    /// it. It is still an entry: `hasEntries` counts it, so a folder holding only such names is not
    /// taken for empty. Each entry's status is read by its name's own bytes.
    static func entries(_ folder: FileDescriptor) -> [(String, stat)] {
        var found: [(String, stat)] = []
        forEachEntry(folder) { raw, cName, _ in
            guard let name = String(validating: raw, as: UTF8.self) else { return true }
            var info = stat()
            guard fstatat(folder.rawValue, cName, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return true }
            found.append((name, info))
            return true
        }
        return found.sorted { $0.0 < $1.0 }
    }

    /// Whether an open folder holds anything besides `.` and `..`, whatever its names are.
    static func hasEntries(_ folder: FileDescriptor) -> Bool {
        var any = false
        forEachEntry(folder) { _, _, _ in
            any = true
            return false
        }
        return any
    }

    /// Calls `body` with each entry's name (its bytes, and the same as a C string) and its `d_type`
    /// (`DT_UNKNOWN` where the file system does not say) but `.` and `..`, until it answers false. A
    /// folder that cannot be read has no entries.
    static func forEachEntry(_ folder: FileDescriptor, _ body: (UnsafeRawBufferPointer, UnsafePointer<CChar>, UInt8) -> Bool) {
        let copy = dup(folder.rawValue)
        guard copy >= 0, let stream = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            return
        }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let more = withUnsafeBytes(of: &entry.pointee.d_name) { bytes -> Bool in
                let length = bytes.firstIndex(of: 0) ?? bytes.count
                let raw = UnsafeRawBufferPointer(rebasing: bytes[..<length])
                if raw.elementsEqual([UInt8(ascii: ".")]) || raw.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) { return true }
                return body(raw, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), entry.pointee.d_type)
            }
            if !more { return }
        }
    }

    /// Deletes the entry at `relativePath` beneath `root` (never the root itself). A link is
    /// removed, never what it points to; a non-empty folder needs `recursive`.
    static func delete(root: String, relativePath: String, recursive: Bool) throws {
        let parts = try components(relativePath)
        // `wd/.` names the folder by its own entry: refused like the root, so a delete only ever
        // removes the entry its last component names.
        guard let name = parts.last, !relativePath.split(separator: "/").contains(".") else {
            throw BookendError(.invalidRequest, "InvalidPropertyValue", "The root directory itself cannot be deleted",
                details: [.init(key: "PropertyName", value: "filePath"), .init(key: "PropertyValue", value: relativePath)])
        }
        let parent = try openBeneath(try openRoot(root), Array(parts.dropLast()), flags: O_RDONLY | O_DIRECTORY, display: relativePath)
        var info = stat()
        guard fstatat(parent.rawValue, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { throw failure(errno, relativePath) }
        if isDirectory(info), !recursive {
            let fd = bk_open_beneath(parent.rawValue, name, O_RDONLY | O_DIRECTORY, 0)
            guard fd >= 0 else { throw failure(errno, relativePath) }
            if hasEntries(FileDescriptor(fd)) {
                throw BookendError(.conflict, "DirectoryNotEmpty", "The directory \(relativePath) is not empty; use recursive=true")
            }
        }
        guard bk_remove_at(parent.rawValue, name) == 0 else {
            if errno == ENOENT { throw failure(ENOENT, relativePath) }
            throw BookendError(.internalError, "InternalError", "The file \(relativePath) could not be deleted: \(String(cString: strerror(errno)))")
        }
    }

    /// Removes the folder tree at `path`, whose parent the daemon owns (a task directory, a job's
    /// workitems folder): everything under it is removed through descriptors, and a link met on the
    /// way is removed itself, so a task cannot redirect the delete. Quiet when nothing is there.
    @discardableResult
    public static func removeTree(atPath path: String) -> Bool {
        let name = (path as NSString).lastPathComponent
        guard !name.isEmpty, name != "/", name != ".", name != "..", let parent = try? openRoot(Paths.folder(containing: path)) else {
            return false
        }
        return bk_remove_at(parent.rawValue, name) == 0 || errno == ENOENT
    }

    /// Creates a fresh regular file at `components` beneath `root` and writes `data` to it: missing
    /// folders are made and given to `owner`; whatever entry was there is replaced (a link is
    /// removed, never written through); mode and owner are set on the descriptor.
    static func createFile(
        root: FileDescriptor, components: [String], data: Data, mode: mode_t, owner: (uid: UInt32, gid: UInt32)?
    ) throws(Errno) {
        let fd = bk_create_beneath(root.rawValue, components.joined(separator: "/"), 0o755,
            owner?.uid ?? UInt32.max, owner?.gid ?? UInt32.max)
        guard fd >= 0 else { throw Errno(errno) }
        let file = FileDescriptor(fd)
        var written = 0
        while written < data.count {
            let result = data.withUnsafeBytes { buffer in
                write(file.rawValue, buffer.baseAddress! + written, min(1 << 20, data.count - written))
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw Errno(errno)
            }
            written += result
        }
        guard fchmod(file.rawValue, mode) == 0 else { throw Errno(errno) }
        if let owner, fchown(file.rawValue, owner.uid, owner.gid) != 0 { throw Errno(errno) }
    }

    /// An errno value from a file-system call, with its text.
    struct Errno: Error, CustomStringConvertible {
        let code: Int32
        init(_ code: Int32) { self.code = code }
        var description: String { String(cString: strerror(code)) }
    }
}
