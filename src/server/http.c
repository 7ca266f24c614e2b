/* The public port's own part of a request, on the shared HTTP/1 core
 * (h1-conn.h: reading, keep-alive, pipelining, clocks, limits): routing
 * it to a worker, answering from static assets, and handing it to the
 * pool as an exchange, its body streamed (with backpressure) or read
 * whole first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron/sched.h"
#include "ipc/codec.h"
#include "cluster/relay.h"
#include "server/conn.h"
#include "server/static.h"

#define READ_SIZE 65536
/* a connection keeps a body buffer this big for its next request */
#define BODY_KEEP (256 * 1024)
/* the request head buffer kept between requests, at most this big */
#define HEAD_KEEP (16 * 1024)

/* ---- the connection ----------------------------------------------------- */

static struct conn *conn_of(struct thaw_h1_conn *h)
{
    return (struct conn *)h;
}

static void on_open(struct thaw_h1_conn *h)
{
    struct conn *c = conn_of(h);
    const struct thaw_limits *l;

    c->srv = h->srv->data;
    l = &c->srv->worker->limits;
    thaw_buf_init(&c->hdrs, (size_t)l->max_header + 65536);
    thaw_buf_init(&c->body, (size_t)l->max_body);
}

static void on_free(struct thaw_h1_conn *h)
{
    struct conn *c = conn_of(h);

    thaw_buf_free(&c->hdrs);
    thaw_buf_free(&c->body);
    thaw_ws_free(c->ws);
    c->ws = NULL;
}

/* The request's body is in (or will never be): its slot is an ordinary
 * one again. */
static void end_body_stream(struct conn *c)
{
    if (!c->body_stream)
        return;
    c->body_stream = 0;
    c->worker->body_streams--;
}

void thaw__conn_exchange_over(struct conn *c)
{
    c->ex_active = 0;
    end_body_stream(c);
}

/* The core ends the request (a limit, a clock, the client left). */
static void on_abort(struct thaw_h1_conn *h, int status)
{
    struct conn *c = conn_of(h);

    end_body_stream(c);
    if (c->ws) {
        thaw__conn_ws_abort(c);
        return;
    }
    if (!c->ex_active)
        return;
    c->ex_active = 0;
    thaw__conn_log_request(c, status);
    thaw_exchange_release(&c->ex); /* cancels it in the instance */
}

static void on_close(struct thaw_h1_conn *h)
{
    thaw_static_stop(conn_of(h));
}

/* ---- the request ------------------------------------------------------ */

static void on_begin(struct thaw_h1_conn *h)
{
    struct conn *c = conn_of(h);

    c->hdrs.len = 0;
    c->host[0] = '\0';
    c->dispatched = 0;
    c->body_stream = 0;
    c->body_sent = 0;
    if (c->body.cap > BODY_KEEP)
        thaw_buf_free(&c->body); /* a big upload's memory goes with it */
    c->body.len = 0;
    c->worker = NULL;
    thaw_ws_offer_reset(&c->offer);
}

/* A header, whole: Host noted, and into the head frame for the worker. */
static int on_header(struct thaw_h1_conn *h, const char *name, size_t nlen,
                     const char *value, size_t vlen)
{
    struct conn *c = conn_of(h);

    if (nlen == 4 && memcmp(name, "host", 4) == 0 && h->head.hosts == 1) {
        size_t n = vlen < sizeof(c->host) - 1 ? vlen : sizeof(c->host) - 1;
        memcpy(c->host, value, n);
        c->host[n] = '\0';
    }
    thaw_ws_offer_header(&c->offer, name, nlen, value, vlen);
    if (thaw_ipc_put_field(&c->hdrs, name, nlen) || thaw_ipc_put_field(&c->hdrs, value, vlen))
        return -1;
    return 0;
}

