/* Worker versions, their templates and instances, and which instance
 * serves a request. The HTTP side (server/) hands each request to
 * thaw_pool_dispatch() as an exchange; the pool attaches it to an instance
 * (forking one from the template when none is free) or queues it until one
 * is, and feeds the instance's response frames back to the exchange. */
#ifndef THAW_POOL_H
#define THAW_POOL_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "config/config.h"
#include "config/limits.h"
#include "pool/metrics.h"
#include "pool/proc.h"
#include "ipc/chan.h"
#include "util/buf.h"

struct thaw_zygote;
struct thaw_outpipe;
struct thaw_instance;
struct thaw_policy;
struct thaw_version;
struct thaw_exchange;


/* What the pool calls on the HTTP side for each exchange. */
struct thaw_exchange_ops {
    void (*on_resp_head)(struct thaw_exchange *ex, int status, const char *reason,
                         const char **names, const char **values, int n);
    void (*on_resp_body)(struct thaw_exchange *ex, const char *p, size_t n);
    void (*on_resp_end)(struct thaw_exchange *ex);
    /* the instance died or broke the stream; status is 502 before the head
     * was sent, 0 after (the connection must be cut). */
    void (*on_fail)(struct thaw_exchange *ex, int status, const char *msg);
    /* the instance can take more request body again */
    void (*on_writable)(struct thaw_exchange *ex);
    /* after a 101: a THAW_IPC_WS_* frame of the worker's WebSocket */
    void (*on_ws)(struct thaw_exchange *ex, int type, const char *p, size_t n);
};

/* A request in flight, from its head to its response's end. Owned by the
 * HTTP connection; attached to an instance while one serves it. */
struct thaw_exchange {
    uint32_t sid;
    const struct thaw_exchange_ops *ops;
    void *conn;
    struct thaw_version *ver;
    struct thaw_instance *inst;  /* NULL while queued */
    struct thaw_buf pending;     /* frames held until attached */
    int req_done;                /* REQ_END queued */
    int head_seen;               /* response head arrived */
    int holding;                 /* asked the instance to pause (slow client) */
    int tunnel;                  /* a WebSocket after its 101: no wall-clock
                                  * limit; cpu_ms counts only while its
                                  * instance is silent (tick.c) */
    /* a call to a Durable Object (src/do/call.c): it goes to the
     * version's object host (thaw__pool_host), never by load */
    int pinned;
    uint32_t inst_id;            /* the instance that took it (for the log) */
    int cold;                    /* it was that instance's first request */
    uint64_t queued_ms;          /* uv_now() when it started waiting */
    uint64_t started_ms;         /* uv_now() when an instance took it */
    long long cpu_base_ms;       /* the instance's CPU time then */
    /* why it failed, for callers that care (src/do/ws.c): THAW_EX_OVER_LIMIT
     * it ran past cpu_ms or request_timeout_ms itself; THAW_EX_BYSTANDER
     * its instance was killed for another exchange's limit (tick.c) */
    int over_limit;
    /* parked (thaw_pool_park): held by its owner's list, not by a
     * version (src/do/live.c: an object's event waiting while the object
     * moves to a new version's host) */
    struct thaw_park *park;
    struct thaw_exchange *next, *prev; /* on the instance, queue or park */
};

/* Exchanges held aside in arrival order, their frames in ex->pending,
 * by an owner that dispatches them later (thaw_pool_unpark). A release
 * of one (its client left) takes it off. */
struct thaw_park {
    struct thaw_exchange *head, *tail;
};

#define THAW_EX_OVER_LIMIT 1
#define THAW_EX_BYSTANDER 2

/* A version's states (src/pool/version.c says more):
 *   BUILDING  its template runs the worker's top level; requests queue
 *   READY     serves; FAILED answers every request with its error
 *   DRAINING  replaced, evicted or refused: no new requests, instances
 *             finish what they hold
 *   CLOSING   no live instance left: its template was told to go; the
 *             memory goes when the last reference is dropped */
enum thaw_version_state { VER_CONFIG, VER_BUILDING, VER_READY, VER_FAILED, VER_DRAINING,
                          VER_CLOSING };

/* Whose fault a failed build is (VER_FAILED), for the deploy's answer:
 * the worker's code (422 with its traceback), its config (400 naming the
 * file and key; no code ran), thaw's own (500 "internal error", details in
 * the log), or its top level ran past build_timeout_ms or cpu_ms (422;
 * the error's first line says where it was, src/pool/build-deadline.h). */
enum thaw_build_fault {
    THAW_FAULT_WORKER = 0, THAW_FAULT_CONFIG, THAW_FAULT_INTERNAL, THAW_FAULT_TIMEOUT
};

struct thaw_worker;

/* Called when a build of the worker finished (ready or failed). */
typedef void (*thaw_built_cb)(struct thaw_worker *w, struct thaw_version *v);

