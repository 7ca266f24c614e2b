/* WebSockets of Durable Objects (ws.h): the supervisor's record of each
 * socket an object owns, the events that carry its messages to the
 * object's host, and the connection's side. The host reaches the records
 * through the ":do-ws" binding (ws-bind.c):
 *
 *   "open"   {ws, class, id, name, tags, hib}  a socket the object is about
 *            to return in its 101 (acceptWebSocket, or accept()); refused
 *            over do_max_websockets
 *   "attach" {ws, value}       serializeAttachment's value (wire-encoded)
 *   "auto"   {class, id, request, response}  setWebSocketAutoResponse
 *   "list"   {class, id}       the object's sockets, for a host that made
 *            the object again (getWebSockets after hibernation)
 *   "autots" {ws, class, id}   when the last auto-response went on ws
 *            (getWebSocketAutoResponseTimestamp): {at: ms or null}
 *   "pipe"   a call that stays open for the host's life: BIND_WS_TEXT /
 *            BINARY / CLOSE frames on it, each payload led by the 16-hex
 *            socket id, are the objects' send() and close()
 *
 * The records live as long as their connection (or 30 s waiting for it),
 * not as long as a host or a version: that is hibernation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "do/live.h"
#include "do/ws-internal.h"
#include "ipc/codec.h"
#include "pool/pool.h"
#include "util/log.h"
#include "ws/ws.h"

#define ID_LEN THAW_DO_WS_ID_LEN
#define EARLY_MAX THAW_DO_WS_EARLY_MAX
/* a 101 the worker never returned: its record goes after this */
#define UNCLAIMED_MS 30000

struct thaw_do_ws *thaw__do_socks;
struct thaw_do_autoresp *thaw__do_autos;
static json_t *by_id;        /* id -> the record's address */

/* ---- the records -------------------------------------------------------- */

struct thaw_do_ws *thaw__do_ws_find(const char *id)
{
    json_t *p = by_id ? json_object_get(by_id, id) : NULL;

    return p ? (struct thaw_do_ws *)(intptr_t)json_integer_value(p) : NULL;
}

void thaw__do_ws_free(struct thaw_do_ws *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        thaw__do_socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    json_object_del(by_id, s->id);
    free(s->cls);
    free(s->oid);
    free(s->name);
    free(s->att);
    json_decref(s->tags);
    thaw_buf_free(&s->early);
    free(s);
}

int thaw__do_ws_same(const struct thaw_do_ws *s, struct thaw_worker *w, const char *cls,
                     const char *oid)
{
    return s->worker == w && strcmp(s->cls, cls) == 0 && strcmp(s->oid, oid) == 0;
}

int thaw__do_ws_count(struct thaw_worker *w, const char *cls, const char *oid)
{
    struct thaw_do_ws *s;
    int n = 0;

    for (s = thaw__do_socks; s; s = s->next)
        n += thaw__do_ws_same(s, w, cls, oid);
    return n;
}

static struct thaw_do_autoresp *find_auto(struct thaw_worker *w, const char *cls, const char *oid)
{
    struct thaw_do_autoresp *a;

    for (a = thaw__do_autos; a; a = a->next)
        if (a->worker == w && strcmp(a->cls, cls) == 0 && strcmp(a->oid, oid) == 0)
            return a;
    return NULL;
}

/* Records whose 101 the worker never returned (it answered something
 * else): dropped once old, when the next one opens. */
void thaw__do_ws_sweep(uv_loop_t *loop)
{
    struct thaw_do_ws *s, *next;
    uint64_t now = uv_now(loop);

    for (s = thaw__do_socks; s; s = next) {
        next = s->next;
        if (!s->conn && now - s->born_ms > UNCLAIMED_MS)
            thaw__do_ws_free(s);
    }
}

