/* Live Durable Objects and their eviction (live.h). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "do/live.h"
#include "ipc/codec.h"
#include "util/log.h"
#include "util/outcome.h"

/* A live object. */
struct obj {
    long long last;          /* uv_now() of its last event; -1 while its evict is out */
    uint32_t ver;            /* the version whose host got its events (0: none live) */
    uint64_t sent;           /* uv_now() when its last event went there */
    struct thaw_park waiting; /* its events while it moves (MOVING) */
    int moving;              /* a handoff is out */
};

/* objects: "CLASS\nID" -> its struct obj, held as an integer (jansson's
 * hash, one allocation of ours; a touch per call stays O(1)). Freed when
 * it leaves the map (forget()). */
struct thaw_do_live {
    struct thaw_worker *w;   /* NULL once closed */
    uv_timer_t timer;
    json_t *objects;
    int refs;                /* the worker's, the timer handle's, each evict's and handoff's */
};

/* An evict or a handoff event out to a host. */
struct evict {
    struct thaw_outcome_ex o; /* first: the ops get &e->o.ex */
    struct thaw_do_live *l;
    char *key;
    uint32_t ver;            /* the host's version (handoff) */
};

static struct obj *obj_of(json_t *v)
{
    return v ? (struct obj *)(intptr_t)json_integer_value(v) : NULL;
}

static struct obj *find(struct thaw_do_live *l, const char *key)
{
    return obj_of(json_object_get(l->objects, key));
}

static void forget(struct thaw_do_live *l, const char *key)
{
    free(find(l, key));
    json_object_del(l->objects, key);
}

static struct thaw_version *version(struct thaw_worker *w, uint32_t id)
{
    struct thaw_version *v;

    for (v = w->versions; id && v; v = v->next)
        if (v->id == id)
            return v;
    return NULL;
}

/* Whether an old version's host may hold the object in its memory. */
static struct thaw_version *held_by_old(struct thaw_worker *w, const struct obj *o)
{
    struct thaw_version *v;

    if (!o->ver || (w->current && o->ver == w->current->id))
        return NULL;
    v = version(w, o->ver);
    return v && thaw_pool_host_live(v) ? v : NULL;
}

static int put_pair(struct thaw_buf *b, const char *k, const char *v)
{
    return thaw_ipc_put_str(b, k) || thaw_ipc_put_str(b, v);
}

int thaw__do_event(struct thaw_buf *b, uint32_t sid, const char *cls, const char *id,
                   const char *op, const char *const *extra)
{
    size_t mark;

    if (thaw_ipc_begin(b, THAW_IPC_REQ_HEAD, 0, sid, &mark) || thaw_ipc_put_str(b, "POST") ||
        thaw_ipc_put_str(b, "http://durable-object/event") ||
        put_pair(b, ":event", "durable-object") || put_pair(b, ":do-class", cls) ||
        put_pair(b, ":do-id", id) || put_pair(b, ":do-op", op))
        return -1;
    for (; extra && extra[0] && extra[1]; extra += 2)
        if (put_pair(b, extra[0], extra[1]))
            return -1;
    if (thaw_ipc_end(b, mark) || thaw_ipc_begin(b, THAW_IPC_REQ_END, 0, sid, &mark) ||
        thaw_ipc_end(b, mark))
        return -1;
    return 0;
}

static void unref(struct thaw_do_live *l)
{
    if (--l->refs)
        return;
    json_decref(l->objects);
    free(l);
}

static void on_timer(uv_timer_t *t);

/* For the first object due; stopped while none is. */
static void arm(struct thaw_do_live *l)
{
    long long timeout = l->w->limits.do_idle_timeout_ms;
    uint64_t now = uv_now(l->w->loop), next = 0;
    const char *key;
    json_t *v;
    int any = 0;

    json_object_foreach(l->objects, key, v) {
        struct obj *o = obj_of(v);
        uint64_t due = (uint64_t)o->last + (uint64_t)timeout;
        if (o->last < 0 || o->moving)
            continue;
        if (!any || due < next)
            next = due;
        any = 1;
    }
    if (!any) {
        uv_timer_stop(&l->timer);
        return;
    }
    uv_timer_start(&l->timer, on_timer, next > now ? next - now : 0, 0);
}

static void handed_off(struct evict *e, int ok);

static void evicted(struct evict *e, int ok)
{
    struct thaw_do_live *l = e->l;
    struct obj *o;

    thaw_exchange_release(&e->o.ex);
    if (l->w && (o = find(l, e->key)) && o->last < 0) {
        if (ok || e->o.status != 409)
            forget(l, e->key); /* gone (or gone with its host) */
        else
            o->last = (long long)uv_now(l->w->loop); /* busy: later */
        arm(l);
    }
    free(e->key);
    free(e);
    unref(l);
}

