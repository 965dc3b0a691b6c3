#ifndef BOOKEND_BENEATH_H
#define BOOKEND_BENEATH_H

#include <sys/types.h>

/// Opens `path` (relative, '/'-separated) beneath the directory `rootfd` without ever following a
/// symbolic link or leaving `rootfd`: openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS) where the kernel has it (Linux >= 5.6), else one openat(O_NOFOLLOW) per
/// component. "" and "." open the root itself; any ".." fails with EXDEV (even one that stays inside); a link anywhere fails with
/// ELOOP or ENOTDIR. O_CLOEXEC is always added. Returns the descriptor, or -1 with errno set.
int bk_open_beneath(int rootfd, const char *path, int flags, mode_t mode);

/// Creates a fresh regular file at `path` beneath `rootfd` for writing: missing folders are made
/// (mode `dir_mode`, given to `uid`:`gid` unless uid is (uid_t)-1), whatever entry was at the final
/// name is unlinked (a link is removed, never followed) unless it is a folder, and the file is
/// created with O_EXCL | O_NOFOLLOW, mode 0600. Returns the descriptor, or -1 with errno set.
int bk_create_beneath(int rootfd, const char *path, mode_t dir_mode, uid_t uid, gid_t gid);

/// Removes the entry `name` of the directory `dirfd`: a file, link, FIFO or socket is unlinked; a
/// folder is emptied depth-first through descriptors opened with O_NOFOLLOW | O_DIRECTORY (a link
/// met on the way is removed, never what it points to) and then removed. Returns 0, or -1 with
/// errno set (ENOENT when nothing was there).
int bk_remove_at(int dirfd, const char *name);

/// Moves `oldpath` (relative to `olddirfd`; a path the caller trusts) to the single name `newname`
/// in `newdirfd` only when nothing is at `newname` yet (renameat2 with RENAME_NOREPLACE: EEXIST
/// otherwise, never a replacement). `newname` may not contain '/'. Returns 0, or -1 with errno set
/// (EINVAL or ENOSYS where the file system or kernel lacks the flag: the caller then makes the entry
/// itself).
int bk_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newname);

/// Makes the task folder `name` of `parent` (left by a finished launch) ready for another launch by
/// the account that owns it, in place: entries other than `wd/`, `certs/`, `stdout.txt` and
/// `stderr.txt` are removed; those four must each be of their kind and owned by the folder's owner
/// (files with one link only), `wd/` and `certs/` are emptied, the files truncated, modes set back
/// to 0700 (folders) and 0600 (files) and POSIX ACLs removed, all through descriptors opened with
/// O_NOFOLLOW. Returns 0 with the owner in `owner_uid`/`owner_gid`, or -1 (EPERM when the folder is
/// not a launch's shape) and the caller removes the folder.
int bk_reset_task_tree(int parent, const char *name, uid_t *owner_uid, gid_t *owner_gid);

/// O_PATH, which glibc defines only with _GNU_SOURCE and so Swift does not see: a descriptor that
/// names a file without opening it (no FIFO wait, no device open), enough for fstat.
extern const int bk_o_path;

/// Tests only: 1 makes bk_open_beneath and bk_create_beneath walk component by component even where
/// openat2 exists, so the fallback is exercised on new kernels too.
void bk_beneath_force_fallback(int on);

#endif
