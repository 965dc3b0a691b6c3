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
#include <unistd.h>

const int bk_o_path = O_PATH;

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

// The component-by-component walk: every folder but the last component opened with O_NOFOLLOW.
static int open_walking(int rootfd, const char *path, int flags, mode_t mode) {
    char *copy = copy_path(path);
    if (copy == NULL) return -1;
    int current = dup(rootfd);
    if (current < 0) { free(copy); return -1; }
    char *save = NULL;
    char *component = strtok_r(copy, "/", &save);
    // Skip "." components; an empty path or only dots opens the root itself.
    while (component != NULL && strcmp(component, ".") == 0) component = strtok_r(NULL, "/", &save);
    if (component == NULL) {
        free(copy);
        int fd = openat(current, ".", flags | O_CLOEXEC, mode);
        close_keeping_errno(current);
        return fd;
    }
    for (;;) {
        char *next = strtok_r(NULL, "/", &save);
        while (next != NULL && strcmp(next, ".") == 0) next = strtok_r(NULL, "/", &save);
        if (strcmp(component, "..") == 0) {
            close(current);
            free(copy);
            errno = EXDEV;
            return -1;
        }
        if (next == NULL) {
            int fd = openat(current, component, flags | O_NOFOLLOW | O_CLOEXEC, mode);
            close_keeping_errno(current);
            free(copy);
            return fd;
        }
        int folder = open_folder_at(current, component);
        close_keeping_errno(current);
        if (folder < 0) { free(copy); return -1; }
        current = folder;
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
    char *copy = copy_path(path);
    if (copy == NULL) return -1;
    int current = dup(rootfd);
    if (current < 0) { free(copy); return -1; }
    char *save = NULL;
    char *component = strtok_r(copy, "/", &save);
    while (component != NULL && strcmp(component, ".") == 0) component = strtok_r(NULL, "/", &save);
    if (component == NULL) { close(current); free(copy); errno = EISDIR; return -1; }
    for (;;) {
        char *next = strtok_r(NULL, "/", &save);
        while (next != NULL && strcmp(next, ".") == 0) next = strtok_r(NULL, "/", &save);
        if (strcmp(component, "..") == 0) { close(current); free(copy); errno = EXDEV; return -1; }
        if (next == NULL) break;
        int folder = open_folder_at(current, component);
        if (folder < 0 && errno == ENOENT) {
            if (mkdirat(current, component, dir_mode) != 0 && errno != EEXIST) {
                close_keeping_errno(current); free(copy); return -1;
            }
            folder = open_folder_at(current, component);
            // Given by descriptor, so a link swapped in after mkdirat is never chowned through.
            if (folder >= 0 && uid != (uid_t)-1 && fchown(folder, uid, gid) != 0) {
                close_keeping_errno(folder); folder = -1;
            }
            if (folder >= 0) fchmod(folder, dir_mode);
        }
        close_keeping_errno(current);
        if (folder < 0) { free(copy); return -1; }
        current = folder;
        component = next;
    }
    // Whatever is there goes (a link, a hard link to someone else's file, a FIFO); a folder stays
    // and fails the create. O_EXCL then refuses anything that appeared in between.
    if (unlinkat(current, component, 0) != 0 && errno != ENOENT) {
        close_keeping_errno(current); free(copy); return -1;
    }
    int fd = openat(current, component, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    close_keeping_errno(current);
    free(copy);
    return fd;
}

int bk_remove_at(int parent, const char *name) {
    if (unlinkat(parent, name, 0) == 0) return 0;
    if (errno != EISDIR && errno != EPERM) return -1;
    // A process of the task may still be adding entries: a few passes before giving up.
    for (int attempt = 0; attempt < 8; attempt++) {
        int fd = open_folder_at(parent, name);
        if (fd < 0) {
            // Swapped for a link or a file since: remove that entry itself.
            if (errno == ENOTDIR || errno == ELOOP) return unlinkat(parent, name, 0);
            return -1;
        }
        DIR *folder = fdopendir(fd);
        if (folder == NULL) { close_keeping_errno(fd); return -1; }
        int failure = 0;
        struct dirent *entry;
        while ((entry = readdir(folder)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            if (bk_remove_at(dirfd(folder), entry->d_name) != 0 && errno != ENOENT && failure == 0) failure = errno;
        }
        closedir(folder);
        if (unlinkat(parent, name, AT_REMOVEDIR) == 0) return 0;
        if (errno != ENOTEMPTY && errno != EEXIST) return -1;
        if (failure != 0) { errno = failure; return -1; }
    }
    errno = ENOTEMPTY;
    return -1;
}
