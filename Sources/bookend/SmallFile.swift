import Foundation

/// Files people name on the command line that are small by nature (an account key, the client's
/// settings file), read to at most `limit` bytes. Read whole, `--key-file /dev/zero` (or a log named
/// by mistake) kept the command reading until memory ran out; now it is one line naming the file.
/// Any kind of file is read, not only regular ones: `--key-file <(pass show bookend)` is a pipe.
enum SmallFile {
    /// The most a key or settings file may hold.
    static let limit = 64 * 1024

    enum Failure: Error, CustomStringConvertible {
        case unreadable(path: String, errno: Int32)
        case tooLarge(path: String, limit: Int)

        var description: String {
            switch self {
            case .unreadable(let path, let error): "cannot read \(path) (\(String(cString: strerror(error))))"
            case .tooLarge(let path, let limit): "\(path) holds more than \(limit / 1024) KiB, far more than a key or settings file does: is it the right file?"
            }
        }
    }

    /// What a key file past `limit` is told (by `serve` and by the client commands).
    static func notAKey(_ path: String) -> String {
        "the key file \(path) holds more than \(limit / 1024) KiB: a key is a line of base64 (is it the right file?)"
    }

    static func read(_ path: String, limit: Int = SmallFile.limit) throws(Failure) -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(path: path, errno: errno) }
        defer { close(fd) }
        return try read(descriptor: fd, path: path, limit: limit)
    }

    /// Reads what is left of `fd` (standard input, say), to at most `limit` bytes; `path` names it in errors.
    static func read(descriptor fd: Int32, path: String, limit: Int) throws(Failure) -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, errno: errno)
            }
            if count == 0 { return data }
            data.append(contentsOf: buffer[..<count])
            if data.count > limit { throw .tooLarge(path: path, limit: limit) }
        }
    }
}
