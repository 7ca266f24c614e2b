/* A worker: its versions over time, and which one is current.
 *
 * States: RUNNING (from thaw_worker_init) -> CLOSING (thaw_worker_close:
 * `closing`; every version killed, the tick timer closing) -> CLOSED
 * (on_closed called: no version, no handle, no fd is left; its owner frees
 * the struct). `cold` (its template evicted) is a sub-state of RUNNING.
 * Versions are listed in `versions` from their alloc until their memory
 * goes (version.c), so a closing worker knows when the last one went. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "do/alarms.h"
#include "do/live.h"
#include "do/ws.h"
#include "pool/pool-internal.h"
#include "util/log.h"
#include "zygote/client.h"

static void switch_to(struct thaw_worker *w, struct thaw_version *v)
{
    struct thaw_version *old = w->current;

    w->current = v;
    if (old && old != v) {
        thaw__pool_requeue(old, v);
        thaw__version_retire(old);
    }
}

/* The serving version lost its template and the build meant to replace
 * it failed (its zygote does not start, say): no instance of it can be
 * forked, so what waits for one would wait until its queue timeout. It is
 * answered now, with the failed build's answer, and so is every request
 * no live instance can take until a build succeeds (pool.c, route). */
static void lost_and_failed(struct thaw_version *cur, struct thaw_version *failed)
{
    char why[512];
    const char *answer = thaw__version_answer(failed, why, sizeof(why));

    free(cur->lost_answer);
    cur->lost_answer = strdup(answer);
    thaw__pool_fail_queue(cur, 500, answer);
}

void thaw__worker_relost(struct thaw_worker *w)
{
    struct thaw_zygote *z = w->current ? w->current->zygote : NULL;
    uint64_t now = uv_now(w->loop);

    if ((w->relost && now - w->relost_ms < (uint64_t)w->limits.build_timeout_ms) ||
        w->building || w->stopping || !w->on_lost || (z && !thaw_zygote_can_start(z)))
        return;
    w->relost = 1;
    w->relost_ms = now;
    w->on_lost(w);
}

void thaw__worker_built(struct thaw_worker *w, struct thaw_version *v)
{
    if (w->building == v)
        w->building = NULL;
    w->relost = 0;
    if (w->closing) { /* a cancelled build of a deleted worker */
        if (w->on_built)
            w->on_built(w, v);
        thaw__version_retire(v);
        return;
    }
    if (v->state != VER_READY && w->keep_serving && w->current && w->current != v &&
        (w->current->state == VER_READY || w->current->state == VER_BUILDING)) {
        /* a refused deploy: the serving version and its config stay */
        if (w->current->state == VER_READY && !w->current->chan)
            lost_and_failed(w->current, v);
        thaw_config_free(&w->cfg);
        w->cfg = w->kept_cfg;
        memset(&w->kept_cfg, 0, sizeof(w->kept_cfg));
        if (w->on_built)
            w->on_built(w, v);
        thaw__version_retire(v);
        return;
    }
    /* the kept config is the deploy's way back: a serving version built
     * again meanwhile (it was cold) must not take it away */
    if (!w->building)
        thaw_config_free(&w->kept_cfg);
    switch_to(w, v);
    if (v->state == VER_READY) {
        thaw__pool_run_queue(v);
        thaw__pool_ensure_spares(v);
    } else {
        /* in `thaw dev` a broken build is what the user wants to see: it
         * becomes current and answers 500 with its error until fixed (in
         * thaw serve, only when nothing served before, and without it) */
        char why[512];
        thaw__pool_fail_queue(v, 500, thaw__version_answer(v, why, sizeof(why)));
    }
    if (w->on_built)
        w->on_built(w, v);
}

int thaw_worker_init(struct thaw_worker *w, uv_loop_t *loop,
                     struct thaw_zygote *z, struct thaw_zygote *preload,
                     const char *dir, const char *state_dir, struct thaw_config *cfg,
                     const struct thaw_limits *lim, const struct thaw_policy *policy,
                     thaw_built_cb on_built, void *data)
{
    memset(w, 0, sizeof(*w));
    w->policy = policy;
    w->loop = loop;
    w->zygote = z;
    w->preload = preload;
    w->limits = *lim;
    w->dir = strdup(dir);
    w->state_dir = strdup(state_dir);
    w->on_built = on_built;
    w->data = data;
    return thaw_worker_rebuild(w, cfg);
}

void thaw__worker_maybe_evict(struct thaw_worker *w, uint64_t now)
{
    struct thaw_version *v = w->current;
    struct thaw_instance *i;
    long long t = w->limits.template_idle_timeout_ms;
    uint64_t last;

    if (t <= 0 || !v || v->state != VER_READY || w->building || v->queue_head || w->stopping)
        return;
    last = v->last_request_ms > v->ready_ms ? v->last_request_ms : v->ready_ms;
    if (now - last <= (uint64_t)t)
        return;
    for (i = v->instances; i; i = i->next)
        if (i->state == INST_LIVE && (i->inflight || i->background))
            return;
    thaw_log("worker %s: no traffic for %lld ms (template_idle_timeout_ms): its template "
             "is evicted; the next request builds it again", v->name, t);
    w->current = NULL;
    w->cold = 1;
    w->cold_since_ms = now;
    w->metrics.template_evictions++;
    thaw__version_retire(v); /* idle instances and the template exit */
}

