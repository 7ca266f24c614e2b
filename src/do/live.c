/* Live Durable Objects and their eviction (live.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "do/live.h"
#include "ipc/codec.h"
#include "util/log.h"

/* objects: "CLASS\nID" -> the uv_now() of its last event, or -1 while its
 * evict event is out (a hash: a touch per call stays O(1)) */
struct thaw_do_live {
    struct thaw_worker *w;   /* NULL once closed */
    uv_timer_t timer;
    json_t *objects;
    int refs;                /* the worker's, the timer handle's, each evict's */
};

struct evict {
    struct thaw_exchange ex; /* first */
    struct thaw_do_live *l;
    char *key;
    int status;
};

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
        json_int_t last = json_integer_value(v);
        uint64_t due = (uint64_t)last + (uint64_t)timeout;
        if (last < 0)
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

static void evicted(struct evict *e, int ok)
{
    struct thaw_do_live *l = e->l;
    json_t *v;

    thaw_exchange_release(&e->ex);
    if (l->w && (v = json_object_get(l->objects, e->key)) && json_integer_value(v) < 0) {
        if (ok || e->status != 409)
            json_object_del(l->objects, e->key); /* gone (or gone with its host) */
        else
            json_integer_set(v, (json_int_t)uv_now(l->w->loop)); /* busy: later */
        arm(l);
    }
    free(e->key);
    free(e);
    unref(l);
}

static void on_resp_head(struct thaw_exchange *ex, int status, const char *reason,
                         const char **names, const char **values, int n)
{
    ((struct evict *)ex)->status = status;
}

static void on_resp_body(struct thaw_exchange *ex, const char *p, size_t n)
{
}

static void on_resp_end(struct thaw_exchange *ex)
{
    struct evict *e = (struct evict *)ex;

    evicted(e, e->status == 200);
}

static void on_fail(struct thaw_exchange *ex, int status, const char *msg)
{
    evicted((struct evict *)ex, 0);
}

static const struct thaw_exchange_ops evict_ops = {
    .on_resp_head = on_resp_head,
    .on_resp_body = on_resp_body,
    .on_resp_end = on_resp_end,
    .on_fail = on_fail,
};

/* Asks the host to drop the object (key "CLASS\nID"). 0, or -1. */
static int send_evict(struct thaw_do_live *l, const char *key)
{
    const char *nl = strchr(key, '\n');
    struct evict *e = calloc(1, sizeof(*e));
    struct thaw_buf b;
    char cls[256];

    if (!e || !nl || (size_t)(nl - key) >= sizeof(cls) || !(e->key = strdup(key))) {
        free(e);
        return -1;
    }
    memcpy(cls, key, (size_t)(nl - key));
    cls[nl - key] = 0;
    e->l = l;
    thaw_exchange_init(&e->ex, &evict_ops, e);
    e->ex.pinned = 1;
    thaw_buf_init(&b, 2 * THAW_IPC_MAX_PAYLOAD);
    if (thaw__do_event(&b, e->ex.sid, cls, nl + 1, "evict", NULL)) {
        thaw_buf_free(&b);
        thaw_exchange_release(&e->ex);
        free(e->key);
        free(e);
        return -1;
    }
    l->refs++;
    e->ex.req_done = 1;
    thaw_pool_dispatch(l->w, &e->ex, b.data, b.len);
    thaw_buf_free(&b);
    return 0;
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
        json_int_t last = json_integer_value(v);
        if (last < 0 || now - (uint64_t)last < (uint64_t)timeout)
            continue;
        if (!thaw_pool_host_live(l->w)) {
            json_object_del(l->objects, key); /* its memory went with its host */
            continue;
        }
        json_integer_set(v, -1);
        json_array_append_new(due, json_string(key));
    }
    /* sent after the walk: an evict that ends at once changes the map */
    json_array_foreach(due, i, v)
        if (l->w && send_evict(l, json_string_value(v)))
            json_object_del(l->objects, json_string_value(v));
    json_decref(due);
    if (l->w)
        arm(l);
    unref(l);
}

void thaw__do_live_touch(struct thaw_worker *w, const char *cls, const char *id)
{
    struct thaw_do_live *l = w->do_live;
    char key[384];
    json_t *v;

    if (!l) {
        if (!(l = calloc(1, sizeof(*l))) || !(l->objects = json_object())) {
            free(l);
            return; /* not counted, not evicted: it lives as long as its host */
        }
        l->w = w;
        l->refs = 2;
        uv_timer_init(w->loop, &l->timer);
        l->timer.data = l;
        w->do_live = l;
    }
    snprintf(key, sizeof(key), "%s\n%s", cls, id);
    /* set in place when it is there: every WebSocket message touches it */
    if (!(v = json_object_get(l->objects, key)) || json_integer_set(v, (json_int_t)uv_now(w->loop)))
        json_object_set_new(l->objects, key, json_integer((json_int_t)uv_now(w->loop)));
    if (!uv_is_active((uv_handle_t *)&l->timer))
        arm(l);
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

    if (!l)
        return;
    w->do_live = NULL;
    l->w = NULL;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_closed);
    unref(l);
}
