import CBeneath
import Foundation

/// Creates node and task folders beneath a node's root without following links, and checks that the
/// task accounts can reach the node folders at all.
///
/// The engine runs as root while tasks can write inside their own folders and in `shared/`: a task
/// that swaps a folder for a link to `/etc` must not make the engine create, chown or chmod anything
/// there. So every step below the node root is `mkdirat` + `openat(O_NOFOLLOW | O_DIRECTORY)` on the
/// parent's descriptor, and modes and owners are set with `fchmod`/`fchown` on the folder opened.
enum NodeFolders {
    struct UnsafeFolder: Error, CustomStringConvertible {
        let path: String
        let reason: String
        var description: String { "\(path): \(reason)" }
    }

    /// Who owns a folder and its mode. `owner == nil` leaves the owner as created (the engine's account).
    struct Access {
        var mode: mode_t
        var owner: (uid: uid_t, gid: gid_t)?
    }

    /// Opens a folder the engine itself made or was given (the nodes directory, a node root), creating it
    /// and missing parents with mode 0755 whatever the umask. Links in this path are trusted: no task can
    /// write above a node root.
    static func openTrusted(_ path: String) throws -> Int32 {
        var fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0, errno == ENOENT {
            var prefix = ""
            for component in path.split(separator: "/") {
                prefix += "/" + component
                if mkdir(prefix, 0o755) == 0 { chmod(prefix, 0o755) }
            }
            fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        guard fd >= 0 else { throw UnsafeFolder(path: path, reason: "cannot open the folder (\(String(cString: strerror(errno))))") }
        return fd
    }

    /// Opens `name` inside the folder `parent`, creating it when missing, never following a link; then
    /// sets its mode and owner. The caller closes the descriptor returned.
    static func descend(_ parent: Int32, _ name: String, access: Access, path: String) throws -> Int32 {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else {
            throw UnsafeFolder(path: path, reason: "not a single folder name")
        }
        if mkdirat(parent, name, access.mode) != 0, errno != EEXIST {
            throw UnsafeFolder(path: path, reason: "cannot create the folder (\(String(cString: strerror(errno))))")
        }
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let cause = errno == ELOOP || errno == ENOTDIR ? "a link or a file is in the way; it is not followed" : String(cString: strerror(errno))
            throw UnsafeFolder(path: path, reason: cause)
        }
        do {
            try apply(access, to: fd, path: path)
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Opens `name` inside `parent` as the folder of a launch that reuses it (a retry, a preparation run
    /// again): made when missing; kept when it is already `access.owner`'s (a retry keeps its files, as
    /// in Azure); removed first (never following a link) and made afresh when it is anyone else's.
    /// Why not hand the existing folder over with `fchown`, as `descend` does: its inodes belong to
    /// another account, whose processes may still hold them open after their attempt ended, and would
    /// then read and write what the new account puts in them; and whatever a task moved into its folder
    /// under this name (another account's folder it could rename) is not the engine's to give away.
    /// The caller closes the descriptor returned.
    static func descendReusing(_ parent: Int32, _ name: String, access: Access, path: String) throws -> Int32 {
        guard let owner = access.owner else { return try descend(parent, name, access: access, path: path) }
        var info = stat()
        if fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0,
           (info.st_mode & S_IFMT) != S_IFDIR || info.st_uid != owner.uid || info.st_gid != owner.gid {
            guard bk_remove_at(parent, name) == 0 || errno == ENOENT else {
                throw UnsafeFolder(path: path, reason: "cannot remove what an earlier execution left (\(String(cString: strerror(errno))))")
            }
        }
        return try descend(parent, name, access: access, path: path)
    }

    /// Leaves in the folder `folder` only a regular file `name` that `owner` owns and that has no other
    /// link, or nothing: anything else a task left there (a hard link to a file elsewhere, a FIFO, a
    /// socket, a link, another account's file) is unlinked, and the shim creates the file afresh as the
    /// account. Nothing is ever chowned: a hard link's inode is the linked file's, wherever it lives.
    static func keepOnlyOwnedFile(_ folder: Int32, _ name: String, owner: (uid: uid_t, gid: gid_t)) throws {
        var info = stat()
        guard fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFREG, info.st_nlink == 1, info.st_uid == owner.uid { return }
        if unlinkat(folder, name, 0) != 0, errno != ENOENT {
            throw UnsafeFolder(path: name, reason: "cannot remove what an earlier execution left (\(String(cString: strerror(errno))))")
        }
    }

    /// Owner first, then mode: fchown clears set-id bits, and the sticky bit of `shared/` must stay.
    static func apply(_ access: Access, to fd: Int32, path: String) throws {
        if let owner = access.owner, fchown(fd, owner.uid, owner.gid) != 0 {
            throw UnsafeFolder(path: path, reason: "cannot change the owner (\(String(cString: strerror(errno))))")
        }
        if fchmod(fd, access.mode) != 0 {
            throw UnsafeFolder(path: path, reason: "cannot change the mode (\(String(cString: strerror(errno))))")
        }
    }

    /// Creates the folders above the last name of `relative` (folder names separated by `/`) beneath
    /// `root`, each with `intermediate` when this call creates it, and returns the descriptor of the
    /// last of them with that last name, for the caller to create (`descend`) or place the leaf
    /// itself. The caller closes the descriptor.
    static func makeParent(of relative: String, beneath root: String, intermediate: Access) throws -> (parent: Int32, leaf: String) {
        let names = relative.split(separator: "/").map(String.init)
        guard let leafName = names.last else { throw UnsafeFolder(path: root + "/" + relative, reason: "not a folder path") }
        var current = try openTrusted(root)
        // Usually every folder above the leaf exists already (a job's tasks share them): one
        // openat2 beneath the root, links refused, instead of a mkdirat + openat + close per level.
        if names.count > 1 {
            let parent = bk_open_beneath(current, names.dropLast().joined(separator: "/"), O_RDONLY | O_DIRECTORY, 0)
            if parent >= 0 {
                close(current)
                return (parent, leafName)
            }
        }
        var path = root
        for name in names.dropLast() {
            path += "/" + name
            let next: Int32
            do {
                next = try descendKeepingExisting(current, name, access: intermediate, path: path)
            } catch {
                close(current)
                throw error
            }
            close(current)
            current = next
        }
        return (current, leafName)
    }

    /// Like `descend`, but a folder that already exists keeps its mode and owner (a job's folder is
    /// shared by every task of the job on the node).
    private static func descendKeepingExisting(_ parent: Int32, _ name: String, access: Access, path: String) throws -> Int32 {
        let created = mkdirat(parent, name, access.mode) == 0
        if !created, errno != EEXIST {
            throw UnsafeFolder(path: path, reason: "cannot create the folder (\(String(cString: strerror(errno))))")
        }
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let cause = errno == ELOOP || errno == ENOTDIR ? "a link or a file is in the way; it is not followed" : String(cString: strerror(errno))
            throw UnsafeFolder(path: path, reason: cause)
        }
        if created {
            do { try apply(access, to: fd, path: path) } catch {
                close(fd)
                throw error
            }
        }
        return fd
    }

    /// The first folder on the way to `path` (the deepest existing part, links resolved) that accounts
    /// other than its owner and group cannot search, or nil when every one can. Task accounts belong to
    /// no group, so only the "other" execute bit counts. Missing folders are not checked: the engine
    /// creates them with mode 0755.
    static func unsearchableFolder(on path: String) -> String? {
        var existing = path
        while !existing.isEmpty, existing != "/", access(existing, F_OK) != 0 {
            existing = Paths.parent(of: existing)
        }
        guard let resolved = realpath(existing.isEmpty ? "." : existing, nil) else { return existing }
        let real = String(cString: resolved)
        free(resolved)
        var prefix = ""
        for component in [""] + real.split(separator: "/").map(String.init) {
            prefix = component.isEmpty ? "/" : (prefix == "/" ? "/" : prefix + "/") + component
            var info = stat()
            guard stat(prefix, &info) == 0 else { return prefix }
            if info.st_mode & S_IXOTH == 0 { return prefix }
        }
        return nil
    }
}