struct thaw_do_ws *thaw__do_ws_new(const char *id, struct thaw_worker *w, const char *cls,
                                   const char *oid, const char *name, json_t *tags, int hib,
                                   uint64_t now_ms)
{
    struct thaw_do_ws *s;

    if (!by_id && !(by_id = json_object()))
        return NULL;
    if (!(s = calloc(1, sizeof(*s))) || !(s->cls = strdup(cls)) || !(s->oid = strdup(oid)) ||
        (name && !(s->name = strdup(name)))) {
        if (s) {
            free(s->cls);
            free(s->oid);
        }
        free(s);
        return NULL;
    }
    memcpy(s->id, id, ID_LEN + 1);
    s->worker = w;
    s->tags = tags ? json_incref(tags) : json_array();
    s->hib = hib;
    s->born_ms = now_ms;
    thaw_buf_init(&s->early, EARLY_MAX);
    s->next = thaw__do_socks;
    if (thaw__do_socks)
        thaw__do_socks->prev = s;
    thaw__do_socks = s;
    json_object_set_new(by_id, s->id, json_integer((json_int_t)(intptr_t)s));
    return s;
}

void thaw__do_autoresp_free(struct thaw_do_autoresp *a)
{
    free(a->cls);
    free(a->oid);
    free(a->req);
    free(a->resp);
    free(a);
}

static int field(struct thaw_buf *b, const char *p, size_t n)
{
    uint8_t len[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};

    return thaw_buf_append(b, len, 4) || thaw_buf_append(b, p, n);
}

/* A close frame for the client, as an instance writes one. */
static void close_client(struct thaw_do_ws *s, int code, const char *reason)
{
    struct thaw_buf b;
    char c[16];

    if (!s->conn)
        return;
    snprintf(c, sizeof(c), "%d", code);
    thaw_buf_init(&b, 1024);
    if (field(&b, c, strlen(c)) == 0 && field(&b, reason, strlen(reason)) == 0)
        s->out(s->conn, THAW_IPC_WS_CLOSE, (const char *)b.data, b.len);
    thaw_buf_free(&b);
}

/* ---- events for the object --------------------------------------------- */

struct ws_event {
    struct thaw_exchange ex; /* first: the ops get &e->ex */
    char id[ID_LEN + 1];
    int status;
    int retried;
    /* the event's frames (build()), kept for one more try in another host
     * (ev_fail): one allocation per message, the message copied once */
    size_t len;
    char frames[];
};

static void ev_free(struct ws_event *e)
{
    thaw_exchange_release(&e->ex);
    free(e);
}

static void ev_head(struct thaw_exchange *ex, int status, const char *reason,
                    const char **names, const char **values, int n)
{
    struct ws_event *e = (struct ws_event *)ex;

    (void)reason, (void)names, (void)values, (void)n;
    e->status = status;
}

static void ev_body(struct thaw_exchange *ex, const char *p, size_t n)
{
    (void)ex, (void)p, (void)n;
}

static void ev_end(struct thaw_exchange *ex)
{
    struct ws_event *e = (struct ws_event *)ex;
    struct thaw_do_ws *s = thaw__do_ws_find(e->id);

    /* 410: the host does not have the socket (an accept()ed one lives in
     * its host's memory only, and that host is gone); another status: the
     * event did not reach the object (its class is gone, say). The
     * object's own raise is answered 200, after its 1011 went. */
    if (e->status != 200 && s)
        close_client(s, 1011, e->status == 410 ? "the Durable Object's instance ended"
                                               : "the Durable Object could not take it");
    ev_free(e);
}

/* The object's event ran past cpu_ms or request_timeout_ms (issue 18: an
 * object that loops forever): every hibernatable socket of the object
 * closes with 1011, and the event's own, whatever its kind. Other
 * objects' sockets are not touched. */
