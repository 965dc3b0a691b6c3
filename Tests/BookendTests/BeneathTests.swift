import CBeneath
import Foundation
import TestSupport
import Testing

/// The descriptor layer under the file API, resource files and folder removal, on a real folder
/// with real links, both through openat2 and through the O_NOFOLLOW walk older kernels get.
@Suite(.serialized, .ownThread) struct BeneathTests {
    /// A root with `d/f` and `d/e/f`, links out (absolute, relative, to a folder) and in, and a
    /// canary folder outside it.
    struct Tree {
        let base: String
        let root: String
        let canary: String
        let canaryContent = "canary-\(UUID().uuidString)"
        let rootFD: Int32

        init() throws {
            base = NSTemporaryDirectory() + "bookend-beneath-\(UUID().uuidString.prefix(8))"
            root = base + "/root"
            canary = base + "/outside"
            let fm = FileManager.default
            try fm.createDirectory(atPath: root + "/d/e", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: canary, withIntermediateDirectories: true)
            try Data("inside".utf8).write(to: URL(fileURLWithPath: root + "/d/f"))
            try Data("deep".utf8).write(to: URL(fileURLWithPath: root + "/d/e/f"))
            try Data(canaryContent.utf8).write(to: URL(fileURLWithPath: canary + "/canary.txt"))
            try fm.createSymbolicLink(atPath: root + "/abs", withDestinationPath: canary + "/canary.txt")
            try fm.createSymbolicLink(atPath: root + "/rel", withDestinationPath: "d/" + String(repeating: "../", count: 12) + canary.dropFirst() + "/canary.txt")
            try fm.createSymbolicLink(atPath: root + "/outdir", withDestinationPath: canary)
            try fm.createSymbolicLink(atPath: root + "/d/up", withDestinationPath: "../..")
            try fm.createSymbolicLink(atPath: root + "/indir", withDestinationPath: "d")
            rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }

        var canaryIntact: Bool {
            (try? FileManager.default.contentsOfDirectory(atPath: canary)) == ["canary.txt"]
                && (try? String(contentsOfFile: canary + "/canary.txt", encoding: .utf8)) == canaryContent
        }

        func remove() {
            close(rootFD)
            try? FileManager.default.removeItem(atPath: base)
        }
    }

    static func read(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = Glibc.read(fd, &buffer, buffer.count)
        return String(decoding: buffer.prefix(max(0, count)), as: UTF8.self)
    }