static int build_head(struct conn *c, struct thaw_buf *b)
{
    size_t mark;
    const char *m = http_method_str((enum http_method)c->h1.parser.method);
    const char *url = c->h1.head.url.data;
    size_t url_len = c->h1.head.url.len;
    int rc;

    rc = thaw_ipc_begin(b, THAW_IPC_REQ_HEAD, 0, c->ex.sid, &mark);
    if (!rc)
        rc = thaw_ipc_put_str(b, m);
    /* absolute-form targets (a proxy request) are kept as they are; an
     * origin-form one gets the scheme and the host in front, written
     * straight into the frame */
    if (!rc && c->target != url) {
        rc = thaw_ipc_put_field(b, url, url_len);
    } else if (!rc) {
        const char *host = c->host[0] ? c->host : c->srv->authority;
        rc = thaw_ipc_put_field3(b, "http://", 7, host, strlen(host), url, url_len);
    }
    /* pseudo-headers (':' cannot start a header name): thaw's own facts */
    if (!rc && c->h1.link.peer_ip[0] && !(rc = thaw_ipc_put_str(b, ":client-ip")) &&
        !(rc = thaw_ipc_put_str(b, c->h1.link.peer_ip)) &&
        !(rc = thaw_ipc_put_str(b, ":client-port")))
        rc = thaw_ipc_put_str(b, c->h1.link.peer_port);
    if (!rc && !(rc = thaw_ipc_put_str(b, ":http-version")))
        rc = thaw_ipc_put_str(b, c->h1.http10 ? "1.0" : "1.1");
    if (!rc && !c->srv->route) /* thaw dev's /__scheduled: a scheduled event instead */
        rc = thaw_cron_http_head(b, c->h1.head.url.data, c->h1.head.url.len);
    if (!rc)
        rc = thaw_ipc_put_raw(b, c->hdrs.data, c->hdrs.len);
    if (!rc)
        rc = thaw_ipc_end(b, mark);
    return rc;
}

/* The exchange goes to the pool: it may take an instance slot now. */
static int dispatch(struct conn *c)
{
    /* the head is built in one buffer kept for the next request (the pool
     * copies it onto a channel or into the exchange); a dispatch within
     * a dispatch, should a callback ever make one, builds its own */
    static struct thaw_buf kept;
    static int in_use;
    struct thaw_buf own, *head = in_use ? &own : &kept;

    c->dispatched = 1;
    if (head == &own || !kept.max)
        thaw_buf_init(head, THAW_IPC_MAX_PAYLOAD + THAW_IPC_HEADER_SIZE);
    head->len = 0;
    if (build_head(c, head)) {
        if (head == &own || head->cap > HEAD_KEEP)
            thaw_buf_free(head);
        c->ex_active = 0;
        thaw_exchange_release(&c->ex);
        return 431; /* a head too big for a frame */
    }
    if (head == &kept)
        in_use = 1;
    thaw_pool_dispatch(c->worker, &c->ex, head->data, head->len);
    if (head == &kept)
        in_use = 0;
    if (head == &own || head->cap > HEAD_KEEP)
        thaw_buf_free(head);
    return 0;
}

void thaw__conn_pump_body(struct conn *c)
{
    if (!c->ex_active || !c->dispatched || c->static_send)
        return;
    while (c->body_sent < c->body.len && !thaw_exchange_congested(&c->ex)) {
        size_t k = c->body.len - c->body_sent;
        if (k > READ_SIZE)
            k = READ_SIZE;
        thaw_exchange_body(&c->ex, c->body.data + c->body_sent, k);
        c->body_sent += k;
    }
    if (c->h1.msg_done && c->body_sent == c->body.len)
        thaw_exchange_end(&c->ex);
}

/* The path the worker is routed by and logged under: the target, or an
 * absolute-form target's path (its authority replaced Host). */
static void split_target(struct conn *c)
{
    long off = thaw_h1_absolute(c->h1.head.url.data, c->h1.head.url.len, c->host, sizeof(c->host));
    size_t n;
    const char *q;

    c->target = c->h1.head.url.data;
    c->target_len = c->h1.head.url.len;
    if (off >= 0) {
        c->target += off;
        c->target_len -= (size_t)off;
        if (!c->target_len)
            c->target = "/", c->target_len = 1;
    }
    /* the log's path, without the query string (it may carry secrets) */
    n = c->target_len;
    if ((q = memchr(c->target, '?', n)))
        n = (size_t)(q - c->target);
    if (n >= sizeof(c->req_path))
        n = sizeof(c->req_path) - 1;
    memcpy(c->req_path, c->target, n);
    c->req_path[n] = '\0';
}

/* A body still coming may stream to the worker while at most half its
 * slots (instances x concurrency) are held that way; past that it is read
 * whole first, so clients that trickle bodies cannot take every slot. */
static int may_stream_body(struct conn *c)
{
    const struct thaw_limits *l = &c->worker->limits;

    return c->worker->body_streams < l->max_instances * l->concurrency / 2;
}

