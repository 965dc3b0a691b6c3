// csupervisor.h — fork-based process spawning for Bookend's Supervisor module.
//
// Process tree produced by bks_spawn_start:
//
//   engine ··(asks over a socketpair)··▶ spawn helper ──fork (CLONE_PARENT)──▶ shim
//   (the shim is the engine's child; the helper is this program re-executed once, see spawn.c.
//    The helper forks each shim ahead, as a spare that waits set up for the next request, and
//    hands it the request; without a spare it forks one for the request; without a helper the
//    engine forks the shim itself)
//
//   shim (setsid: new session + process group, pgid == shim pid)
//                      │  vforks; writes <status_dir>/pid (rename) while the command loads;
//                      │  waits; writes <status_dir>/exit (rename; fsync when no engine
//                      │  will record it); exits 0, or with the errno of that write when it
//                      │  failed (BKS_SHIM_EXIT_LIMIT)
//                      └──vfork──▶ grandchild ──execve──▶ user command
//
// The shim is what the engine identifies and signals (kill(-shim_pid, sig) hits the
// whole group). Because it lives in its own session it survives the engine's death and
// still records the user command's exit status on disk.
#ifndef CSUPERVISOR_H
#define CSUPERVISOR_H

#include <stdint.h>
#include <sys/types.h>

// Stage codes reported when the user command could not be started.
enum {
    BKS_STAGE_NONE = 0,
    BKS_STAGE_OPEN = 1,    // opening /dev/null, stdout or stderr file
    BKS_STAGE_CHDIR = 2,   // chdir(working_dir)
    BKS_STAGE_SETUID = 3,  // setgroups / setgid / setuid
    BKS_STAGE_EXEC = 4,    // execve
    BKS_STAGE_STATUS = 5,  // shim could not write <status_dir>/pid (a command it had started is killed)
    BKS_STAGE_FORK = 6,    // shim could not create the grandchild (pipe/fork)
    BKS_STAGE_SETSID = 7,  // shim could not create its session
    BKS_STAGE_TIMEOUT = 8, // the command did not reach exec within the start timeout; shim and command were killed
    BKS_STAGE_LIMIT = 9,   // setrlimit(RLIMIT_NPROC) before the account switch
};


typedef struct bks_spawn_request {
    const char *path;         // resolved executable path
    char *const *argv;        // NULL-terminated, argv[0] included
    char *const *envp;        // NULL-terminated "K=V" strings
    const char *working_dir;
    const char *stdout_path;
    const char *stderr_path;
    const char *status_dir;   // must already exist
    int set_ids;              // non-zero: switch to uid/gid before exec
    int exit_always_durable;  // non-zero: fsync `exit` even while the engine that started it lives
    uid_t uid;
    gid_t gid;
    // With set_ids: when non-zero, RLIMIT_NPROC (soft and hard) of the command's process, set before
    // the switch so the account cannot raise it. It caps how many processes and threads the account
    // may have at once: a fork bomb stops there instead of taking every pid of the machine.
    uint32_t process_limit;
    unsigned test_delay_ms;   // tests only: the shim waits this long before it starts the command (0: not at all)
} bks_spawn_request;

typedef struct bks_spawn_result {
    pid_t pid;   // shim pid (set by bks_spawn_start, or by bks_spawn_finish when `ticket` is set)
    int stage;   // BKS_STAGE_* when bks_spawn_finish returns 1
    int err;     // errno value describing the failure
    int ticket;  // non-zero: the helper forks this shim and says its pid later (bks_spawn_finish asks)
    int start_timeout_ms;  // set by the caller: how long bks_spawn_finish waits for the exec (0: 10 000 ms);
                           // past it the shim's session is killed and the start fails with BKS_STAGE_TIMEOUT
} bks_spawn_result;

// Spawning is in two halves, so a caller can fork several shims before waiting for any exec.
// bks_spawn_start forks the shim (or has it forked) and returns the read end of its report pipe, or
// -1 when it could not even ask for the fork (result->err set). result->pid is set, or 0 with
// result->ticket set when the helper's answer is still to come: calls for a batch of requests go out
// without waiting for the helper, and bks_spawn_finish collects its answers.
int bks_spawn_start(const bks_spawn_request *req, bks_spawn_result *result);
// bks_spawn_finish waits on that pipe (for the helper's answer first, when ticketed) and closes it.
// Returns
//          0: user command exec'd; result->pid is the shim (still running or an unreaped
//             zombie: the caller, or an ExitWatcher, must reap it).
//          1: launch failed in the shim/grandchild (stage + err set); the shim has been reaped.
//          2: the helper could not fork the shim, or went away before saying (err set).
int bks_spawn_finish(int report_fd, bks_spawn_result *result);

// Pid of this process's spawn helper, or -1 when none runs (not started yet, or unavailable).
pid_t bks_spawn_helper_pid(void);

// For tests: kills the spare shim the helper last announced to this process, under the lock every
// launch takes (so no request is on its way to it), and returns once it has died, unreaped. Its
// pid, or -1 when this process holds no spare.
pid_t bks_spawn_kill_spare_for_tests(void);

// The process name (comm) of a spare shim while it waits, set up, for a request (see spawn.c): a
// fork of this program that holds no request and no status folder yet.
#define BKS_SPARE_SHIM_NAME "bookend-spare"

// Short name of a stage code ("open", "chdir", "setuid", "exec", "status", "fork", "setsid", "limit").
const char *bks_stage_name(int stage);

// pidfd_open(2) via syscall(); -1 + errno on failure.
int bks_pidfd_open(pid_t pid);

// Reap `pid` if it is our exited child (waitid(P_PIDFD) when pidfd >= 0, else waitpid).
// Never blocks. Returns 1 if reaped, 0 otherwise (not our child / not exited).
int bks_reap(int pidfd, pid_t pid);
// bks_reap that also stores the child's exit code (-1 when it was killed by a signal or not reaped).
int bks_reap_status(int pidfd, pid_t pid, int *exit_code);

// A shim exits 0 once it has written <status_dir>/exit. When it could not (full disk, read-only
// folder), it exits with the errno of the failed write, below this limit (EIO otherwise); 127 is
// reserved for a shim that failed before the command started (reported through the pipe).
#define BKS_SHIM_EXIT_LIMIT 126

// Thin epoll/eventfd wrappers (struct epoll_event is packed on x86_64; keep it out of Swift).
int bks_epoll_create(void);
int bks_epoll_add(int epfd, int fd, uint64_t token);
int bks_epoll_del(int epfd, int fd);
// Waits for events, stores each ready token into tokens[i]; returns count or -1 + errno.
int bks_epoll_wait(int epfd, uint64_t *tokens, int max_tokens, int timeout_ms);
int bks_eventfd(void);
int bks_eventfd_signal(int efd);
void bks_eventfd_drain(int efd);

#endif