static void close_object(struct thaw_do_ws *s, int status, const char *msg)
{
    const char *why = status == 504 ? "the Durable Object ran past its time limit"
                                    : "the Durable Object ran past its CPU time limit";
    struct thaw_worker *w = s->worker;
    struct thaw_do_ws *t, *next;
    int n = 0;

    for (t = thaw__do_socks; t; t = t->next)
        n += t->conn && (t == s || (t->hib && thaw__do_ws_same(t, w, s->cls, s->oid)));
    /* logged first: a close may end in a detach, s's record with it */
    thaw_log("worker %s: Durable Object %s %s ran past its limit (%.*s): its %d hibernatable "
             "WebSockets close with 1011", w->cfg.name, s->cls, s->name ? s->name : s->oid,
             (int)strcspn(msg ? msg : "?", "\n"), msg ? msg : "?", n);
    for (t = thaw__do_socks; t; t = next) {
        next = t->next;
        if (t->conn && t != s && t->hib && thaw__do_ws_same(t, w, s->cls, s->oid))
            close_client(t, 1011, why);
    }
    close_client(s, 1011, why);
}

static void send_event(struct thaw_do_ws *s, struct ws_event *e);

static void ev_fail(struct thaw_exchange *ex, int status, const char *msg)
{
    struct ws_event *e = (struct ws_event *)ex;
    struct thaw_do_ws *s = thaw__do_ws_find(e->id);
    struct ws_event *again;

    if (s && ex->over_limit == THAW_EX_OVER_LIMIT) {
        close_object(s, status, msg);
    } else if (s && ex->over_limit == THAW_EX_BYSTANDER && !e->retried &&
               (again = malloc(sizeof(*again) + e->len))) {
        /* its host was killed for another object's limit: this message
         * waited behind that object's loop, so it goes to the next host
         * (once), where its object is made again */
        memcpy(again->frames, e->frames, e->len);
        again->len = e->len;
        again->retried = 1;
        memcpy(again->id, e->id, sizeof(again->id));
        send_event(s, again);
    } else if (s) {
        /* 503 before any host took it: the queue was full (max_queue) or
         * it waited too long: RFC 6455's "try again later", not the
         * object's fault (a host killed under it, its memory limit say,
         * is 503 too, and 1011) */
        int code = status == 503 && !ex->inst_id ? 1013 : 1011;
        thaw_log("worker %s: a Durable Object's WebSocket event failed (%s): its socket "
                 "closes with %d", s->worker->cfg.name, msg && *msg ? msg : "?", code);
        close_client(s, code, code == 1013 ? "thaw is busy: try again later"
                                           : "the Durable Object failed");
    }
    ev_free(e);
}

static const struct thaw_exchange_ops ev_ops = {
    .on_resp_head = ev_head,
    .on_resp_body = ev_body,
    .on_resp_end = ev_end,
    .on_fail = ev_fail,
};

static int put_pair(struct thaw_buf *b, const char *k, const char *v)
{
    return thaw_ipc_put_str(b, k) || thaw_ipc_put_str(b, v);
}

/* A message up to this size is one DO_WS frame, the whole event (the
 * host's C path takes it apart: src/zygote/dows.c); a longer one is a
 * request whose body is the message. Most messages are small, and the
 * echo's round trip is what issue 18 measures. */
#define INLINE_MAX (64 * 1024)

/* DO_WS (ipc-proto.h), or REQ_HEAD whose pseudo-headers name the object
 * and the socket, the message as the body, REQ_END (call.c builds its
 * calls alike). */
