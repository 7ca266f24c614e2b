/* Bindings: what a worker reaches through `env` (KV, D1, static assets) and
 * thaw's own services (outbound fetch). They live in the supervisor, so a
 * worker touches only what its config names: an instance asks with a
 * BIND_CALL frame (ipc-proto.h), the binding's kind performs the call on
 * the event loop (or the libuv threadpool for blocking work such as
 * SQLite) and answers with BIND_REPLY.
 *
 * Each kind is one file in src/bind/ exporting a `struct thaw_bind_kind`;
 * bind.c lists them. A kind reads its own part of the worker config when a
 * version is created (open), and answers calls addressed to the binding
 * names it registered. Python's side of every kind is a module in
 * python/workers/ (see workers/_bind.py).
 *
 * Lifetime: a version owns a `struct thaw_bindings` set; every call in
 * flight holds a reference on it, so a kind's handle stays valid until its
 * last call ended even when the version is gone. */
#ifndef THAW_BIND_H
#define THAW_BIND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/buf.h"

struct thaw_chan;
struct thaw_ipc_frame;
struct thaw_bindings;
struct thaw_bind_call;

/* What a kind may use when it opens its bindings. */
struct thaw_policy;
struct thaw_worker;

struct thaw_bind_env {
    uv_loop_t *loop;
    const char *worker_name;
    const char *worker_dir;  /* absolute */
    const char *state_dir;   /* absolute: local data (KV, D1) lives under it */
    json_t *config;          /* the worker's whole config (borrowed) */
    const char *config_file; /* for messages: "wrangler.toml" */
    /* thaw serve: the operator's policy (src/policy/policy.h); the config
     * is tenant input that may narrow it, never widen it. NULL: thaw dev */
    const struct thaw_policy *policy;
    /* the worker whose version opens the set (src/pool/pool.h): Durable
     * Object calls are routed to its instances. NULL in unit tests */
    struct thaw_worker *worker;
    /* the worker's ws_max_message limit (outbound WebSockets: 1009 over it) */
    long long ws_max_message;
};

struct thaw_bind_kind {
    const char *name; /* "kv", "d1", "assets", "fetch": for the log */
    /* Reads the kind's own config keys and registers each binding with
     * thaw_bindings_add(). Returns 0, or -1 with a message naming the config
     * file, the key and the fix, or THAW_BIND_INTERNAL when the config is
     * fine and thaw could not set the binding up (a store it cannot
     * create, no memory): thaw's fault, not the worker's. */
    int (*open)(const struct thaw_bind_env *env, struct thaw_bindings *set,
                char *err, size_t errlen);
    /* Performs one call of a binding this kind registered. Must end it
     * (thaw_bind_ok, _ok_body, _fail or _end) now or later, exactly once. */
    void (*call)(void *impl, struct thaw_bind_call *call);
    /* The set is gone and no call is pending: free impl. */
    void (*close)(void *impl);
};

/* ---- a call, as a kind sees it -------------------------------------- */

struct thaw_bind_call {
    uint32_t id;
    const char *binding;   /* its name in env, e.g. "MY_KV" */
    const char *op;        /* e.g. "get" */
    json_t *args;          /* parsed arguments; JSON null when none */
    const char *body;      /* request body sent with the call, or NULL */
    size_t body_len;
    const char *worker;    /* the worker's name, for the log */
    /* Set by the kind when it has work to stop: called at most once, when
     * the instance cancels the call or goes away before the call ended.
     * The call must still be ended; replies after this are dropped. */
    void (*on_cancel)(struct thaw_bind_call *call);
    void *data;            /* the kind's */
    /* Set by a kind whose call stays open for messages (an outbound
     * WebSocket): the instance's BIND_WS_* frames on the call, type as
     * the frame's (THAW_IPC_BIND_WS_TEXT, _BINARY, _CLOSE). Without it
     * such a frame is a protocol error. */
    void (*on_message)(struct thaw_bind_call *call, int type, const void *p, size_t n);

    /* private to bind.c */
    struct thaw_bind_peer *peer;
    struct thaw_bindings *set;
    struct thaw_buf in;     /* body being received */
    int receiving;
    int replied;            /* head sent (streaming) */
    int cancelled;
    int bad_args;           /* its JSON did not parse: fails at dispatch */
    struct thaw_bind_call *next, *prev;
};

/* The whole answer: result is stolen (NULL means JSON null). */
void thaw_bind_ok(struct thaw_bind_call *call, json_t *result);
/* The whole answer with a file descriptor (a connected socket) that rides
 * on the reply (THAW_IPC_F_FD): takes ownership of fd, which is closed
 * once sent, or at once when nobody listens any more. */
