// bench-stamp: prints the wall clock in nanoseconds since the epoch and exits.
//
// The latency benchmark runs it as a task: the number in the task's stdout.txt is the moment the
// task's process was running, on the same clock the benchmark read when it submitted the task.
// It is C (not Swift) so that its own start-up adds microseconds, not the milliseconds of loading
// the Swift runtime.
#include <stdio.h>
#include <time.h>

int main(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    printf("%lld\n", (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    return 0;
}
