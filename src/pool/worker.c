/* A worker: its versions over time, and which one is current. */
#include <stdlib.h>
#include <string.h>

#include "pool/pool-internal.h"
#include "util/log.h"

static void switch_to(struct thaw_worker *w, struct thaw_version *v)
{
    struct thaw_version *old = w->current;

    w->current = v;
    if (old && old != v) {
        thaw__pool_requeue(old, v);
        thaw__version_retire(old);
    }
}

void thaw__worker_built(struct thaw_worker *w, struct thaw_version *v)
{
    if (w->building == v)
        w->building = NULL;
    if (v->state != VER_READY && w->keep_serving && w->current && w->current != v &&
        (w->current->state == VER_READY || w->current->state == VER_BUILDING)) {
        /* a refused deploy: the serving version and its config stay */
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
         * becomes current and answers 500 with its error until fixed */
        thaw__pool_fail_queue(v, 500, v->error);
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
        st->templates += v->pidfd >= 0 && thaw__pidfd_alive(v->pidfd);
        for (i = v->instances; i; i = i->next) {
            if (i->state != INST_LIVE)
                continue;
            st->instances++;
            if (i->private_kb > 0)
                st->private_kb += i->private_kb;
        }
    }
}
