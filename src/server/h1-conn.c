/* A server of one request per connection, for the admin ports: the head
 * passes the shared rules, the body is read whole (up to max_body) under
 * the header, body and idle clocks, and only then does the owner's
 * handler run. Connections are capped: at the cap a new one takes the
 * place of the oldest that has not got its head in, so a flood of idle
 * or trickling clients cannot lock the operator out. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/h1.h"

#define READ_SIZE 65536

static http_parser_settings settings;

struct h1_write {
    uv_write_t req;
    char *data;
    int close_after;
};

static void free_conn(struct thaw_h1_link *l)
{
    struct thaw_h1_conn *c = (struct thaw_h1_conn *)l;

    thaw_h1_head_free(&c->head);
    thaw_buf_free(&c->body);
    free(c);
}

static void close_conn(struct thaw_h1_conn *c)
{
    struct thaw_h1_server *s = c->srv;

    if (c->closed)
        return;
    c->closed = 1;
    if (s->ops->on_close)
        s->ops->on_close(c);
    s->n_conns--;
    thaw_h1_link_close(&c->link);
}

/* ---- writing ---------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
    struct h1_write *w = (struct h1_write *)req;
    struct thaw_h1_conn *c = req->handle->data;

    free(w->data);
    if (status < 0 || w->close_after)
        close_conn(c);
    free(w);
}

/* Takes ownership of data (malloc'd). */
static void send_bytes(struct thaw_h1_conn *c, char *data, size_t n, int close_after)
{
    struct h1_write *w;
    uv_buf_t b;

    if (c->closed || !(w = malloc(sizeof(*w)))) {
        free(data);
        if (!c->closed)
            close_conn(c);
        return;
    }
    w->data = data;
    w->close_after = close_after;
    b = uv_buf_init(data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->link.tcp, &b, 1, on_written)) {
        free(data);
        free(w);
        close_conn(c);
    }
}

static void stop_reading(struct thaw_h1_conn *c)
{
    c->phase = H1_HANDLER;
    uv_timer_stop(&c->link.timer);
}

void thaw_h1_reply(struct thaw_h1_conn *c, int status, const char *ctype, const char *extra,
                   const char *body, size_t n)
{
    struct thaw_buf b;

    if (c->answered || c->closed)
        return;
    c->answered = 1;
    stop_reading(c);
    thaw_buf_init(&b, n + 1024);
    if (thaw_buf_printf(&b, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                        "%sconnection: close\r\n\r\n", status, thaw_h1_reason(status), ctype,
                        n, extra ? extra : "") ||
        thaw_buf_append(&b, body, n)) {
        thaw_buf_free(&b);
        close_conn(c);
        return;
    }
    send_bytes(c, b.data, b.len, 1);
}

void thaw_h1_stream_begin(struct thaw_h1_conn *c, const char *ctype)
{
    char head[256];
    int n;

    if (c->answered || c->closed)
        return;
    c->answered = c->streaming = 1;
    stop_reading(c);
    n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\ncontent-type: %s\r\n"
                 "transfer-encoding: chunked\r\ncache-control: no-cache\r\n"
                 "connection: close\r\n\r\n", ctype);
    send_bytes(c, strndup(head, (size_t)n), (size_t)n, 0);
}

void thaw_h1_stream_write(struct thaw_h1_conn *c, const char *p, size_t n)
{
    struct thaw_buf b;

    if (!c->streaming || c->closed || n == 0)
        return;
    thaw_buf_init(&b, n + 64);
    if (thaw_buf_printf(&b, "%zx\r\n", n) || thaw_buf_append(&b, p, n) ||
        thaw_buf_append(&b, "\r\n", 2)) {
        thaw_buf_free(&b);
        return;
    }
    send_bytes(c, b.data, b.len, 0);
}

size_t thaw_h1_stream_queued(struct thaw_h1_conn *c)
{
    return c->closed ? 0 : uv_stream_get_write_queue_size((uv_stream_t *)&c->link.tcp);
}

