/* Accepting clients and parsing their requests. One request at a time per
 * connection: after a request is read, parsing pauses until its response
 * is written, so pipelined requests are answered in order. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cron/sched.h"
#include "ipc/codec.h"
#include "server/conn.h"
#include "server/static.h"
#include "util/log.h"

#define READ_SIZE 65536
/* a connection keeps a body buffer this big for its next request */
#define BODY_KEEP (256 * 1024)

static http_parser_settings settings;

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static int parser_paused(const http_parser *p)
{
    return HTTP_PARSER_ERRNO(p) == HPE_PAUSED;
}

/* ---- lifecycle -------------------------------------------------------- */

static void free_conn(struct thaw_h1_link *l)
{
    struct conn *c = (struct conn *)l;

    thaw_buf_free(&c->in);
    thaw_h1_head_free(&c->head);
    thaw_buf_free(&c->hdrs);
    thaw_buf_free(&c->body);
    thaw_buf_free(&c->out);
    free(c);
}

static void unlink_dirty(struct conn *c)
{
    struct conn **pp;

    if (!c->in_dirty)
        return;
    for (pp = &c->srv->dirty; *pp; pp = &(*pp)->next_dirty)
        if (*pp == c) {
            *pp = c->next_dirty;
            break;
        }
    c->in_dirty = 0;
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

void thaw__conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    end_body_stream(c);
    thaw_static_stop(c);
    if (c->ex_active) {
        c->ex_active = 0;
        thaw__conn_log_request(c, c->resp_started ? 0 : 499);
        thaw_exchange_release(&c->ex); /* cancels it in the instance */
    }
    unlink_dirty(c);
    thaw_h1_link_close(&c->link);
}

void thaw__conn_update_reading(struct conn *c)
{
    /* While a request waits for its response the socket stays armed: the
     * next pipelined request just collects in c->in (bounded below), so a
     * keep-alive connection costs no epoll_ctl per request. */
    int want = !c->closing && !c->eof && !c->close_after_write;

    if (want && c->ex_active && !c->msg_done && thaw_exchange_congested(&c->ex))
        want = 0;
    if (want && c->in.len > READ_SIZE)
        want = 0;
    if (want == c->reading)
        return;
    c->reading = want;
    if (want)
        uv_read_start((uv_stream_t *)&c->link.tcp, on_alloc, on_read);
    else
        uv_read_stop((uv_stream_t *)&c->link.tcp);
}

/* ---- request parsing -------------------------------------------------- */

static void reset_request(struct conn *c)
{
    thaw_h1_head_reset(&c->head, (size_t)c->srv->worker->limits.max_header);
    c->hdrs.len = 0;
    c->host[0] = '\0';
    c->expect_continue = 0;
    c->body_bytes = 0;
    c->err_status = 0;
    c->err_why = NULL;
    c->in_body = 0;
    c->dispatched = 0;
    c->body_stream = 0;
    c->body_sent = 0;
    if (c->body.cap > BODY_KEEP)
        thaw_buf_free(&c->body); /* a big upload's memory goes with it */
    c->body.len = 0;
    c->worker = NULL;
    c->msg_done = 0;
    c->resp_started = 0;
    c->chunked = 0;
}

/* The body clock ran out: a request not answered yet gets 408; one whose
 * answer began (or ended: a 404, a static file) is cut. */
static void body_late(struct conn *c)
{
    c->in_body = 0;
    uv_timer_stop(&c->link.timer);
    end_body_stream(c);
    if (c->ex_active && !c->resp_started) {
        c->ex_active = 0;
        thaw_exchange_release(&c->ex);
        thaw__conn_log_request(c, 408);
        thaw__conn_simple(c, 408, "408 Request Timeout: the request body came too slowly "
                          "(body_timeout_ms, body_min_rate)\n", 1);
        return;
    }
    thaw__conn_close(c);
}

static void on_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;
    const struct thaw_limits *lim = &c->srv->worker->limits;

    if (c->in_body) {
        if (thaw_h1_body_late(&c->clock, lim->body_timeout_ms, lim->body_min_rate,
                              uv_now(c->srv->loop)))
            body_late(c);
        return;
    }
    if (c->in_head) {
        /* a client that trickles its headers (or stops) holds a connection:
         * answer and let go */
        c->in_head = 0;
        thaw__conn_simple(c, 408, "408 Request Timeout: the request line and headers "
                          "did not arrive in time (header_timeout_ms)\n", 1);
        return;
    }
    if (!c->ex_active)
        thaw__conn_close(c); /* idle keep-alive connection */
}

