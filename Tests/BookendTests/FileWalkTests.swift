import Foundation
import TestSupport
import Testing

@testable import Bookend

/// The paged walk behind file listings (`FileWalk`) against the plain answer: every regular file and
/// folder of a real tree, sorted whole. Whatever the names and wherever a page resumes, it must give
/// the same entries in the same order, with no gap and no repeat.
@Suite struct FileWalkTests {
    /// A scratch folder, removed at the end.
    static func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bookend-walk-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Listing order spelled out independently of `FileWalk`: names lowered and compared path by path,
    /// ties broken by the exact path.
    static func sortedAsListed(_ paths: [String]) -> [String] {
        func key(_ path: String) -> String { path.split(separator: "/").map { $0.lowercased() }.joined(separator: "/") }
        return paths.sorted { key($0) != key($1) ? key($0) < key($1) : $0 < $1 }
    }

    /// Every regular file and folder beneath `root`, found by `FileManager` (which does not enter links).
    static func everything(_ root: String, recursive: Bool) throws -> [String] {
        var found: [String] = []
        func visit(_ relative: String) throws {
            let folder = relative.isEmpty ? root : root + "/" + relative
            for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
                let path = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(root + "/" + path, &info) == 0 else { continue }
                let kind = info.st_mode & S_IFMT
                guard kind == S_IFREG || kind == S_IFDIR else { continue }
                found.append(path)
                if recursive, kind == S_IFDIR { try visit(path) }
            }
        }
        try visit("")
        return found
    }

    /// Names meant to catch an order that goes folder by folder: characters below `/` (`.`, `-`, space)
    /// after a folder's name, case that differs, names that are prefixes of others, non-ASCII.
    static func makeTree(_ root: String, seed: UInt64) throws {
        var generator = SplitMix64(seed: seed)
        let pieces = ["a", "A", "b", "wd", "x", "é", "É", "ß", "z"]
        let tails = ["", ".log", "-1", " 2", ".d", "b", "B", "~"]
        var folders = [""]
        for _ in 0..<120 {
            let parent = folders.randomElement(using: &generator)!
            let name = pieces.randomElement(using: &generator)! + tails.randomElement(using: &generator)!
            let path = parent.isEmpty ? name : parent + "/" + name
            var info = stat()
            guard lstat(root + "/" + path, &info) != 0 else { continue }
            if Bool.random(using: &generator), parent.split(separator: "/").count < 4 {
                try FileManager.default.createDirectory(atPath: root + "/" + path, withIntermediateDirectories: false)
                folders.append(path)
            } else {
                try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/" + path))
            }
        }
        // Never listed, never entered.
        try FileManager.default.createSymbolicLink(atPath: root + "/wd.link", withDestinationPath: "/")
        try FileManager.default.createSymbolicLink(atPath: root + "/a-link", withDestinationPath: root)
        #expect(mkfifo(root + "/fifo", 0o600) == 0)
    }

    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func everyResumePointGivesTheRestInOrder(seed: UInt64) throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.makeTree(root, seed: seed)
        for recursive in [false, true] {
            let expected = Self.sortedAsListed(try Self.everything(root, recursive: recursive))
            let walked = try FileWalk(root: root, recursive: recursive).rest().map(\.name)
            #expect(walked == expected, "recursive \(recursive)")
            // Resuming after every entry, and in pages of every size up to 7: the rest, exactly.
            for (index, after) in expected.enumerated() {
                #expect(try FileWalk(root: root, recursive: recursive, after: after).rest().map(\.name) == Array(expected[(index + 1)...]),
                    "recursive \(recursive), after \(after)")
            }
            for size in 1...7 {
                let walk = try FileWalk(root: root, recursive: recursive)
                var paged: [String] = []
                while true {
                    let page = walk.next(size).map(\.name)
                    paged += page
                    if page.count < size { break }
                }
                #expect(paged == expected, "recursive \(recursive), pages of \(size)")
            }
        }
    }

    /// A page resumes after a path that is gone by then (deleted between two pages, or a folder
    /// swapped for a link): what is left after it is listed, nothing before it again, no link followed.
    @Test func aResumePointThatIsGoneStillResumesInOrder() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for folder in ["d", "d/e", "d.x"] { try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: false) }
        for file in ["c", "d/e/f", "d/e/g", "d/h", "d.x/i", "d-y", "e"] { try Data().write(to: URL(fileURLWithPath: root + "/" + file)) }
        let before = try FileWalk(root: root, recursive: true).rest().map(\.name)
        #expect(before == ["c", "d", "d-y", "d.x", "d.x/i", "d/e", "d/e/f", "d/e/g", "d/h", "e"])
        try FileManager.default.removeItem(atPath: root + "/d/e")
        #expect(try FileWalk(root: root, recursive: true, after: "d/e/f").rest().map(\.name) == ["d/h", "e"])
        // `d` is now a link to the root: nothing beneath it is listed, the link itself neither.
        try FileManager.default.removeItem(atPath: root + "/d")
        try FileManager.default.createSymbolicLink(atPath: root + "/d", withDestinationPath: root)
        #expect(try FileWalk(root: root, recursive: true, after: "d-y").rest().map(\.name) == ["d.x", "d.x/i", "e"])
        #expect(try FileWalk(root: root, recursive: true, after: "d/e").rest().map(\.name) == ["e"])
    }

    /// A large folder is listed a page at a time; each page only holds its own entries.
    @Test func aLargeFolderPagesWithoutGapsOrRepeats() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for index in 0..<3_000 {
            let fd = open(root + "/f\(index)", O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
            #expect(fd >= 0)
            close(fd)
        }
        var after: String?
        var seen: [String] = []
        while true {
            let page = try FileWalk(root: root, recursive: true, after: after).next(1_000).map(\.name)
            #expect(page.count <= 1_000)
            seen += page
            guard page.count == 1_000 else { break }
            after = page.last
        }
        #expect(seen == Self.sortedAsListed((0..<3_000).map { "f\($0)" }))
    }
}
