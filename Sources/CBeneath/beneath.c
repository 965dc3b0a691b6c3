// Path resolution beneath a directory descriptor, in C because openat2 is only reachable through
// syscall(2), which is variadic and so cannot be called from Swift.
#define _GNU_SOURCE
#include "beneath.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

const int bk_o_path = O_PATH;

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

int bk_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newname) {
    if (strchr(newname, '/')) { errno = EINVAL; return -1; }
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newname, RENAME_NOREPLACE);
#else
    errno = ENOSYS;
    return -1;
#endif
}

static atomic_int force_fallback = 0;
// Set once openat2 answered ENOSYS (an old kernel, or a seccomp filter that hides it).
static atomic_int openat2_missing = 0;

void bk_beneath_force_fallback(int on) { atomic_store(&force_fallback, on); }

static void close_keeping_errno(int fd) {
    int saved = errno;
    close(fd);
    errno = saved;
}

// Splits `path` into a freshly allocated copy; components are found with strtok_r by the callers.
static char *copy_path(const char *path) {
    char *copy = strdup(path);
    if (copy == NULL) errno = ENOMEM;
    return copy;
}

// Opens the next folder of a walk: never a link (O_NOFOLLOW with O_DIRECTORY fails on one).
static int open_folder_at(int dirfd, const char *name) {
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

// A component-by-component walk of a path from the root: `current` is the folder reached (a
// descriptor the walk owns), `copy` the path cut into components by strtok_r. "." components are
// skipped, so an empty path or one of only dots has no component at all.
typedef struct { char *copy; char *save; int current; } walk;

// The next component that is not ".", or NULL at the end.
static char *walk_next(walk *w) {
    char *next = strtok_r(NULL, "/", &w->save);
    while (next != NULL && strcmp(next, ".") == 0) next = strtok_r(NULL, "/", &w->save);
    return next;
}

// Starts a walk at a copy of `rootfd` and gives its first component (NULL when there is none);
// returns -1 (errno set) when the path cannot be copied or the root descriptor duplicated.
static int walk_start(walk *w, int rootfd, const char *path, char **first) {
    w->save = NULL;
    w->copy = copy_path(path);
    if (w->copy == NULL) return -1;
    w->current = dup(rootfd);
    if (w->current < 0) { free(w->copy); return -1; }
    *first = strtok_r(w->copy, "/", &w->save);
    if (*first != NULL && strcmp(*first, ".") == 0) *first = walk_next(w);
    return 0;
}

// Ends a walk, keeping errno; gives `result` back.
static int walk_end(walk *w, int result) {
    close_keeping_errno(w->current);
    free(w->copy);
    return result;
}

// The component-by-component walk: every folder but the last component opened with O_NOFOLLOW.
static int open_walking(int rootfd, const char *path, int flags, mode_t mode) {
    walk w;
    char *component;
    if (walk_start(&w, rootfd, path, &component) != 0) return -1;
    // An empty path or only dots opens the root itself.
    if (component == NULL) return walk_end(&w, openat(w.current, ".", flags | O_CLOEXEC, mode));
    for (;;) {
        char *next = walk_next(&w);
        if (strcmp(component, "..") == 0) {
            errno = EXDEV;
            return walk_end(&w, -1);
        }
        if (next == NULL) return walk_end(&w, openat(w.current, component, flags | O_NOFOLLOW | O_CLOEXEC, mode));
        int folder = open_folder_at(w.current, component);
        if (folder < 0) return walk_end(&w, -1);
        close(w.current);
        w.current = folder;
        component = next;
    }
}

// Whether `path` has a ".." component. openat2 would allow one that stays beneath the root; both
// ways refuse it, so the rule does not depend on the kernel.
static int climbs(const char *path) {
    for (const char *p = path; *p != '\0'; p++) {
        if ((p == path || p[-1] == '/') && p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == '\0')) return 1;
    }
    return 0;
}

