/* WebSocket relays to an object's owner node (relay.h).
 *
 * One relay: a TCP connection to the owner's internal port (uv_tcp_t,
 * this file's only handle besides its clock; both closed on one path,
 * finish(), and the relay freed when both are). Its life:
 *   HEAD    the forward is written; the owner's answer head is read.
 *           Not a 101: the answer is read to its end (an HTTP/1.0
 *           request: the owner closes after it) and ends the call.
 *   WAIT    the 101 went to the call; the relay waits (UNCLAIMED_MS at
 *           most) for the public connection to claim it. Not reading.
 *   OPEN    bytes both ways, each side paused while the other's writes
 *           are over THAW_H1_HOLD_BYTES. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "bind/bind.h"
#include "cluster/internal.h"
#include "cluster/owner-forward.h"
#include "cluster/owner.h"
#include "cluster/relay.h"
#include "server/h1-conn.h"
#include "util/buf.h"

#define UNCLAIMED_MS 30000
#define CONNECT_MS 3000
#define MAX_HEAD 65536
/* a refused upgrade's answer (not a 101), read whole */
#define MAX_ANSWER (1u << 20)
#define HEAD_HEADER "x-thaw-do-head:"

enum { HEAD, WAIT, OPEN, DONE };

struct thaw_relay {
    uv_tcp_t tcp;
    uv_timer_t clock;           /* the connect's, then the claim's */
    uv_connect_t creq;
    int state, handles, reading, held;
    struct thaw_owners *o;
    struct thaw_bind_call *call;  /* HEAD only */
    struct thaw_buf in;         /* the answer so far; then early frames */
    char *payload;
    size_t payload_len;
    void *conn;                 /* OPEN: the public connection */
    const struct thaw_relay_client *ops;
    char id[17];
    char node[128], internal[128], key[256], worker[128];
    char caller[128];           /* the worker whose call it is: only its 101 claims it */
    struct thaw_relay *next;    /* WAIT: the unclaimed */
};

struct wreq {
    uv_write_t req;
    struct thaw_relay *r;
    char data[];
};

static struct thaw_relay *waiting;

static void on_closed(uv_handle_t *h)
{
    struct thaw_relay *r = h->data;

    if (--r->handles)
        return;
    thaw_buf_free(&r->in);
    free(r->payload);
    free(r);
}

static void unwait(struct thaw_relay *r)
{
    struct thaw_relay **pp;

    for (pp = &waiting; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            return;
        }
}

/* The one way out: both handles close, the client (if any) is told. */
static void finish(struct thaw_relay *r)
{
    void *conn = r->conn;

    if (r->state == DONE)
        return;
    if (r->state == WAIT)
        unwait(r);
    r->state = DONE;
    r->conn = NULL;
    if (r->call) {
        r->call->on_cancel = NULL;
        r->call->data = NULL;
        r->call = NULL;
    }
    uv_close((uv_handle_t *)&r->clock, on_closed);
    uv_close((uv_handle_t *)&r->tcp, on_closed);
    if (conn)
        r->ops->gone(conn);
}

static void fail_call(struct thaw_relay *r, const char *why)
{
    struct thaw_bind_call *call = r->call;

    r->call = NULL;
    if (call) {
        call->on_cancel = NULL;
        call->data = NULL;
        thaw_owner_forget(r->o, "do", r->worker, r->key); /* the next call asks the store */
        thaw_bind_fail(call, "Error", "Durable Object call failed: 503 Service Unavailable: "
                       "Durable Object %s of worker %s lives on node %s, which did not "
                       "answer at %s (%s); its storage is on that node's disk, and it is "
                       "served again once %s is back", r->key, r->worker, r->node,
                       r->internal, why, r->node);
    }
    finish(r);
}

/* ---- the head ------------------------------------------------------------ */

static const char *find_head_end(const struct thaw_buf *b)
{
    return b->len ? memmem(b->data, b->len, "\r\n\r\n", 4) : NULL;
}

/* The status of a head that ends (\r\n\r\n) within b. */
static int status_of(const struct thaw_buf *b)
{
    const char *p = b->data;

    return b->len >= 12 && strncmp(p, "HTTP/1.", 7) == 0 && p[8] == ' ' ? atoi(p + 9) : 0;
}

/* The owner's x-thaw-do-head, within the head [p, end). */
static json_t *do_head(const char *p, const char *end)
{
    size_t k = sizeof(HEAD_HEADER) - 1;
    const char *line = p, *eol;

    for (; line < end; line = eol + 2) {
        if (!(eol = memmem(line, (size_t)(end - line) + 2, "\r\n", 2)))
            break;
        if ((size_t)(eol - line) > k && strncasecmp(line, HEAD_HEADER, k) == 0)
            return json_loadb(line + k, (size_t)(eol - line) - k, JSON_DISABLE_EOF_CHECK, NULL);
    }
    return NULL;
}

static void start_reading(struct thaw_relay *r);

static void claim_timeout(uv_timer_t *t)
{
    finish(t->data); /* the worker never returned the 101 */
}

/* The owner answered 101: the call gets the object's head with this
 * relay's id, and the relay waits for its connection. */