/* Header timeout from the first byte of a request; keep-alive timeout
 * while nothing is in flight; none while a request is being served (the
 * pool's request_timeout_ms covers that). */
void thaw__conn_arm_timer(struct conn *c, int head)
{
    const struct thaw_limits *lim = &c->srv->worker->limits;

    if (c->closing)
        return;
    c->in_head = head;
    uv_timer_start(&c->link.timer, on_timeout,
                   (uint64_t)(head ? lim->header_timeout_ms : lim->keepalive_timeout_ms), 0);
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;

    reset_request(c);
    thaw__conn_arm_timer(c, 1);
    return 0;
}

/* A header, whole (h1-head.c): Host and Expect noted, and into the head
 * frame for the worker. */
static int on_header(struct thaw_h1_head *h, const char *name, size_t nlen,
                     const char *value, size_t vlen)
{
    struct conn *c = (struct conn *)((char *)h - offsetof(struct conn, head));

    if (nlen == 4 && memcmp(name, "host", 4) == 0 && h->hosts == 1)
        snprintf(c->host, sizeof(c->host), "%.*s", (int)vlen, value);
    if (nlen == 6 && memcmp(name, "expect", 6) == 0 && vlen == 12 &&
        strncasecmp(value, "100-continue", 12) == 0)
        c->expect_continue = 1;
    if (thaw_ipc_put_field(&c->hdrs, name, nlen) || thaw_ipc_put_field(&c->hdrs, value, vlen))
        return -1;
    return 0;
}

THAW_H1_HEAD_CALLBACKS(struct conn)

static int build_head(struct conn *c, struct thaw_buf *b)
{
    size_t mark;
    const char *m = http_method_str((enum http_method)c->parser.method);
    char *url;
    int rc;

    /* absolute-form targets (a proxy request) are kept as they are */
    if (c->target != c->head.url.data) {
        url = strndup(c->head.url.data, c->head.url.len);
    } else {
        const char *host = c->host[0] ? c->host : c->srv->authority;
        size_t n = strlen(host) + c->head.url.len + 16;
        url = malloc(n);
        if (url)
            snprintf(url, n, "http://%s%.*s", host, (int)c->head.url.len, c->head.url.data);
    }
    if (!url)
        return -1;
    rc = thaw_ipc_begin(b, THAW_IPC_REQ_HEAD, 0, c->ex.sid, &mark);
    if (!rc)
        rc = thaw_ipc_put_str(b, m);
    if (!rc)
        rc = thaw_ipc_put_str(b, url);
    /* pseudo-headers (':' cannot start a header name): thaw's own facts */
    if (!rc && c->link.peer_ip[0] && !(rc = thaw_ipc_put_str(b, ":client-ip")) &&
        !(rc = thaw_ipc_put_str(b, c->link.peer_ip)) &&
        !(rc = thaw_ipc_put_str(b, ":client-port")))
        rc = thaw_ipc_put_str(b, c->link.peer_port);
    if (!rc && !(rc = thaw_ipc_put_str(b, ":http-version")))
        rc = thaw_ipc_put_str(b, c->http10 ? "1.0" : "1.1");
    if (!rc && !c->srv->route) /* thaw dev's /__scheduled: a scheduled event instead */
        rc = thaw_cron_http_head(b, c->head.url.data, c->head.url.len);
    if (!rc)
        rc = thaw_ipc_put_raw(b, c->hdrs.data, c->hdrs.len);
    if (!rc)
        rc = thaw_ipc_end(b, mark);
    free(url);
    return rc;
}

/* The exchange goes to the pool: it may take an instance slot now. */
static int dispatch(struct conn *c)
{
    struct thaw_buf head;

    c->dispatched = 1;
    thaw_buf_init(&head, THAW_IPC_MAX_PAYLOAD + THAW_IPC_HEADER_SIZE);
    if (build_head(c, &head)) {
        thaw_buf_free(&head);
        c->ex_active = 0;
        thaw_exchange_release(&c->ex);
        c->err_status = 431;
        return -1;
    }
    thaw_pool_dispatch(c->worker, &c->ex, head.data, head.len);
    thaw_buf_free(&head);
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
    if (c->msg_done && c->body_sent == c->body.len)
        thaw_exchange_end(&c->ex);
}

/* The path the worker is routed by and logged under: the target, or an
 * absolute-form target's path (its authority replaced Host). */
