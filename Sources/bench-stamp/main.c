// bench-stamp: prints the wall clock in nanoseconds since the epoch and exits.
//
// The latency benchmark runs it as a task: the number in the task's stdout.txt is the moment the
// task's process was running, on the same clock the benchmark read when it submitted the task.
// It is C (not Swift), and linked statically (Package.swift): its start-up is the kernel's exec and
// a few page faults, not the milliseconds of loading shared libraries (the Swift runtime and
// libstdc++, which SwiftPM links into every executable, took 1.7 ms of it when linked dynamically).
#include <stdio.h>
#include <time.h>

int main(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    printf("%lld\n", (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    return 0;
}
