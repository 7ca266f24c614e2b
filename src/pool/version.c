/* A version of a worker: one config built into a template process, the
 * instances forked from it, and the requests that wait for one.
 *
 * States (enum thaw_version_state, pool.h):
 *
 *   BUILDING --BUILT--> READY --retire--> DRAINING --no live instance--> CLOSING
 *       |                  |                 ^                               |
 *       +--BUILD_ERR, the template died--> FAILED --retire--+       last ref dropped
 *                                                                            v
 *                                                                          freed
 *
 * - retire (thaw__version_retire): a newer version took over, the
 *   template was evicted, a deploy was refused, or the worker is deleted
 *   (thaw__version_kill, which also kills every process at once).
 * - DRAINING -> CLOSING happens in one function, version_release(): the
 *   version's processes are told to go (the template channel closed, the
 *   template killed) and its resources let go of. A pid namespace or
 *   cgroup teardown of the version belongs there.
 * - The memory goes in one place, version_free(), once the reference count
 *   is 0: the worker's reference (dropped by version_release), one per
 *   instance struct (dropped when its process handle closed), one for the
 *   template's process handle (dropped when that handle closed), one for
 *   its build's deadline timer (pool/build-deadline.h; dropped when
 *   version_release's uv_close of it completed). So every
 *   uv handle of the version is closed before its memory goes. The free
 *   itself waits for the next loop iteration (a uv_idle): the last
 *   reference often drops deep in a call chain that still holds v. Not a
 *   uv_check: the last reference often drops in a close callback, after
 *   the iteration's check phase, and an active check handle does not keep
 *   the loop from sleeping in epoll: an idle thaw freed a deleted
 *   worker's version (and removed its cgroups) only at its next event.
 *
 * Every process is watched through a pidfd that its forker sent
 * (pool/proc.h): the supervisor sees every death, though only the zygote
 * is its child. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/build-deadline.h"
#include "pool/memwatch.h"
#include "pool/output.h"
#include "pool/pool-internal.h"
#include "pool/procops.h"
#include "sandbox/uids.h"
#include "sandbox/cgroup.h"
#include "util/log.h"
#include "zygote/client.h"

/* ---- references and the free ------------------------------------------ */

static struct thaw_version *to_free;
static uv_idle_t reaper;
static int reaper_on;

/* Memory cgroups the kernel did not let go of yet (their last processes
 * were still exiting) are removed again every MEMCG_RETRY_MS, by a timer
 * that runs only while some wait. */
#define MEMCG_RETRY_MS 200
static uv_timer_t memcg_retry;
static int memcg_retry_on;

#define MEMCG_OVERDUE_MS 5000

static void on_memcg_retry(uv_timer_t *t)
{
    char msg[768];

    thaw_memcg_reap();
    while (thaw_memcg_overdue(MEMCG_OVERDUE_MS, msg, sizeof(msg)))
        thaw_log("%s", msg);
    if (!thaw_memcg_pending())
        uv_timer_stop(t);
}

static void remove_memcg(uv_loop_t *loop, long memcg)
{
    thaw_memcg_remove(memcg);
    if (!thaw_memcg_pending())
        return;
    if (!memcg_retry_on) {
        uv_timer_init(loop, &memcg_retry);
        uv_unref((uv_handle_t *)&memcg_retry);
        memcg_retry_on = 1;
    }
    if (!uv_is_active((uv_handle_t *)&memcg_retry))
        uv_timer_start(&memcg_retry, on_memcg_retry, MEMCG_RETRY_MS, MEMCG_RETRY_MS);
}

static void version_free(struct thaw_version *v)
{
    struct thaw_worker *w = v->worker;

    remove_memcg(w->loop, v->memcg);
    thaw_bindings_release(v->bindings);
    thaw_sb_uid_put(v->uid_slot);
    thaw_outpipe_free(v->out); /* its last line still reaches the worker */
    free(v->error);
    free(v->lost_answer);
    free(v->name);
    free(v);
    w->n_versions--;
    thaw__worker_version_freed(w);
}

static void on_reap(uv_idle_t *h)
{
    while (to_free) {
        struct thaw_version *v = to_free;
        to_free = v->free_next;
        version_free(v);
    }
    uv_idle_stop(h);
}

void thaw__version_ref(struct thaw_version *v)
{
    v->refs++;
}

