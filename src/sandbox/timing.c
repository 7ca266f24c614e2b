/* THAW_SB_TIMING: see timing.h. Only clock_gettime, snprintf and one
 * write(), so it runs the same before and after the seccomp filter. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/timing.h"

int thaw__sb_timing_on(void)
{
    static int on = -1;
    const char *v;

    if (on < 0) {
        v = getenv("THAW_SB_TIMING");
        on = v && strcmp(v, "1") == 0;
    }
    return on;
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static void append(struct thaw__sb_clock *c, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (c->len >= sizeof(c->line))
        return;
    va_start(ap, fmt);
    n = vsnprintf(c->line + c->len, sizeof(c->line) - c->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        c->len += (size_t)n;
    if (c->len >= sizeof(c->line))
        c->len = sizeof(c->line) - 1;
}

void thaw__sb_clock_start(struct thaw__sb_clock *c, const char *what, const char *name)
{
    c->on = thaw__sb_timing_on();
    c->len = 0;
    if (!c->on)
        return;
    clock_gettime(CLOCK_MONOTONIC, &c->start);
    c->last = c->start;
    append(c, "[thaw] sb-timing %s %s pid %ld:", what, name ? name : "-", (long)getpid());
}

void thaw__sb_clock_mark(struct thaw__sb_clock *c, const char *phase)
{
    struct timespec now;

    if (!c->on)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    append(c, " %s %.2f", phase, ms_between(&c->last, &now));
    c->last = now;
}

void thaw__sb_clock_print(struct thaw__sb_clock *c)
{
    struct timespec now;

    if (!c->on)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    append(c, " total %.2f ms\n", ms_between(&c->start, &now));
    if (c->line[c->len - 1] != '\n')
        c->line[c->len - 1] = '\n';
    if (write(2, c->line, c->len) < 0)
        return; /* a timing line is not worth failing the sandbox for */
}
