/* Shared between pool.c (routing) and version.c (process lifecycle). */
#ifndef THAW_POOL_INTERNAL_H
#define THAW_POOL_INTERNAL_H

#include "bind/bind.h"
#include "pool/pool.h"

enum inst_state { INST_LIVE, INST_RETIRED };

struct thaw_instance {
    uint32_t id;
    enum inst_state state;
    struct thaw_version *ver;
    struct thaw_chan *chan;
    pid_t pid;
    int pidfd;
    uv_poll_t pid_poll;
    int pid_poll_on;
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
    struct thaw_exchange *ex_head;
    struct thaw_bind_peer bind;  /* its binding calls in flight */
    int background;         /* ctx.wait_until() tasks it still runs */
    uint64_t background_since_ms;
    struct thaw_instance *next;
};

/* version.c */
struct thaw_version *thaw__version_new(struct thaw_worker *w);
/* A version with no process that answers every request with msg. */
struct thaw_version *thaw__version_failed(struct thaw_worker *w, const char *msg);
void thaw__version_retire(struct thaw_version *v);
struct thaw_instance *thaw__instance_spawn(struct thaw_version *v);
void thaw__instance_retire(struct thaw_instance *inst);
void thaw__instance_dead(struct thaw_instance *inst, const char *why);
int thaw__pidfd_alive(int pidfd);

/* worker.c: a build finished (v is READY or FAILED) */
void thaw__worker_built(struct thaw_worker *w, struct thaw_version *v);
/* The tick: evict the current template after template_idle_timeout_ms
 * without traffic. */
void thaw__worker_maybe_evict(struct thaw_worker *w, uint64_t now);
/* A cold worker gets a request: build its config again (the request
 * waits in the new version's queue). */
void thaw__worker_wake(struct thaw_worker *w);

/* pool.c */
void thaw__pool_run_queue(struct thaw_version *v);
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
void thaw__tick_start(struct thaw_worker *w);
/* An instance died: when the kernel's OOM killer acted in its version's
 * memory cgroup since the last such death, its requests get 503 saying
 * the worker's memory limit was reached (and the log says so). */
void thaw__memcg_blame(struct thaw_instance *inst);
/* Kills an instance for a limit: its requests get `status` and msg. */
void thaw__instance_kill(struct thaw_instance *inst, int status, const char *msg);
/* What a process is doing, from /proc/PID/syscall. */
enum { THAW_PROC_IN_EPOLL, THAW_PROC_RUNNING, THAW_PROC_IN_SYSCALL };
int thaw__proc_syscall_state(pid_t pid);

#endif