void thaw__version_unref(struct thaw_version *v)
{
    struct thaw_worker *w = v->worker;
    struct thaw_version **pp;

    if (--v->refs > 0)
        return;
    for (pp = &w->versions; *pp; pp = &(*pp)->next)
        if (*pp == v) {
            *pp = v->next;
            break;
        }
    /* v->next stays: a loop over the worker's versions may stand on v */
    v->free_next = to_free;
    to_free = v;
    if (!reaper_on) {
        /* referenced: while a version waits to be freed the loop must
         * run once more, or a closing worker would never hear it closed;
         * active, it makes that iteration's poll not block */
        uv_idle_init(w->loop, &reaper);
        reaper_on = 1;
    }
    uv_idle_start(&reaper, on_reap);
}

/* ---- DRAINING -> CLOSING ---------------------------------------------- */

static void template_closed(struct thaw_proc *p)
{
    thaw__version_unref(p->data);
}

static void close_template_chan(struct thaw_version *v)
{
    if (v->chan) {
        thaw_chan_close(v->chan);
        v->chan = NULL;
    }
}

/* Instances whose SPAWNED never came and never will (their template's
 * channel is closed): nothing else will close them. */
static void drop_unstarted(struct thaw_version *v)
{
    struct thaw_instance *i, *next;

    for (i = v->instances; i; i = next) {
        next = i->next;
        if (i->pid < 0)
            thaw__instance_dead(i, "was never started (its template is gone)");
    }
}

/* The single teardown of a version's processes and resources: called once,
 * when it is DRAINING with no live instance. */
static void version_release(struct thaw_version *v)
{
    v->state = VER_CLOSING;
    thaw__pool_fail_queue(v, 503, "503 Service Unavailable: the worker was replaced "
                          "while this request waited; retry\n");
    /* a build still on its way: the zygote kills the template it forks
     * for us (zygote/client.c), there is nobody to hand it to */
    thaw_proc_ops->forget_template(v);
    thaw__build_deadline_close(v); /* its timer holds a reference until closed */
    thaw__memwatch_close(v);       /* ... and so does this poll */
    close_template_chan(v); /* EOF: a template that serves exits by itself */
    /* one still running the top level reads no channel */
    thaw_proc_signal(&v->tmpl, SIGKILL);
    drop_unstarted(v);
    /* a running template is closed by its exit (on_template_exit), so its
     * memory cgroup is empty by the time version_free removes it */
    if (v->tmpl.state != PROC_RUNNING)
        thaw_proc_close(&v->tmpl, template_closed);
    thaw__version_unref(v); /* the worker's */
}

void thaw__version_maybe_release(struct thaw_version *v)
{
    if (v->state == VER_DRAINING && v->n_instances == 0)
        version_release(v);
}

void thaw__version_retire(struct thaw_version *v)
{
    struct thaw_instance *inst, *next;

    if (v->state == VER_DRAINING || v->state == VER_CLOSING)
        return;
    thaw__version_ref(v);
    v->state = VER_DRAINING;
    for (inst = v->instances; inst; inst = next) {
        next = inst->next;
        if (inst->state == INST_LIVE && inst->inflight == 0 && !inst->background &&
            !inst->n_cancels) /* an unanswered CANCEL: see instance_idle_check */
            thaw__instance_retire(inst);
    }
    thaw__pool_fail_queue(v, 503, "503 Service Unavailable: the worker was replaced "
                          "while this request waited; retry\n");
    thaw__version_maybe_release(v);
    thaw__version_unref(v);
}

void thaw__version_build_failed(struct thaw_version *v, enum thaw_build_fault fault,
                                const char *msg)
{
    if (v->state != VER_BUILDING)
        return;
    thaw__version_set_failed(v, fault, msg);
    thaw__version_built(v);
}

void thaw__version_cancel_build(struct thaw_version *v, enum thaw_build_fault fault,
                                const char *msg)
{
    if (v->state != VER_BUILDING)
        return;
    /* not forked yet: thaw__version_template_forked kills it on arrival */
    thaw_proc_signal(&v->tmpl, SIGKILL);
    thaw__version_build_failed(v, fault, msg); /* the worker retires it */
}

