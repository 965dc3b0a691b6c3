// spawn.c — see csupervisor.h for the process tree.
//
// Everything that runs in the shim or the grandchild (after fork) is restricted to
// async-signal-safe calls: no malloc, no stdio, no locks. All strings are prepared by
// the parent before fork().
#define _GNU_SOURCE
#include "csupervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define REPORT_FD 3  // where the shim keeps the write end of the engine's report pipe

typedef struct { int32_t stage; int32_t err; } launch_report;

typedef struct {
    char pid_tmp[PATH_MAX], pid_final[PATH_MAX];
    char exit_tmp[PATH_MAX], exit_final[PATH_MAX];
} status_paths;

// With the crash point spawn.after-fork armed (see below), BOOKEND_TEST_SHIM_DELAY_MS makes that shim wait before writing its pid
// file, so the restarted engine reliably finds a forked shim that has not identified itself yet.
static unsigned shim_delay_ms = 0;

const char *bks_stage_name(int stage) {
    switch (stage) {
    case BKS_STAGE_OPEN: return "open";
    case BKS_STAGE_CHDIR: return "chdir";
    case BKS_STAGE_SETUID: return "setuid";
    case BKS_STAGE_EXEC: return "exec";
    case BKS_STAGE_STATUS: return "status";
    case BKS_STAGE_FORK: return "fork";
    case BKS_STAGE_SETSID: return "setsid";
    case BKS_STAGE_TIMEOUT: return "start-timeout";
    case BKS_STAGE_LIMIT: return "limit";
    default: return "unknown";
    }
}

// ---- async-signal-safe helpers -------------------------------------------------------

static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        p += n; len -= (size_t)n;
    }
    return 0;
}

// Reads until `len` bytes or EOF; returns bytes read or -1.
static ssize_t read_full(int fd, void *buf, size_t len) {
    char *p = buf; size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        if (n == 0) break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static void report(int fd, int stage, int err) {
    launch_report r = { stage, err };
    (void)write_all(fd, &r, sizeof r);
}

// Appends decimal `v` at dst; returns number of chars written.
static size_t put_u64(char *dst, uint64_t v) {
    char tmp[24]; size_t n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    for (size_t i = 0; i < n; i++) dst[i] = tmp[n - 1 - i];
    return n;
}

static size_t put_str(char *dst, const char *s) {
    size_t n = 0;
    while (s[n]) { dst[n] = s[n]; n++; }
    return n;
}

// write tmp, rename over final: readers see the whole file or none. With `durable`, the file's data
// is synced before the rename and the directory after it, so it also survives a power cut.
//
// No O_TRUNC: a recycled status folder keeps its `exit.tmp` and `pid.tmp` (StatusFolderPool), and
// writing over their first bytes, then cutting whatever is left past the new end, keeps the block
// they already have. Truncating to zero freed it, and the sync then allocated a new one (extent and
// bitmap updates) for every execution. Only `exit` and `pid` are read, never a `.tmp` mid-write.
static int write_file_atomic(const char *tmp, const char *final, const char *dir,
                             const char *data, size_t len, int durable) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    if (write_all(fd, data, len) < 0 || ftruncate(fd, (off_t)len) < 0 || (durable && fdatasync(fd) < 0)) {
        int e = errno; close(fd); return e;
    }
    if (close(fd) < 0 && errno != EINTR) return errno;
    if (rename(tmp, final) < 0) return errno;
    if (durable) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) { (void)fsync(dfd); close(dfd); }
    }
    return 0;
}

// Field 22 (starttime, clock ticks since boot) of /proc/self/stat; 0 if unreadable.
static uint64_t self_starttime(void) {
    char buf[2048];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read_full(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    // comm (field 2) may contain spaces and ')': fields resume after the LAST ')'.
    ssize_t i = n - 1;
    while (i >= 0 && buf[i] != ')') i--;
    if (i < 0) return 0;
    int field = 2; uint64_t v = 0;
    for (i = i + 1; i < n; i++) {
        if (buf[i] == ' ') { if (++field > 22) break; continue; }
        if (field == 22 && buf[i] >= '0' && buf[i] <= '9') v = v * 10 + (uint64_t)(buf[i] - '0');
    }
    return v;
}

static void close_from(int lowfd) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0) return;
#endif
    struct rlimit rl; long max = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 65536)
        max = (long)rl.rlim_cur;
    for (long fd = lowfd; fd < max; fd++) (void)close((int)fd);
}

// Open `path` and place it exactly on fd `target` (without CLOEXEC). Files it creates are 0600: a
// task's output is for its own account (and the engine), never for other tasks.
static int open_onto(const char *path, int flags, int target) {
    int fd = open(path, flags, 0600);
    if (fd < 0) return -1;
    if (fd != target) {
        if (dup2(fd, target) < 0) { int e = errno; close(fd); errno = e; return -1; }
        close(fd);
    }
    return 0;
}

// Opens a task's output file (as the task's account) onto fd `target`: a regular file or nothing.
// The task owns the folder and may have put a FIFO there in place of stdout.txt (an earlier
// attempt, a leftover process): a blocking open of it would hang this grandchild before its exec,
// and with it the shim's vfork and the engine that waits for the exec report. O_NONBLOCK makes
// such an open return at once (ENXIO without a reader), the type check refuses whatever opened,
// and the flag is cleared again for the command.
static int open_output_onto(const char *path, int target) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    struct stat info;
    int flags;
    if (fstat(fd, &info) < 0 || (flags = fcntl(fd, F_GETFL)) < 0) { int e = errno; close(fd); errno = e; return -1; }
    if (!S_ISREG(info.st_mode)) { close(fd); errno = EINVAL; return -1; }
    if (fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 || dup2(fd, target) < 0) { int e = errno; close(fd); errno = e; return -1; }
    close(fd);
    return 0;
}

// glibc keeps the signals between 32 and SIGRTMIN for itself (thread cancellation, the set*id
// broadcast) and its sigaction() refuses them. A program that embeds Bookend can have them ignored
// (the Swift test runner does), and SIG_IGN survives fork and exec: a command would start with
// signals 32 and 33 ignored. Back to their default through the system call itself.
static void reset_reserved_signals(void) {
#if defined(SYS_rt_sigaction) && (defined(__x86_64__) || defined(__aarch64__))
    struct { void (*handler)(int); unsigned long flags; void (*restorer)(void); unsigned long mask; } k = { SIG_DFL, 0, NULL, 0 };
    for (int sig = 32; sig < SIGRTMIN; sig++) (void)syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof k.mask);
#endif
}

static void set_all_signals(void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++) (void)sigaction(sig, &sa, NULL);  // KILL/STOP fail: fine
    if (handler == SIG_DFL) reset_reserved_signals();
}

static void set_signal(int sig, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(sig, &sa, NULL);
}

// What the shim ignores: it outlives polite termination requests so it can record how the user
// command reacted to them (SIGKILL of the group still takes it down), and a closed report pipe.
// Everything else stays at its default in the shim, so these are all the grandchild has to undo.
static const int shim_ignored_signals[] = { SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGPIPE };
#define SHIM_IGNORED_COUNT (sizeof shim_ignored_signals / sizeof shim_ignored_signals[0])

// ---- grandchild: becomes the user command --------------------------------------------