void thaw_h1_stream_end(struct thaw_h1_conn *c)
{
    if (!c->streaming || c->closed)
        return;
    c->streaming = 0;
    send_bytes(c, strdup("0\r\n\r\n"), 5, 1);
}

/* Thaw's own error answers, as text. */
static void fail(struct thaw_h1_conn *c, int status, const char *msg)
{
    thaw_h1_reply(c, status, "text/plain; charset=utf-8", NULL, msg, strlen(msg));
}

/* ---- clocks ----------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
    struct thaw_h1_conn *c = t->data;

    switch (c->phase) {
    case H1_IDLE:
        close_conn(c); /* nothing was asked: nothing to answer */
        return;
    case H1_HEAD:
        fail(c, 408, "408 Request Timeout: the request line and headers did not arrive "
                     "in time\n");
        return;
    case H1_BODY:
        if (thaw_h1_body_late(&c->clock, c->srv->lim.body_timeout_ms,
                              c->srv->lim.body_min_rate, uv_now(c->srv->loop)))
            fail(c, 408, "408 Request Timeout: the request body came too slowly "
                         "(body_timeout_ms)\n");
        return;
    case H1_HANDLER:
        return;
    }
}

static void set_phase(struct thaw_h1_conn *c, enum thaw_h1_phase ph)
{
    const struct thaw_h1_limits *l = &c->srv->lim;

    c->phase = ph;
    if (ph == H1_IDLE)
        uv_timer_start(&c->link.timer, on_timer, (uint64_t)l->idle_timeout_ms, 0);
    else if (ph == H1_HEAD)
        uv_timer_start(&c->link.timer, on_timer, (uint64_t)l->header_timeout_ms, 0);
    else if (ph == H1_BODY)
        uv_timer_start(&c->link.timer, on_timer, THAW_H1_BODY_TICK_MS, THAW_H1_BODY_TICK_MS);
    else
        uv_timer_stop(&c->link.timer);
}

/* ---- parsing ---------------------------------------------------------- */

static int on_message_begin(http_parser *p)
{
    set_phase(p->data, H1_HEAD);
    return 0;
}

static int on_header(struct thaw_h1_head *h, const char *name, size_t nlen,
                     const char *value, size_t vlen)
{
    struct thaw_h1_conn *c = (struct thaw_h1_conn *)((char *)h -
                                                     offsetof(struct thaw_h1_conn, head));

    if (c->srv->ops->on_header)
        c->srv->ops->on_header(c, name, nlen, value, vlen);
    return 0;
}

THAW_H1_HEAD_CALLBACKS(struct thaw_h1_conn)

static int on_headers_complete(http_parser *p)
{
    struct thaw_h1_conn *c = p->data;
    const char *why;
    int status;

    if (thaw_h1_head_done(&c->head))
        return c->err_status = 431, -1;
    if ((status = thaw_h1_check_head(p, c->head.hosts, &why))) {
        fail(c, status, why);
        return -1;
    }
    if (thaw_h1_declared_over(p, 0, c->srv->lim.max_body)) {
        c->err_status = 413;
        return -1;
    }
    if (c->srv->ops->on_head && c->srv->ops->on_head(c))
        return -1; /* answered */
    set_phase(c, H1_BODY);
    thaw_h1_body_start(&c->clock, uv_now(c->srv->loop));
    return 0;
}

static int on_chunk_header(http_parser *p)
{
    struct thaw_h1_conn *c = p->data;

    if (thaw_h1_declared_over(p, c->body.len, c->srv->lim.max_body))
        return c->err_status = 413, -1;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct thaw_h1_conn *c = p->data;

    c->clock.bytes += n;
    c->clock.last_ms = uv_now(c->srv->loop);
    if (thaw_buf_append(&c->body, at, n))
        return c->err_status = 413, -1;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct thaw_h1_conn *c = p->data;

    stop_reading(c);
    c->srv->ops->on_request(c);
    return -1; /* one request per connection: stop parsing */
}

