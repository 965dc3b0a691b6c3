import CBeneath
import Foundation

/// The regular files and folders beneath a root in listing order, read a page at a time.
///
/// Listing order is by path, case-insensitive (each name lowered, joined by `/`), ties broken by the
/// exact path: the order every list of the API pages in (`ListQuery.precedes`). A page that resumes
/// after a path reads only what lies at or after it.
///
/// Why not read the whole tree and sort it: a task can fill its folder with hundreds of thousands of
/// files, and every page of a listing did that again: one `fstatat` and one rendered entry per file
/// in the tree, held in memory together, for 1,000 of them (3.6 s a page for 100,000 files in a debug
/// build, so an hour and more to follow all the pages of a million). Now a page reads the names of
/// the folders it passes through (no `fstatat`: `readdir` says which entries are folders), keeps them
/// in a heap ordered as above, and reads the status of only the entries it answers with. Folders are
/// entered when their turn comes, and skipped whole when everything in them lies before the resume
/// point.
///
/// Safety is the rest of `FileAccess`'s: only the root is opened by path; every folder is opened
/// beneath it by its relative path, links refused anywhere in it (`bk_open_beneath`), and every
/// status is read through a descriptor of its parent opened the same way, never following a link.
/// Links, FIFOs, sockets and devices are not listed; names that are not UTF-8 are left out (no
/// request could name them), and so are paths of `PATH_MAX` bytes or more, which also bounds how
/// deep a walk goes. Nothing recurses (a task can nest folders tens of thousands deep, and a
/// recursive walk once overflowed the thread's stack and ended the daemon), and at most two
/// descriptors are open at a time: the root and the folder last looked at.
public final class FileWalk: @unchecked Sendable {
    /// An entry read from its folder, not yet answered.
    struct Entry {
        /// The path, each name lowered, joined by `/`: the order.
        var key: String
        /// The path relative to the root, as it is on disk.
        var path: String

        /// Listing order (`ListQuery.precedes` on the paths).
        static func precedes(_ a: Entry, _ b: Entry) -> Bool { a.key != b.key ? a.key < b.key : a.path < b.path }
    }

    private let root: FileDescriptor
    private let recursive: Bool
    private var heap: [Entry] = []
    /// The folder whose entries were last looked at, kept open: a page's entries mostly share one.
    private var parent: (path: String, descriptor: FileDescriptor)?

    /// The order key of a path: each name lowered, joined by `/`.
    static func key(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { $0.lowercased() }.joined(separator: "/")
    }

    /// A walk of `root` (a folder the daemon made: a task directory, a node root), of its own entries
    /// or, `recursive`, of everything beneath it, starting after the path `after` (a page's last).
    init(root: String, recursive: Bool, after: String? = nil) throws {
        self.root = try FileAccess.openRoot(root)
        self.recursive = recursive
        let start = Entry(key: "", path: "")
        guard let after else {
            readFolder(start, resumingAfter: nil)
            return
        }
        let resume = Entry(key: Self.key(after), path: after)
        // The folders on the way to the resume point are read (their entries after it kept, the
        // folders whose contents may still hold entries after it entered); the rest are skipped.
        var pending = [start]
        while let folder = pending.popLast() {
            pending += readFolder(folder, resumingAfter: resume)
        }
    }