static void ended(struct evict *e, int ok)
{
    if (e->ver)
        handed_off(e, ok);
    else
        evicted(e, ok);
}

/* The event's end (util/outcome.h): it went only if it answered 200; a
 * failure (msg, never NULL: fail_default) did not, whatever its status. */
static void on_outcome(struct thaw_outcome_ex *o, int status, const char *msg)
{
    ended((struct evict *)o, !msg && status == 200);
}

/* Sends event op ("evict" or "handoff") for the object (key "CLASS\nID")
 * to the host of version v; the answer comes to ended(). 0, or -1 when v
 * has no live host (or out of memory). */
static int send_op(struct thaw_do_live *l, const char *key, const char *op,
                   struct thaw_version *v, uint64_t after_ms)
{
    const char *nl = strchr(key, '\n');
    struct evict *e;
    struct thaw_buf b;
    char cls[256];
    int rc;

    if (!v || !nl || (size_t)(nl - key) >= sizeof(cls) || !(e = calloc(1, sizeof(*e))))
        return -1;
    if (!(e->key = strdup(key))) {
        free(e);
        return -1;
    }
    memcpy(cls, key, (size_t)(nl - key));
    cls[nl - key] = 0;
    e->l = l;
    e->ver = strcmp(op, "handoff") == 0 ? v->id : 0;
    thaw_exchange_init(&e->o.ex, &thaw_outcome_ops, e);
    e->o.done = on_outcome;
    e->o.fail_default = "its host failed";
    e->o.ex.pinned = 1;
    e->o.ex.req_done = 1;
    thaw_buf_init(&b, 2 * THAW_IPC_MAX_PAYLOAD);
    l->refs++;
    rc = thaw__do_event(&b, e->o.ex.sid, cls, nl + 1, op, NULL) ? -1 :
         thaw_pool_host_send(v, &e->o.ex, b.data, b.len, after_ms);
    thaw_buf_free(&b);
    if (rc) {
        l->refs--;
        thaw_exchange_release(&e->o.ex);
        free(e->key);
        free(e);
    }
    return rc;
}

/* ---- moving to the current version ------------------------------------ */

static void move(struct thaw_do_live *l, const char *key, struct obj *o, uint64_t after_ms);

/* The object is nowhere else now: its events go to the current version,
 * in the order they came (one that ends at once may send another: it
 * queues behind them). */
static void arrived(struct thaw_do_live *l, const char *key, struct obj *o)
{
    struct thaw_exchange *ex;

    o->moving = 0;
    o->ver = 0;
    l->refs++;
    while (l->w && (o = find(l, key)) && !o->moving && o->waiting.head) {
        if (held_by_old(l->w, o)) { /* another switch meanwhile: again */
            move(l, key, o, o->sent);
            break;
        }
        ex = thaw_pool_unpark(&o->waiting);
        o->ver = l->w->current ? l->w->current->id : 0;
        o->sent = uv_now(l->w->loop);
        thaw_pool_dispatch(l->w, ex, NULL, 0);
    }
    if (l->w)
        arm(l);
    unref(l);
}

/* Asks the old host holding the object to let it go, after the events it
 * has of it (sent there by after_ms: the handoff's time runs from then,
 * as theirs did; 0: from now). */
static void move(struct thaw_do_live *l, const char *key, struct obj *o, uint64_t after_ms)
{
    o->moving = 1;
    if (send_op(l, key, "handoff", held_by_old(l->w, o), after_ms))
        arrived(l, key, o); /* no host holds it (any more) */
}

static void handed_off(struct evict *e, int ok)
{
    struct thaw_do_live *l = e->l;
    struct thaw_version *old;
    struct obj *o;

    thaw_exchange_release(&e->o.ex);
    if (l->w && (o = find(l, e->key)) && o->moving) {
        old = held_by_old(l->w, o);
        if (!ok && old) {
            /* it did not let go within the call time limit (or could not
             * say so): its host goes, and the object with it; the next
             * handoff is answered when it is dead */
            if (thaw_pool_host_kill(old, "503 Service Unavailable: a Durable Object of this "
                                    "instance did not let go of it after a new version "
                                    "took over\n"))
                thaw_log("worker %s: Durable Object %s did not let go of its old "
                         "version's host within request_timeout_ms after a new version "
                         "took over: that host is killed, so the object runs in one place",
                         old->name, strchr(e->key, '\n') + 1);
            move(l, e->key, o, 0);
        } else {
            arrived(l, e->key, o);
        }
    }
    free(e->key);
    free(e);
    unref(l);
}