static void upgraded(struct thaw_relay *r, json_t *head, size_t head_len)
{
    json_t *headers = json_object_get(head, "headers"), *h;
    struct thaw_bind_call *call = r->call;
    size_t i;

    json_array_foreach(headers, i, h)
        if (!strcasecmp(json_string_value(json_array_get(h, 0)) ?: "", "x-thaw-ws"))
            json_array_set_new(h, 1, json_string(r->id));
    /* what came after the head: the object's first frames */
    memmove(r->in.data, r->in.data + head_len, r->in.len - head_len);
    r->in.len -= head_len;
    uv_read_stop((uv_stream_t *)&r->tcp);
    r->reading = 0;
    r->state = WAIT;
    r->next = waiting;
    waiting = r;
    uv_timer_start(&r->clock, claim_timeout, UNCLAIMED_MS, 0);
    r->call = NULL;
    call->on_cancel = NULL;
    call->data = NULL;
    thaw_bind_begin(call, head);
    thaw_bind_end(call, NULL);
}

/* The owner's whole answer when it is not a 101 (it closed after it). */
static void answered(struct thaw_relay *r)
{
    const char *p = r->in.data, *end = find_head_end(&r->in);
    struct thaw_bind_call *call = r->call;
    json_t *head;
    const char *body;
    size_t blen;
    int status = status_of(&r->in);

    if (!end) {
        fail_call(r, "its answer ended before its head did");
        return;
    }
    body = end + 4;
    blen = r->in.len - (size_t)(body - p);

    head = status == 200 ? do_head(p, end + 2) : NULL;
    r->call = NULL;
    call->on_cancel = NULL;
    call->data = NULL;
    if (head) {
        thaw_bind_begin(call, head);
        if (blen)
            thaw_bind_data(call, body, blen);
        thaw_bind_end(call, NULL);
    } else {
        if (status == 409 || status >= 500) /* moved, or the owner's trouble */
            thaw_owner_forget(r->o, "do", r->worker, r->key);
        thaw_owner_fail_answer(call, body, blen, "Durable Object call failed", r->node,
                               r->internal, status);
    }
    finish(r);
}

static void head_in(struct thaw_relay *r)
{
    const char *end = find_head_end(&r->in);
    json_t *head;

    if (!end || status_of(&r->in) != 101)
        return; /* more, or an answer read to its end */
    if (!(head = do_head(r->in.data, end + 2)) || !json_is_object(head)) {
        json_decref(head);
        fail_call(r, "its 101 carried no object head");
        return;
    }
    upgraded(r, head, (size_t)(end + 4 - r->in.data));
}

/* ---- the connection ------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char slab[65536];

    (void)h, (void)hint;
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct thaw_relay *r = s->data;

    if (n == 0)
        return;
    if (r->state == HEAD) {
        if (n < 0) {
            if (n == UV_EOF && r->in.len)
                answered(r);
            else
                fail_call(r, n == UV_EOF ? "it closed the connection" : uv_strerror((int)n));
            return;
        }
        if (thaw_buf_append(&r->in, buf->base, (size_t)n)) {
            fail_call(r, "its answer is over the size thaw reads");
            return;
        }
        head_in(r);
        return;
    }
    if (n < 0) { /* the owner closed (its close handshake is over), or died */
        finish(r);
        return;
    }
    if (r->state == OPEN && r->conn)
        r->ops->write(r->conn, buf->base, (size_t)n);
}

static void start_reading(struct thaw_relay *r)
{
    if (!r->reading && r->state != DONE && !r->held) {
        r->reading = 1;
        uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read);
    }
}

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct thaw_relay *r = w->r;

    free(w);
    if (r->state == DONE)
        return;
    if (status < 0) {
        if (r->state == HEAD)
            fail_call(r, uv_strerror(status));
        else
            finish(r);
        return;
    }
    if (r->state == OPEN && r->conn && r->tcp.write_queue_size < THAW_H1_RELEASE_BYTES)
        r->ops->resume(r->conn);
}

static int send_bytes(struct thaw_relay *r, const char *p, size_t n)
{
    struct wreq *w = malloc(sizeof(*w) + n);
    uv_buf_t b;

    if (!w)
        return -1;
    w->r = r;
    memcpy(w->data, p, n);
    b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&r->tcp, &b, 1, on_written)) {
        free(w);
        return -1;
    }
    return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct thaw_relay *r = req->data;
    const char *secret = thaw_cluster_secret();
    char head[1024];

    if (r->state == DONE)
        return;
    uv_timer_stop(&r->clock);
    if (status < 0) {
        fail_call(r, uv_strerror(status));
        return;
    }
    /* HTTP/1.0: an answer that is not a 101 ends with the connection */
    snprintf(head, sizeof(head), "POST " THAW_INTERNAL_DO_PATH " HTTP/1.0\r\nHost: %s\r\n"
             "Authorization: Bearer %s\r\nContent-Type: application/octet-stream\r\n"
             "Content-Length: %zu\r\n\r\n", r->internal, secret, r->payload_len);
    if (send_bytes(r, head, strlen(head)) || send_bytes(r, r->payload, r->payload_len)) {
        fail_call(r, "out of memory");
        return;
    }
    free(r->payload);
    r->payload = NULL;
    start_reading(r);
}