    /// Reads the entries of `folder` (the root when its path is empty): those after `resume` (all,
    /// without one) go into the heap; answers the folders among the others whose contents may still
    /// hold entries after `resume`, to be read the same way.
    @discardableResult
    private func readFolder(_ folder: Entry, resumingAfter resume: Entry?) -> [Entry] {
        let descriptor: FileDescriptor
        if folder.path.isEmpty {
            descriptor = root
        } else {
            let fd = bk_open_beneath(root.rawValue, folder.path, O_RDONLY | O_DIRECTORY, 0)
            // Gone, replaced by a link or a file since it was read: nothing of it is listed.
            guard fd >= 0 else { return [] }
            descriptor = FileDescriptor(fd)
        }
        var enter: [Entry] = []
        var found: [Entry] = []
        defer {
            push(found)
            // Its entries' statuses are read through the same descriptor (`status(of:)`), not a second open.
            if !folder.path.isEmpty { parent = (folder.path, descriptor) }
        }
        FileAccess.forEachEntry(descriptor) { raw, cName, type in
            guard let name = String(validating: raw, as: UTF8.self) else { return true }
            var isDirectory = type == UInt8(DT_DIR)
            if type == UInt8(DT_UNKNOWN) {
                // Some file systems do not say in `readdir`: the status does.
                var info = stat()
                guard fstatat(descriptor.rawValue, cName, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return true }
                guard FileAccess.isRegular(info) || FileAccess.isDirectory(info) else { return true }
                isDirectory = FileAccess.isDirectory(info)
            } else if !isDirectory, type != UInt8(DT_REG) {
                return true
            }
            let path = folder.path.isEmpty ? name : folder.path + "/" + name
            guard path.utf8.count < Int(PATH_MAX) else { return true }
            let entry = Entry(key: folder.path.isEmpty ? name.lowercased() : folder.key + "/" + name.lowercased(), path: path)
            guard let resume, !Entry.precedes(resume, entry) else {
                found.append(entry)
                return true
            }
            // At or before the resume point: not answered. Its contents all start with `key/`: they
            // lie before the resume point too unless that prefix comes after it, or leads to it.
            if recursive, isDirectory {
                let prefix = entry.key + "/"
                if !(prefix < resume.key) || resume.key.hasPrefix(prefix) { enter.append(entry) }
            }
            return true
        }
        return enter
    }

    /// The next `limit` entries at most, in listing order; fewer only at the end.
    func next(_ limit: Int) -> [NodeFileInfo] {
        var found: [NodeFileInfo] = []
        while found.count < limit, let entry = pop() {
            guard let info = status(of: entry.path) else { continue }
            // Listed as it is now: a folder swapped for a file (or back) since its name was read.
            let isDirectory = FileAccess.isDirectory(info)
            guard isDirectory || FileAccess.isRegular(info) else { continue }
            found.append(FileAccess.fileInfo(entry.path, info))
            // Everything in a folder comes after it (its paths extend its own), so entering it now
            // keeps the order.
            if recursive, isDirectory { readFolder(entry, resumingAfter: nil) }
        }
        return found
    }

    /// The next `limit` entries at most, read on a thread of their own (`Engine.walk`): a page can
    /// pass through folders of hundreds of thousands of names.
    public func page(_ limit: Int) async throws -> [NodeFileInfo] {
        try await Engine.walk { self.next(limit) }
    }

    /// Every entry left.
    func rest() -> [NodeFileInfo] {
        var all: [NodeFileInfo] = []
        while true {
            let page = next(4096)
            all += page
            if page.count < 4096 { return all }
        }
    }

    /// The status of the entry at `path`, read through its parent folder's descriptor, not following
    /// a link; nil when it is gone.
    private func status(of path: String) -> stat? {
        let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))
        let folder = slash.map { String(path[..<$0]) } ?? ""
        let name = slash.map { String(path[path.utf8.index(after: $0)...]) } ?? path
        if parent?.path != folder {
            parent = nil
            if folder.isEmpty {
                parent = (folder, root)
            } else {
                let fd = bk_open_beneath(root.rawValue, folder, O_RDONLY | O_DIRECTORY, 0)
                guard fd >= 0 else { return nil }
                parent = (folder, FileDescriptor(fd))
            }
        }
        guard let parent else { return nil }
        var info = stat()
        guard fstatat(parent.descriptor.rawValue, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        return info
    }

    // A binary min-heap in listing order.

    /// Adds a folder's entries: one by one when they are few beside the heap, else by rebuilding the
    /// heap in linear time (a folder of a million names is read on every page that passes through it).
    private func push(_ entries: [Entry]) {
        guard entries.count > heap.count / 2 else {
            for entry in entries { push(entry) }
            return
        }
        heap += entries
        for index in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
    }

    private func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let up = (child - 1) / 2
            guard Entry.precedes(heap[child], heap[up]) else { break }
            heap.swapAt(child, up)
            child = up
        }
    }

    private func siftDown(_ start: Int) {
        var index = start
        while true {
            let left = 2 * index + 1
            guard left < heap.count else { return }
            var least = left
            if left + 1 < heap.count, Entry.precedes(heap[left + 1], heap[left]) { least = left + 1 }
            guard Entry.precedes(heap[least], heap[index]) else { return }
            heap.swapAt(least, index)
            index = least
        }
    }

    private func pop() -> Entry? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let first = heap.removeLast()
        siftDown(0)
        return first
    }
}
