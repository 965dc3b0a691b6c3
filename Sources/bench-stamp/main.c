// bench-stamp: prints the wall clock in nanoseconds since the epoch and exits.
//
// The latency benchmark runs it as a task: the number in the task's stdout.txt is the moment the
// task's process was running, on the same clock the benchmark read when it submitted the task.
// It is C (not Swift), and linked statically (Package.swift): its start-up is the kernel's exec and
// a few page faults, not the milliseconds of loading shared libraries (the Swift runtime and
// libstdc++, which SwiftPM links into every executable, took 1.7 ms of it when linked dynamically).
//
// `bench-stamp --spawn-loop COUNT IN_FLIGHT [STATUS_ROOT]` is the throughput section's other use of
// it: runs `/bin/true` COUNT times keeping IN_FLIGHT running and prints processes per second. With
// STATUS_ROOT, each run goes through a shim, the least a runner that starts one supervising process
// per command must do: fork this (small, static) program, `setsid`, spawn the command, write a `pid`
// file, wait, write an `exit` file (each written to a temporary name and renamed, as a reader after a
// crash must see whole files), exit; the loop reaps the shim and, before the slot's next shim, renames
// `pid` and `exit` back to their temporary names, as Bookend recycles a status folder, so that each
// shim writes into the inodes the last one left instead of allocating two and freeing two (which
// measured a third slower here). Both loops are here, in C, so that
// their ratio is the shim's own cost and not a difference between languages. The shim is forked
// rather than spawned: a program that must outlive its caller's crash has to be a separate process,
// but it need not load anything.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double monotonic_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

// Writes `text` to `dir`/`name`.tmp and renames it over `dir`/`name`. Only async-signal-safe calls:
// it runs in a forked child.
static int write_renamed(const char *dir, const char *name, const char *text, size_t length) {
    char temporary[512], final[512];
    if (snprintf(temporary, sizeof temporary, "%s/%s.tmp", dir, name) >= (int)sizeof temporary) return -1;
    if (snprintf(final, sizeof final, "%s/%s", dir, name) >= (int)sizeof final) return -1;
    int fd = open(temporary, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    ssize_t written = write(fd, text, length);
    int cut = ftruncate(fd, (off_t)length);
    close(fd);
    if (written != (ssize_t)length || cut != 0) return -1;
    return rename(temporary, final);
}

static void shim(const char *status_dir) {
    if (setsid() < 0) _exit(120);
    char *argv[] = { "/bin/true", NULL };
    pid_t command;
    if (posix_spawn(&command, "/bin/true", NULL, NULL, argv, environ) != 0) _exit(121);
    char text[32];
    int length = snprintf(text, sizeof text, "%d\n", (int)command);
    if (write_renamed(status_dir, "pid", text, (size_t)length) != 0) _exit(122);
    int status = 0;
    while (waitpid(command, &status, 0) < 0) if (errno != EINTR) _exit(123);
    length = snprintf(text, sizeof text, "%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    _exit(write_renamed(status_dir, "exit", text, (size_t)length) == 0 ? 0 : 124);
}

// Before a slot's next shim: its last `pid` and `exit` back to their temporary names.
static void recycle(const char *status_dir) {
    static const char *names[] = { "pid", "exit" };
    for (int i = 0; i < 2; i++) {
        char from[512], to[512];
        snprintf(from, sizeof from, "%s/%s", status_dir, names[i]);
        snprintf(to, sizeof to, "%s/%s.tmp", status_dir, names[i]);
        (void)rename(from, to);
    }
}

static int spawn_loop(long count, int in_flight, const char *status_root) {
    if (count <= 0 || in_flight <= 0 || in_flight > 256) return 2;
    // One status folder per slot, made before the clock starts (Bookend recycles its own as well).
    char (*slots)[512] = calloc((size_t)in_flight, sizeof *slots);
    pid_t *owners = calloc((size_t)in_flight, sizeof *owners);
    if (!slots || !owners) return 2;
    for (int i = 0; status_root && i < in_flight; i++) {
        snprintf(slots[i], sizeof slots[i], "%s/slot-%d", status_root, i);
        if (mkdir(slots[i], 0700) < 0 && errno != EEXIST) { perror(slots[i]); return 1; }
    }
    char *argv[] = { "/bin/true", NULL };
    long started = 0, finished = 0;
    int running = 0;
    double start = monotonic_seconds();
    while (finished < count) {
        while (running < in_flight && started < count) {
            int slot = 0;
            while (owners[slot] != 0) slot++;
            pid_t pid;
            if (status_root) {
                recycle(slots[slot]);
                pid = fork();
                if (pid == 0) shim(slots[slot]);
                if (pid < 0) { perror("fork"); return 1; }
            } else if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) != 0) {
                perror("posix_spawn");
                return 1;
            }
            owners[slot] = pid;
            started++;
            running++;
        }
        int status = 0;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) { if (errno == EINTR) continue; perror("waitpid"); return 1; }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "bench-stamp: process %d ended with status %d\n", (int)pid, status);
            return 1;
        }
        for (int i = 0; i < in_flight; i++) if (owners[i] == pid) owners[i] = 0;
        running--;
        finished++;
    }
    printf("%.1f\n", (double)count / (monotonic_seconds() - start));
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "--spawn-loop") == 0) {
        return spawn_loop(atol(argv[2]), atoi(argv[3]), argc >= 5 ? argv[4] : NULL);
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    printf("%lld\n", (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    return 0;
}