static void __attribute__((noreturn)) grandchild_main(const bks_spawn_request *req, int efd) {
    (void)close(REPORT_FD);  // only the shim talks to the engine
    if (req->set_ids && req->process_limit) {
        // Lowered while still root, soft and hard, so the account cannot raise it again. The kernel
        // counts the account's processes and threads against it at every fork (and at the exec
        // below, should the account already hold more): this caps the account, not this process.
        struct rlimit cap = { req->process_limit, req->process_limit };
        if (setrlimit(RLIMIT_NPROC, &cap) < 0) { report(efd, BKS_STAGE_LIMIT, errno); _exit(127); }
    }
    if (req->set_ids) {
        // Raw syscalls: we are single-threaded here, and glibc's wrappers would try to
        // broadcast the id change to threads that only existed in the engine. No supplementary
        // groups: a task account shares nothing with any other account.
        if (syscall(SYS_setgroups, 0, NULL) < 0 ||
            syscall(SYS_setgid, req->gid) < 0 ||
            syscall(SYS_setuid, req->uid) < 0) {
            report(efd, BKS_STAGE_SETUID, errno); _exit(127);
        }
    }
    // Only now, as the account the command runs as, are its output files opened and its folder
    // entered: the task owns that folder, and root must not open whatever it put there. O_NOFOLLOW
    // refuses a link planted in place of stdout.txt, `open_output_onto` a FIFO or anything else that
    // is not a regular file.
    if (open_onto("/dev/null", O_RDONLY, 0) < 0 ||
        open_output_onto(req->stdout_path, 1) < 0 ||
        open_output_onto(req->stderr_path, 2) < 0) {
        report(efd, BKS_STAGE_OPEN, errno); _exit(127);
    }
    if (chdir(req->working_dir) < 0) { report(efd, BKS_STAGE_CHDIR, errno); _exit(127); }
    // SIG_IGN survives exec; the shim changed nothing but these (see shim_prelude), so restoring them
    // is all it takes, not a sigaction for every signal number.
    for (size_t i = 0; i < SHIM_IGNORED_COUNT; i++) set_signal(shim_ignored_signals[i], SIG_DFL);
    sigset_t empty; sigemptyset(&empty);
    (void)sigprocmask(SIG_SETMASK, &empty, NULL);
    execve(req->path, req->argv, req->envp);
    report(efd, BKS_STAGE_EXEC, errno);
    _exit(127);
}

// ---- shim: session leader, records identity and exit status -----------------------------

// The process that will record this shim's outcome: its parent when it started (the engine, which
// the helper's CLONE_PARENT makes every shim's parent), or 0 when the exit file must always be
// synced (the request's exit_always_durable). Set in shim_run; the shim's own copy.
static pid_t shim_recorder = 0;

// Whether the exit file must reach the disk before the shim exits. While the engine that started the
// shim is still its parent, it reaps the shim within a pass and commits the outcome to the database,
// which is durable itself: two fsyncs of a file that is read once and emptied milliseconds later
// would only hold the slot (they were a fifth of the time per task on a journaled disk). Once that
// engine is gone (the shim was reparented), nobody may record the outcome for a while, so the file is
// the only copy and is synced. A power cut between the command's exit and the engine's commit then
// loses that outcome, and the execution is lost, as one still running at that moment would be.
// An engine whose commits are not synced themselves (synchronous=NORMAL) asks for the fsync always.
static int exit_must_be_durable(void) {
    return shim_recorder <= 1 || getppid() != shim_recorder;
}

// Returns 0, or the errno of the write that failed (the outcome is then not on disk).
static int write_exit_line(const bks_spawn_request *req, const status_paths *p,
                           const char *kind, const char *word, uint64_t num) {
    char line[96]; size_t n = 0;
    n += put_str(line + n, kind); line[n++] = ' ';
    if (word) { n += put_str(line + n, word); line[n++] = ' '; }
    n += put_u64(line + n, num); line[n++] = '\n';
    int e = write_file_atomic(p->exit_tmp, p->exit_final, req->status_dir, line, n, exit_must_be_durable());
    if (e) (void)unlink(p->exit_tmp);  // a partial tmp file only takes space a retry could use
    return e;
}

// The shim's own exit status: 0 once `exit` is written. When it could not be written (full disk,
// folder made read-only), the errno of that write instead, so the engine that reaps its shim can
// record the fault rather than mistake the execution for a lost one and run it again.
static void __attribute__((noreturn)) shim_exit(int write_error) {
    if (write_error == 0) _exit(0);
    _exit(write_error > 0 && write_error < BKS_SHIM_EXIT_LIMIT ? write_error : EIO);
}

// The shim's identity line, `<pid> <starttime>\n`, written to <status_dir>/pid.
//
// Not fsynced: the pid file only names processes of this boot, and a crash of the engine (not of
// the machine) leaves the page cache intact, so the next engine reads it all the same. Skipping
// the two fsyncs takes milliseconds off every launch, which the engine waits for.
static int write_identity(const bks_spawn_request *req, const status_paths *p, uint64_t starttime) {
    char line[64]; size_t n = 0;
    n += put_u64(line + n, (uint64_t)getpid()); line[n++] = ' ';
    n += put_u64(line + n, starttime); line[n++] = '\n';
    return write_file_atomic(p->pid_tmp, p->pid_final, req->status_dir, line, n, 0);
}

// What every shim does before it knows its request, so that a spare shim (see spare_main) has it
// done ahead: its signal state, its descriptors (0-2 on /dev/null, nothing else but `keep_fd`), its
// own session. Returns 0, or the stage that failed with errno set.
static int shim_prelude(int defaults_inherited, int keep_fd) {
    // Fresh signal state: engine handlers must never run here. The parent blocked all signals around
    // the fork, so nothing was delivered before this point. A shim forked by the spawn helper starts
    // from the helper's state, every signal at its default already (see bks_helper_entry), and skips
    // the sigaction per signal number.
    if (!defaults_inherited) set_all_signals(SIG_DFL);
    for (size_t i = 0; i < SHIM_IGNORED_COUNT; i++) set_signal(shim_ignored_signals[i], SIG_IGN);
    sigset_t empty; sigemptyset(&empty);
    (void)sigprocmask(SIG_SETMASK, &empty, NULL);
    close_from(keep_fd + 1);
    if (open_onto("/dev/null", O_RDWR, 0) < 0 || dup2(0, 1) < 0 || dup2(0, 2) < 0) return BKS_STAGE_OPEN;
    if (setsid() < 0) return BKS_STAGE_SETSID;
    return 0;
}

