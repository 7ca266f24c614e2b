/* A version's memory cgroup, watched for OOM kills (pool/memwatch.h). */
#include <stdlib.h>
#include <unistd.h>

#include "pool/memwatch.h"
#include "pool/pool-internal.h"
#include "sandbox/cgroup.h"
#include "util/fd.h"

/* cgroup v1 signals when the group is out of memory, just before its OOM
 * killer picks a victim: the kill is counted a moment later. So the count
 * is read again RECHECK_MS later, a few times, until the kill shows. */
#define RECHECK_MS 20
#define RECHECKS 10

struct thaw_memwatch {
    uv_poll_t poll;
    uv_timer_t recheck;
    int fd;
    int handles;             /* open: the poll and the timer */
    int rechecks;            /* left before the count is given up on */
    long long seen;          /* OOM kills logged when the event came */
    struct thaw_version *v;  /* holds a reference until both are closed */
};

static void on_closed(uv_handle_t *h)
{
    struct thaw_memwatch *m = h->data;

    if (--m->handles)
        return;
    thaw_close_fd(h->loop, m->fd);
    thaw__version_unref(m->v);
    free(m);
}

static void on_recheck(uv_timer_t *t)
{
    struct thaw_memwatch *m = t->data;

    if (thaw__memcg_logged(m->v) > m->seen || --m->rechecks <= 0)
        uv_timer_stop(t);
}

static void on_event(uv_poll_t *p, int status, int events)
{
    struct thaw_memwatch *m = p->data;

    thaw_memcg_oom_fd_drain(m->fd);
    m->seen = m->v->memcg_oom_logged;
    if (thaw__memcg_logged(m->v) > m->seen)
        return;
    m->rechecks = RECHECKS;
    uv_timer_start(&m->recheck, on_recheck, RECHECK_MS, RECHECK_MS);
}

void thaw__memwatch_start(struct thaw_version *v)
{
    struct thaw_memwatch *m;
    int prio = 0, fd;

    if (!v->memcg || v->memwatch || (fd = thaw_memcg_oom_fd(v->memcg, &prio)) < 0)
        return;
    if (!(m = calloc(1, sizeof(*m))) || uv_poll_init(v->worker->loop, &m->poll, fd)) {
        free(m);
        close(fd);
        return;
    }
    uv_timer_init(v->worker->loop, &m->recheck);
    m->fd = fd;
    m->v = v;
    m->handles = 2;
    m->poll.data = m->recheck.data = m;
    thaw__version_ref(v);
    v->memwatch = m;
    uv_poll_start(&m->poll, prio ? UV_PRIORITIZED : UV_READABLE, on_event);
}

void thaw__memwatch_close(struct thaw_version *v)
{
    struct thaw_memwatch *m = v->memwatch;

    if (!m)
        return;
    v->memwatch = NULL;
    uv_close((uv_handle_t *)&m->poll, on_closed);
    uv_close((uv_handle_t *)&m->recheck, on_closed);
}