static void connect_timeout(uv_timer_t *t)
{
    fail_call(t->data, "no connection within 3 s");
}

static void on_cancel(struct thaw_bind_call *call)
{
    struct thaw_relay *r = call->data;

    r->call = NULL;
    call->data = NULL;
    thaw_bind_end(call, "cancelled");
    finish(r);
}

static int parse_addr(const char *internal, struct sockaddr_storage *ss)
{
    char host[128];
    const char *colon = strrchr(internal, ':');
    int port;

    if (!colon || (size_t)(colon - internal) >= sizeof(host))
        return -1;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - internal), internal);
    port = atoi(colon + 1);
    if (host[0] == '[') { /* [v6]:port */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = 0;
    }
    return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) &&
           uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) ? -1 : 0;
}

int thaw_relay_start(struct thaw_owners *o, struct thaw_bind_call *call, const char *node,
                     const char *internal, const char *key, const char *worker,
                     const char *payload, size_t len, char *err, size_t n)
{
    struct sockaddr_storage ss;
    struct thaw_relay *r;

    if (!*thaw_cluster_secret()) {
        snprintf(err, n, "THAW_CLUSTER_SECRET is not set on this node: it cannot forward "
                 "to the owner node %s", node);
        return -1;
    }
    if (parse_addr(internal, &ss)) {
        snprintf(err, n, "its internal address \"%s\" is not IP:PORT", internal);
        return -1;
    }
    if (!(r = calloc(1, sizeof(*r))) || !(r->payload = malloc(len ? len : 1))) {
        free(r);
        snprintf(err, n, "out of memory");
        return -1;
    }
    memcpy(r->payload, payload, len);
    r->payload_len = len;
    r->o = o;
    thaw_buf_init(&r->in, MAX_HEAD + MAX_ANSWER);
    {
        /* not to be guessed, as an object's own socket ids are not */
        unsigned char rnd[8];
        int i;
        if (uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL)) {
            free(r->payload);
            free(r);
            snprintf(err, n, "no random bytes for the socket's id");
            return -1;
        }
        for (i = 0; i < 8; i++)
            snprintf(r->id + 2 * i, 3, "%02x", rnd[i]);
    }
    snprintf(r->caller, sizeof(r->caller), "%s", call->worker ? call->worker : "");
    snprintf(r->node, sizeof(r->node), "%s", node);
    snprintf(r->internal, sizeof(r->internal), "%s", internal);
    snprintf(r->key, sizeof(r->key), "%s", key);
    snprintf(r->worker, sizeof(r->worker), "%s", worker);
    uv_tcp_init(o->loop, &r->tcp);
    uv_timer_init(o->loop, &r->clock);
    r->tcp.data = r->clock.data = r->creq.data = r;
    r->handles = 2;
    r->call = call;
    r->state = HEAD;
    call->data = r;
    call->on_cancel = on_cancel;
    uv_tcp_nodelay(&r->tcp, 1);
    uv_timer_start(&r->clock, connect_timeout, CONNECT_MS, 0);
    if (uv_tcp_connect(&r->creq, &r->tcp, (struct sockaddr *)&ss, on_connect)) {
        call->on_cancel = NULL;
        call->data = NULL;
        r->call = NULL;
        finish(r);
        snprintf(err, n, "cannot connect to its internal address %s", internal);
        return -1;
    }
    return 0;
}

/* ---- the public connection's side ------------------------------------------ */

struct thaw_relay *thaw_relay_claim(const char *id, const char *worker, void *conn,
                                    const struct thaw_relay_client *ops)
{
    struct thaw_relay *r;

    for (r = waiting; r; r = r->next)
        if (!strcmp(r->id, id) && !strcmp(r->caller, worker))
            break;
    if (!r)
        return NULL;
    unwait(r);
    uv_timer_stop(&r->clock);
    r->state = OPEN;
    r->conn = conn;
    r->ops = ops;
    return r;
}

void thaw_relay_flush(struct thaw_relay *r)
{
    if (r->state != OPEN)
        return;
    if (r->in.len)
        r->ops->write(r->conn, r->in.data, r->in.len);
    thaw_buf_free(&r->in);
    start_reading(r);
}

void thaw_relay_feed(struct thaw_relay *r, const char *p, size_t n)
{
    if (r->state == OPEN && n && send_bytes(r, p, n))
        finish(r);
}

int thaw_relay_full(const struct thaw_relay *r)
{
    return r->state == OPEN && r->tcp.write_queue_size > THAW_H1_HOLD_BYTES;
}

void thaw_relay_hold(struct thaw_relay *r, int hold)
{
    r->held = hold;
    if (hold && r->reading) {
        uv_read_stop((uv_stream_t *)&r->tcp);
        r->reading = 0;
    } else if (!hold && r->state == OPEN) {
        start_reading(r);
    }
}

void thaw_relay_detach(struct thaw_relay *r)
{
    r->conn = NULL;
    finish(r);
}