void thaw__version_kill(struct thaw_version *v, int status, const char *msg)
{
    struct thaw_instance *inst, *next;

    thaw__version_ref(v);
    /* nobody's fault, and nobody hears it: the deploy was answered 409 */
    thaw__version_cancel_build(v, THAW_FAULT_WORKER,
                               "the build was cancelled: the worker was deleted");
    thaw__pool_fail_queue(v, status, msg);
    for (inst = v->instances; inst; inst = next) {
        next = inst->next;
        thaw__instance_fail_all(inst, status, msg);
        inst->background = 0;
        thaw_proc_signal(&inst->proc, SIGKILL);
    }
    thaw__version_retire(v); /* idle now: every instance retires */
    thaw_proc_signal(&v->tmpl, SIGKILL);
    thaw__version_unref(v);
}

/* ---- the template ---------------------------------------------------- */

void thaw__version_set_failed(struct thaw_version *v, enum thaw_build_fault fault,
                              const char *msg)
{
    free(v->error);
    v->error = strdup(msg);
    v->fault = fault;
    v->state = VER_FAILED;
    if (fault == THAW_FAULT_INTERNAL) /* the answer says "internal error": the why is here */
        thaw_log("worker %s: version %u: thaw could not build it: %s", v->name, v->id, msg);
}

const char *thaw__version_answer(const struct thaw_version *v, char *buf, size_t len)
{
    const char *why;

    if (!v->worker->keep_serving)
        return v->error;
    switch (v->fault) {
    case THAW_FAULT_CONFIG: why = "its config was refused"; break;
    case THAW_FAULT_TIMEOUT: why = "its top level ran past the build timeout"; break;
    case THAW_FAULT_INTERNAL: why = "internal error"; break;
    default: why = "its top level failed"; break;
    }
    snprintf(buf, len, "500 Internal Server Error: worker '%s' could not start (%s); its "
             "owner finds why with `thaw list` / GET /v1/workers/%s and in thaw's log\n",
             v->name, why, v->name);
    return buf;
}

void thaw__version_built(struct thaw_version *v)
{
    thaw__build_deadline_stop(v); /* the timer stays until version_release */
    if (v->state == VER_READY) /* what the deploy applied counts from now */
        thaw_bindings_ready(v->bindings);
    thaw__worker_built(v->worker, v);
}

static void fields_text(const struct thaw_ipc_frame *f, char **out)
{
    struct thaw_ipc_fields it;
    const uint8_t *p;
    size_t n;

    thaw_ipc_fields_init(&it, f);
    if (thaw_ipc_next_field(&it, &p, &n) != 1) {
        p = (const uint8_t *)"";
        n = 0;
    }
    *out = strndup((const char *)p, n);
}

static void on_built_frame(struct thaw_version *v, const struct thaw_ipc_frame *f)
{
    struct thaw_worker *w = v->worker;
    struct thaw_ipc_fields it;
    const uint8_t *p;
    size_t n;
    int k = 0;

    if (v->state != VER_BUILDING || thaw__build_deadline_end(v))
        return;
    thaw_ipc_fields_init(&it, f);
    while (thaw_ipc_next_field(&it, &p, &n) == 1)
        if (++k == 3) /* module, handler kind, top level ms */
            v->top_level_ms = strtod(strndupa((const char *)p, n), NULL);
    v->build_ms = (double)(uv_hrtime() - v->build_start) / 1e6;
    v->ready_ms = uv_now(w->loop);
    if (!w->lazy_spares) {
        v->last_request_ms = v->ready_ms; /* thaw dev: an edit is activity */
    } else if (w->current && w->current != v &&
               w->current->last_request_ms > v->last_request_ms) {
        v->last_request_ms = w->current->last_request_ms; /* a deploy is not */
    }
    v->state = VER_READY;
    thaw__worker_soon(w); /* its template's idle timeout */
    thaw__version_built(v);
}

void thaw__version_template_frame(struct thaw_chan *c, const struct thaw_ipc_frame *f,
                                  int fd, void *data)
{
    struct thaw_version *v = data;
    char *text = NULL;

    switch (f->type) {
    case THAW_IPC_BUILT:
        on_built_frame(v, f);
        break;
    case THAW_IPC_BUILD_ERR:
        if (v->state == VER_BUILDING)
            thaw__build_err(v, f); /* whose fault it says (pool/build-deadline.h) */
        break;
    case THAW_IPC_SPAWNED:
        fields_text(f, &text);
        if (fd >= 0) {
            thaw__instance_spawned(v, f->stream, (pid_t)atol(text), fd);
            fd = -1;
        }
        break;
    case THAW_IPC_SPAWN_ERR:
        fields_text(f, &text);
        thaw_log("worker %s: template could not fork an instance: %s", v->name, text);
        thaw__instance_spawned(v, f->stream, -1, -1);
        break;
    }
    free(text);
    if (fd >= 0)
        close(fd);
}

