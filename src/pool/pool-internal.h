/* Shared inside src/pool/: the instance object, and what each file of the
 * pool offers the others. Who owns what:
 *   worker.c    a worker: its versions (current, building, draining), and
 *               its close (thaw_worker_close)
 *   version.c   a version: its template process, its instances, its queue
 *   build.c     starting a version's template (zygote, sandbox, bindings)
 *   build-deadline.c  a build's deadline, whose fault a failed build is
 *   instance.c  an instance: its process, its channel, its requests
 *   proc.c      the process handle both use (pid, pidfd, exit)
 *   pool.c      routing: which instance serves an exchange
 *   tick.c      limits and timeouts
 *
 * An instance (instance.c):
 *   LIVE     takes requests. Its process may still be starting (SPAWN
 *            sent, pid < 0): frames queued meanwhile are read once it runs.
 *   RETIRED  its channel is closed (EOF makes it exit); no requests. Waits
 *            for its process to exit (or for its template to go, when
 *            SPAWNED never came).
 *   DEAD     out of its version's list; its process handle is closing.
 *            Freed in the close callback, which drops its version ref.
 * Its version holds one reference per instance struct until it is freed. */
#ifndef THAW_POOL_INTERNAL_H
#define THAW_POOL_INTERNAL_H

#include "bind/bind.h"
#include "pool/pool.h"
#include "pool/proc.h"

enum inst_state { INST_LIVE, INST_RETIRED, INST_DEAD };

struct thaw_instance {
    uint32_t id;
    enum inst_state state;
    struct thaw_version *ver;    /* holds a reference on it */
    struct thaw_chan *chan;
    pid_t pid;                   /* -1 until SPAWNED */
    struct thaw_proc proc;
    int inflight;
    int served;      /* requests attached so far */
    uint64_t progress_ms;   /* last frame from it (or attach while idle) */
    uint64_t idle_since_ms; /* when its last request ended */
    long long private_kb;   /* last reading of its private memory */
    uint64_t mem_read_ms;   /* when (0: never) */
    int kill_status;        /* 503 when thaw killed it for a limit ... */
    char kill_msg[256];     /* ... and why, for its requests and the log */
    int holds;
    uint64_t last_used;
    /* the tick's last CPU reading (ms) and `served` then, the start of
     * the next sample of its CPU per request (tick.c, sample_cost) */
    long long cost_cpu_ms;
    int cost_served;
    int cost_based;         /* 1 once a reading was taken */
    /* its requests, oldest first: answers mostly come in that order, so
     * finding a frame's exchange looks at the first one or two */
    struct thaw_exchange *ex_head, *ex_tail;
    /* blocked() (pool.c): the last /proc/PID/syscall reading and when
     * (uv_now ms): read at most once per BLOCKED_RECHECK_MS, not once per
     * request routed while the instance runs a long batch */
    int sys_state;
    uint64_t sys_state_ms;
    struct thaw_bind_peer bind;  /* its binding calls in flight */
    int background;         /* ctx.wait_until() tasks it still runs */
    uint64_t background_since_ms;
    /* requests thaw aborted (a limit) whose CANCEL the instance has not
     * answered yet: no request goes to it meanwhile, and one that does not
     * answer within THAW_CANCEL_GRACE_MS is stuck (tick.c kills it) */
    uint32_t *cancels;
    int n_cancels, cap_cancels;
    uint64_t cancel_ms;          /* when the oldest unanswered one was sent */
    long long cancel_cpu_base;   /* its CPU reading at its start (-1: none) */
    struct thaw_instance *next;
};

/* version.c */
struct thaw_version *thaw__version_alloc(struct thaw_worker *w);
/* A version with no process that answers every request with msg. */
struct thaw_version *thaw__version_failed(struct thaw_worker *w, const char *msg);
/* VER_FAILED with msg; fault says whose (pool.h; an internal one is logged). */
/* What a client of a FAILED version is answered. thaw dev: the error
 * itself (the developer is the client). thaw serve (keep_serving): only
 * whose fault it is; the client is the public, and a traceback or thaw's
 * own error text is for the worker's owner (the admin API, the log). */
const char *thaw__version_answer(const struct thaw_version *v, char *buf, size_t len);
void thaw__version_set_failed(struct thaw_version *v, enum thaw_build_fault fault,
                              const char *msg);
/* Ends a build (v is READY or FAILED now): the worker decides. */
void thaw__version_built(struct thaw_version *v);
/* READY/FAILED/BUILDING -> DRAINING: no new requests; idle instances go
 * now, busy ones when idle, the template with the last of them. */
void thaw__version_retire(struct thaw_version *v);
/* Like retire, but nothing is waited for: every request fails with
 * status/msg and every process is killed (the worker is deleted). */
void thaw__version_kill(struct thaw_version *v, int status, const char *msg);
/* A build failed (no-op unless v is BUILDING): FAILED with fault and
 * msg, and the worker is told (thaw__version_built). */
void thaw__version_build_failed(struct thaw_version *v, enum thaw_build_fault fault,
                                const char *msg);
/* The cancel path of a build (a delete, a build timeout): its template is
 * killed (or when it is forked), then as thaw__version_build_failed; the
 * worker's on_built sees v FAILED and the worker retires it. */
void thaw__version_cancel_build(struct thaw_version *v, enum thaw_build_fault fault,
                                const char *msg);
