/* One client connection's requests, for every port: reading and parsing
 * (one request at a time: after a request is whole, parsing pauses until
 * its answer is done, so pipelined requests are answered in order), the
 * header, body and idle clocks, the limits and head rules, and thaw's own
 * answers when they are broken. The owner sees callbacks (h1-conn.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/h1-conn.h"

#define READ_SIZE 65536

static http_parser_settings settings;

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void parse(struct thaw_h1_conn *c);

static const struct thaw_limits *lim(const struct thaw_h1_conn *c)
{
    return c->srv->limits;
}

/* ---- lifecycle -------------------------------------------------------- */

void thaw__h1_free(struct thaw_h1_link *l)
{
    struct thaw_h1_conn *c = (struct thaw_h1_conn *)l;

    if (c->srv->ops->on_free)
        c->srv->ops->on_free(c);
    thaw_buf_free(&c->in);
    thaw_buf_free(&c->out);
    thaw_h1_head_free(&c->head);
    free(c);
}

/* The request ends without the owner's answer. */
static void abort_request(struct thaw_h1_conn *c, int status)
{
    if (!c->active)
        return;
    c->active = 0;
    if (c->srv->ops->on_abort)
        c->srv->ops->on_abort(c, status);
}

void thaw_h1_close(struct thaw_h1_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    abort_request(c, c->resp_started ? 0 : 499);
    if (c->srv->ops->on_close)
        c->srv->ops->on_close(c);
    thaw__h1_unmark(c);
    c->srv->n_conns--;
    thaw_h1_link_close(&c->link);
}