static int on_head(struct thaw_h1_conn *h)
{
    struct conn *c = conn_of(h);

    thaw_exchange_init(&c->ex, &thaw__conn_ex_ops, c);
    c->ex_active = 1;
    c->req_start_ns = uv_hrtime();
    c->resp_status = 0;
    {
        const char *m = http_method_str((enum http_method)h->parser.method);
        size_t n = strlen(m);
        if (n > sizeof(c->req_method) - 1)
            n = sizeof(c->req_method) - 1;
        memcpy(c->req_method, m, n);
        c->req_method[n] = '\0';
    }
    split_target(c);
    c->worker = c->srv->route ? c->srv->route(c->srv, c->host, c->target, c->target_len)
                              : c->srv->worker;
    if (!c->worker) {
        /* thaw serve: the body is read and dropped; the connection stays */
        c->ex_active = 0;
        thaw__conn_log_request(c, 404);
        thaw_h1_error(h, 404, "404 Not Found: nothing is deployed at this host and path\n");
        return 0;
    }
    if (thaw__conn_ws_check(c))
        return 0; /* not a WebSocket upgrade it could be: answered */
    if (!c->offer.valid && thaw_static_try(c)) {
        c->dispatched = 1; /* a file of the worker's static assets answers */
        return 0;
    }
    if (h->has_body && !may_stream_body(c))
        return 0; /* on_body or on_body_end dispatches */
    c->body_stream = h->has_body;
    c->worker->body_streams += h->has_body;
    return dispatch(c);
}

static int on_body(struct thaw_h1_conn *h, const char *at, size_t n)
{
    struct conn *c = conn_of(h);
    int rc;

    if (!c->ex_active)
        return 0; /* answered already: dropped */
    if (c->dispatched) {
        thaw_exchange_body(&c->ex, at, n); /* streams (none to a static file) */
        return 0;
    }
    if (h->body_bytes == n && h->parser.content_length == 0 && !(h->parser.flags & F_CHUNKED)) {
        /* the whole body came with the head: straight from the read
         * buffer, no copy */
        if ((rc = dispatch(c)))
            return rc;
        thaw_exchange_body(&c->ex, at, n);
        return 0;
    }
    return thaw_buf_append(&c->body, at, n) ? 413 : 0;
}

static int on_body_end(struct thaw_h1_conn *h)
{
    struct conn *c = conn_of(h);
    int rc;

    end_body_stream(c);
    if (!c->ex_active)
        return 0;
    if (!c->dispatched && (rc = dispatch(c)))
        return rc;
    thaw__conn_pump_body(c);
    return 0;
}

/* Backpressure both ways: the instance's pipe is full (read no more
 * body), the client reads slowly (the instance pauses). */
static int body_full(struct thaw_h1_conn *h)
{
    struct conn *c = conn_of(h);

    if (c->relay)
        return thaw_relay_full(c->relay);
    return c->ex_active && thaw_exchange_congested(&c->ex);
}

static void on_full(struct thaw_h1_conn *h)
{
    struct conn *c = conn_of(h);

    if (c->relay)
        thaw_relay_hold(c->relay, 1);
    if (c->ex_active)
        thaw_exchange_hold(&c->ex, 1);
}

static void on_drain(struct thaw_h1_conn *h)
{
    struct conn *c = conn_of(h);

    if (c->relay)
        thaw_relay_hold(c->relay, 0);
    if (c->ex_active && c->ex.holding)
        thaw_exchange_hold(&c->ex, 0);
    thaw_static_drained(c); /* a static file sends its next part */
}

/* An upgraded connection's bytes (a WebSocket's frames). */
static void on_raw(struct thaw_h1_conn *h, const char *p, size_t n)
{
    thaw__conn_ws_raw(conn_of(h), p, n);
}

static const struct thaw_h1_ops public_ops = {
    .on_open = on_open,
    .on_begin = on_begin,
    .on_header = on_header,
    .on_head = on_head,
    .on_body = on_body,
    .on_body_end = on_body_end,
    .body_full = body_full,
    .on_abort = on_abort,
    .on_full = on_full,
    .on_drain = on_drain,
    .on_close = on_close,
    .on_free = on_free,
    .on_raw = on_raw,
};

int thaw_server_bind(struct thaw_server *s, uv_loop_t *loop, const char *ip, int port,
                     struct thaw_worker *w)
{
    s->worker = w;
    s->h1 = (struct thaw_h1_server){
        .limits = &w->limits, .ops = &public_ops, .conn_size = sizeof(struct conn), .data = s,
    };
    return thaw_h1_server_bind(&s->h1, loop, ip, port, 1024, s->authority,
                               sizeof(s->authority));
}

int thaw_server_accept(struct thaw_server *s)
{
    return thaw_h1_server_accept(&s->h1);
}

int thaw_server_listen(struct thaw_server *s, uv_loop_t *loop, const char *ip,
                       int port, struct thaw_worker *w)
{
    int rc = thaw_server_bind(s, loop, ip, port, w);

    if (!rc && (rc = thaw_server_accept(s)))
        thaw_server_close(s);
    return rc;
}

void thaw_server_close(struct thaw_server *s)
{
    thaw_h1_server_close(&s->h1);
}