/* The template's channel or process ended (whichever came first). */
static void template_gone(struct thaw_version *v, const char *why)
{
    struct thaw_worker *w = v->worker;

    close_template_chan(v);
    thaw__version_ref(v);
    drop_unstarted(v);
    if (v->state == VER_BUILDING && thaw__build_deadline_end(v)) {
        /* stopped by its deadline, which said why */
    } else if (v->state == VER_BUILDING) {
        char msg[512];
        if (thaw_memcg_oom_kills(v->memcg) > 0)
            snprintf(msg, sizeof(msg),
                     "the template process of worker %s was killed while running the top "
                     "level of %s: the worker's memory limit of %lld MB was reached "
                     "(memory_mb x (max_instances + 1))", v->name, w->cfg.main, v->memcg_mb);
        else
            snprintf(msg, sizeof(msg),
                     "the template process of worker %s %s while running the top "
                     "level of %s (a crash in an extension, os._exit() or a kill)",
                     v->name, why, w->cfg.main);
        thaw__version_set_failed(v, THAW_FAULT_WORKER, msg);
        thaw__version_built(v);
    } else if (v->state == VER_READY && !w->stopping) {
        thaw_log("worker %s: template of version %u %s; rebuilding", v->name,
                 v->id, why);
        if (w->current == v && w->on_lost)
            w->on_lost(w);
    }
    thaw__version_unref(v);
}

void thaw__version_template_chan_close(struct thaw_chan *c, int err, void *data)
{
    struct thaw_version *v = data;

    v->chan = NULL; /* closed by the channel itself after this */
    template_gone(v, "exited");
}

static void on_template_exit(struct thaw_proc *p)
{
    struct thaw_version *v = p->data;

    thaw__version_ref(v);
    if (v->chan)
        template_gone(v, "exited");
    thaw_proc_close(p, template_closed); /* its reference goes with it */
    thaw__version_unref(v);
}

void thaw__version_template_forked(void *data, pid_t pid, int pidfd, const char *err)
{
    struct thaw_version *v = data;

    if (pid < 0) {
        char msg[512];
        snprintf(msg, sizeof(msg), "could not start a template: %s", err);
        close_template_chan(v);
        thaw__version_build_failed(v, THAW_FAULT_INTERNAL, msg); /* the zygote's, not the worker's */
        return;
    }
    if (thaw_proc_watch(&v->tmpl, v->worker->loop, pid, pidfd, on_template_exit)) {
        thaw_log("worker %s: cannot watch its template (pid %d): killed", v->name, (int)pid);
        thaw__version_build_failed(v, THAW_FAULT_INTERNAL, "cannot watch the template process");
        template_gone(v, "could not be watched");
        return;
    }
    thaw__version_ref(v); /* the handle's, dropped in template_closed */
    /* released while the zygote forked it, its build already given up
     * (its deadline, a delete), or its worker stopping: no top level runs
     * unwatched */
    if (v->state == VER_CLOSING || v->state == VER_FAILED || v->worker->stopping)
        thaw_proc_signal(&v->tmpl, SIGKILL);
}

struct thaw_version *thaw__version_alloc(struct thaw_worker *w)
{
    struct thaw_version *v = calloc(1, sizeof(*v));

    if (!v)
        return NULL;
    v->id = ++w->next_version;
    v->worker = w;
    w->n_versions++;
    v->name = strdup(w->cfg.name ? w->cfg.name : "worker");
    thaw_proc_init(&v->tmpl, v);
    v->refs = 1; /* the worker's, until version_release */
    v->state = VER_BUILDING;
    v->cost_us = -1;
    v->build_start = uv_hrtime();
    v->next = w->versions;
    w->versions = v;
    thaw__tick_start(w);
    return v;
}

struct thaw_version *thaw__version_failed(struct thaw_worker *w, const char *msg)
{
    struct thaw_version *v = thaw__version_alloc(w);

    if (v)
        thaw__version_set_failed(v, THAW_FAULT_CONFIG, msg);
    return v;
}