// The shim once it has its request and its report pipe on REPORT_FD: starts the command, writes its
// identity, waits, writes the exit line. `started_fd` (or -1) is closed once the command has exec'd
// (or failed to): a spare's socket, whose end tells the helper it may fork the next spare.
static void __attribute__((noreturn)) shim_run(const bks_spawn_request *req, const status_paths *p, uint64_t starttime,
                                               int started_fd) {
    shim_recorder = req->exit_always_durable ? 0 : getppid();
    unsigned delay = req->test_delay_ms ? req->test_delay_ms : shim_delay_ms;
    if (delay) {
        struct timespec ts = { delay / 1000, (long)(delay % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
    }

    // Private pipe so the shim itself learns whether the grandchild reached execve.
    int gp[2];
    pid_t gc = -1;
    int e;
    // vfork: the shim is a copy of the engine's whole address space, and a fork would copy its page
    // tables a second time only for the grandchild to exec. The grandchild runs async-signal-safe
    // code on its own frames below ours, never returns, and ends in execve or _exit; the shim is
    // suspended until then, as it would wait for the exec report anyway.
    if (pipe2(gp, O_CLOEXEC) < 0 || (gc = vfork()) < 0) {
        e = errno;
        if (started_fd >= 0) (void)close(started_fd);
        (void)write_identity(req, p, starttime);
        report(REPORT_FD, BKS_STAGE_FORK, e);
        shim_exit(write_exit_line(req, p, "launch", bks_stage_name(BKS_STAGE_FORK), (uint64_t)e));
    }
    if (gc == 0) { (void)close(gp[0]); grandchild_main(req, gp[1]); }
    if (started_fd >= 0) (void)close(started_fd);
    (void)close(gp[1]);
    launch_report r = { 0, 0 };
    ssize_t got = read_full(gp[0], &r, sizeof r);  // EOF without data == exec succeeded
    (void)close(gp[0]);
    int failed = (got == (ssize_t)sizeof r);

    // The identity is written while the command's program loads, not before the vfork: it is off the
    // path to the command's start. The engine reads it only once this shim closes its report pipe
    // (below), and an engine restarted in between waits for it as it waits for any shim that exists
    // and has not identified itself yet (Engine.reconcile). A shim that cannot write it must not leave
    // a command running that nobody can find: it kills it, and reports the launch as failed.
    e = write_identity(req, p, starttime);
    if (e) {
        if (!failed) (void)kill(gc, SIGKILL);
        report(REPORT_FD, BKS_STAGE_STATUS, e);
        (void)close(REPORT_FD);
        while (waitpid(gc, NULL, 0) < 0 && errno == EINTR) {}
        _exit(127);
    }
    if (failed) report(REPORT_FD, r.stage, r.err);
    (void)close(REPORT_FD);  // engine's read() sees EOF now

    int status = 0;
    while (waitpid(gc, &status, 0) < 0) {
        if (errno != EINTR) { status = 255 << 8; break; }
    }
    if (failed)
        shim_exit(write_exit_line(req, p, "launch", bks_stage_name(r.stage), (uint64_t)(uint32_t)r.err));
    else if (WIFSIGNALED(status))
        shim_exit(write_exit_line(req, p, "signal", NULL, (uint64_t)WTERMSIG(status)));
    else
        shim_exit(write_exit_line(req, p, "exit", NULL, (uint64_t)WEXITSTATUS(status)));
}

// A shim forked for one request, by the engine itself or by the helper when it had no spare.
static void __attribute__((noreturn)) shim_main(const bks_spawn_request *req, const status_paths *p,
                                                int pipe_r, int pipe_w, int defaults_inherited) {
    if (pipe_r >= 0) (void)close(pipe_r);
    if (pipe_w != REPORT_FD) {
        if (dup3(pipe_w, REPORT_FD, O_CLOEXEC) < 0) _exit(127);
        (void)close(pipe_w);
    }
    int stage = shim_prelude(defaults_inherited, REPORT_FD);
    if (stage) { report(REPORT_FD, stage, errno); _exit(127); }
    shim_run(req, p, self_starttime(), -1);
}

// ---- parent (engine side) -------------------------------------------------------------

static int make_path(char *dst, const char *dir, const char *name) {
    int n = snprintf(dst, PATH_MAX, "%s/%s", dir, name);
    return (n < 0 || n >= PATH_MAX) ? -1 : 0;
}

// Crash point `spawn.after-fork` (see Bookend's CrashPoint): with BOOKEND_CRASH_AT=spawn.after-fork
// the engine dies by SIGKILL right after fork() on the n-th spawn (BOOKEND_CRASH_AFTER, default 1),
// before the shim has necessarily written its pid file: the window reconciliation must cover.
static int crash_after_fork_due(void) {
    static int hits = 0;
    const char *target = getenv("BOOKEND_CRASH_AT");
    if (!target || strcmp(target, "spawn.after-fork") != 0) return 0;
    const char *after = getenv("BOOKEND_CRASH_AFTER");
    int n = after ? atoi(after) : 1;
    if (__atomic_add_fetch(&hits, 1, __ATOMIC_SEQ_CST) < (n > 0 ? n : 1)) return 0;
    const char *delay = getenv("BOOKEND_TEST_SHIM_DELAY_MS");
    shim_delay_ms = delay ? (unsigned)atoi(delay) : 0;
    return 1;
}

// ---- spawn helper ------------------------------------------------------------------------
//
// Forking the engine copies its page tables (tens of MB of mappings: copy_page_range dominated the
// engine's profile). So shims are forked by a helper instead: the program's own executable
// (/proc/self/exe) started once per process with BOOKEND_SPAWN_HELPER set, which a constructor
// below catches before any Swift code runs. Its address space is little more than the loaded
// libraries, so a fork of it is cheap. It forks each shim with CLONE_PARENT: the shim is the
// engine's child exactly as before (the engine reaps it, reads its exit code, sees it as a zombie),
// and the helper keeps no state about it. Library users need no second binary: the helper is
// whatever program embeds Bookend. When the helper cannot be started, the engine forks shims itself.
//
// Protocol over a socketpair (stream): the engine sends a helper_request header, then its strings
// (path, working_dir, stdout, stderr, status_dir, argv..., envp..., each NUL-terminated), with the
// write end of the shim's report pipe attached (SCM_RIGHTS) to the first byte; the helper answers
// with a helper_message of kind HELPER_REPLY. One request at a time (a mutex on the engine side).
// Unasked, the helper also sends HELPER_SPARE messages, each with a spare shim's socket attached:
// the engine sends its next request straight to that spare (see "spare shims" below).

#define HELPER_ENV "BOOKEND_SPAWN_HELPER"
#define HELPER_ARGV0 "bookend-spawn-helper"
#define HELPER_FD 3
#define HELPER_MAGIC 0x426b5348u  // "BkSH"
#define HELPER_MAX_PAYLOAD (64u << 20)

typedef struct {
    uint32_t magic, payload_len;
    int32_t set_ids; uint32_t uid, gid;
    int32_t exit_always_durable;
    uint32_t shim_delay_ms;
    uint32_t process_limit;
    uint32_t argc, envc;
} helper_request;

enum { HELPER_REPLY = 1, HELPER_SPARE = 2 };
// HELPER_REPLY: the answer to a request (the shim's pid, or -1 and err). HELPER_SPARE: a spare shim
// (its pid) whose socket is attached, now the engine's to use.
typedef struct { int32_t kind; int32_t pid; int32_t err; } helper_message;

static int read_exact(int fd, void *buf, size_t len) {
    return read_full(fd, buf, len) == (ssize_t)len ? 0 : -1;
}

// Sends `len` bytes of `buf` on `sock` with `fd` attached (SCM_RIGHTS) to the first byte: a request,
// from the engine to its helper or to a spare shim, or a spare's socket from the helper to the
// engine. 0, or -1 when the peer is gone.
static int send_with_fd(int sock, const void *buf, size_t len, int fd) {
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct iovec iov = { (void *)buf, len };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov; msg.msg_iovlen = 1;
    msg.msg_control = control; msg.msg_controllen = sizeof control;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n;
    do { n = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    if (n <= 0) return -1;
    const char *rest = (const char *)buf + n;
    size_t left = len - (size_t)n;
    while (left > 0) {
        do { n = send(sock, rest, left, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
        if (n <= 0) return -1;
        rest += n; left -= (size_t)n;
    }
    return 0;
}


// One request as read from a socket: its header, its strings (owned), the report pipe's write end.
typedef struct {
    helper_request h;
    char *message;   // the request as it came: header, then strings
    char *payload;   // its strings, within `message`
    char **vectors;
    int report_fd;
    bks_spawn_request req;
    status_paths paths;
    int paths_ok;
} received_request;

static void received_free(received_request *q) {
    if (q->report_fd >= 0) (void)close(q->report_fd);
    free(q->message); free(q->vectors);
    q->report_fd = -1; q->message = NULL; q->payload = NULL; q->vectors = NULL;
}

// Reads one request from `sock` (the helper's from the engine, or a spare shim's). Returns 1 on a
// clean end of the stream before a request, 0 with *q filled, -1 when the request is malformed.
static int receive_request(int sock, received_request *q) {
    memset(q, 0, sizeof *q);
    q->report_fd = -1;
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { &q->h, sizeof q->h };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov; msg.msg_iovlen = 1;
    msg.msg_control = control; msg.msg_controllen = sizeof control;
    ssize_t n;
    do { n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n == 0) return 1;
    if (n < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(&q->report_fd, CMSG_DATA(c), sizeof q->report_fd);
    helper_request *h = &q->h;
    if ((size_t)n < sizeof *h && read_exact(sock, (char *)h + n, sizeof *h - (size_t)n) < 0) return -1;
    if (h->magic != HELPER_MAGIC || h->payload_len > HELPER_MAX_PAYLOAD || q->report_fd < 0) return -1;
    q->message = malloc(sizeof *h + h->payload_len + 1);
    q->vectors = malloc(((size_t)h->argc + h->envc + 2) * sizeof(char *));
    if (!q->message || !q->vectors) return -1;
    memcpy(q->message, h, sizeof *h);
    q->payload = q->message + sizeof *h;
    if (read_exact(sock, q->payload, h->payload_len) < 0) return -1;
    q->payload[h->payload_len] = 0;

    // Split the strings.
    const char *fields[5];
    size_t at = 0, want = 5 + (size_t)h->argc + h->envc;
    for (size_t i = 0; i < want; i++) {
        if (at >= h->payload_len) return -1;
        const char *s = q->payload + at;
        at += strlen(s) + 1;
        if (i < 5) fields[i] = s;
        else if (i < 5 + h->argc) q->vectors[i - 5] = (char *)s;
        else q->vectors[i - 5 + 1] = (char *)s;
    }
    q->vectors[h->argc] = NULL;
    q->vectors[h->argc + 1 + h->envc] = NULL;
    bks_spawn_request *req = &q->req;
    req->path = fields[0]; req->working_dir = fields[1]; req->stdout_path = fields[2];
    req->stderr_path = fields[3]; req->status_dir = fields[4];
    req->argv = q->vectors; req->envp = q->vectors + h->argc + 1;
    req->set_ids = h->set_ids; req->uid = h->uid; req->gid = h->gid;
    req->exit_always_durable = h->exit_always_durable;
    req->process_limit = h->process_limit;
    status_paths *p = &q->paths;
    q->paths_ok = !(make_path(p->pid_tmp, req->status_dir, "pid.tmp") || make_path(p->pid_final, req->status_dir, "pid") ||
        make_path(p->exit_tmp, req->status_dir, "exit.tmp") || make_path(p->exit_final, req->status_dir, "exit"));
    return 0;
}

// ---- spare shims ----------------------------------------------------------------------------
//
// Why: on the path from a launch request to the command's exec, the helper's fork of the shim and the
// shim's own set-up (signals, descriptors, session, reading its start time) came before anything the
// command needed. So the helper keeps one shim forked ahead, set up and blocked on a socket of its
// own, and hands that socket to the engine (a HELPER_SPARE message): the engine sends its next
// request straight to the spare, which goes straight to the vfork. Sending it through the helper
// instead cost two more wake-ups and a copy of the request on the way to every command. The next
// spare is forked once that one's command has started (see helper_serve).
//
// A spare is a shim in every other respect: forked with CLONE_PARENT (the engine's child), in its
// own session, with the same identity (pid and start time) it will write to its pid file. Until it
// has a request it holds no status folder and its process name is BKS_SPARE_SHIM_NAME, which lets
// an engine looking for shims that have not identified themselves yet leave its own idle spare out;
// it takes back the helper's name before it reads anything a request holds. When both the helper
// and the engine are gone, the spare's socket reaches its end and it exits without starting
// anything.
//
// Once announced, a spare is the engine's alone: the helper never hands it a request itself, so a
// request the engine sends it can never meet one already running there.

#define SPARE_FD 4  // where a spare keeps its end of its socket (the engine sends its request there)

static void __attribute__((noreturn)) spare_main(int sock) {
    // Close-on-exec: the command must not hold it (see shim_run's started_fd).
    if (sock != SPARE_FD) {
        if (dup3(sock, SPARE_FD, O_CLOEXEC) < 0) _exit(127);
        (void)close(sock);
    }
    (void)close(HELPER_FD);  // the engine's socket stays the helper's alone
    if (shim_prelude(1, SPARE_FD)) _exit(127);
    uint64_t starttime = self_starttime();
    char name[17] = { 0 };
    (void)prctl(PR_GET_NAME, name, 0, 0, 0);
    (void)prctl(PR_SET_NAME, BKS_SPARE_SHIM_NAME, 0, 0, 0);
    // Blocks until a request or the helper's end. As soon as data is there the spare is a shim in
    // flight, so it takes back its name first (MSG_PEEK waits without consuming anything).
    char peek;
    ssize_t waited;
    do { waited = recv(SPARE_FD, &peek, 1, MSG_PEEK); } while (waited < 0 && errno == EINTR);
    (void)prctl(PR_SET_NAME, name, 0, 0, 0);
    if (waited <= 0) _exit(0);
    received_request q;
    int rc = receive_request(SPARE_FD, &q);
    // No request (the helper is gone) or a garbled one: nothing was started, and the engine learns
    // of it from its report pipe reaching its end with no pid file (as for a shim killed early).
    if (rc != 0 || !q.paths_ok) _exit(rc == 1 ? 0 : 127);
    if (q.report_fd != REPORT_FD) {
        if (dup3(q.report_fd, REPORT_FD, O_CLOEXEC) < 0) _exit(127);
        (void)close(q.report_fd);
    }
    shim_delay_ms = q.h.shim_delay_ms;
    shim_run(&q.req, &q.paths, starttime, SPARE_FD);
}

// Helper side: the spare waiting for a request, if any. The helper keeps its end of the spare's
// socket only to learn, from its end, that the spare's command has started (or that it died).
static pid_t spare_pid = -1;
static int spare_sock = -1;

static void spare_forget(void) {
    if (spare_sock >= 0) (void)close(spare_sock);
    spare_sock = -1; spare_pid = -1;
}

// A plain fork of this small process whose child has the engine for its parent (CLONE_PARENT), with
// every signal blocked around it: nothing is delivered to the child before its shim_prelude sets its
// own signal state. The child returns 0 with the signals still blocked; the helper gets them back,
// and errno as the clone left it.
static long clone_for_engine(void) {
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    long pid = syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), 0, NULL, NULL, 0);
    if (pid != 0) {
        int e = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        errno = e;
    }
    return pid;
}

// Forks a spare when there is none and hands its socket to the engine on `engine`. Without one,
// requests are served by a fork per request. An engine that cannot be told is gone: so is the helper.
static void spare_refill(int engine) {
    if (spare_pid > 0) return;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return;
    long pid = clone_for_engine();
    if (pid == 0) { (void)close(sv[0]); spare_main(sv[1]); }
    (void)close(sv[1]);
    if (pid < 0) { (void)close(sv[0]); return; }
    spare_pid = (pid_t)pid; spare_sock = sv[0];
    helper_message m = { HELPER_SPARE, (int32_t)pid, 0 };
    if (send_with_fd(engine, &m, sizeof m, spare_sock) < 0) _exit(0);
}

// Helper side: serves requests until the engine's end of the socket closes (the engine exited or
// died; shims already started are not affected), then exits.
//
// The next spare is forked only once the last one has started its command (its socket reaches its
// end), not as soon as it is handed a request: on a machine with few cores the fork would otherwise
// run before the spare it was meant to spare, on the same core. A request that comes in the
// meantime (the engine has no spare then) is served by a fork of its own, as without spares.
static void __attribute__((noreturn)) helper_serve(int sock) {
    for (;;) {
        spare_refill(sock);
        struct pollfd fds[2] = { { sock, POLLIN, 0 }, { spare_sock, POLLIN, 0 } };
        int n;
        do { n = poll(fds, spare_sock >= 0 ? 2 : 1, -1); } while (n < 0 && errno == EINTR);
        if (n < 0) _exit(1);
        // The spare never writes: any event on its socket is its end.
        if (spare_sock >= 0 && fds[1].revents) spare_forget();
        if (!fds[0].revents) continue;
        received_request q;
        int rc = receive_request(sock, &q);
        if (rc == 1) _exit(0);
        // A malformed request ends the helper (the engine then forks shims itself).
        if (rc < 0) _exit(1);
        helper_message r = { HELPER_REPLY, -1, 0 };
        if (!q.paths_ok) {
            r.err = ENAMETOOLONG;
        } else {
            shim_delay_ms = q.h.shim_delay_ms;
            long pid = clone_for_engine();
            if (pid == 0) shim_main(&q.req, &q.paths, -1, q.report_fd, 1);
            r.pid = (int32_t)pid;
            r.err = pid < 0 ? errno : 0;
        }
        received_free(&q);
        if (write_all(sock, &r, sizeof r) < 0) _exit(0);
    }
}

// ---- the helper sheds the libraries it never calls -------------------------------------------
//
// Why: the helper is the whole program re-executed, so the dynamic loader mapped every library the
// program needs (the Swift runtime, Foundation, ICU, TLS, curl's dependencies: some 55 objects, five
// mappings each, their relocated data private to this process). Every shim fork copies those
// mappings and their page tables (`dup_mmap`, `copy_page_range`, `anon_vma_fork` were 40 % of the
// helper's CPU in the throughput profile) and every shim exit tears them down again. The helper's
// own code (helper_serve, shim_main, grandchild_main) calls only the C library, so it unmaps every
// other shared object before serving.
//
// What makes that safe:
// - the helper is started with LD_BIND_NOW=1 (see helper_start), so every symbol the program and the
//   C library use was resolved at load time: no lazy binding will later walk the unmapped objects'
//   symbol tables;
// - signal handlers a library installed are reset first (a handler in an unmapped object would
//   fault), and the helper and its shims leave with _exit (no atexit or destructor runs);
// - an object is kept whenever one of the C library functions used here resolves into it (were one of
//   them interposed by a library) or it is the main program, the C library, the loader or the vDSO;
// - nothing in the helper asks the loader about objects afterwards (no dlsym, no dl_iterate_phdr).
// When anything looks unexpected (BIND_NOW not in effect, too many objects), nothing is unmapped: the
// helper only stays larger.

#define SHED_MAX 256
typedef struct { uintptr_t start, end; } shed_range;
typedef struct { shed_range ranges[SHED_MAX]; int count; int overflow; } shed_plan;

// The C library functions the helper and its shims call through the program's symbol table.
static const void *const shed_keep_functions[] = {
    (const void *)&recvmsg, (const void *)&malloc, (const void *)&free, (const void *)&read,
    (const void *)&write, (const void *)&open, (const void *)&close, (const void *)&rename,
    (const void *)&fsync, (const void *)&fdatasync, (const void *)&ftruncate, (const void *)&vfork, (const void *)&waitpid, (const void *)&execve,
    (const void *)&syscall, (const void *)&sigaction, (const void *)&sigprocmask, (const void *)&setsid,
    (const void *)&dup2, (const void *)&dup3, (const void *)&pipe2, (const void *)&snprintf,
    (const void *)&strlen, (const void *)&memcpy, (const void *)&memset, (const void *)&_exit,
    (const void *)&sigemptyset, (const void *)&getpid, (const void *)&chdir, (const void *)&unlink,
    (const void *)&nanosleep, (const void *)&fstat, (const void *)&fcntl, (const void *)&getrlimit, (const void *)&setrlimit, (const void *)&munmap,
    (const void *)&sendmsg, (const void *)&send, (const void *)&socketpair, (const void *)&kill, (const void *)&poll, (const void *)&prctl, (const void *)&recv,
};

static int shed_name_kept(const char *name) {
    if (!name || !*name) return 1;  // the main program
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    return strncmp(base, "libc.so", 7) == 0 || strncmp(base, "ld-linux", 8) == 0 || strncmp(base, "ld64.so", 7) == 0 ||
        strncmp(base, "linux-vdso", 10) == 0 || strncmp(base, "linux-gate", 10) == 0;
}

static int shed_collect(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    shed_plan *plan = data;
    if (shed_name_kept(info->dlpi_name)) return 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_memsz;
        if (start < lo) lo = start;
        if (end > hi) hi = end;
    }
    if (lo >= hi) return 0;
    for (size_t i = 0; i < sizeof shed_keep_functions / sizeof shed_keep_functions[0]; i++) {
        uintptr_t at = (uintptr_t)shed_keep_functions[i];
        if (at >= lo && at < hi) return 0;
    }
    if (plan->count == SHED_MAX) { plan->overflow = 1; return 1; }
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t mask = (uintptr_t)(page > 0 ? page : 4096) - 1;
    plan->ranges[plan->count].start = lo & ~mask;
    plan->ranges[plan->count].end = (hi + mask) & ~mask;
    plan->count++;
    return 0;
}

static void helper_shed_libraries(void) {
    const char *now = getenv("LD_BIND_NOW");
    if (!now || !*now) return;
    static shed_plan plan;
    plan.count = 0; plan.overflow = 0;
    (void)dl_iterate_phdr(shed_collect, &plan);
    if (plan.overflow) return;
    for (int i = 0; i < plan.count; i++) (void)munmap((void *)plan.ranges[i].start, plan.ranges[i].end - plan.ranges[i].start);
}

// Runs before main (and before any Swift code) in every program that links Bookend; it only acts in
// the helper started below, where it never returns.
__attribute__((constructor)) static void bks_helper_entry(int argc, char **argv, char **envp) {
    (void)envp;
    const char *mark = getenv(HELPER_ENV);
    if (!mark || strcmp(mark, "1") != 0 || argc < 1 || !argv[0] || strcmp(argv[0], HELPER_ARGV0) != 0) return;
    struct stat st;
    if (fstat(HELPER_FD, &st) < 0 || !S_ISSOCK(st.st_mode)) return;
    close_from(HELPER_FD + 1);
    // Every signal at its default, whatever another library's constructor installed: a handler in an
    // object unmapped below would fault, and the shims forked from here inherit this state as is.
    set_all_signals(SIG_DFL);
    helper_shed_libraries();
    set_signal(SIGPIPE, SIG_IGN);
    // Ready first: the engine reads this answer before any spare is announced.
    helper_message ready = { HELPER_REPLY, 0, 0 };
    if (write_all(HELPER_FD, &ready, sizeof ready) < 0) _exit(1);
    helper_serve(HELPER_FD);
}

static pthread_mutex_t helper_lock = PTHREAD_MUTEX_INITIALIZER;
static int helper_sock = -1;
static pid_t helper_pid = -1;
static pid_t helper_owner = -1;  // the process that started it (its shims' parent)
static int helper_disabled = 0;  // it could not be started: the engine forks shims itself
// The spare shim the helper last announced, not yet sent a request: its socket and pid, and the
// process it was announced to (a forked child of that process must not use it: not its child).
static int spare_fd = -1;
static pid_t spare_announced_pid = -1;
static pid_t spare_owner = -1;

extern char **environ;

// The helper is this program re-executed, so the constructor above must be part of the main program
// itself (the usual static link of Bookend), not of a shared library that could be missing from the
// re-executed program (dlopen): otherwise that program's main would run instead.
static int constructor_in_main_program(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    uintptr_t at = (uintptr_t)(void *)&bks_helper_entry;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (at >= start && at < start + ph->p_memsz) { *(int *)data = 1; break; }
    }
    return 1;  // the first object reported is the main program: stop there
}

// With helper_lock held. Returns 0 when a helper is ready.
static int helper_start(void) {
    // A child forked from the program (without exec) inherits the socket, but the helper's shims
    // would be its parent's children: such a child starts a helper of its own.
    if (helper_sock >= 0 && helper_owner != getpid()) { (void)close(helper_sock); helper_sock = -1; helper_pid = -1; }
    if (helper_sock >= 0) return 0;
    if (helper_disabled) return -1;
    if (helper_pid > 0) { (void)waitpid(helper_pid, NULL, WNOHANG); helper_pid = -1; }
    const char *off = getenv("BOOKEND_SPAWN_HELPER_OFF");  // tests: exercise the engine's own fork
    int in_main = 0;
    (void)dl_iterate_phdr(constructor_in_main_program, &in_main);
    if ((off && strcmp(off, "1") == 0) || !in_main) { helper_disabled = 1; return -1; }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -1;
    // The helper's end goes to HELPER_FD; keep the original off that number so dup2 clears CLOEXEC.
    int child_end = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
    (void)close(sv[1]);
    if (child_end < 0) { (void)close(sv[0]); return -1; }

    size_t envc = 0;
    while (environ && environ[envc]) envc++;
    char **env = malloc((envc + 3) * sizeof(char *));
    if (!env) { close(sv[0]); close(child_end); return -1; }
    size_t k = 0;
    for (size_t i = 0; i < envc; i++)
        if (strncmp(environ[i], HELPER_ENV "=", sizeof HELPER_ENV) != 0 && strncmp(environ[i], "LD_BIND_NOW=", 12) != 0)
            env[k++] = environ[i];
    env[k++] = HELPER_ENV "=1";
    // Every symbol resolved at load: the helper then unmaps the libraries it never calls (see
    // helper_shed_libraries), which lazy binding would still read.
    env[k++] = "LD_BIND_NOW=1";
    env[k] = NULL;
    char *args[] = { HELPER_ARGV0, NULL };

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, child_end, HELPER_FD);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
    posix_spawn_file_actions_adddup2(&fa, 0, 1);
    posix_spawn_file_actions_adddup2(&fa, 0, 2);
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none); sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    // Its own session: a Ctrl-C meant for the engine's terminal does not stop the helper.
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, args, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(env);
    (void)close(child_end);
    if (rc != 0) { (void)close(sv[0]); helper_disabled = 1; return -1; }
    helper_pid = pid;
    helper_owner = getpid();
    // It says it is ready once its constructor runs; EOF means it could not start (it exited).
    helper_message ready;
    if (read_exact(sv[0], &ready, sizeof ready) < 0 || ready.kind != HELPER_REPLY) {
        (void)close(sv[0]);
        (void)waitpid(pid, NULL, 0);
        helper_pid = -1; helper_disabled = 1;
        return -1;
    }
    helper_sock = sv[0];
    return 0;
}

