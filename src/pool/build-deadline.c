/* A build's deadline and the template's own account of a failed build
 * (pool/build-deadline.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/build-deadline.h"
#include "pool/pool-internal.h"
#include "util/log.h"

/* how long a template has to say where it was once told to stop */
#define STOP_GRACE_MS 2000
/* The top level's CPU is held to cpu_ms, but never below this: a worker
 * whose requests get 50 ms still has to import its packages (a template
 * also pays for its sandbox setup before the top level starts). */
#define MIN_TOP_LEVEL_CPU_MS 1000

static long long cpu_limit(const struct thaw_limits *lim)
{
    return lim->cpu_ms > MIN_TOP_LEVEL_CPU_MS ? lim->cpu_ms : MIN_TOP_LEVEL_CPU_MS;
}

enum { ARMED, STOPPING, ENDED };

struct thaw_build_deadline {
    uv_timer_t timer;
    struct thaw_version *v;  /* holds a reference until the timer is closed */
    int state;
    int over_cpu;            /* which limit it hit: CPU, else wall clock */
    long long limit_ms;      /* ... and its value, for the message */
};

static void on_closed(uv_handle_t *h)
{
    struct thaw_build_deadline *d = h->data;

    thaw__version_unref(d->v);
    free(d);
}

static long long elapsed_ms(struct thaw_version *v)
{
    return (long long)((uv_hrtime() - v->build_start) / 1000000);
}

/* The deadline's message: first line the summary (the deploy's error),
 * then the stack the template sent, if any. */
static void fail_stopped(struct thaw_version *v, const char *where, const char *stack)
{
    struct thaw_build_deadline *d = v->deadline;
    char head[512], *msg;
    size_t n;

    if (d->over_cpu)
        snprintf(head, sizeof(head), "top level used more than %lld ms of CPU time "
                 "(limits.cpu_ms) (at %s)", d->limit_ms, where);
    else
        snprintf(head, sizeof(head), "top level still running after %lld ms (at %s)",
                 d->limit_ms, where);
    n = strlen(head) + strlen(stack) + 400;
    if (!(msg = malloc(n))) {
        thaw__version_cancel_build(v, THAW_FAULT_TIMEOUT, head);
        return;
    }
    snprintf(msg, n, "%s\n%s%sThe top level runs once per build, before any request: "
             "move long work into the handler (or a cron), or raise %s (thaw serve: up "
             "to the operator's ceiling).\n", head, stack, *stack ? "\n" : "",
             d->over_cpu ? "limits.cpu_ms" : "[thaw] build_timeout_ms");
    thaw_log("worker %s: version %u: %s; the build is stopped", v->name, v->id, head);
    /* it exits by itself after its answer; one that lingers is killed */
    thaw__version_cancel_build(v, THAW_FAULT_TIMEOUT, msg);
    free(msg);
}

static void on_timer(uv_timer_t *t);

