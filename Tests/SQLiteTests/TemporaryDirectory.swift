import Foundation
import SQLite
import Testing

/// A fresh directory under the system temporary directory, removed when the last reference goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() as NSString).appendingPathComponent("sqlite-tests-XXXXXX").utf8CString)
        guard let result = mkdtemp(&template) else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        path = String(cString: result)
    }

    deinit {
        // Restore write permission in case a test made the directory read-only.
        chmod(path, 0o755)
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A path inside the directory.
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

extension Connection {
    /// `SELECT count(*) FROM table`.
    func count(_ table: String) throws -> Int {
        try #require(scalar("SELECT count(*) FROM \(table)").int)
    }
}

/// True when the tests run as root, for whom file permissions do not stop writes.
var isRoot: Bool { getuid() == 0 }

/// An error thrown by test code, compared by identity to check it is rethrown unchanged.
struct TestFailure: Error, Equatable {
    let id: Int
}