// ---- replies the engine collects later ----------------------------------------------------
//
// Why: a pass that starts several commands has one spare at most; the others are forked by the helper
// on request. Waiting for each reply before sending the next request kept the engine's thread idle
// while the helper, on a busy core, forked each shim in turn (0.7-0.9 ms apiece in a throughput
// trace), and those waits stood between a command's exit and the next command's start on its slot.
// So a request to the helper is sent with a ticket, and its reply is read when the caller needs the
// shim's pid (bks_spawn_finish), after every other request of the batch has gone out. Replies come in
// the order the requests went, so tickets wait in that order; a reply read while waiting for another
// is kept in its ticket until its own caller asks. A helper that goes away answers every ticket still
// waiting with EPIPE: whether it had forked that shim is unknown, which is what a synchronous request
// reported in that case too.
enum { TICKET_FREE = 0, TICKET_WAITING = 1, TICKET_ANSWERED = 2 };
#define TICKETS_IN_FLIGHT 32
typedef struct { int state; int32_t pid, err; } ticket_slot;
// Both grow as needed (a pass may start hundreds of commands on a large pool): `tickets` holds every
// ticket, `ticket_queue` is a ring of the waiting ones, in the order their requests went out.
static ticket_slot *tickets = NULL;
static int *ticket_queue = NULL;
static unsigned ticket_capacity = 0, ticket_head = 0, ticket_count = 0;
static pid_t ticket_owner = -1;    // a forked child's copy of the tickets is not its own