static void schedule(struct thaw_build_deadline *d, long long ms)
{
    uv_timer_start(&d->timer, on_timer, ms > 0 ? (uint64_t)ms : 1, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct thaw_build_deadline *d = t->data;
    struct thaw_version *v = d->v;
    const struct thaw_limits *lim;
    long long wall, cpu, wall_left, cpu_left;

    if (d->state == ENDED || v->state != VER_BUILDING)
        return;
    if (d->state == STOPPING) { /* it did not answer the stop signal */
        fail_stopped(v, "an unknown line: the top level did not answer thaw's stop "
                        "signal", "");
        return;
    }
    lim = &v->worker->limits;
    wall = elapsed_ms(v);
    wall_left = lim->build_timeout_ms - wall;
    if (v->tmpl.state == PROC_NONE && wall_left > 0) { /* not forked yet: no CPU to count */
        schedule(d, wall_left < cpu_limit(lim) ? wall_left : cpu_limit(lim));
        return;
    }
    if (v->tmpl.state == PROC_NONE) {
        /* thaw's own zygote never forked the template: not the worker's doing */
        thaw_log("worker %s: version %u: the zygote did not start its template within "
                 "%lld ms", v->name, v->id, wall);
        thaw__version_cancel_build(v, THAW_FAULT_INTERNAL, "the zygote did not start the "
                                   "worker's template in time");
        return;
    }
    cpu = thaw__proc_cpu_ms(v->tmpl.pid);
    cpu_left = cpu < 0 ? wall_left : cpu_limit(lim) - cpu;
    if (wall_left > 0 && cpu_left > 0) {
        /* its CPU time grows no faster than the clock (one thread) */
        schedule(d, wall_left < cpu_left ? wall_left : cpu_left);
        return;
    }
    d->over_cpu = wall_left > 0;
    d->limit_ms = d->over_cpu ? cpu_limit(lim) : lim->build_timeout_ms;
    d->state = STOPPING;
    thaw_proc_signal(&v->tmpl, THAW_BUILD_STOP_SIGNAL);
    schedule(d, STOP_GRACE_MS);
}

void thaw__build_deadline_start(struct thaw_version *v)
{
    struct thaw_build_deadline *d;
    const struct thaw_limits *lim = &v->worker->limits;

    if (v->deadline || !(d = calloc(1, sizeof(*d))))
        return;
    uv_timer_init(v->worker->loop, &d->timer);
    d->timer.data = d;
    d->v = v;
    thaw__version_ref(v); /* the timer's, dropped in on_closed */
    v->deadline = d;
    schedule(d, lim->build_timeout_ms < cpu_limit(lim) ? lim->build_timeout_ms
                                                       : cpu_limit(lim));
}

void thaw__build_deadline_stop(struct thaw_version *v)
{
    struct thaw_build_deadline *d = v->deadline;

    if (!d)
        return;
    d->state = ENDED;
    uv_timer_stop(&d->timer);
}

void thaw__build_deadline_close(struct thaw_version *v)
{
    struct thaw_build_deadline *d = v->deadline;

    if (!d)
        return;
    v->deadline = NULL;
    uv_close((uv_handle_t *)&d->timer, on_closed);
}

int thaw__build_deadline_end(struct thaw_version *v)
{
    if (!v->deadline || v->deadline->state != STOPPING)
        return 0;
    /* BUILT just after the signal went out counts as stopped too: the
     * signal may kill a template whose handler is gone */
    fail_stopped(v, "an unknown line: the template exited without saying where", "");
    return 1;
}

/* The frame's fields: up to n of them, each NUL-terminated into bufs
 * (strndup'ed; free them), missing ones as "". */
static void fields(const struct thaw_ipc_frame *f, char **out, int n)
{
    struct thaw_ipc_fields it;
    const uint8_t *p;
    size_t len;
    int i = 0;

    thaw_ipc_fields_init(&it, f);
    for (; i < n && thaw_ipc_next_field(&it, &p, &len) == 1; i++)
        out[i] = strndup((const char *)p, len);
    for (; i < n; i++)
        out[i] = strdup("");
}

void thaw__build_err(struct thaw_version *v, const struct thaw_ipc_frame *f)
{
    char *fl[3];
    enum thaw_build_fault fault = THAW_FAULT_WORKER;
    int i;

    fields(f, fl, 3);
    if (!fl[0] || !fl[1] || !fl[2]) {
        thaw__version_build_failed(v, THAW_FAULT_INTERNAL, "out of memory");
    } else if (strcmp(fl[1], "stopped") == 0 && v->deadline &&
               v->deadline->state == STOPPING) {
        fail_stopped(v, *fl[2] ? fl[2] : "an unknown line", fl[0]);
    } else if (strcmp(fl[1], "config") == 0) {
        /* the template read the config as given: the file's name is ours */
        const char *file = v->worker->cfg.file ? v->worker->cfg.file : "config";
        size_t n = strlen(file) + strlen(fl[0]) + 3;
        char *msg = malloc(n);
        if (strrchr(file, '/'))
            file = strrchr(file, '/') + 1;
        if (msg)
            snprintf(msg, n, "%s: %s", file, fl[0]);
        thaw__version_build_failed(v, THAW_FAULT_CONFIG, msg ? msg : fl[0]);
        free(msg);
    } else {
        if (strcmp(fl[1], "internal") == 0)
            fault = THAW_FAULT_INTERNAL;
        /* "stopped" without a stop: the worker's own doing */
        thaw__version_build_failed(v, fault, fl[0]);
    }
    for (i = 0; i < 3; i++)
        free(fl[i]);
}