static void parse_error(struct thaw_h1_conn *c)
{
    char msg[256];

    if (c->err_status == 413)
        snprintf(msg, sizeof(msg), "413 Payload Too Large: the request body is over the "
                 "limit of %lld bytes\n", c->srv->lim.max_body);
    else if (c->err_status == 431)
        snprintf(msg, sizeof(msg), "431 Request Header Fields Too Large: the request line "
                 "and headers are over the limit of %lld bytes\n", c->srv->lim.max_header);
    else
        snprintf(msg, sizeof(msg), "400 Bad Request: malformed HTTP request (%s)\n",
                 http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
    fail(c, c->err_status ? c->err_status : 400, msg);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char slab[READ_SIZE];

    buf->base = slab;
    buf->len = sizeof(slab);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct thaw_h1_conn *c = st->data;

    if (nread < 0) {
        close_conn(c); /* the client left (or finished reading a stream) */
        return;
    }
    if (c->phase == H1_HANDLER || c->answered || nread == 0)
        return; /* after the request: only EOF matters */
    if (c->phase == H1_IDLE)
        set_phase(c, H1_HEAD);
    http_parser_execute(&c->parser, &settings, buf->base, (size_t)nread);
    if (c->phase != H1_HANDLER && !c->answered && !c->closed &&
        HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
        parse_error(c);
}

/* At the cap: the oldest connection still waiting for (or reading) its
 * head goes; one being answered or streaming never does. */
static int make_room(struct thaw_h1_server *s)
{
    struct thaw_h1_link *l;
    struct thaw_h1_conn *victim = NULL;

    if (!s->lim.max_conns || s->n_conns < s->lim.max_conns)
        return 0;
    for (l = s->conns; l; l = l->next) {
        struct thaw_h1_conn *c = (struct thaw_h1_conn *)l;
        if (c->phase == H1_IDLE || c->phase == H1_HEAD)
            victim = c;
    }
    if (!victim)
        return -1;
    close_conn(victim);
    return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct thaw_h1_server *s = server->data;
    struct thaw_h1_conn *c;
    int room;

    if (status < 0 || !(c = calloc(1, s->conn_size)))
        return;
    room = make_room(s) == 0;
    c->srv = s;
    if (thaw_h1_link_accept(&c->link, server, &s->conns, free_conn))
        return;
    if (!room) {
        thaw_h1_link_close(&c->link); /* every connection is busy: refused */
        return;
    }
    thaw_h1_head_init(&c->head, (size_t)s->lim.max_header, on_header);
    thaw_buf_init(&c->body, (size_t)s->lim.max_body);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    s->n_conns++;
    set_phase(c, H1_IDLE);
    uv_read_start((uv_stream_t *)&c->link.tcp, on_alloc, on_read);
}

void thaw_h1_limits_of(struct thaw_h1_limits *out, const struct thaw_limits *l,
                       long long max_body, int max_conns)
{
    *out = (struct thaw_h1_limits){
        .max_header = l->max_header,
        .max_body = max_body,
        .header_timeout_ms = l->header_timeout_ms,
        .body_timeout_ms = l->body_timeout_ms,
        .body_min_rate = l->body_min_rate,
        .idle_timeout_ms = l->keepalive_timeout_ms,
        .max_conns = max_conns,
    };
}

int thaw_h1_server_listen(struct thaw_h1_server *s, uv_loop_t *loop, const char *addr)
{
    int rc;

    THAW_H1_SET_CALLBACKS(settings);
    s->loop = loop;
    s->listener.data = s;
    if ((rc = thaw_h1_listen_addr(&s->listener, loop, addr, 128, on_connection)))
        return rc;
    s->listener.data = s;
    s->listening = 1;
    return 0;
}

void thaw_h1_server_close(struct thaw_h1_server *s)
{
    if (s->listening) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        s->listening = 0;
    }
    while (s->conns)
        close_conn((struct thaw_h1_conn *)s->conns);
}