// With helper_lock held: twice the room, the waiting ring laid out from its start. 0, or -1.
static int tickets_grow(void) {
    unsigned capacity = ticket_capacity ? ticket_capacity * 2 : 64;
    ticket_slot *t = realloc(tickets, capacity * sizeof *t);
    if (!t) return -1;
    tickets = t;
    int *q = malloc(capacity * sizeof *q);
    if (!q) return -1;
    for (unsigned i = 0; i < ticket_count; i++) q[i] = ticket_queue[(ticket_head + i) % ticket_capacity];
    free(ticket_queue);
    ticket_queue = q;
    for (unsigned i = ticket_capacity; i < capacity; i++) tickets[i].state = TICKET_FREE;
    ticket_head = 0;
    ticket_capacity = capacity;
    return 0;
}

// With helper_lock held: a free ticket, queued as waiting; -1 when no memory is left for one.
static int ticket_issue(void) {
    if (ticket_owner != getpid()) {
        for (unsigned i = 0; i < ticket_capacity; i++) tickets[i].state = TICKET_FREE;
        ticket_head = ticket_count = 0;
        ticket_owner = getpid();
    }
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < ticket_capacity; i++) {
            if (tickets[i].state != TICKET_FREE) continue;
            tickets[i].state = TICKET_WAITING;
            ticket_queue[(ticket_head + ticket_count) % ticket_capacity] = (int)i;
            ticket_count++;
            return (int)i;
        }
        if (tickets_grow() < 0) return -1;
    }
    return -1;
}

