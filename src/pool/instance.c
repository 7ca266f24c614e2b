/* Instances: processes forked from a version's template, each with its own
 * channel, serving requests. States and ownership are in pool-internal.h:
 * LIVE -> RETIRED -> DEAD -> freed, or LIVE -> DEAD -> freed. An instance
 * struct is freed in exactly one place (instance_closed), after its
 * process handle is closed; it holds a reference on its version until
 * then. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pool/pool-internal.h"
#include "sandbox/cgroup.h"
#include "sandbox/hostpid.h"
#include "util/log.h"

static uint32_t next_instance_id = 1;

void thaw__instance_kill(struct thaw_instance *inst, int status, const char *msg)
{
    if (inst->kill_status)
        return;
    inst->kill_status = status;
    snprintf(inst->kill_msg, sizeof(inst->kill_msg), "%s", msg);
    thaw_log("worker %s: killing instance %u (pid %d): %s", inst->ver->name, inst->id,
             (int)inst->pid, msg);
    thaw_proc_signal(&inst->proc, SIGKILL);
}

static void unlink_instance(struct thaw_instance *inst)
{
    struct thaw_instance **pp;

    for (pp = &inst->ver->instances; *pp; pp = &(*pp)->next)
        if (*pp == inst) {
            *pp = inst->next;
            break;
        }
    inst->next = NULL;
}

/* The one place an instance's memory goes. */
static void instance_closed(struct thaw_proc *p)
{
    struct thaw_instance *inst = p->data;
    struct thaw_version *v = inst->ver;

    free(inst->cancels);
    free(inst);
    thaw__version_unref(v);
}

/* -> DEAD: out of routing, channel and bindings closed, process handle
 * closing (the process was signalled or is gone). */
static void instance_close(struct thaw_instance *inst)
{
    struct thaw_version *v = inst->ver;

    if (inst->state == INST_DEAD)
        return;
    if (inst->state == INST_LIVE)
        v->n_instances--;
    inst->state = INST_DEAD;
    unlink_instance(inst);
    thaw_bind_peer_close(&inst->bind);
    if (inst->chan) {
        thaw_chan_close(inst->chan);
        inst->chan = NULL;
    }
    if (!thaw_proc_close(&inst->proc, instance_closed))
        instance_closed(&inst->proc);
}

void thaw__instance_dead(struct thaw_instance *inst, const char *why)
{
    struct thaw_version *v = inst->ver;

    if (inst->state == INST_DEAD)
        return;
    thaw__version_ref(v); /* v is used below, after its instance went */
    thaw__memcg_blame(inst);
    if (inst->state == INST_LIVE && !v->worker->stopping && !inst->kill_status)
        thaw_log("worker %s: instance %u (pid %d) %s", v->name, inst->id,
                 (int)inst->pid, why);
    if (inst->kill_status)
        thaw__instance_fail_all(inst, inst->kill_status, inst->kill_msg);
    else
        thaw__instance_fail_all(inst, 502,
            "502 Bad Gateway: the worker's instance exited while handling this "
            "request (a crash, os._exit() or a kill); thaw started a new one for "
            "the next request.\n");
    instance_close(inst);
    /* queued requests need an instance that is alive */
    if (v->state == VER_READY) {
        thaw__pool_run_queue(v);
        thaw__pool_ensure_spares(v);
    }
    thaw__version_maybe_release(v);
    thaw__version_unref(v);
}

static void on_instance_exit(struct thaw_proc *p)
{
    thaw__instance_dead(p->data, "exited");
}

static void on_instance_frame(struct thaw_chan *c, const struct thaw_ipc_frame *f,
                              int fd, void *data)
{
    if (fd >= 0)
        close(fd);
    thaw__instance_on_frame(data, f);
}

static void on_instance_chan_close(struct thaw_chan *c, int err, void *data)
{
    struct thaw_instance *inst = data;

    inst->chan = NULL;
    thaw_bind_peer_close(&inst->bind);
    if (err && err != -ECONNRESET && inst->state == INST_LIVE)
        thaw_log("worker %s: instance %u channel failed: %s", inst->ver->name,
                 inst->id, err == THAW_IPC_E_TOOBIG || err == THAW_IPC_E_BADHDR
                               ? "malformed frame" : strerror(-err));
    /* the channel is how requests reach it: without it the instance is
     * useless even if the process lingers */
    thaw_proc_signal(&inst->proc, SIGKILL);
    thaw__instance_dead(inst, "closed its channel");
}

static void on_instance_drain(struct thaw_chan *c, void *data)
{
    struct thaw_instance *inst = data;
    struct thaw_exchange *ex, *next;

    for (ex = inst->ex_head; ex; ex = next) {
        next = ex->next;
        if (ex->ops->on_writable)
            ex->ops->on_writable(ex);
    }
}

struct thaw_instance *thaw__instance_spawn(struct thaw_version *v)
{
    struct thaw_instance *inst;
    int sv[2];