void thaw_h1_update_reading(struct thaw_h1_conn *c)
{
    /* While a request waits for its answer the socket stays armed: the
     * next pipelined request just collects in c->in (bounded below), so a
     * keep-alive connection costs no epoll_ctl per request. */
    int want = !c->closing && !c->eof && !c->close_after_write;

    /* a body still coming, or an upgraded connection's frames: the owner
     * may be full */
    if (want && c->active && (!c->msg_done || c->upgraded) && c->srv->ops->body_full &&
        c->srv->ops->body_full(c))
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

/* ---- clocks ----------------------------------------------------------- */

/* Thaw's own answer to a broken request; the connection closes after it
 * (what the client sends next cannot be trusted to start a request). */
static void fail(struct thaw_h1_conn *c, int status, const char *msg)
{
    c->keep_alive = 0;
    thaw__h1_error(c, status, msg);
}

static void on_timer(uv_timer_t *t)
{
    struct thaw_h1_conn *c = t->data;

    switch (c->phase) {
    case THAW_H1_IDLE:
        thaw_h1_close(c); /* nothing was asked: nothing to answer */
        return;
    case THAW_H1_HEAD:
        /* a client that trickles its headers (or stops) holds a
         * connection: answer and let go */
        c->phase = THAW_H1_WAIT;
        fail(c, 408, "408 Request Timeout: the request line and headers did not arrive "
                     "in time (header_timeout_ms)\n");
        return;
    case THAW_H1_BODY:
        if (!thaw_h1_body_late(&c->clock, lim(c)->body_timeout_ms, lim(c)->body_min_rate,
                               uv_now(c->srv->loop)))
            return;
        c->phase = THAW_H1_WAIT;
        uv_timer_stop(&c->link.timer);
        /* an answer already begun (or given) is cut */
        if (!c->active || c->resp_started) {
            thaw_h1_close(c);
            return;
        }
        abort_request(c, 408);
        fail(c, 408, "408 Request Timeout: the request body came too slowly "
                     "(body_timeout_ms, body_min_rate)\n");
        return;
    case THAW_H1_WAIT:
        return;
    case THAW_H1_TUNNEL:
        thaw_h1_close(c); /* the owner's deadline (a close handshake's) */
        return;
    }
}

static void set_phase(struct thaw_h1_conn *c, enum thaw_h1_phase ph)
{
    c->phase = ph;
    if (ph == THAW_H1_IDLE)
        c->resp_started = 0; /* between requests: bytes that come are a new one's */
    if (c->closing)
        return;
    if (ph == THAW_H1_IDLE)
        uv_timer_start(&c->link.timer, on_timer, (uint64_t)lim(c)->keepalive_timeout_ms, 0);
    else if (ph == THAW_H1_HEAD)
        uv_timer_start(&c->link.timer, on_timer, (uint64_t)lim(c)->header_timeout_ms, 0);
    else if (ph == THAW_H1_BODY)
        uv_timer_start(&c->link.timer, on_timer, THAW_H1_BODY_TICK_MS, THAW_H1_BODY_TICK_MS);
    else
        uv_timer_stop(&c->link.timer);
}

/* ---- upgraded connections ---------------------------------------------- */

void thaw_h1_upgrade(struct thaw_h1_conn *c)
{
    if (c->closing || c->upgraded)
        return;
    c->upgraded = 1;
    c->endless = 1;        /* the client's EOF ends it */
    c->keep_alive = 0;     /* never HTTP again */
    set_phase(c, THAW_H1_TUNNEL);
    /* bytes that came after the head go to on_raw from the loop, not
     * from inside the owner's answer */
    c->resume_pending = 1;
    thaw_h1_mark(c);
}

void thaw_h1_tunnel_clock(struct thaw_h1_conn *c, uint64_t ms)
{
    if (c->closing || !c->upgraded)
        return;
    if (ms)
        uv_timer_start(&c->link.timer, on_timer, ms, 0);
    else
        uv_timer_stop(&c->link.timer);
}

static void deliver_raw(struct thaw_h1_conn *c)
{
    if (c->in.len && !c->closing && c->srv->ops->on_raw && c->active)
        c->srv->ops->on_raw(c, c->in.data, c->in.len);
    if (c->closing)
        return;
    c->in.len = 0;
    thaw_h1_update_reading(c);
}

/* ---- parsing ---------------------------------------------------------- */

static int on_message_begin(http_parser *p)
{
    struct thaw_h1_conn *c = p->data;

    thaw_h1_head_reset(&c->head, (size_t)lim(c)->max_header);
    c->active = c->msg_done = c->has_body = c->expect_continue = 0;
    c->body_bytes = 0;
    c->err_status = 0;
    c->err_why = NULL;
    c->resp_started = c->chunked = c->endless = 0;
    if (c->srv->ops->on_begin)
        c->srv->ops->on_begin(c);
    set_phase(c, THAW_H1_HEAD);
    return 0;
}

static int on_header(struct thaw_h1_head *h, const char *name, size_t nlen,
                     const char *value, size_t vlen)
{
    struct thaw_h1_conn *c = (struct thaw_h1_conn *)((char *)h -
                                                     offsetof(struct thaw_h1_conn, head));

    if (nlen == 6 && memcmp(name, "expect", 6) == 0 && vlen == 12 &&
        strncasecmp(value, "100-continue", 12) == 0)
        c->expect_continue = 1;
    return c->srv->ops->on_header ? c->srv->ops->on_header(c, name, nlen, value, vlen) : 0;
}

THAW_H1_HEAD_CALLBACKS(struct thaw_h1_conn)

static int on_headers_complete(http_parser *p)
{
    struct thaw_h1_conn *c = p->data;
    int rc;

    if (thaw_h1_head_done(&c->head))
        return c->err_status = 431, -1;
    c->keep_alive = http_should_keep_alive(p);
    c->http10 = p->http_major == 1 && p->http_minor == 0;
    c->is_head = p->method == HTTP_HEAD;
    if ((c->err_status = thaw_h1_check_head(p, c->head.hosts, &c->err_why)) ||
        (c->err_status = thaw_h1_declared_over(p, 0, thaw_h1_max_body(c->srv))))
        return -1;
    c->has_body = (p->flags & F_CHUNKED) ||
                  (p->content_length > 0 && p->content_length != ULLONG_MAX);
    if (c->has_body) {
        /* read (and dropped when the request is answered early) */
        thaw_h1_body_start(&c->clock, uv_now(c->srv->loop));
        set_phase(c, THAW_H1_BODY);
    } else {
        set_phase(c, THAW_H1_WAIT);
    }
    c->active = 1;
    if (c->srv->ops->on_head && (rc = c->srv->ops->on_head(c)))
        return c->err_status = rc, -1;
    if (c->closing)
        return -1;
    if (c->active && c->has_body && c->expect_continue && !c->resp_started)
        thaw_h1_lit(c, "HTTP/1.1 100 Continue\r\n\r\n");
    return 0;
}

static int on_chunk_header(http_parser *p)
{
    struct thaw_h1_conn *c = p->data;

    if ((c->err_status = thaw_h1_declared_over(p, c->body_bytes, thaw_h1_max_body(c->srv))))
        return -1;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct thaw_h1_conn *c = p->data;
    int rc;

    c->body_bytes += n;
    if (c->body_bytes > (uint64_t)thaw_h1_max_body(c->srv))
        return c->err_status = 413, -1;
    c->clock.bytes += n;
    c->clock.last_ms = uv_now(c->srv->loop);
    if (c->active && c->srv->ops->on_body && (rc = c->srv->ops->on_body(c, at, n)))
        return c->err_status = rc, -1;
    return c->closing ? -1 : 0; /* answered already: dropped */
}

static int on_message_complete(http_parser *p)
{
    struct thaw_h1_conn *c = p->data;
    int rc;

    c->msg_done = 1;
    set_phase(c, THAW_H1_WAIT);
    if (c->active && c->srv->ops->on_body_end && (rc = c->srv->ops->on_body_end(c)))
        return c->err_status = rc, -1;
    if (c->closing)
        return -1;
    if (c->active)
        http_parser_pause(p, 1); /* the answer first, then the next request */
    else
        set_phase(c, THAW_H1_IDLE); /* answered: the next may start now */
    return 0;
}

static void parse_error(struct thaw_h1_conn *c)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    int status = c->err_status;
    long long max_body = thaw_h1_max_body(c->srv);
    char body[256];

    if (!status)
        status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
    uv_timer_stop(&c->link.timer);
    c->phase = THAW_H1_WAIT;
    if (c->resp_started) {
        thaw_h1_close(c); /* mid-answer: nothing else can be said */
        return;
    }
    abort_request(c, status);
    if (c->err_why)
        snprintf(body, sizeof(body), "%s", c->err_why);
    else if (status == 413)
        snprintf(body, sizeof(body), "413 Payload Too Large: the request body is over the "
                 "limit of %lld bytes%s\n", max_body,
                 c->srv->max_body ? "" : " (max_body_size)");
    else if (status == 431)
        snprintf(body, sizeof(body), "431 Request Header Fields Too Large: the request line "
                 "and headers are over the limit of %lld bytes (max_header_size)\n",
                 lim(c)->max_header);
    else
        snprintf(body, sizeof(body), "400 Bad Request: malformed HTTP request (%s)\n",
                 http_errno_description(e));
    fail(c, status, body);
}