// With helper_lock held: takes back the ticket issued last (its request could not be sent).
static void ticket_unissue(int t) {
    ticket_count--;
    tickets[t].state = TICKET_FREE;
}

// With helper_lock held: the oldest waiting ticket gets this answer. 0, or -1 when none was waiting
// (the helper answered something it was not asked).
static int ticket_answer(int32_t pid, int32_t err) {
    if (ticket_count == 0 || ticket_owner != getpid()) return -1;
    int t = ticket_queue[ticket_head];
    ticket_head = (ticket_head + 1) % ticket_capacity;
    ticket_count--;
    tickets[t].state = TICKET_ANSWERED;
    tickets[t].pid = pid; tickets[t].err = err;
    return 0;
}

// With helper_lock held: forget a helper that stopped answering (it is reaped next start). Requests
// it had not answered fail.
static void helper_drop(void) {
    if (helper_sock >= 0) (void)close(helper_sock);
    helper_sock = -1;
    if (ticket_owner == getpid()) while (ticket_count > 0) (void)ticket_answer(-1, EPIPE);
}

#define HELPER_UNAVAILABLE (-2)

// With helper_lock held: lets go of the announced spare (the helper forks another once it sees the
// spare's end, and a spare whose sockets are all closed exits without starting anything).
static void spare_release(void) {
    if (spare_fd >= 0) (void)close(spare_fd);
    spare_fd = -1; spare_announced_pid = -1; spare_owner = -1;
}