/* A DRAINING version's live instances went: release it when none is left. */
void thaw__version_maybe_release(struct thaw_version *v);
void thaw__version_ref(struct thaw_version *v);
void thaw__version_unref(struct thaw_version *v);
/* the template process (version.c), once the zygote forked it */
void thaw__version_template_forked(void *data, pid_t pid, int pidfd, const char *err);
void thaw__version_template_frame(struct thaw_chan *c, const struct thaw_ipc_frame *f,
                                  int fd, void *data);
void thaw__version_template_chan_close(struct thaw_chan *c, int err, void *data);

/* build.c: starts a new version's template; a version that cannot start
 * comes back FAILED. */
struct thaw_version *thaw__version_new(struct thaw_worker *w);

/* instance.c */
struct thaw_instance *thaw__instance_spawn(struct thaw_version *v);
/* SPAWNED (pid and pidfd, taken over) or SPAWN_ERR (pid < 0) for stream id */
void thaw__instance_spawned(struct thaw_version *v, uint32_t id, pid_t pid, int pidfd);
void thaw__instance_retire(struct thaw_instance *inst);
/* The process is gone or useless: its requests fail, it is freed. */
void thaw__instance_dead(struct thaw_instance *inst, const char *why);
/* A CANCEL for stream sid went to it (thaw aborted the request, whose CPU
 * reading at its start was cpu_base, -1 when not read): it owes an answer.
 * -1 when it cannot be recorded (out of memory: the instance was killed). */
int thaw__instance_cancel_sent(struct thaw_instance *inst, uint32_t sid, long long cpu_base);
/* A RESP_END or RESP_ABORT for a stream thaw no longer serves: 1 when it
 * answered one of its unanswered CANCELs. */
int thaw__instance_cancel_answered(struct thaw_instance *inst, uint32_t sid);

/* worker.c: a build finished (v is READY or FAILED) */
void thaw__worker_built(struct thaw_worker *w, struct thaw_version *v);
/* v was freed: a closing worker may be done */
void thaw__worker_version_freed(struct thaw_worker *w);
/* The tick: evict the current template after template_idle_timeout_ms
 * without traffic. */
void thaw__worker_maybe_evict(struct thaw_worker *w, uint64_t now);
/* A cold worker gets a request: build its config again (the request
 * waits in the new version's queue). */
void thaw__worker_wake(struct thaw_worker *w);
/* A request found the current version without a template and its rebuild
 * failed: another rebuild is asked of the owner (on_lost), one at a time,
 * and only when the zygote would start (zygote/client.h's backoff). */
void thaw__worker_relost(struct thaw_worker *w);

/* pool.c */
void thaw__pool_run_queue(struct thaw_version *v);
/* ex to inst: counted in flight there, its head (and whatever waited in
 * ex->pending) sent on the instance's channel. */
void thaw__pool_attach(struct thaw_instance *inst, struct thaw_exchange *ex, const void *head,
                       size_t len);
/* dohost.c: ex off the park it waits in (ex->park). */
void thaw__pool_unpark_one(struct thaw_exchange *ex);
/* Forks spares until the version has limits.prefork of them (or is at
 * max_instances): a spare has the loop and the fork paid for before a
 * request needs it. */
void thaw__pool_ensure_spares(struct thaw_version *v);
void thaw__pool_requeue(struct thaw_version *from, struct thaw_version *to);
void thaw__pool_fail_queue(struct thaw_version *v, int status, const char *msg);
void thaw__instance_on_frame(struct thaw_instance *inst, const struct thaw_ipc_frame *f);
void thaw__instance_fail_all(struct thaw_instance *inst, int status, const char *msg);
/* Ends one exchange with an error from thaw (a limit), cancelling it in
 * its instance. */
void thaw__exchange_abort(struct thaw_exchange *ex, int status, const char *msg);
void thaw__pool_expire_queue(struct thaw_version *v, uint64_t now, long long timeout_ms);

/* tick.c */
/* How long an instance has to answer a CANCEL of a request thaw aborted
 * (RESP_ABORT, python/thaw_runtime/instance.py) before it counts as stuck:
 * an event loop that runs reads it within milliseconds; one held by a
 * handler that never yields (a busy loop, a long C call) reads nothing. */
#define THAW_CANCEL_GRACE_MS 1000
/* Makes the worker's timer (tick.c) ready; it runs only while armed. */
void thaw__tick_start(struct thaw_worker *w);
/* Wakes the worker's checks at `when` (uv_now ms) unless they run sooner. */
void thaw__worker_arm(struct thaw_worker *w, uint64_t when);
/* Something changed that may bring a deadline (a request started or
 * queued, an instance forked, a version ready, background work began):
 * the checks run shortly and compute the next deadline. */
void thaw__worker_soon(struct thaw_worker *w);
/* An instance died: when the kernel's OOM killer acted in its version's
 * memory cgroup since the last such death, its requests get 503 saying
 * the worker's memory limit was reached (and the log says so). */
void thaw__memcg_blame(struct thaw_instance *inst);
/* Logs OOM kills in v's memory cgroup not told of yet; returns the count. */
long long thaw__memcg_logged(struct thaw_version *v);
/* Kills an instance for a limit: its requests get `status` and msg. */
void thaw__instance_kill(struct thaw_instance *inst, int status, const char *msg);
/* What a process is doing, from /proc/PID/syscall. */
enum { THAW_PROC_IN_EPOLL, THAW_PROC_RUNNING, THAW_PROC_IN_SYSCALL };
int thaw__proc_syscall_state(pid_t pid);
/* utime + stime of a process in ms; -1 when it is gone. */
long long thaw__proc_cpu_ms(pid_t pid);

#endif