static void split_target(struct conn *c)
{
    long off = thaw_h1_absolute(c->head.url.data, c->head.url.len, c->host, sizeof(c->host));
    size_t n;
    const char *q;

    c->target = c->head.url.data;
    c->target_len = c->head.url.len;
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

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    int has_body;

    if (thaw_h1_head_done(&c->head))
        return c->err_status = 431, -1;
    c->in_head = 0;
    uv_timer_stop(&c->link.timer);
    c->keep_alive = http_should_keep_alive(p);
    c->http10 = p->http_major == 1 && p->http_minor == 0;
    c->is_head = p->method == HTTP_HEAD;
    if ((c->err_status = thaw_h1_check_head(p, c->head.hosts, &c->err_why)) ||
        (c->err_status = thaw_h1_declared_over(p, 0, c->srv->worker->limits.max_body)))
        return -1;
    has_body = (p->flags & F_CHUNKED) ||
               (p->content_length > 0 && p->content_length != ULLONG_MAX);
    if (has_body) {
        /* read and dropped too when the request is answered early */
        c->in_body = 1;
        thaw_h1_body_start(&c->clock, uv_now(c->srv->loop));
        uv_timer_start(&c->link.timer, on_timeout, THAW_H1_BODY_TICK_MS, THAW_H1_BODY_TICK_MS);
    }
    thaw_exchange_init(&c->ex, &thaw__conn_ex_ops, c);
    c->ex_active = 1;
    c->req_start_ns = uv_hrtime();
    c->resp_status = 0;
    snprintf(c->req_method, sizeof(c->req_method), "%s",
             http_method_str((enum http_method)p->method));
    split_target(c);
    c->worker = c->srv->route ? c->srv->route(c->srv, c->host, c->target, c->target_len)
                              : c->srv->worker;
    if (!c->worker) {
        /* thaw serve: the body is read and dropped; the connection stays */
        c->ex_active = 0;
        thaw__conn_log_request(c, 404);
        thaw__conn_simple(c, 404, "404 Not Found: nothing is deployed at this host and "
                          "path\n", 0);
        return 0;
    }
    if (c->expect_continue && has_body)
        thaw__conn_lit(c, "HTTP/1.1 100 Continue\r\n\r\n");
    if (thaw_static_try(c)) {
        c->dispatched = 1; /* a file of the worker's static assets answers */
        return 0;
    }
    if (has_body && !may_stream_body(c))
        return 0; /* on_body or on_message_complete dispatches */
    c->body_stream = has_body;
    c->worker->body_streams += has_body;
    return dispatch(c);
}

static int on_chunk_header(http_parser *p)
{
    struct conn *c = p->data;

    if ((c->err_status = thaw_h1_declared_over(p, c->body_bytes,
                                               c->srv->worker->limits.max_body)))
        return -1;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;

    c->body_bytes += n;
    if (c->body_bytes > (uint64_t)c->srv->worker->limits.max_body) {
        c->err_status = 413;
        return -1;
    }
    c->clock.bytes += n;
    c->clock.last_ms = uv_now(c->srv->loop);
    if (!c->ex_active)
        return 0; /* answered already: dropped */
    if (c->dispatched) {
        thaw_exchange_body(&c->ex, at, n); /* streams (none to a static file) */
        return 0;
    }
    if (c->body_bytes == n && p->content_length == 0 && !(p->flags & F_CHUNKED)) {
        /* the whole body came with the head: straight from the read
         * buffer, no copy */
        if (dispatch(c))
            return -1;
        thaw_exchange_body(&c->ex, at, n);
        return 0;
    }
    if (thaw_buf_append(&c->body, at, n)) {
        c->err_status = 413;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;

    c->msg_done = 1;
    end_body_stream(c);
    if (c->in_body) {
        c->in_body = 0;
        uv_timer_stop(&c->link.timer);
    }
    if (c->ex_active) {
        if (!c->dispatched && dispatch(c))
            return -1;
        thaw__conn_pump_body(c);
        /* wait for the response before reading the next request */
        http_parser_pause(p, 1);
    }
    /* else the response already went out (an early answer or an error):
     * the next request may start right away, and until it does the
     * connection is idle */
    else
        thaw__conn_arm_timer(c, 0);
    return 0;
}

static void parse_error(struct conn *c)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    int status = c->err_status;
    char body[256];

    if (!status)
        status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
    c->in_body = 0;
    end_body_stream(c);
    if (c->ex_active && c->resp_started) {
        thaw__conn_close(c); /* mid-response: nothing else can be said */
        return;
    }
    if (c->ex_active) {
        c->ex_active = 0;
        thaw_exchange_release(&c->ex);
    }
    if (c->err_why)
        snprintf(body, sizeof(body), "%s", c->err_why);
    else if (status == 413)
        snprintf(body, sizeof(body),
                 "413 Payload Too Large: the request body is over thaw's limit "
                 "of %lld bytes (--max-body-size)\n", c->srv->worker->limits.max_body);
    else if (status == 431)
        snprintf(body, sizeof(body),
                 "431 Request Header Fields Too Large: the request line and "
                 "headers are over thaw's limit of %lld bytes (--max-header-size)\n",
                 c->srv->worker->limits.max_header);
    else
        snprintf(body, sizeof(body), "400 Bad Request: malformed HTTP request (%s)\n",
                 http_errno_description(e));
    thaw__conn_simple(c, status, body, 1);
}