// With helper_lock held: reads one message from the helper. Waits for it when `wait`, otherwise
// returns 0 at once when none is there. A HELPER_SPARE message replaces the spare kept so far. 1 with
// *m filled, 0 (nothing there), or -1 when the helper is gone or sent something else.
static int helper_receive(helper_message *m, int wait) {
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { m, sizeof *m };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov; msg.msg_iovlen = 1;
    msg.msg_control = control; msg.msg_controllen = sizeof control;
    ssize_t n;
    do { n = recvmsg(helper_sock, &msg, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT)); } while (n < 0 && errno == EINTR);
    if (n < 0 && !wait && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (n <= 0) return -1;
    int fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && fd < 0) memcpy(&fd, CMSG_DATA(c), sizeof fd);
    int ok = (size_t)n == sizeof *m || read_exact(helper_sock, (char *)m + n, sizeof *m - (size_t)n) == 0;
    if (ok && m->kind == HELPER_SPARE && fd >= 0 && m->pid > 0) {
        // A spare still held here when the next one is announced was never sent a request: the
        // helper forks the next only once the last one's socket ended, so it died (killed from
        // outside). It is this process's child (CLONE_PARENT) and nobody watches it: reaped here,
        // or it would stay a zombie for the engine's whole life. Its exit closed the socket the
        // helper saw end, so it is a zombie by now or within moments: a few tries, never a wait.
        pid_t previous = spare_fd >= 0 && spare_owner == getpid() ? spare_announced_pid : -1;
        spare_release();
        for (int attempt = 0; previous > 0 && attempt < 50; attempt++) {
            pid_t reaped = waitpid(previous, NULL, WNOHANG);
            if (reaped == previous || (reaped < 0 && errno != EINTR)) break;
            struct timespec pause = { 0, 100000 };
            (void)nanosleep(&pause, NULL);
        }
        spare_fd = fd; spare_announced_pid = m->pid; spare_owner = getpid();
        return 1;
    }
    if (fd >= 0) (void)close(fd);
    // A reply belongs to the oldest request still waiting for one.
    return ok && m->kind == HELPER_REPLY && ticket_answer(m->pid, m->err) == 0 ? 1 : -1;
}

// With helper_lock held: reads the helper's next answer, which belongs to the oldest waiting ticket.
// A helper that gives none (it went away, or sent something else) is dropped, and dropping it
// answers every waiting ticket with EPIPE: either way at least one ticket stops waiting.
static void helper_await_answer(void) {
    helper_message m;
    if (helper_receive(&m, 1) != 1) helper_drop();
}

// With helper_lock held: waits until ticket `t` is answered, then frees it. Its shim's pid, or -1
// with *err set (the helper could not fork it, or went away before saying).
static pid_t ticket_redeem(int t, int *err) {
    while (tickets[t].state == TICKET_WAITING) helper_await_answer();
    pid_t pid = tickets[t].pid;
    if (pid <= 0) *err = tickets[t].err ? tickets[t].err : EIO;
    tickets[t].state = TICKET_FREE;
    return pid > 0 ? pid : -1;
}

// With helper_lock held: sends the request straight to the spare the helper announced, if there is
// one. Returns the spare's pid, or -1 when there was none or it could not take the request (it died,
// or took only part of it): that spare is then ended, so it never waits on a request that will not
// come, and the request goes to the helper.
static pid_t spare_send(const char *buf, size_t len, int report_w) {
    if (spare_fd >= 0 && spare_owner != getpid()) spare_release();  // a forked child's copy
    if (spare_fd < 0) return -1;
    pid_t pid = spare_announced_pid;
    int sent = send_with_fd(spare_fd, buf, len, report_w);
    spare_release();
    if (sent == 0) return pid;
    // Our child (CLONE_PARENT), not yet reaped: its pid cannot name another process.
    (void)kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return -1;
}

// With helper_lock held and a helper running: takes in the spares it announced (the last one is
// kept). 0, or -1 when the helper is gone or sent something it should not have (dropped then).
static int spare_take_announced(void) {
    helper_message m;
    int rc;
    // Replies to requests sent before are kept in their tickets on the way.
    while ((rc = helper_receive(&m, 0)) == 1) {}
    if (rc == 0) return 0;
    helper_drop();
    return -1;
}

pid_t bks_spawn_kill_spare_for_tests(void) {
    pthread_mutex_lock(&helper_lock);
    pid_t pid = -1;
    if (helper_sock >= 0 && helper_owner == getpid()) (void)spare_take_announced();
    if (spare_fd >= 0 && spare_owner == getpid()) {
        pid = spare_announced_pid;
        (void)kill(pid, SIGKILL);
        siginfo_t si;
        while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {}
    }
    pthread_mutex_unlock(&helper_lock);
    return pid;
}

pid_t bks_spawn_helper_pid(void) {
    pthread_mutex_lock(&helper_lock);
    pid_t pid = helper_sock >= 0 && helper_owner == getpid() ? helper_pid : -1;
    pthread_mutex_unlock(&helper_lock);
    return pid;
}


#define HELPER_PENDING (-3)