    if (!v->chan)
        return NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        thaw_log("socketpair: %s", strerror(errno));
        return NULL;
    }
    if (!(inst = calloc(1, sizeof(*inst)))) {
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    inst->id = next_instance_id++;
    /* born idle: the idle timeout counts from now */
    inst->progress_ms = inst->idle_since_ms = uv_now(v->worker->loop);
    inst->ver = v;
    inst->pid = -1;
    inst->state = INST_LIVE;
    thaw_proc_init(&inst->proc, inst);
    thaw__version_ref(v);
    inst->next = v->instances;
    v->instances = inst;
    v->n_instances++;
    if (thaw_chan_open(v->worker->loop, sv[0], on_instance_frame,
                       on_instance_chan_close, inst, &inst->chan)) {
        close(sv[0]);
        close(sv[1]);
        inst->chan = NULL;
        instance_close(inst);
        return NULL;
    }
    thaw_chan_on_drain(inst->chan, on_instance_drain);
    thaw_bind_peer_init(&inst->bind, inst->chan, v->bindings, v->name, inst->id);
    /* the instance reads frames queued before it even exists: no wait
     * (the channel takes sv[1] over, also when the send fails) */
    if (thaw_chan_send_fields(v->chan, THAW_IPC_SPAWN, inst->id, sv[1], 0, NULL)) {
        instance_close(inst); /* the one way out: no free beside the close */
        return NULL;
    }
    thaw__worker_soon(v->worker); /* its idle timeout */
    return inst;
}

void thaw__instance_retire(struct thaw_instance *inst)
{
    struct thaw_version *v = inst->ver;

    if (inst->state != INST_LIVE)
        return;
    inst->state = INST_RETIRED;
    v->n_instances--;
    /* EOF on its channel makes the instance exit by itself */
    thaw_bind_peer_close(&inst->bind);
    if (inst->chan) {
        thaw_chan_close(inst->chan);
        inst->chan = NULL;
    }
    /* a process that runs: its exit closes it. Not yet started (SPAWNED
     * not in): SPAWNED or its template's end does. Gone already: now. */
    if (inst->proc.state != PROC_RUNNING && inst->pid > 0) {
        instance_close(inst);
        return;
    }
    thaw__version_ref(v);
    thaw__version_maybe_release(v);
    thaw__version_unref(v);
}

int thaw__instance_cancel_sent(struct thaw_instance *inst, uint32_t sid, long long cpu_base)
{
    if (inst->n_cancels == inst->cap_cancels) {
        int cap = inst->cap_cancels ? 2 * inst->cap_cancels : 4;
        uint32_t *p = realloc(inst->cancels, (size_t)cap * sizeof(*p));
        if (!p) {
            /* it cannot be watched: it must not keep a request it may
             * never stop */
            thaw__instance_kill(inst, 500, "500 Internal Server Error: internal error\n");
            return -1;
        }
        inst->cancels = p;
        inst->cap_cancels = cap;
    }
    if (inst->n_cancels == 0) {
        inst->cancel_ms = uv_now(inst->ver->worker->loop);
        inst->cancel_cpu_base = cpu_base;
        thaw__worker_soon(inst->ver->worker); /* its grace is watched */
    }
    inst->cancels[inst->n_cancels++] = sid;
    return 0;
}

int thaw__instance_cancel_answered(struct thaw_instance *inst, uint32_t sid)
{
    int k;

    for (k = 0; k < inst->n_cancels; k++)
        if (inst->cancels[k] == sid) {
            inst->cancels[k] = inst->cancels[--inst->n_cancels];
            return 1;
        }
    return 0;
}

static struct thaw_instance *find_instance(struct thaw_version *v, uint32_t id)
{
    struct thaw_instance *i;

    for (i = v->instances; i; i = i->next)
        if (i->id == id)
            return i;
    return NULL;
}

void thaw__instance_spawned(struct thaw_version *v, uint32_t id, pid_t pid, int pidfd)
{
    struct thaw_instance *inst = find_instance(v, id);

    if (pid < 0) {
        if (inst)
            thaw__instance_dead(inst, "could not be forked");
        return;
    }
    if (!inst || inst->pid > 0) {
        close(pidfd); /* its struct went already: its channel is closed */
        return;
    }
    /* the template names its instances by their pid in the version's pid
     * namespace; /proc reads need the host's (sandbox/hostpid.h) */
    inst->pid = pid = thaw_sb_host_pid(pidfd, pid);
    thaw_memcg_prefer_victim(pid);
    if (thaw_proc_watch(&inst->proc, v->worker->loop, pid, pidfd, on_instance_exit)) {
        thaw__instance_dead(inst, "could not be watched");
        return;
    }
    if (v->state == VER_READY && v->last_request_ms)
        thaw__pool_ensure_spares(v); /* it waited for this one to start */
}