static void parse(struct thaw_h1_conn *c)
{
    size_t off = 0;

    c->parsing = 1;
    while (off < c->in.len && !c->closing && !c->close_after_write) {
        enum http_errno e;

        if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED)
            break;
        off += http_parser_execute(&c->parser, &settings, c->in.data + off, c->in.len - off);
        if (c->closing)
            break; /* an owner's callback let the connection go */
        e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED)
            break;
        if (e != HPE_OK) {
            c->parsing = 0;
            parse_error(c);
            return;
        }
    }
    c->parsing = 0;
    if (c->closing)
        return;
    thaw_buf_consume(&c->in, off);
    thaw_h1_update_reading(c);
}

void thaw_h1_done(struct thaw_h1_conn *c)
{
    if (c->active)
        thaw__h1_finish(c);
}

void thaw__h1_finish(struct thaw_h1_conn *c)
{
    if (c->closing)
        return;
    if (c->chunked && !c->is_head)
        thaw_h1_lit(c, "0\r\n\r\n");
    c->active = 0;
    if (!c->keep_alive) {
        c->close_after_write = 1;
        thaw_h1_mark(c);
        return;
    }
    if (c->msg_done) {
        /* the next pipelined request is parsed from the loop, not from
         * inside the owner's callback */
        if (!c->parsing) {
            c->resume_pending = 1;
            thaw_h1_mark(c);
        }
        set_phase(c, THAW_H1_IDLE);
    }
    /* else the rest of the body is still coming and is read and dropped */
    thaw_h1_update_reading(c);
}

void thaw__h1_resume(struct thaw_h1_conn *c)
{
    if (!c->resume_pending)
        return;
    c->resume_pending = 0;
    if (c->upgraded) {
        deliver_raw(c);
        return;
    }
    http_parser_pause(&c->parser, 0);
    parse(c);
}

/* ---- reading ---------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct thaw_h1_conn *c = h->data;

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
    struct thaw_h1_conn *c = st->data;

    if (nread == UV_ENOBUFS) {
        thaw_h1_close(c);
        return;
    }
    if (nread < 0) {
        /* the client is gone (or half-closed): an answer still being
         * produced has nobody to go to unless the request was whole */
        c->eof = 1;
        uv_read_stop(st);
        c->reading = 0;
        if (nread != UV_EOF || !c->active || !c->msg_done || c->endless)
            thaw_h1_close(c);
        else
            c->keep_alive = 0;
        return;
    }
    c->in.len += (size_t)nread;
    if (c->upgraded) {
        if (!c->resume_pending)
            deliver_raw(c);
        return;
    }
    if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED || c->resume_pending) {
        thaw_h1_update_reading(c); /* collected; parsed after the answer */
        return;
    }
    parse(c);
}

void thaw__h1_open(struct thaw_h1_conn *c)
{
    const struct thaw_limits *l = lim(c);

    THAW_H1_SET_CALLBACKS(settings);
    uv_tcp_nodelay(&c->link.tcp, 1);
    thaw_buf_init(&c->in, READ_SIZE * 2 + 65536);
    thaw_buf_init(&c->out, (size_t)1 << 34);
    thaw_h1_head_init(&c->head, (size_t)l->max_header, on_header);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->srv->n_conns++;
    if (c->srv->ops->on_open)
        c->srv->ops->on_open(c);
    c->reading = 1;
    uv_read_start((uv_stream_t *)&c->link.tcp, on_alloc, on_read);
    set_phase(c, THAW_H1_IDLE);
}