static void on_timer(uv_timer_t *t)
{
    struct thaw_do_live *l = t->data;
    long long timeout;
    uint64_t now;
    const char *key;
    json_t *v, *due = json_array();
    void *tmp;
    size_t i;

    if (!l->w)
        return;
    timeout = l->w->limits.do_idle_timeout_ms;
    now = uv_now(l->w->loop);
    l->refs++;
    json_object_foreach_safe(l->objects, tmp, key, v) {
        struct obj *o = obj_of(v);
        struct thaw_version *host;
        if (o->last < 0 || o->moving || now - (uint64_t)o->last < (uint64_t)timeout)
            continue;
        host = version(l->w, o->ver);
        if (!host || !thaw_pool_host_live(host)) {
            forget(l, key); /* its memory went with its host */
            continue;
        }
        o->last = -1;
        json_array_append_new(due, json_string(key));
    }
    /* sent after the walk: an evict that ends at once changes the map */
    json_array_foreach(due, i, v) {
        struct obj *o;
        const char *k = json_string_value(v);
        if (l->w && (o = find(l, k)) && send_op(l, k, "evict", version(l->w, o->ver), 0))
            forget(l, k);
    }
    json_decref(due);
    if (l->w)
        arm(l);
    unref(l);
}

static struct thaw_do_live *live_of(struct thaw_worker *w)
{
    struct thaw_do_live *l = w->do_live;

    if (l || w->closing)
        return l;
    if (!(l = calloc(1, sizeof(*l))) || !(l->objects = json_object())) {
        free(l);
        return NULL;
    }
    l->w = w;
    l->refs = 2;
    uv_timer_init(w->loop, &l->timer);
    l->timer.data = l;
    w->do_live = l;
    return l;
}

void thaw__do_live_send(struct thaw_worker *w, const char *cls, const char *id,
                        struct thaw_exchange *ex, const void *head, size_t len)
{
    struct thaw_do_live *l = live_of(w);
    char key[384];
    struct obj *o = NULL;

    snprintf(key, sizeof(key), "%s\n%s", cls, id);
    if (l && !(o = find(l, key)) && (o = calloc(1, sizeof(*o))) &&
        json_object_set_new(l->objects, key, json_integer((json_int_t)(intptr_t)o))) {
        free(o);
        o = NULL;
    }
    if (!o) {
        /* not counted, not evicted, not moved: out of memory */
        thaw_pool_dispatch(w, ex, head, len);
        return;
    }
    o->last = (long long)uv_now(w->loop); /* every WebSocket message comes here */
    if (o->moving || o->waiting.head || held_by_old(w, o)) {
        if (thaw_pool_park(&o->waiting, ex, head, len)) {
            ex->ops->on_fail(ex, 500, "500 Internal Server Error: the event does not fit "
                             "in memory while its Durable Object moves\n");
            return;
        }
        if (!o->moving)
            move(l, key, o, o->sent);
        return;
    }
    o->ver = w->current ? w->current->id : 0;
    o->sent = (uint64_t)o->last;
    if (!uv_is_active((uv_handle_t *)&l->timer))
        arm(l);
    if (o->ver) { /* may end the event at once (no version, a failed one) */
        thaw_pool_dispatch(w, ex, head, len);
        return;
    }
    /* a cold worker: the dispatch builds its version, the object's */
    l->refs++;
    thaw_pool_dispatch(w, ex, head, len);
    if (l->w && w->current && (o = find(l, key)) && !o->ver)
        o->ver = w->current->id;
    unref(l);
}

int thaw_do_live_count(const struct thaw_worker *w)
{
    const struct thaw_do_live *l = w->do_live;

    return l ? (int)json_object_size(l->objects) : 0;
}

static void on_closed(uv_handle_t *h)
{
    unref(h->data);
}

void thaw_do_live_close(struct thaw_worker *w)
{
    struct thaw_do_live *l = w->do_live;
    struct thaw_exchange *ex;
    const char *key;
    json_t *v;
    void *tmp;

    if (!l)
        return;
    w->do_live = NULL;
    l->w = NULL;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_closed);
    l->refs++;
    json_object_foreach_safe(l->objects, tmp, key, v) {
        struct obj *o = obj_of(v);
        while ((ex = thaw_pool_unpark(&o->waiting)))
            ex->ops->on_fail(ex, 503, "503 Service Unavailable: the worker was deleted\n");
        free(o);
    }
    json_object_clear(l->objects);
    unref(l);
    unref(l);
}