static int build(struct thaw_buf *b, uint32_t sid, const struct thaw_do_ws *s,
                 const char *kind, const void *p, size_t n)
{
    size_t mark, off;
    char len[32];
    int rc;

    if (n <= INLINE_MAX) {
        if ((rc = thaw_ipc_begin(b, THAW_IPC_DO_WS, 0, sid, &mark)) ||
            (rc = thaw_ipc_put_str(b, kind)) || (rc = thaw_ipc_put_str(b, s->id)) ||
            (rc = thaw_ipc_put_str(b, s->hib ? "1" : "0")) ||
            (rc = thaw_ipc_put_str(b, s->cls)) || (rc = thaw_ipc_put_str(b, s->oid)) ||
            (rc = thaw_ipc_put_field(b, p, n)) || (s->name && (rc = thaw_ipc_put_str(b, s->name))))
            return rc;
        return thaw_ipc_end(b, mark);
    }
    if ((rc = thaw_ipc_begin(b, THAW_IPC_REQ_HEAD, 0, sid, &mark)) ||
        (rc = thaw_ipc_put_str(b, "POST")) ||
        (rc = thaw_ipc_put_str(b, "http://durable-object/websocket")) ||
        (rc = put_pair(b, ":event", "durable-object")) || (rc = put_pair(b, ":do-class", s->cls)) ||
        (rc = put_pair(b, ":do-id", s->oid)) || (rc = put_pair(b, ":do-op", "ws")) ||
        (rc = put_pair(b, ":do-ws", s->id)) || (rc = put_pair(b, ":do-ws-event", kind)) ||
        (rc = put_pair(b, ":do-ws-hib", s->hib ? "1" : "0")) ||
        (s->name && (rc = put_pair(b, ":do-name", s->name))))
        return rc;
    snprintf(len, sizeof(len), "%zu", n);
    if ((rc = put_pair(b, "content-length", len)) || (rc = thaw_ipc_end(b, mark)))
        return rc;
    for (off = 0; off < n; off += THAW_IPC_CHUNK) {
        size_t k = n - off > THAW_IPC_CHUNK ? THAW_IPC_CHUNK : n - off;
        if ((rc = thaw_ipc_begin(b, THAW_IPC_REQ_BODY, 0, sid, &mark)) ||
            (rc = thaw_ipc_put_raw(b, (const char *)p + off, k)) || (rc = thaw_ipc_end(b, mark)))
            return rc;
    }
    if ((rc = thaw_ipc_begin(b, THAW_IPC_REQ_END, 0, sid, &mark)))
        return rc;
    return thaw_ipc_end(b, mark);
}

/* e (its frames built) to the object's host, on a stream of its own; e
 * is the exchange's from here on, or freed. */
