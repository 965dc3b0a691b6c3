import Bookend
import Foundation
import SQLite
import Testing

/// A fresh directory under the system temporary directory, removed when the last reference goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() as NSString).appendingPathComponent("bookend-tests-XXXXXX").utf8CString)
        guard let result = mkdtemp(&template) else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        path = String(cString: result)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// A path inside the directory.
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

/// The repository checkout these tests were compiled from.
enum Repository {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // BookendTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }
}

extension Connection {
    func count(_ table: String) throws -> Int {
        try #require(scalar("SELECT count(*) FROM \(table)").int)
    }

    /// Every row of `sql` as arrays of values, for comparing whole results.
    func values(_ sql: String, _ arguments: [any SQLiteBindable] = []) throws -> [[SQLiteValue]] {
        try query(sql, arguments).map(\.values)
    }
}

/// A migrated data directory in a temporary folder.
struct MigratedDirectory {
    let directory: TemporaryDirectory
    let connection: Connection

    init() throws {
        directory = try TemporaryDirectory()
        connection = try DataDirectory.openMigrated(directory.path).connection
    }
}