    @Test(arguments: [false, true]) func linksAreRefusedAndRootIsKept(fallback: Bool) throws {
        bk_beneath_force_fallback(fallback ? 1 : 0)
        defer { bk_beneath_force_fallback(0) }
        let tree = try Tree()
        defer { tree.remove() }

        let inside = bk_open_beneath(tree.rootFD, "d/./f", O_RDONLY, 0)
        #expect(inside >= 0)
        #expect(Self.read(inside) == "inside")
        close(inside)
        let itself = bk_open_beneath(tree.rootFD, "", O_RDONLY | O_DIRECTORY, 0)
        #expect(itself >= 0)
        close(itself)

        for path in ["abs", "rel", "outdir/canary.txt", "outdir", "d/up/outside/canary.txt", "indir/f", "d/../d/f", "../outside/canary.txt"] {
            for flags in [O_RDONLY, bk_o_path] {
                let fd = bk_open_beneath(tree.rootFD, path, flags, 0)
                let error = errno
                #expect(fd == -1, "\(path) opened (fallback \(fallback))")
                #expect([ELOOP, ENOTDIR, EXDEV].contains(error), "\(path): errno \(error)")
                if fd >= 0 { close(fd) }
            }
        }

        // Writing: through a link component fails; a link at the name itself is replaced.
        #expect(bk_create_beneath(tree.rootFD, "outdir/new.txt", 0o755, UInt32.max, UInt32.max) == -1)
        #expect(bk_create_beneath(tree.rootFD, "d/up/outside/new.txt", 0o755, UInt32.max, UInt32.max) == -1)
        #expect(bk_create_beneath(tree.rootFD, "../outside/new.txt", 0o755, UInt32.max, UInt32.max) == -1)
        let replaced = bk_create_beneath(tree.rootFD, "abs", 0o755, UInt32.max, UInt32.max)
        #expect(replaced >= 0)
        _ = "fresh".withCString { write(replaced, $0, 5) }
        close(replaced)
        let made = bk_create_beneath(tree.rootFD, "new/folder/file.txt", 0o755, UInt32.max, UInt32.max)
        #expect(made >= 0)
        close(made)
        #expect(FileManager.default.fileExists(atPath: tree.root + "/new/folder/file.txt"))
        #expect(try String(contentsOfFile: tree.root + "/abs", encoding: .utf8) == "fresh")
        #expect(tree.canaryIntact)

        // Removing: links are removed themselves, whatever they point to.
        #expect(bk_remove_at(tree.rootFD, "outdir") == 0)
        #expect(bk_remove_at(tree.rootFD, "d") == 0)
        #expect(!FileManager.default.fileExists(atPath: tree.root + "/d"))
        #expect(tree.canaryIntact)
        // And a whole root whose parent the daemon owns.
        let base = open(tree.base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        #expect(bk_remove_at(base, "root") == 0)
        close(base)
        #expect(!FileManager.default.fileExists(atPath: tree.root))
        #expect(tree.canaryIntact)
    }

    /// Property: random paths (`..`, `.`, NUL-free raw bytes, link names, long names) opened,
    /// created and removed beneath a root full of links; nothing outside is ever opened, written or
    /// removed. Seeded; the seed is printed.
    @Test(arguments: [false, true]) func randomPathsStayBeneath(fallback: Bool) throws {
        bk_beneath_force_fallback(fallback ? 1 : 0)
        defer { bk_beneath_force_fallback(0) }
        let seed = UInt64.random(in: 1...UInt64.max)
        print("BeneathTests.randomPathsStayBeneath(fallback: \(fallback)) seed: \(seed)")
        var random = SplitMix64(seed: seed)
        let tree = try Tree()
        defer { tree.remove() }
        var canaryStat = stat()
        #expect(stat(tree.canary + "/canary.txt", &canaryStat) == 0)
        var outsideStat = stat()
        #expect(stat(tree.canary, &outsideStat) == 0)

        let tokens = ["..", ".", "d", "e", "f", "abs", "rel", "outdir", "up", "indir", "outside", "canary.txt", "new",
            String(repeating: "x", count: 300), "\u{FF}", "%00", "*"]
        for number in 0..<400 {
            let path = (0..<(Int(random.next() % 5) + 1)).map { _ in tokens[Int(random.next() % UInt64(tokens.count))] }
                .joined(separator: "/")
            switch random.next() % 3 {
            case 0:
                let fd = bk_open_beneath(tree.rootFD, path, random.next() % 2 == 0 ? O_RDONLY : bk_o_path, 0)
                if fd >= 0 {
                    var info = stat()
                    fstat(fd, &info)
                    #expect(!(info.st_dev == canaryStat.st_dev && info.st_ino == canaryStat.st_ino), "case \(number) \(path) (seed \(seed))")
                    #expect(!(info.st_dev == outsideStat.st_dev && info.st_ino == outsideStat.st_ino), "case \(number) \(path) (seed \(seed))")
                    close(fd)
                }
            case 1:
                let fd = bk_create_beneath(tree.rootFD, path, 0o755, UInt32.max, UInt32.max)
                if fd >= 0 { close(fd) }
            default:
                // What the file API deletes: the last component's entry in its parent opened beneath.
                let parts = path.split(separator: "/")
                guard let name = parts.last, name != "..", name != "." else { continue }
                let parent = bk_open_beneath(tree.rootFD, parts.dropLast().joined(separator: "/"), O_RDONLY | O_DIRECTORY, 0)
                if parent >= 0 {
                    _ = bk_remove_at(parent, String(name))
                    close(parent)
                }
            }
            if !tree.canaryIntact {
                Issue.record("case \(number): \(path) touched the canary (seed \(seed))")
                break
            }
        }
        #expect(tree.canaryIntact)
    }

    /// A tree with many folders side by side, each with files and folders of its own (what a task's
    /// working folder often is), goes in one call. Each time the walk comes back up to a folder it
    /// must list that folder from its start again: entries read ahead before it went down are still
    /// there.
    @Test func wideTreesAreRemovedWhole() throws {
        let base = NSTemporaryDirectory() + "bookend-wide-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: base) }
        for folder in 0..<40 {
            for inner in 0..<3 {
                let path = base + "/tree/f\(folder)/g\(inner)"
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                try Data("x".utf8).write(to: URL(fileURLWithPath: path + "/file"))
            }
            try Data("y".utf8).write(to: URL(fileURLWithPath: base + "/tree/f\(folder).txt"))
        }
        let parent = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(parent) }
        #expect(bk_remove_at(parent, "tree") == 0, "errno \(errno)")
        #expect(!FileManager.default.fileExists(atPath: base + "/tree"))
    }
}
