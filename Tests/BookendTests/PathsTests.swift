import Bookend
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