struct thaw_worker {
    uv_loop_t *loop;
    struct thaw_zygote *zygote;   /* plain: CPython, the stdlib and thaw's SDK */
    struct thaw_zygote *preload;  /* NULL, or one that also holds the shared base */
    struct thaw_zygote *own_zygote; /* isolation = "per-worker": started at its first build */
    struct thaw_limits limits;
    /* server/http.c: its requests holding a slot while their body still
     * comes (at most half its slots; the rest wait for theirs first) */
    int body_streams;
    /* thaw serve: the operator's policy (src/policy/policy.h), which the
     * worker's config may narrow, never widen; NULL in thaw dev */
    const struct thaw_policy *policy;
    char *dir;
    char *state_dir;             /* local data of its bindings (KV, D1) */
    struct thaw_config cfg;      /* of the current version */
    struct thaw_version *current; /* serves new requests */
    struct thaw_version *building;
    struct thaw_version *versions; /* all live ones, newest first */
    uint32_t next_version;
    thaw_built_cb on_built;
    /* the current version's template died: the owner rebuilds */
    void (*on_lost)(struct thaw_worker *w);
    /* a request asked for another such rebuild (pool.c): one at a time,
     * until a build ends (or, should the owner have dropped the ask, its
     * config not loading, until build_timeout_ms has passed) */
    int relost;
    uint64_t relost_ms;
    /* thaw serve: a build that fails does not replace a ready current
     * version (a refused deploy); thaw dev shows the failure instead */
    int keep_serving;
    struct thaw_config kept_cfg; /* the serving version's, while one builds */
    /* thaw serve: a build is not traffic (no spare for a worker nobody
     * called: thousands of them at start), traffic carries over deploys */
    int lazy_spares;
    /* its template was evicted (template_idle_timeout_ms): no current
     * version; the next request (or deploy) builds cfg again */
    int cold;
    uint64_t cold_since_ms;
    int tick_paused;             /* cold, nothing left to watch */
    /* every request log line of this worker (thaw serve's `tail`) */
    void (*on_log)(struct thaw_worker *w, const char *line, size_t n);
    /* every line its processes write to fd 1 or 2 (pool/output.h; thaw
     * serve's `tail`); request -1: none, or not the worker's own tag */
    void (*on_output)(struct thaw_worker *w, long long request, const char *msg, size_t n,
                      int truncated);
    void *data;
    int stopping;
    /* thaw_worker_close() was called: on_closed once every version, its
     * processes and its timer are gone */
    int closing;
    void (*on_closed)(struct thaw_worker *w);
    int n_versions;              /* allocated and not yet freed (version.c) */
    struct thaw_metrics metrics;
    uv_timer_t tick;             /* limits, timeouts, idle instances */
    int tick_on;
    unsigned ticks;
    void *do_alarms;             /* its Durable Objects' alarms (src/do/alarms.h) */
    void *do_live;               /* and which of them are live (src/do/live.h) */
};

struct thaw_version {
    uint32_t id;
    struct thaw_worker *worker;
    enum thaw_version_state state;
    char *error;                 /* build error text (VER_FAILED) */
    enum thaw_build_fault fault; /* ... and whose fault it is */
    /* its build's deadline timer, from the build's start until
     * version_release closes it (pool/build-deadline.h) */
    struct thaw_build_deadline *deadline;
    uint64_t build_start;        /* uv_hrtime() when the build was asked */
    double build_ms;             /* ask to BUILT, as the supervisor saw it */
    double top_level_ms;         /* the worker's top level, timed in the template */
    char *name;
    struct thaw_chan *chan;      /* to the template */
    struct thaw_zygote *zygote;  /* the one it was forked from */
    struct thaw_bindings *bindings; /* what env names (src/bind/bind.h) */
    struct thaw_outpipe *out;    /* its processes' fd 1 and 2 (pool/output.h) */
    struct thaw_proc tmpl;       /* its template process */
    /* one each for: its worker (until released), each instance struct,
     * its template's process handle while open, its build's deadline
     * timer while open, its memory cgroup's watch while open; freed at 0 */
    int refs;
    struct thaw_instance *instances;
    int n_instances;
    struct thaw_exchange *queue_head, *queue_tail;
    int queue_len;
    uint64_t last_request_ms;    /* uv_now() of the latest request */
    uint64_t ready_ms;           /* uv_now() when its template was built */
    int woken;                   /* the serving config built again after an eviction */
    /* thaw serve: its template is gone and the build that was to replace
     * it failed: what a request no live instance can take is answered at
     * once, rather than after its queue timeout (worker.c) */
    char *lost_answer;
    int prefault_tried;          /* an instance was profiled (pool/prefault.h) */
    int warm_sent;               /* an instance's WARM hint went to the template */
    uint32_t do_host;            /* the instance that hosts its Durable Objects, 0: none */
    /* its instances' CPU per request (µs), sampled by the tick (tick.c,
     * sample_cost); -1: not known yet. pick() (pool.c) packs requests onto
     * a busy instance while their CPU fits PACK_BUDGET_US */
    int cost_us;
    unsigned uid_slot;           /* its host uid as root (sandbox/uids.h), or 0 */
    long memcg;                  /* its memory cgroup (sandbox/cgroup.h), 0: none */
    long long memcg_mb;          /* ... and its limit */
    long long memcg_oom_logged;  /* OOM kills in it the log has told of */
    long long memcg_oom_blamed;  /* ... and that a dead instance was blamed for */
    struct thaw_memwatch *memwatch; /* the kernel's word of OOM kills in it
                                     * (pool/memwatch.h), until released */
    struct thaw_version *next;   /* in its worker's list, until its refs are 0 */
    struct thaw_version *free_next; /* then on the list freed after this iteration */
};

