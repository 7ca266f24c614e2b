#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bind/bind.h"
#include "bind/kinds.h"
#include "ipc/chan.h"
#include "ipc/codec.h"
#include "util/log.h"

/* Every kind thaw knows, in the order their bindings are opened. */
static const struct thaw_bind_kind *const KINDS[] = {
    THAW_BIND_KINDS NULL
};

struct binding {
    char *name;
    const struct thaw_bind_kind *kind;
    void *impl;
};

struct ready_hook {
    void (*fn)(void *arg);
    void (*free_fn)(void *arg);
    void *arg;
    struct ready_hook *next;
};

struct thaw_bindings {
    int refs;
    struct binding *items;
    int n, cap;
    struct ready_hook *ready;
};

int thaw_bind_mkdirs(const char *path)
{
    char tmp[4096];
    size_t i, n = strlen(path);

    if (n == 0 || n >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == 0) {
            char c = tmp[i];
            tmp[i] = 0;
            if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                return -errno;
            tmp[i] = c;
        }
    }
    return 0;
}

/* ---- the set ------------------------------------------------------------ */

int thaw_bindings_add(struct thaw_bindings *set, const char *name,
                      const struct thaw_bind_kind *kind, void *impl,
                      char *err, size_t errlen)
{
    int i;

    for (i = 0; i < set->n; i++) {
        if (strcmp(set->items[i].name, name) == 0) {
            snprintf(err, errlen,
                     "two bindings are named \"%s\" (a %s and a %s binding): "
                     "give each binding its own name", name,
                     set->items[i].kind->name, kind->name);
            return -1;
        }
    }
    if (set->n == set->cap) {
        int cap = set->cap ? set->cap * 2 : 8;
        struct binding *items = realloc(set->items, (size_t)cap * sizeof(*items));
        if (!items) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        set->items = items;
        set->cap = cap;
    }
    set->items[set->n].name = strdup(name);
    set->items[set->n].kind = kind;
    set->items[set->n].impl = impl;
    set->n++;
    return 0;
}

int thaw_bindings_on_ready(struct thaw_bindings *set, void (*fn)(void *arg),
                           void (*free_fn)(void *arg), void *arg, char *err, size_t errlen)
{
    struct ready_hook *h = calloc(1, sizeof(*h));

    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->fn = fn;
    h->free_fn = free_fn;
    h->arg = arg;
    h->next = set->ready;
    set->ready = h;
    return 0;
}

void thaw_bindings_ready(struct thaw_bindings *set)
{
    struct ready_hook *h;

    for (h = set ? set->ready : NULL; h; h = h->next) {
        if (h->fn)
            h->fn(h->arg);
        h->fn = NULL; /* once */
    }
}

static void set_free(struct thaw_bindings *set)
{
    struct ready_hook *h;
    int i;

    while ((h = set->ready)) {
        set->ready = h->next;
        if (h->free_fn)
            h->free_fn(h->arg);
        free(h);
    }

    for (i = set->n - 1; i >= 0; i--) {
        if (set->items[i].kind->close)
            set->items[i].kind->close(set->items[i].impl);
        free(set->items[i].name);
    }
    free(set->items);
    free(set);
}