void thaw__worker_wake(struct thaw_worker *w)
{
    struct thaw_version *v;

    if (!w->cold)
        return;
    w->cold = 0;
    thaw_log("worker %s: building its evicted template again (cold for %llu ms)",
             w->cfg.name ? w->cfg.name : "worker",
             (unsigned long long)(uv_now(w->loop) - w->cold_since_ms));
    if (!(v = thaw__version_new(w))) {
        w->cold = 1;
        return;
    }
    w->current = v; /* requests wait in its queue */
    v->woken = 1;
    if (v->state == VER_FAILED)
        thaw__worker_built(w, v);
}

int thaw_worker_rebuild(struct thaw_worker *w, struct thaw_config *cfg)
{
    struct thaw_version *v;

    /* a deploy to a cold worker in thaw serve: the serving version is
     * built again too, so it serves meanwhile and stays if the deploy is
     * refused */
    if (w->cold && w->keep_serving)
        thaw__worker_wake(w);
    w->cold = 0;

    thaw_config_free(&w->kept_cfg);
    if (w->keep_serving)
        w->kept_cfg = w->cfg; /* back in place if this build fails */
    else
        thaw_config_free(&w->cfg);
    w->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    thaw_do_alarms_follow(w); /* re-armed from disk at the first */
    v = thaw__version_new(w);
    if (!v)
        return -1;
    w->building = v;
    if (!w->current)
        w->current = v; /* the first requests wait for the first build */
    if (v->state == VER_FAILED)
        thaw__worker_built(w, v);
    return 0;
}

void thaw_worker_set_error(struct thaw_worker *w, const char *msg)
{
    struct thaw_version *v = thaw__version_failed(w, msg);

    if (v)
        thaw__worker_built(w, v);
}

void thaw_worker_stats(struct thaw_worker *w, struct thaw_worker_stats *st)
{
    struct thaw_version *v;
    struct thaw_instance *i;

    memset(st, 0, sizeof(*st));
    for (v = w->versions; v; v = v->next) {
        st->queued += v->queue_len;
        st->templates += thaw_proc_alive(&v->tmpl);
        for (i = v->instances; i; i = i->next) {
            if (i->state != INST_LIVE)
                continue;
            st->instances++;
            if (i->private_kb > 0)
                st->private_kb += i->private_kb;
        }
    }
}

/* ---- shutdown and close ------------------------------------------------ */

int thaw_worker_alive(struct thaw_worker *w)
{
    struct thaw_version *v;
    struct thaw_instance *i;
    int n = 0;

    for (v = w->versions; v; v = v->next) {
        n += thaw_proc_alive(&v->tmpl);
        for (i = v->instances; i; i = i->next)
            n += thaw_proc_alive(&i->proc);
    }
    return n;
}

static void stop_own_zygote(struct thaw_worker *w)
{
    if (w->own_zygote) {
        thaw_zygote_free(w->own_zygote);
        w->own_zygote = NULL;
    }
}

void thaw_worker_terminate(struct thaw_worker *w, int sig)
{
    struct thaw_version *v;
    struct thaw_instance *i;

    w->stopping = 1;
    stop_own_zygote(w);
    for (v = w->versions; v; v = v->next) {
        thaw_proc_signal(&v->tmpl, sig);
        for (i = v->instances; i; i = i->next)
            thaw_proc_signal(&i->proc, sig);
    }
}

static void maybe_closed(struct thaw_worker *w)
{
    /* n_versions, not the list: a version leaves the list when its last
     * reference drops, and its memory (which points at w) goes later */
    if (!w->closing || w->n_versions || w->tick_on)
        return;
    w->closing = 0; /* once */
    thaw_config_free(&w->cfg);
    thaw_config_free(&w->kept_cfg);
    free(w->dir);
    free(w->state_dir);
    w->dir = w->state_dir = NULL;
    if (w->on_closed)
        w->on_closed(w);
}

void thaw__worker_version_freed(struct thaw_worker *w)
{
    maybe_closed(w);
}

static void on_tick_closed(uv_handle_t *h)
{
    struct thaw_worker *w = h->data;

    w->tick_on = 0;
    maybe_closed(w);
}

void thaw_worker_close(struct thaw_worker *w, void (*on_closed)(struct thaw_worker *w))
{
    static const char msg[] = "503 Service Unavailable: the worker was deleted while "
                              "this request was in flight\n";
    struct thaw_version *v, *next;

    w->stopping = 1;
    w->closing = 1;
    w->on_closed = on_closed;
    w->current = w->building = NULL;
    thaw_do_alarms_close(w); /* a deleted worker's alarms never fire */
    thaw_do_live_close(w);
    stop_own_zygote(w);
    thaw_do_ws_worker_closed(w); /* its objects' sockets (src/do/ws.c) */
    for (v = w->versions; v; v = next) {
        next = v->next; /* v may leave the list (never its memory: deferred) */
        thaw__version_kill(v, 503, msg);
    }
    if (w->tick_on && !uv_is_closing((uv_handle_t *)&w->tick))
        uv_close((uv_handle_t *)&w->tick, on_tick_closed);
    maybe_closed(w);
}