/* Starts a worker for the project in dir (config already loaded into cfg,
 * which the worker takes ownership of) and builds its first version. Its
 * bindings keep local data under state_dir. policy: the operator's (thaw
 * serve; it must outlive the worker), NULL when the config is trusted. */
int thaw_worker_init(struct thaw_worker *w, uv_loop_t *loop,
                     struct thaw_zygote *z, struct thaw_zygote *preload,
                     const char *dir, const char *state_dir, struct thaw_config *cfg,
                     const struct thaw_limits *lim, const struct thaw_policy *policy,
                     thaw_built_cb on_built, void *data);
/* Builds a new version from cfg (taken over); when it is built it becomes
 * current and the old one drains. */
int thaw_worker_rebuild(struct thaw_worker *w, struct thaw_config *cfg);
/* Makes the worker answer every request with a 500 carrying msg (a config
 * that no longer loads in `thaw dev`). */
void thaw_worker_set_error(struct thaw_worker *w, const char *msg);
/* Stops every process of the worker: SIGTERM now. Returns how many are
 * still alive; thaw_worker_kill() sends SIGKILL to those. */
int thaw_worker_alive(struct thaw_worker *w);
void thaw_worker_terminate(struct thaw_worker *w, int sig);
/* Deletes the worker: its queued and running requests fail (503), its
 * processes are killed, its timers closed; on_closed(w) is called once
 * every version, pidfd and handle is gone, after which the caller frees
 * w's memory. The caller must not touch the worker meanwhile. */
void thaw_worker_close(struct thaw_worker *w, void (*on_closed)(struct thaw_worker *w));

/* A new exchange for a request whose head frame (REQ_HEAD, built by the
 * caller with sid) is in `head`. Returns 0; on error fills status/msg for
 * the caller to answer with. */
void thaw_exchange_init(struct thaw_exchange *ex, const struct thaw_exchange_ops *ops,
                        void *conn);
void thaw_pool_dispatch(struct thaw_worker *w, struct thaw_exchange *ex,
                        const void *head, size_t len);
void thaw_exchange_body(struct thaw_exchange *ex, const char *p, size_t n);
void thaw_exchange_end(struct thaw_exchange *ex);
/* A frame of the exchange's stream (a WebSocket message: THAW_IPC_WS_*),
 * payload at most THAW_IPC_MAX_PAYLOAD. */
void thaw_exchange_frame(struct thaw_exchange *ex, uint8_t type, const char *p, size_t n);
/* Whether the caller should stop reading request body for now. */
int thaw_exchange_congested(const struct thaw_exchange *ex);
/* The HTTP side is done with the exchange (response ended, or the client
 * left: then the instance is told to cancel). */
void thaw_exchange_release(struct thaw_exchange *ex);
/* The client is slow: stop/resume reading the instance serving ex. */
void thaw_exchange_hold(struct thaw_exchange *ex, int hold);

uint32_t thaw_next_sid(void);

/* Parks ex (not dispatched yet) with its frames (head, len) at the end
 * of p. 0, or -1 when they cannot be held (ex untouched). */
int thaw_pool_park(struct thaw_park *p, struct thaw_exchange *ex, const void *head,
                   size_t len);
/* The first exchange of p, taken off it (dispatch it with head NULL), or
 * NULL when p is empty. */
struct thaw_exchange *thaw_pool_unpark(struct thaw_park *p);

/* The Durable Object host of v, any state (an old version's host still
 * finishing calls): whether it is live, so objects may be in its memory
 * (src/do/live.c). One with kill_status counts until it is dead: what it
 * already sent may still be read. */
int thaw_pool_host_live(struct thaw_version *v);
/* Sends ex (a pinned event) to that host: 0, or -1 when v has none live
 * (ex untouched). after_ms (uv_now ms), when not 0: ex waits for events
 * sent there by then, so its time limit runs from then, plus the grace a
 * cancelled call has to end (THAW_CANCEL_GRACE_MS): past that, what it
 * waits for will not end by itself. It has at most its limit from now,
 * and at least the smaller of that and ten graces (a host that answers
 * at once is not hurried). */
int thaw_pool_host_send(struct thaw_version *v, struct thaw_exchange *ex, const void *head,
                        size_t len, uint64_t after_ms);
/* Kills that host (its calls fail with msg); it is dead when its process
 * is. 1 when this sent the kill, 0 when none was live or it was dying. */
int thaw_pool_host_kill(struct thaw_version *v, const char *msg);

struct thaw_worker_stats {
    int instances;        /* live, all versions */
    int templates;        /* versions whose template process is up */
    int queued;
    long long private_kb; /* sum over instances, as last measured */
};
void thaw_worker_stats(struct thaw_worker *w, struct thaw_worker_stats *st);

#endif