struct thaw_bindings *thaw_bindings_open(const struct thaw_bind_env *env, int *internal,
                                         char *err, size_t errlen)
{
    struct thaw_bindings *set = calloc(1, sizeof(*set));
    size_t k;
    int rc;

    *internal = 0;
    if (!set) {
        *internal = 1;
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    set->refs = 1;
    for (k = 0; KINDS[k]; k++) {
        if (KINDS[k]->open && (rc = KINDS[k]->open(env, set, err, errlen)) < 0) {
            *internal = rc == THAW_BIND_INTERNAL;
            set_free(set);
            return NULL;
        }
    }
    return set;
}

void thaw_bindings_release(struct thaw_bindings *set)
{
    if (set && --set->refs == 0)
        set_free(set);
}

static struct binding *find(struct thaw_bindings *set, const char *name)
{
    int i;

    for (i = 0; set && i < set->n; i++)
        if (strcmp(set->items[i].name, name) == 0)
            return &set->items[i];
    return NULL;
}

void *thaw_bindings_find(struct thaw_bindings *set, const char *name,
                         const struct thaw_bind_kind *kind)
{
    struct binding *b = find(set, name);

    return b && b->kind == kind ? b->impl : NULL;
}

/* ---- calls ------------------------------------------------------------- */

static void call_unlink(struct thaw_bind_call *call)
{
    struct thaw_bind_peer *peer = call->peer;

    if (!peer)
        return;
    if (call->prev)
        call->prev->next = call->next;
    else
        peer->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->next = call->prev = NULL;
    peer->n_calls--;
    call->peer = NULL;
}

static void call_free(struct thaw_bind_call *call)
{
    call_unlink(call);
    json_decref(call->args);
    thaw_buf_free(&call->in);
    free((char *)call->binding);
    free((char *)call->op);
    free((char *)call->worker);
    thaw_bindings_release(call->set);
    free(call);
}

static int live(const struct thaw_bind_call *call)
{
    return call->peer && call->peer->chan && !call->cancelled;
}

/* fd: -1, or one to pass with the frame (closed here in any case). */
static void send_fields(struct thaw_bind_call *call, uint8_t type, uint8_t flags,
                        int n, const char **vals, const size_t *lens, int fd)
{
    struct thaw_buf b;
    size_t mark;
    int i;

    if (!live(call)) {
        if (fd >= 0)
            close(fd);
        return;
    }
    if (fd >= 0)
        flags |= THAW_IPC_F_FD;
    thaw_buf_init(&b, THAW_IPC_HEADER_SIZE + THAW_IPC_MAX_PAYLOAD);
    if (thaw_ipc_begin(&b, type, flags, call->id, &mark) == 0) {
        for (i = 0; i < n; i++)
            if (thaw_ipc_put_field(&b, vals[i], lens[i]) < 0)
                break;
        if (i == n && thaw_ipc_end(&b, mark) == 0) {
            int with_fd = fd >= 0;
            if (thaw_chan_send(call->peer->chan, b.data, b.len, fd) == -ENOBUFS && with_fd) {
                /* the channel holds its most unsent fds (the instance is
                 * not reading): the call fails rather than never ends */
                static const char msg[] = "thaw has too many sockets waiting to be "
                                          "passed to this instance; try again";
                const char *fv[2] = {"OSError", msg};
                size_t fl[2] = {7, sizeof(msg) - 1};
                fd = -1;
                thaw_buf_free(&b);
                send_fields(call, type, 0, 2, fv, fl, -1);
                return;
            }
            fd = -1; /* the channel's now */
        } else {
            thaw_log("worker %s: binding %s.%s: reply over %d bytes dropped",
                     call->worker, call->binding, call->op, THAW_IPC_MAX_PAYLOAD);
        }
    }
    if (fd >= 0)
        close(fd);
    thaw_buf_free(&b);
}

static void send_head(struct thaw_bind_call *call, const char *outcome,
                      const char *text, uint8_t flags, int fd)
{
    const char *vals[2] = {outcome, text};
    size_t lens[2] = {strlen(outcome), strlen(text)};

    if (strlen(text) + 64 > THAW_IPC_MAX_PAYLOAD) {
        /* a result too big for one frame (a huge D1 result): say so */
        static const char msg[] = "the binding's result is over 1 MiB of JSON; "
                                  "ask for fewer rows at a time";
        vals[0] = "RangeError";
        vals[1] = msg;
        lens[0] = strlen(vals[0]);
        lens[1] = sizeof(msg) - 1;
        flags = 0;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    send_fields(call, THAW_IPC_BIND_REPLY, flags, 2, vals, lens, fd);
}

static char *result_text(json_t *result)
{
    char *s;

    if (!result)
        return strdup("null");
    s = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(result);
    return s ? s : strdup("null");
}

void thaw_bind_ok(struct thaw_bind_call *call, json_t *result)
{
    char *text = result_text(result);

    send_head(call, "ok", text ? text : "null", 0, -1);
    free(text);
    call_free(call);
}

void thaw_bind_ok_fd(struct thaw_bind_call *call, json_t *result, int fd)
{
    char *text = result_text(result);

    send_head(call, "ok", text ? text : "null", 0, fd);
    free(text);
    call_free(call);
}

void thaw_bind_begin(struct thaw_bind_call *call, json_t *head)
{
    char *text = result_text(head);

    send_head(call, "ok", text ? text : "null", THAW_IPC_F_MORE, -1);
    call->replied = 1;
    free(text);
}

int thaw_bind_data(struct thaw_bind_call *call, const void *p, size_t n)
{
    const char *s = p;

    if (!live(call))
        return -1;
    while (n > 0) {
        size_t k = n > THAW_IPC_CHUNK ? THAW_IPC_CHUNK : n;
        struct thaw_buf b;
        size_t mark;

        thaw_buf_init(&b, THAW_IPC_HEADER_SIZE + THAW_IPC_CHUNK);
        if (thaw_ipc_begin(&b, THAW_IPC_BIND_DATA, 0, call->id, &mark) == 0 &&
            thaw_ipc_put_raw(&b, s, k) == 0 && thaw_ipc_end(&b, mark) == 0)
            thaw_chan_send(call->peer->chan, b.data, b.len, -1);
        thaw_buf_free(&b);
        s += k;
        n -= k;
    }
    return 0;
}

int thaw_bind_message(struct thaw_bind_call *call, int type, const void *p, size_t n)
{
    struct thaw_buf b;
    size_t mark;
    int rc = -1;

    if (!live(call) || !call->replied)
        return -1;
    thaw_buf_init(&b, THAW_IPC_HEADER_SIZE + THAW_IPC_MAX_PAYLOAD);
    if (thaw_ipc_begin(&b, (uint8_t)type, 0, call->id, &mark) == 0 &&
        thaw_ipc_put_raw(&b, p, n) == 0 && thaw_ipc_end(&b, mark) == 0)
        rc = thaw_chan_send(call->peer->chan, b.data, b.len, -1) < 0 ? -1 : 0;
    thaw_buf_free(&b);
    return rc;
}

void thaw_bind_end(struct thaw_bind_call *call, const char *error)
{
    if (!call->replied) {
        /* ended before any head: that is a failure or an empty answer */
        if (error)
            thaw_bind_fail(call, "Error", "%s", error);
        else
            thaw_bind_ok(call, NULL);
        return;
    }
    if (error) {
        size_t len = strlen(error);
        send_fields(call, THAW_IPC_BIND_END, 0, 1, &error, &len, -1);
    } else {
        send_fields(call, THAW_IPC_BIND_END, 0, 0, NULL, NULL, -1);
    }
    call_free(call);
}

void thaw_bind_ok_body(struct thaw_bind_call *call, json_t *result,
                       const void *body, size_t n)
{
    thaw_bind_begin(call, result);
    thaw_bind_data(call, body, n);
    thaw_bind_end(call, NULL);
}

void thaw_bind_fail(struct thaw_bind_call *call, const char *errclass,
                    const char *fmt, ...)
{
    char msg[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (call->replied) {
        thaw_bind_end(call, msg);
        return;
    }
    send_head(call, errclass, msg, 0, -1);
    call_free(call);
}

int thaw_bind_siblings(const struct thaw_bind_call *call)
{
    const struct thaw_bind_call *c;
    int n = 0;

    for (c = call->peer ? call->peer->calls : NULL; c; c = c->next)
        if (c != call && strcmp(c->binding, call->binding) == 0)
            n++;
    return n;
}

int thaw_bind_congested(const struct thaw_bind_call *call)
{
    return live(call) && thaw_chan_queued(call->peer->chan) > THAW_CHAN_HIGH;
}

/* ---- the instance side ------------------------------------------------ */

void thaw_bind_peer_init(struct thaw_bind_peer *peer, struct thaw_chan *chan,
                         struct thaw_bindings *set, const char *worker,
                         uint32_t instance_id)
{
    memset(peer, 0, sizeof(*peer));
    peer->chan = chan;
    peer->set = set;
    peer->worker = worker;
    peer->instance_id = instance_id;
}

static struct thaw_bind_call *peer_find(struct thaw_bind_peer *peer, uint32_t id)
{
    struct thaw_bind_call *c;

    for (c = peer->calls; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

static char *field_str(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static void cancel(struct thaw_bind_call *call)
{
    if (call->cancelled)
        return;
    call->cancelled = 1;
    if (call->on_cancel)
        call->on_cancel(call);
}

/* The call is complete (its body arrived): hand it to its kind. */
static void dispatch(struct thaw_bind_call *call)
{
    struct binding *b = find(call->set, call->binding);

    call->receiving = 0;
    if (call->bad_args) {
        thaw_bind_fail(call, "TypeError", "the arguments of %s.%s are not valid JSON for "
                       "thaw; strings must be valid Unicode", call->binding, call->op);
        return;
    }
    if (call->in.len) {
        call->body = call->in.data;
        call->body_len = call->in.len;
    }
    if (!b) {
        thaw_bind_fail(call, "TypeError",
                       "worker %s has no binding named \"%s\" in its config",
                       call->worker, call->binding);
        return;
    }
    b->kind->call(b->impl, call);
}

static int on_call(struct thaw_bind_peer *peer, const struct thaw_ipc_frame *f)
{
    struct thaw_ipc_fields it;
    const uint8_t *p[3];
    size_t n[3];
    struct thaw_bind_call *call;
    json_error_t jerr;
    int i;

    if (peer_find(peer, f->stream))
        return -1; /* an id still in use */
    thaw_ipc_fields_init(&it, f);
    for (i = 0; i < 3; i++)
        if (thaw_ipc_next_field(&it, &p[i], &n[i]) != 1)
            return -1;
    if (peer->n_calls >= THAW_BIND_MAX_CALLS) {
        thaw_log("worker %s: instance %u has %d binding calls in flight; refusing more",
                 peer->worker, peer->instance_id, peer->n_calls);
        return -1;
    }
    call = calloc(1, sizeof(*call));
    if (!call)
        return -1;
    call->id = f->stream;
    call->binding = field_str(p[0], n[0]);
    call->op = field_str(p[1], n[1]);
    call->worker = strdup(peer->worker ? peer->worker : "?");
    call->args = n[2] ? json_loadb((const char *)p[2], n[2], JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr)
                      : json_null();
    thaw_buf_init(&call->in, THAW_BIND_MAX_BODY);
    call->set = peer->set;
    if (call->set)
        call->set->refs++;
    call->peer = peer;
    call->next = peer->calls;
    if (peer->calls)
        peer->calls->prev = call;
    peer->calls = call;
    peer->n_calls++;
    if (!call->binding || !call->op) {
        call_free(call);
        return -1;
    }
    if (!call->args) {
        /* JSON jansson refuses (a lone surrogate from Python's json.dumps):
         * the worker's data, not a broken instance */
        call->args = json_null();
        if (f->flags & THAW_IPC_F_MORE) {
            call->receiving = 1;
            call->bad_args = 1;
            return 1;
        }
        thaw_bind_fail(call, "TypeError", "the arguments of %s.%s are not valid JSON for "
                       "thaw (%s); strings must be valid Unicode", call->binding, call->op,
                       jerr.text);
        return 1;
    }
    if (f->flags & THAW_IPC_F_MORE) {
        call->receiving = 1;
        return 1;
    }
    dispatch(call);
    return 1;
}

int thaw_bind_peer_frame(struct thaw_bind_peer *peer, const struct thaw_ipc_frame *f)
{
    struct thaw_bind_call *call;

    switch (f->type) {
    case THAW_IPC_BIND_CALL:
        return on_call(peer, f);
    case THAW_IPC_BIND_DATA:
        call = peer_find(peer, f->stream);
        if (!call)
            return 1; /* a call that already failed (too big) or ended */
        if (!call->receiving)
            return -1;
        if (thaw_buf_append(&call->in, f->payload, f->len) < 0) {
            call->receiving = 0;
            thaw_buf_free(&call->in);
            thaw_bind_fail(call, "RangeError",
                           "the value sent to binding %s.%s is over %u MiB",
                           call->binding, call->op, THAW_BIND_MAX_BODY >> 20);
            return 1;
        }
        return 1;
    case THAW_IPC_BIND_END:
        call = peer_find(peer, f->stream);
        if (call && call->receiving)
            dispatch(call);
        return 1;
    case THAW_IPC_BIND_CANCEL:
        call = peer_find(peer, f->stream);
        if (call)
            cancel(call);
        return 1;
    case THAW_IPC_BIND_WS_TEXT:
    case THAW_IPC_BIND_WS_BINARY:
    case THAW_IPC_BIND_WS_CLOSE:
        call = peer_find(peer, f->stream);
        if (!call)
            return 1; /* the socket is over; the instance has not heard yet */
        if (call->receiving || !call->on_message)
            return -1;
        if (!call->cancelled)
            call->on_message(call, f->type, f->payload, f->len);
        return 1;
    default:
        return 0;
    }
}

void thaw_bind_peer_close(struct thaw_bind_peer *peer)
{
    while (peer->calls) {
        struct thaw_bind_call *call = peer->calls;

        call_unlink(call);
        if (call->receiving) {
            call_free(call); /* never reached its kind */
            continue;
        }
        cancel(call); /* the kind ends it (its replies go nowhere) */
    }
    peer->chan = NULL;
}
