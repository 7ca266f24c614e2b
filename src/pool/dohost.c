/* The instance a version's Durable Objects live in, and the events of an
 * object parked while another version's host may still hold it
 * (src/do/live.c decides; this is the pool's side: pool.h). */
#include <stdint.h>
#include <stdlib.h>

#include "pool/pool-internal.h"

/* The instance v's objects went to, while it may hold them. */
static struct thaw_instance *live_host(struct thaw_version *v)
{
    struct thaw_instance *i;

    for (i = v->instances; v->do_host && i; i = i->next)
        if (i->id == v->do_host && i->state == INST_LIVE && i->chan)
            return i;
    return NULL;
}

int thaw_pool_host_live(struct thaw_version *v)
{
    return live_host(v) != NULL;
}

int thaw_pool_host_send(struct thaw_version *v, struct thaw_exchange *ex, const void *head,
                        size_t len, uint64_t after_ms)
{
    struct thaw_instance *i = live_host(v);

    if (!i)
        return -1;
    ex->ver = v;
    thaw__pool_attach(i, ex, head, len);
    if (after_ms) {
        /* tick.c's wall clock ends it at started_ms + t; an answer that
         * needs no wait still gets min(t, 10 graces) from now */
        long long t = v->worker->limits.request_timeout_ms;
        long long floor = t < 10 * THAW_CANCEL_GRACE_MS ? 0 : 10 * THAW_CANCEL_GRACE_MS - t;
        long long start = (long long)after_ms + THAW_CANCEL_GRACE_MS;
        if (start < (long long)ex->started_ms + floor)
            start = (long long)ex->started_ms + floor;
        if (start >= 0 && (uint64_t)start < ex->started_ms)
            ex->started_ms = (uint64_t)start;
    }
    return 0;
}

int thaw_pool_host_kill(struct thaw_version *v, const char *msg)
{
    struct thaw_instance *i = live_host(v);

    if (!i || i->kill_status)
        return 0;
    thaw__instance_kill(i, 503, msg);
    return 1;
}

int thaw_pool_park(struct thaw_park *p, struct thaw_exchange *ex, const void *head,
                   size_t len)
{
    /* a call's frames are whole (its body up to a binding call's 32 MiB):
     * the holding buffer is made for them, as big as they are */
    if (ex->pending.len == 0) {
        thaw_buf_free(&ex->pending);
        thaw_buf_init(&ex->pending, len + 4 * 1024 * 1024);
    }
    if (head && thaw_buf_append(&ex->pending, head, len))
        return -1;
    ex->park = p;
    ex->next = NULL;
    ex->prev = p->tail;
    if (p->tail)
        p->tail->next = ex;
    else
        p->head = ex;
    p->tail = ex;
    return 0;
}

void thaw__pool_unpark_one(struct thaw_exchange *ex)
{
    struct thaw_park *p = ex->park;

    if (ex->prev)
        ex->prev->next = ex->next;
    else
        p->head = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    else
        p->tail = ex->prev;
    ex->next = ex->prev = NULL;
    ex->park = NULL;
}

struct thaw_exchange *thaw_pool_unpark(struct thaw_park *p)
{
    struct thaw_exchange *ex = p->head;

    if (ex)
        thaw__pool_unpark_one(ex);
    return ex;
}
