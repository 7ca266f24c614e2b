/* Phase timings of the sandbox's setup, for finding where a template's
 * (or an instance's) start-up time goes without strace, which inflates
 * every system call. Off unless THAW_SB_TIMING=1 is in the environment;
 * then one line per process goes to stderr (thaw's log), e.g.
 *   [thaw] sb-timing template hello pid 12: userns 0.21 mounts 0.40 ... total 3.10 ms
 * docs/performance.md reads them. */
#ifndef THAW_SANDBOX_TIMING_H
#define THAW_SANDBOX_TIMING_H

#include <stddef.h>
#include <time.h>

struct thaw__sb_clock {
    int on;
    struct timespec start, last;
    char line[512];
    size_t len;
};

/* Whether THAW_SB_TIMING=1 (read once per process tree: the zygote's
 * environment is every template's). */
int thaw__sb_timing_on(void);
/* Starts a line: what (template, instance, zygote) and the worker. */
void thaw__sb_clock_start(struct thaw__sb_clock *c, const char *what, const char *name);
/* Adds "phase N.NN" with the time since the previous mark (or the start). */
void thaw__sb_clock_mark(struct thaw__sb_clock *c, const char *phase);
/* Adds the total and writes the line to fd 2 with one write(). */
void thaw__sb_clock_print(struct thaw__sb_clock *c);

#endif