static void send_event(struct thaw_do_ws *s, struct ws_event *e)
{
    size_t off;

    thaw_exchange_init(&e->ex, &ev_ops, e);
    e->ex.pinned = 1; /* to the object's host */
    e->ex.req_done = 1;
    /* each frame's stream id (ipc-proto.h: the header's last 4 bytes) */
    for (off = 0; off + THAW_IPC_HEADER_SIZE <= e->len;) {
        uint8_t *h = (uint8_t *)e->frames + off;
        uint32_t sid = e->ex.sid;
        h[8] = (uint8_t)sid, h[9] = (uint8_t)(sid >> 8), h[10] = (uint8_t)(sid >> 16);
        h[11] = (uint8_t)(sid >> 24);
        off += THAW_IPC_HEADER_SIZE +
               ((size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 | (size_t)h[3] << 24);
    }
    /* live.h: to its host, its idle clock; may end the event at once (no
     * version, a failed one) */
    thaw__do_live_send(s->worker, s->cls, s->oid, &e->ex, e->frames, e->len);
}

static void deliver(struct thaw_do_ws *s, const char *kind, const void *p, size_t n)
{
    /* the frames are built here, then copied once into the event: no
     * allocation but the event's own after the first messages */
    static struct thaw_buf scratch;
    struct ws_event *e;

    scratch.len = 0;
    scratch.max = n + 2 * THAW_IPC_MAX_PAYLOAD; /* its data stays from one to the next */
    if (build(&scratch, 0, s, kind, p, n)) {
        close_client(s, 1011, "the message does not fit");
        thaw_buf_free(&scratch);
        return;
    }
    if (!(e = malloc(sizeof(*e) + scratch.len))) {
        close_client(s, 1011, "out of memory");
    } else {
        memcpy(e->id, s->id, sizeof(e->id));
        e->retried = 0;
        e->len = scratch.len;
        memcpy(e->frames, scratch.data, scratch.len);
    }
    if (scratch.cap > 64 * 1024)
        thaw_buf_free(&scratch); /* a big message's memory does not stay (issue 15) */
    if (e)
        send_event(s, e);
}

/* ---- the connection's side ---------------------------------------------- */

struct thaw_do_ws *thaw_do_ws_claim(struct thaw_worker *w, const char *id, void *conn,
                                    thaw_do_ws_out out)
{
    struct thaw_do_ws *s = thaw__do_ws_find(id);

    if (!s || s->conn || (s->worker != w && s->claimer != w))
        return NULL;
    s->conn = conn;
    s->out = out;
    return s;
}

void thaw__do_ws_allow(const char *id, struct thaw_worker *w)
{
    struct thaw_do_ws *s = thaw__do_ws_find(id);

    if (s && !s->conn)
        s->claimer = w;
}

void thaw_do_ws_flush(struct thaw_do_ws *s)
{
    size_t off = 0;

    while (off + 5 <= s->early.len) {
        const uint8_t *q = (const uint8_t *)s->early.data + off;
        size_t n = (size_t)q[1] | (size_t)q[2] << 8 | (size_t)q[3] << 16 | (size_t)q[4] << 24;
        s->out(s->conn, q[0], (const char *)q + 5, n);
        off += 5 + n;
    }
    thaw_buf_free(&s->early);
    thaw_buf_init(&s->early, EARLY_MAX);
}

void thaw_do_ws_message(struct thaw_do_ws *s, int type, const void *p, size_t n)
{
    struct thaw_do_autoresp *a;

    if (type == THAW_IPC_WS_TEXT && (a = find_auto(s->worker, s->cls, s->oid)) &&
        strlen(a->req) == n && memcmp(a->req, p, n) == 0) {
        /* answered here: the object is not woken; when, on the wall
         * clock (a JS Date's), it may ask later */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->auto_at_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        s->out(s->conn, THAW_IPC_WS_TEXT, a->resp, strlen(a->resp));
        return;
    }
    deliver(s, type == THAW_IPC_WS_TEXT ? "text" : "binary", p, n);
}

void thaw_do_ws_closed(struct thaw_do_ws *s, int code, const char *reason, size_t n,
                       int clean)
{
    struct thaw_buf b;

    if (s->close_told)
        return;
    s->close_told = 1;
    thaw_buf_init(&b, 512);
    if (thaw_ws_close_payload(&b, code, reason, n, clean) == 0)
        deliver(s, "close", b.data, b.len);
    thaw_buf_free(&b);
}

void thaw_do_ws_detach(struct thaw_do_ws *s)
{
    thaw_do_ws_closed(s, 1006, "", 0, 0);
    thaw__do_ws_free(s);
}

int thaw_do_ws_open(const struct thaw_worker *w)
{
    const struct thaw_do_ws *s;
    int n = 0;

    /* a walk per scrape: sockets are few per worker next to a scrape's
     * cost, and a counter would have to follow every path a record ends */
    for (s = thaw__do_socks; s; s = s->next)
        n += s->worker == w && s->hib && s->conn;
    return n;
}

/* ---- the worker going ------------------------------------------------- */

void thaw_do_ws_worker_closed(struct thaw_worker *w)
{
    struct thaw_do_ws *s, *next;
    struct thaw_do_autoresp *a, **pp;

    for (s = thaw__do_socks; s; s = next) {
        next = s->next;
        if (s->worker != w)
            continue;
        s->close_told = 1; /* nobody to tell */
        if (s->conn)
            s->out(s->conn, THAW_DO_WS_LOST, NULL, 0); /* ends in detach */
        else
            thaw__do_ws_free(s);
    }
    for (pp = &thaw__do_autos; (a = *pp);) {
        if (a->worker != w) {
            pp = &a->next;
            continue;
        }
        *pp = a->next;
        thaw__do_autoresp_free(a);
    }
}