// Engine side: asks the helper for a shim whose report pipe is `report_w`. Returns the shim's pid,
// -1 with *err when the helper could not fork it, or HELPER_UNAVAILABLE (nothing was started). With
// `ticket` non-NULL, a request the helper itself serves is not waited for: HELPER_PENDING, with the
// ticket that bks_spawn_finish redeems for the pid (see "replies the engine collects later").
static pid_t helper_spawn(const bks_spawn_request *req, int report_w, int *err, int *ticket) {
    size_t argc = 0, envc = 0, len = 0;
    const char *fields[5] = { req->path, req->working_dir, req->stdout_path, req->stderr_path, req->status_dir };
    for (int i = 0; i < 5; i++) len += strlen(fields[i]) + 1;
    for (; req->argv[argc]; argc++) len += strlen(req->argv[argc]) + 1;
    for (; req->envp[envc]; envc++) len += strlen(req->envp[envc]) + 1;
    if (len > HELPER_MAX_PAYLOAD) return HELPER_UNAVAILABLE;
    char *buf = malloc(sizeof(helper_request) + len);
    if (!buf) return HELPER_UNAVAILABLE;
    helper_request h = { HELPER_MAGIC, (uint32_t)len, req->set_ids, req->uid, req->gid, req->exit_always_durable, req->test_delay_ms ? req->test_delay_ms : shim_delay_ms,
                         req->process_limit, (uint32_t)argc, (uint32_t)envc };
    memcpy(buf, &h, sizeof h);
    char *at = buf + sizeof h;
    for (int i = 0; i < 5; i++) at += put_str(at, fields[i]), *at++ = 0;
    for (size_t i = 0; i < argc; i++) at += put_str(at, req->argv[i]), *at++ = 0;
    for (size_t i = 0; i < envc; i++) at += put_str(at, req->envp[i]), *at++ = 0;

    pid_t result = HELPER_UNAVAILABLE;
    pthread_mutex_lock(&helper_lock);
    // The spare held since the last announcement first (a spare a dead helper left stays usable: it
    // is the engine's child); without one, or when it could not take the request, the one the helper
    // announced since, if any. At most one is announced at a time: the next only once the last one's
    // socket has ended (its command started, so the engine used it, or it died).
    pid_t spare = spare_send(buf, sizeof h + len, report_w);
    if (spare < 0 && helper_start() == 0 && spare_take_announced() == 0) spare = spare_send(buf, sizeof h + len, report_w);
    if (spare > 0) result = spare;
    // A helper that died since the last request fails at the send (nothing started): start another
    // once. One that fails after the send may have forked the shim: report an error, never retry.
    for (int attempt = 0; attempt < 2 && result == HELPER_UNAVAILABLE; attempt++) {
        if (helper_start() < 0) break;
        // At most TICKETS_IN_FLIGHT answers left unread: the helper writes each answer before it reads
        // the next request, so with many unread it would block on its socket while this thread blocks
        // sending it a request, each waiting for the other. Reading the oldest answers first (they
        // are coming: their requests went out) keeps both directions far below a socket's buffer.
        while (ticket_count >= TICKETS_IN_FLIGHT && helper_sock >= 0) helper_await_answer();
        if (helper_sock < 0) continue;  // it went away meanwhile: those tickets failed, start another
        int t = ticket_issue();
        if (t < 0) { *err = ENOMEM; result = -1; break; }
        if (send_with_fd(helper_sock, buf, sizeof h + len, report_w) < 0) { ticket_unissue(t); helper_drop(); continue; }
        if (ticket) { *ticket = t; result = HELPER_PENDING; break; }
        result = ticket_redeem(t, err);
    }
    pthread_mutex_unlock(&helper_lock);
    free(buf);
    return result;
}

// The engine's own fork of a shim: copies the engine's whole address space (its page tables), so it is
// used only when the spawn helper below cannot be started (no /proc, exec refused).
static pid_t fork_shim(const bks_spawn_request *req, const status_paths *p, int fds[2], int *err) {
    // Block every signal across fork so no engine handler can run in the shim before it
    // resets its dispositions (same trick as glibc's posix_spawn).
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) shim_main(req, p, fds[0], fds[1], 0);
    *err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return pid;
}

int bks_spawn_start(const bks_spawn_request *req, bks_spawn_result *result) {
    result->pid = -1; result->stage = BKS_STAGE_NONE; result->err = 0;
    int crash_after_fork = crash_after_fork_due();
    status_paths p;
    if (make_path(p.pid_tmp, req->status_dir, "pid.tmp") || make_path(p.pid_final, req->status_dir, "pid") ||
        make_path(p.exit_tmp, req->status_dir, "exit.tmp") || make_path(p.exit_final, req->status_dir, "exit")) {
        result->err = ENAMETOOLONG; return -1;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) { result->err = errno; return -1; }

    int err = 0, ticket = -1;
    // The crash point needs the pid before this returns: no ticket then.
    pid_t pid = helper_spawn(req, fds[1], &err, crash_after_fork ? NULL : &ticket);
    if (pid == HELPER_PENDING) { (void)close(fds[1]); result->pid = 0; result->ticket = ticket + 1; return fds[0]; }
    if (pid == HELPER_UNAVAILABLE) pid = fork_shim(req, &p, fds, &err);
    if (pid > 0 && crash_after_fork) kill(getpid(), SIGKILL);
    (void)close(fds[1]);
    if (pid < 0) { (void)close(fds[0]); result->err = err; return -1; }
    result->pid = pid;
    return fds[0];
}

int bks_spawn_finish(int report_fd, bks_spawn_result *result) {
    if (result->ticket > 0) {
        int err = 0;
        pthread_mutex_lock(&helper_lock);
        pid_t shim = ticket_redeem(result->ticket - 1, &err);
        pthread_mutex_unlock(&helper_lock);
        result->ticket = 0;
        if (shim < 0) {
            // The report pipe's write end went with the request: its end says nothing here.
            (void)close(report_fd);
            result->stage = BKS_STAGE_NONE; result->err = err;
            return 2;
        }
        result->pid = shim;
    }
    pid_t pid = result->pid;
    // Bounded: a command that never reaches exec (stuck before it, on something the shim does not
    // know to refuse) would hold the caller, the engine's only thread, and every request waiting on
    // it. Past the timeout the shim's session (shim and command) is killed and the start reported
    // failed; the pipe's end then comes with their exit.
    struct pollfd waiting = { report_fd, POLLIN, 0 };
    int ready;
    int timeout = result->start_timeout_ms > 0 ? result->start_timeout_ms : 10000;
    do { ready = poll(&waiting, 1, timeout); } while (ready < 0 && errno == EINTR);
    if (ready == 0) {
        (void)kill(-pid, SIGKILL);
        (void)kill(pid, SIGKILL);
        (void)close(report_fd);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        result->stage = BKS_STAGE_TIMEOUT; result->err = ETIMEDOUT;
        return 1;
    }
    launch_report r = { 0, 0 };
    ssize_t got = read_full(report_fd, &r, sizeof r);
    (void)close(report_fd);
    if (got == 0) return 0;
    // Launch failure (or a garbled report): the shim exits right after writing `exit`.
    if (got == (ssize_t)sizeof r) { result->stage = r.stage; result->err = r.err; }
    else { result->stage = BKS_STAGE_NONE; result->err = got < 0 ? errno : EIO; }
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return 1;
}

// ---- pidfd / epoll helpers ------------------------------------------------------------

int bks_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS; return -1;
#endif
}

int bks_reap(int pidfd, pid_t pid) { return bks_reap_status(pidfd, pid, NULL); }

int bks_reap_status(int pidfd, pid_t pid, int *exit_code) {
    if (exit_code) *exit_code = -1;
    if (pidfd >= 0) {
        for (;;) {
            siginfo_t si; memset(&si, 0, sizeof si);
            if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG) == 0) {
                if (si.si_pid == 0) return 0;
                if (exit_code && si.si_code == CLD_EXITED) *exit_code = si.si_status;
                return 1;
            }
            if (errno == EINTR) continue;
            if (errno != EINVAL) return 0;  // ECHILD: not our child
            break;                          // kernel without P_PIDFD: fall back
        }
    }
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r < 0 && errno == EINTR) continue;
        if (r > 0 && exit_code && WIFEXITED(st)) *exit_code = WEXITSTATUS(st);
        return r > 0;
    }
}

int bks_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int bks_epoll_add(int epfd, int fd, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int bks_epoll_del(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

int bks_epoll_wait(int epfd, uint64_t *tokens, int max_tokens, int timeout_ms) {
    struct epoll_event evs[64];
    if (max_tokens > 64) max_tokens = 64;
    int n = epoll_wait(epfd, evs, max_tokens, timeout_ms);
    for (int i = 0; i < n; i++) tokens[i] = evs[i].data.u64;
    return n;
}

int bks_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int bks_eventfd_signal(int efd) {
    uint64_t one = 1;
    return write(efd, &one, sizeof one) == (ssize_t)sizeof one ? 0 : -1;
}

void bks_eventfd_drain(int efd) {
    uint64_t v;
    while (read(efd, &v, sizeof v) > 0) {}
}
