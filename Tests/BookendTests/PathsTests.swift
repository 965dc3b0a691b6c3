import Foundation
@testable import Bookend
import Testing

/// `Paths.parent`, which stands in for Foundation's `deletingLastPathComponent` (that one traps on
/// a lone one-character component).
@Suite struct PathsTests {
    @Test(arguments: [
        ("d", ""), ("d/", ""), ("d//", ""), (".", ""), ("data", ""), ("data/", ""), ("", ""),
        ("/", "/"), ("//", "/"), ("/d", "/"), ("/d/", "/"), ("/data", "/"),
        ("a/b", "a"), ("a/b/", "a"), ("a//b", "a"), ("./d", "."), ("../x", ".."),
        ("/var/lib/bookend", "/var/lib"), ("/var/lib/bookend/", "/var/lib"), ("var/demo/nodes/n", "var/demo/nodes"),
    ])
    func parent(path: String, expected: String) {
        #expect(Paths.parent(of: path) == expected, "\(path)")
    }

    @Test func theFolderContainingALoneComponentIsTheWorkingDirectory() {
        #expect(Paths.folder(containing: "d") == ".")
        #expect(Paths.folder(containing: "b.db") == ".")
        #expect(Paths.folder(containing: "/d") == "/")
        #expect(Paths.folder(containing: "backups/b.db") == "backups")
    }
}

/// The `fileMode` of a listed file, formatted by hand since 2026-12-08: the same text as the
/// `String(format: "0%03o")` it replaced, for every permission value.
@Suite struct FileModeTests {
    @Test func everyPermissionValueReadsAsBefore() {
        for bits in 0...0o7777 {
            #expect(FileAccess.mode(mode_t(bits) | S_IFREG) == String(format: "0%03o", bits))
        }
        #expect(FileAccess.mode(0o644 | S_IFREG) == "0644")
        #expect(FileAccess.mode(0o1777 | S_IFDIR) == "01777")
        #expect(FileAccess.mode(0o7 | S_IFREG) == "0007")
    }
}