int bk_open_beneath(int rootfd, const char *path, int flags, mode_t mode) {
    int fd = -1;
    if (climbs(path)) { errno = EXDEV; return -1; }
    if (!atomic_load(&force_fallback) && !atomic_load(&openat2_missing)) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = (unsigned long long)(flags | O_CLOEXEC);
        how.mode = (flags & O_CREAT) ? mode : 0;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        fd = (int)syscall(SYS_openat2, rootfd, path[0] == '\0' ? "." : path, &how, sizeof how);
        if (fd < 0 && errno == ENOSYS) atomic_store(&openat2_missing, 1);
        if (fd < 0 && errno != ENOSYS) return -1;
    }
    if (fd < 0) fd = open_walking(rootfd, path, flags, mode);
    if (fd < 0) return -1;
    // O_PATH | O_NOFOLLOW hands back a trailing link itself: refuse it like any other link.
    struct stat st;
    if (fstat(fd, &st) != 0) { close_keeping_errno(fd); return -1; }
    if (S_ISLNK(st.st_mode)) { close(fd); errno = ELOOP; return -1; }
    return fd;
}

int bk_create_beneath(int rootfd, const char *path, mode_t dir_mode, uid_t uid, gid_t gid) {
    walk w;
    char *component;
    if (walk_start(&w, rootfd, path, &component) != 0) return -1;
    if (component == NULL) { errno = EISDIR; return walk_end(&w, -1); }
    for (;;) {
        char *next = walk_next(&w);
        if (strcmp(component, "..") == 0) { errno = EXDEV; return walk_end(&w, -1); }
        if (next == NULL) break;
        int folder = open_folder_at(w.current, component);
        if (folder < 0 && errno == ENOENT) {
            if (mkdirat(w.current, component, dir_mode) != 0 && errno != EEXIST) return walk_end(&w, -1);
            folder = open_folder_at(w.current, component);
            // Given by descriptor, so a link swapped in after mkdirat is never chowned through.
            if (folder >= 0 && uid != (uid_t)-1 && fchown(folder, uid, gid) != 0) {
                close_keeping_errno(folder); folder = -1;
            }
            if (folder >= 0) fchmod(folder, dir_mode);
        }
        if (folder < 0) return walk_end(&w, -1);
        close(w.current);
        w.current = folder;
        component = next;
    }
    // Whatever is there goes (a link, a hard link to someone else's file, a FIFO); a folder stays
    // and fails the create. O_EXCL then refuses anything that appeared in between.
    if (unlinkat(w.current, component, 0) != 0 && errno != ENOENT) return walk_end(&w, -1);
    return walk_end(&w, openat(w.current, component, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
}

// A task can nest folders deeper than the daemon's descriptor limit (and deeper than a thread's
// stack would allow a recursion), so a removal walks down with a list of its own instead of
// recursing, and keeps at most this many folders of the walk open: the ones above are closed and
// found again on the way back up through "..", which must still be the same folder (device and
// inode), or the pass starts over.
#define BK_REMOVE_HELD 32
// Folders one pass may enter: a process of the task that keeps making folders cannot keep the
// removal going for ever.
#define BK_REMOVE_BUDGET (1 << 20)

typedef struct { int fd; dev_t dev; ino_t ino; char *name; } remove_level;

// One pass over the folder `name` of `parent`: everything beneath it, depth first, then itself.
static int remove_folder_pass(int parent, const char *name) {
    int top = open_folder_at(parent, name);
    if (top < 0) {
        // Swapped for a link or a file since: remove that entry itself.
        if (errno == ENOTDIR || errno == ELOOP) return unlinkat(parent, name, 0);
        return -1;
    }
    struct stat info;
    if (fstat(top, &info) != 0) { close_keeping_errno(top); return -1; }
    size_t capacity = 64, depth = 0;
    remove_level *levels = malloc(capacity * sizeof *levels);
    if (levels == NULL) { close(top); errno = ENOMEM; return -1; }
    levels[0] = (remove_level){ top, info.st_dev, info.st_ino, NULL };
    int failure = 0;
    long entered = 0;
    for (;;) {
        remove_level *here = &levels[depth];
        // Everything but folders goes at once; the first folder met is entered.
        int copy = dup(here->fd);
        DIR *folder = copy >= 0 ? fdopendir(copy) : NULL;
        if (folder == NULL) { failure = errno; if (copy >= 0) close(copy); break; }
        // The copy shares its offset with here->fd, and the last listing of this folder (before the
        // walk went down into a child) read ahead to its end: list it from its start again, or the
        // entries read ahead then are never seen and the folder cannot be removed.
        rewinddir(folder);
        char *child = NULL;
        struct dirent *entry;
        while ((entry = readdir(folder)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            if (unlinkat(here->fd, entry->d_name, 0) == 0 || errno == ENOENT) continue;
            if (errno != EISDIR && errno != EPERM) { failure = errno; break; }
            if ((child = strdup(entry->d_name)) == NULL) failure = ENOMEM;
            break;
        }
        closedir(folder);
        if (failure != 0) { free(child); break; }
        if (child != NULL) {
            int fd = open_folder_at(here->fd, child);
            if (fd < 0) {
                int e = errno;
                // Swapped for a link or a file, or gone: that entry itself, then scan again.
                if ((e == ENOTDIR || e == ELOOP) && unlinkat(here->fd, child, 0) != 0 && errno != ENOENT) failure = errno;
                else if (e != ENOTDIR && e != ELOOP && e != ENOENT) failure = e;
                free(child);
                if (failure != 0) break;
                continue;
            }
            if (++entered > BK_REMOVE_BUDGET) { failure = ENOTEMPTY; close(fd); free(child); break; }
            if (fstat(fd, &info) != 0) { failure = errno; close(fd); free(child); break; }
            if (depth + 1 == capacity) {
                remove_level *grown = realloc(levels, 2 * capacity * sizeof *levels);
                if (grown == NULL) { failure = ENOMEM; close(fd); free(child); break; }
                levels = grown;
                capacity *= 2;
            }
            depth++;
            levels[depth] = (remove_level){ fd, info.st_dev, info.st_ino, child };
            if (depth >= BK_REMOVE_HELD) {
                remove_level *far = &levels[depth - BK_REMOVE_HELD];
                if (far->fd >= 0) { close(far->fd); far->fd = -1; }
            }
            continue;
        }
        // The deepest folder is empty: back up one level and remove it there.
        if (depth == 0) break;
        remove_level *up = &levels[depth - 1];
        if (up->fd < 0) {
            int fd = openat(here->fd, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) { failure = errno; break; }
            // Moved elsewhere by the task meanwhile: never remove in a folder not reached from the top.
            if (fstat(fd, &info) != 0 || info.st_dev != up->dev || info.st_ino != up->ino) {
                close(fd); failure = ENOTEMPTY; break;
            }
            up->fd = fd;
        }
        close(here->fd);
        here->fd = -1;
        if (unlinkat(up->fd, here->name, AT_REMOVEDIR) != 0 && errno != ENOENT) { failure = errno; break; }
        free(here->name);
        here->name = NULL;
        depth--;
    }
    for (size_t i = 0; i <= depth; i++) {
        if (levels[i].fd >= 0) close(levels[i].fd);
        free(levels[i].name);
    }
    free(levels);
    if (failure != 0) { errno = failure; return -1; }
    return unlinkat(parent, name, AT_REMOVEDIR);
}

int bk_remove_at(int parent, const char *name) {
    if (unlinkat(parent, name, 0) == 0) return 0;
    if (errno != EISDIR && errno != EPERM) return -1;
    // A process of the task may still be adding entries: a few passes before giving up.
    for (int attempt = 0; attempt < 8; attempt++) {
        if (remove_folder_pass(parent, name) == 0) return 0;
        if (errno == ENOENT) return -1;
        if (errno != ENOTEMPTY && errno != EEXIST) return -1;
    }
    errno = ENOTEMPTY;
    return -1;
}

// What a task folder holds from its launch on (TaskFolderPool.folders and .files).
static const char *const tree_folders[] = { "wd", "certs" };
static const char *const tree_files[] = { "stdout.txt", "stderr.txt" };

// Takes away a POSIX ACL the task may have set (an ACL can grant another account access that the
// mode bits no longer show). A file system without ACLs, or an inode without one, is fine.
static int drop_acls(int fd, int folder) {
    if (fremovexattr(fd, "system.posix_acl_access") != 0 && errno != ENODATA && errno != ENOTSUP && errno != EOPNOTSUPP) return -1;
    if (folder && fremovexattr(fd, "system.posix_acl_default") != 0 && errno != ENODATA && errno != ENOTSUP && errno != EOPNOTSUPP) return -1;
    return 0;
}

// Whether `info` is an inode the tree's owner made: `uid`:`gid`, and for a file one name only (a
// second link would be a name elsewhere that the next task's output would also appear under).
static int owned_as_expected(const struct stat *info, mode_t type, uid_t uid, gid_t gid) {
    if ((info->st_mode & S_IFMT) != type || info->st_uid != uid || info->st_gid != gid) return 0;
    return type != S_IFREG || info->st_nlink == 1;
}

// Removes every entry of the folder `fd` (never following a link).
static int empty_folder(int fd) {
    for (int attempt = 0; attempt < 8; attempt++) {
        int copy = dup(fd);
        DIR *folder = copy >= 0 ? fdopendir(copy) : NULL;
        if (folder == NULL) { if (copy >= 0) close(copy); return -1; }
        rewinddir(folder);
        int removed = 0, failed = 0;
        struct dirent *entry;
        while ((entry = readdir(folder)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            if (bk_remove_at(fd, entry->d_name) != 0 && errno != ENOENT) { failed = 1; break; }
            removed++;
        }
        closedir(folder);
        if (failed) return -1;
        if (removed == 0) return 0;  // a listing that found nothing: empty
    }
    errno = ENOTEMPTY;
    return -1;
}

int bk_reset_task_tree(int parent, const char *name, uid_t *owner_uid, gid_t *owner_gid) {
    int tree = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (tree < 0) return -1;
    struct stat info;
    if (fstat(tree, &info) != 0) { close_keeping_errno(tree); return -1; }
    uid_t uid = info.st_uid;
    gid_t gid = info.st_gid;
    // Anything but the four expected entries goes; each expected one must be what a launch made.
    int copy = dup(tree);
    DIR *listing = copy >= 0 ? fdopendir(copy) : NULL;
    if (listing == NULL) { if (copy >= 0) close(copy); close_keeping_errno(tree); return -1; }
    int found = 0, bad = 0;
    struct dirent *entry;
    while (!bad && (entry = readdir(listing)) != NULL) {
        const char *n = entry->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) continue;
        mode_t type = 0;
        for (int i = 0; i < 2; i++) if (strcmp(n, tree_folders[i]) == 0) type = S_IFDIR;
        for (int i = 0; i < 2; i++) if (strcmp(n, tree_files[i]) == 0) type = S_IFREG;
        if (type == 0) {
            if (bk_remove_at(tree, n) != 0 && errno != ENOENT) bad = 1;
            continue;
        }
        struct stat entry_info;
        if (fstatat(tree, n, &entry_info, AT_SYMLINK_NOFOLLOW) != 0 || !owned_as_expected(&entry_info, type, uid, gid)) bad = 1;
        else found++;
    }
    closedir(listing);
    if (bad || found != 4) { close(tree); errno = EPERM; return -1; }
    // Each inode is opened without following a link and checked again through its descriptor (it
    // may have been swapped since the listing), then emptied and given the modes a launch sets.
    for (int i = 0; i < 2 && !bad; i++) {
        int fd = openat(tree, tree_folders[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) { bad = 1; break; }
        if (fstat(fd, &info) != 0 || !owned_as_expected(&info, S_IFDIR, uid, gid) ||
            empty_folder(fd) != 0 || fchmod(fd, 0700) != 0 || drop_acls(fd, 1) != 0) bad = 1;
        close(fd);
    }
    for (int i = 0; i < 2 && !bad; i++) {
        // O_NONBLOCK: a FIFO swapped in after the listing fails to open instead of waiting.
        int fd = openat(tree, tree_files[i], O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) { bad = 1; break; }
        if (fstat(fd, &info) != 0 || !owned_as_expected(&info, S_IFREG, uid, gid) ||
            ftruncate(fd, 0) != 0 || fchmod(fd, 0600) != 0 || drop_acls(fd, 0) != 0) bad = 1;
        close(fd);
    }
    if (!bad && (fchmod(tree, 0700) != 0 || drop_acls(tree, 1) != 0)) bad = 1;
    close(tree);
    if (bad) { errno = EPERM; return -1; }
    *owner_uid = uid;
    *owner_gid = gid;
    return 0;
}