void thaw_bind_ok_fd(struct thaw_bind_call *call, json_t *result, int fd);
/* An answer with a body (bytes of any size, sent in chunks). */
void thaw_bind_ok_body(struct thaw_bind_call *call, json_t *result,
                       const void *body, size_t n);
/* Fails the call: Python raises errclass (a builtin exception name such as
 * "TypeError", "ValueError", "PermissionError", "TimeoutError",
 * "ConnectionError", "OSError"; any other name raises workers.JsException
 * with that name) with the message. */
void thaw_bind_fail(struct thaw_bind_call *call, const char *errclass,
                    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Streaming answers: a head, then body bytes as they come, then an end
 * (error NULL, or a message: Python's body read then raises). */
void thaw_bind_begin(struct thaw_bind_call *call, json_t *head);
/* 0, or -1 when nobody listens any more (the kind should stop and end). */
int thaw_bind_data(struct thaw_bind_call *call, const void *p, size_t n);
void thaw_bind_end(struct thaw_bind_call *call, const char *error);
/* After thaw_bind_begin: one whole message of an open socket (type
 * THAW_IPC_BIND_WS_*; at most THAW_IPC_MAX_PAYLOAD bytes). 0, or -1 when
 * nobody listens any more. */
int thaw_bind_message(struct thaw_bind_call *call, int type, const void *p, size_t n);
/* Calls of the same instance to the same binding not yet ended, call
 * itself left out (an outbound WebSocket counts its instance's sockets). */
int thaw_bind_siblings(const struct thaw_bind_call *call);
/* Whether the instance's channel is backed up: a streaming kind should
 * pause its source and try again later (a timer). */
int thaw_bind_congested(const struct thaw_bind_call *call);

/* ---- the set of one version ------------------------------------------ */

#define THAW_BIND_INTERNAL (-2)

/* Opens every kind's bindings for a worker config. NULL with err on a
 * problem: *internal says whether it is thaw's (THAW_BIND_INTERNAL from a
 * kind) or the config's. */
struct thaw_bindings *thaw_bindings_open(const struct thaw_bind_env *env, int *internal,
                                         char *err, size_t errlen);
/* For kinds' open(): name must be unique in the set (else -1 and err). */
int thaw_bindings_add(struct thaw_bindings *set, const char *name,
                      const struct thaw_bind_kind *kind, void *impl,
                      char *err, size_t errlen);
void thaw_bindings_release(struct thaw_bindings *set);
/* For kinds' open(): fn(arg) runs once, when the version that owns the set
 * is built and serves (thaw_bindings_ready): how a kind records what a
 * deploy applied (Durable Object migrations). free_fn(arg) when the set
 * goes, ready or not. 0, or -1 with err. */
int thaw_bindings_on_ready(struct thaw_bindings *set, void (*fn)(void *arg),
                           void (*free_fn)(void *arg), void *arg, char *err, size_t errlen);
void thaw_bindings_ready(struct thaw_bindings *set);
/* The impl registered as `name` when it is of `kind`, else NULL (how the
 * HTTP side reaches a version's static assets). */
void *thaw_bindings_find(struct thaw_bindings *set, const char *name,
                         const struct thaw_bind_kind *kind);

/* ---- the instance side, embedded in each instance ---------------------- */

struct thaw_bind_peer {
    struct thaw_chan *chan;
    struct thaw_bindings *set;
    const char *worker;
    uint32_t instance_id;
    struct thaw_bind_call *calls; /* not yet ended */
    int n_calls;
};

void thaw_bind_peer_init(struct thaw_bind_peer *peer, struct thaw_chan *chan,
                         struct thaw_bindings *set, const char *worker,
                         uint32_t instance_id);
/* Handles BIND_CALL, BIND_DATA, BIND_END and BIND_CANCEL frames of the
 * instance. Returns 1 when f was one of them, 0 otherwise, -1 when the
 * instance broke the protocol (the caller kills it). */
int thaw_bind_peer_frame(struct thaw_bind_peer *peer, const struct thaw_ipc_frame *f);
/* The instance is gone: cancels its calls. */
void thaw_bind_peer_close(struct thaw_bind_peer *peer);

/* mkdir -p for a kind's data directory (mode 0700). 0 or -errno. */
int thaw_bind_mkdirs(const char *path);

/* Most calls one instance may have in flight, and the largest body one
 * call may send (KV's 25 MiB values, with room for framing). */
#define THAW_BIND_MAX_CALLS 4096
#define THAW_BIND_MAX_BODY (32u * 1024 * 1024)

#endif