void thaw__conn_parse(struct conn *c)
{
    size_t off = 0;

    while (off < c->in.len && !c->closing && !c->close_after_write) {
        size_t n;
        enum http_errno e;

        if (parser_paused(&c->parser))
            break;
        n = http_parser_execute(&c->parser, &settings, c->in.data + off,
                                c->in.len - off);
        off += n;
        e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED)
            break;
        if (e != HPE_OK) {
            parse_error(c);
            return;
        }
    }
    if (c->closing)
        return;
    thaw_buf_consume(&c->in, off);
    thaw__conn_update_reading(c);
}

void thaw__conn_request_done(struct conn *c)
{
    c->ex_active = 0;
    end_body_stream(c);
    if (!c->keep_alive) {
        c->close_after_write = 1;
        thaw__conn_mark(c);
        return;
    }
    if (c->msg_done) {
        /* parse the next pipelined request from the loop, not from inside
         * the pool's callback */
        c->resume_pending = 1;
        thaw__conn_mark(c);
        thaw__conn_arm_timer(c, 0);
    }
    /* else the rest of the body is still coming and is read and dropped */
    thaw__conn_update_reading(c);
}

/* ---- reading ---------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;

    if (thaw_buf_reserve(&c->in, READ_SIZE)) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = c->in.data + c->in.len;
    buf->len = c->in.cap - c->in.len;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;

    if (nread == UV_ENOBUFS) {
        thaw__conn_close(c);
        return;
    }
    if (nread < 0) {
        /* the client is gone (or half-closed): an answer still being
         * produced has nobody to go to unless the request was whole */
        c->eof = 1;
        uv_read_stop(st);
        c->reading = 0;
        if (nread != UV_EOF || !c->ex_active || !c->msg_done)
            thaw__conn_close(c);
        else
            c->keep_alive = 0;
        return;
    }
    c->in.len += (size_t)nread;
    if (parser_paused(&c->parser) || c->resume_pending) {
        thaw__conn_update_reading(c); /* collected; parsed after the response */
        return;
    }
    thaw__conn_parse(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct thaw_server *s = server->data;
    struct conn *c;

    if (status < 0)
        return;
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = s;
    if (thaw_h1_link_accept(&c->link, server, &s->conns, free_conn))
        return;
    uv_tcp_nodelay(&c->link.tcp, 1);
    thaw_buf_init(&c->in, READ_SIZE * 2 + 65536);
    thaw_buf_init(&c->hdrs, s->worker->limits.max_header + 65536);
    thaw_h1_head_init(&c->head, (size_t)s->worker->limits.max_header, on_header);
    thaw_buf_init(&c->body, (size_t)s->worker->limits.max_body);
    thaw_buf_init(&c->out, (size_t)1 << 34);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->reading = 1;
    uv_read_start((uv_stream_t *)&c->link.tcp, on_alloc, on_read);
    thaw__conn_arm_timer(c, 0);
}

static void on_prepare(uv_prepare_t *h)
{
    thaw__conn_flush_all(h->data);
}

int thaw_server_listen(struct thaw_server *s, uv_loop_t *loop, const char *ip,
                       int port, struct thaw_worker *w)
{
    int rc;

    THAW_H1_SET_CALLBACKS(settings);

    s->loop = loop;
    s->worker = w;
    if ((rc = thaw_h1_listen(&s->listener, loop, ip, port, 1024, on_connection, s->authority,
                             sizeof(s->authority))))
        return rc;
    s->listener.data = s;
    s->listening = 1;
    uv_prepare_init(loop, &s->flusher);
    s->flusher.data = s;
    uv_prepare_start(&s->flusher, on_prepare);
    return 0;
}

void thaw_server_close(struct thaw_server *s)
{
    if (s->listening) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_prepare_stop(&s->flusher);
        uv_close((uv_handle_t *)&s->flusher, NULL);
        s->listening = 0;
    }
    while (s->conns)
        thaw__conn_close((struct conn *)s->conns);
}
