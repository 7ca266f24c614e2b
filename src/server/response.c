/* Writing responses: the head and body frames an instance sends become
 * HTTP/1.1 on the client connection. Output collects per connection and
 * goes to libuv once per loop iteration (before it polls), so a response
 * whose frames arrived in one read leaves in one write. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/conn.h"
#include "server/static.h"
#include "util/log.h"

/* A slow client: over HOLD bytes waiting for it, the instance serving it
 * is paused; it resumes under RELEASE. */
#define HOLD_BYTES (4u * 1024 * 1024)
#define RELEASE_BYTES (1u * 1024 * 1024)
/* a connection keeps an output buffer this big for its next response */
#define KEEP_OUT (64u * 1024)

struct write_req {
    uv_write_t req;
    char *data;
};

void thaw__conn_mark(struct conn *c)
{
    if (c->in_dirty || c->closing)
        return;
    c->in_dirty = 1;
    c->next_dirty = c->srv->dirty;
    c->srv->dirty = c;
}

void thaw__conn_write(struct conn *c, const void *p, size_t n)
{
    if (c->closing)
        return;
    if (thaw_buf_append(&c->out, p, n)) {
        thaw__conn_close(c);
        return;
    }
    thaw__conn_mark(c);
}

void thaw__conn_printf(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    int rc;

    if (c->closing)
        return;
    va_start(ap, fmt);
    rc = thaw_buf_vprintf(&c->out, fmt, ap);
    va_end(ap);
    if (rc) {
        thaw__conn_close(c);
        return;
    }
    thaw__conn_mark(c);
}

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = req->handle->data;

    free(w->data);
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        thaw__conn_close(c);
        return;
    }
    if (c->ex_active && c->ex.holding &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->link.tcp) < RELEASE_BYTES)
        thaw_exchange_hold(&c->ex, 0);
    thaw_static_drained(c); /* a static file sends its next part */
    if (c->close_after_write && !c->out.len &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->link.tcp) == 0)
        thaw__conn_close(c);
}

static void flush(struct conn *c)
{
    struct write_req *w;
    uv_buf_t b;

    if (c->closing)
        return;
    if (c->resume_pending) {
        c->resume_pending = 0;
        http_parser_pause(&c->parser, 0);
        thaw__conn_parse(c);
        if (c->closing)
            return;
    }
    if (!c->out.len) {
        if (c->close_after_write &&
            uv_stream_get_write_queue_size((uv_stream_t *)&c->link.tcp) == 0)
            thaw__conn_close(c);
        return;
    }
    /* Most responses leave whole at once: written here, the buffer stays
     * for the next one, and no write request exists. uv_write would have
     * taken the buffer (a new one per response) and, once done, re-armed
     * the socket in epoll: an epoll_ctl per response (issue 16). A static
     * file's parts keep to uv_write: on_written paces them. */
    if (!c->static_send &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->link.tcp) == 0) {
        int n;
        b = uv_buf_init(c->out.data, (unsigned)c->out.len);
        n = uv_try_write((uv_stream_t *)&c->link.tcp, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            thaw__conn_close(c);
            return;
        }
        if (n > 0)
            thaw_buf_consume(&c->out, (size_t)n);
        if (!c->out.len) {
            if (c->out.cap > KEEP_OUT)
                thaw_buf_free(&c->out); /* a big response's memory goes with it */
            if (c->close_after_write)
                thaw__conn_close(c);
            return;
        }
    }
    w = malloc(sizeof(*w));
    if (!w) {
        thaw__conn_close(c);
        return;
    }
    /* the buffer now belongs to the write request */
    w->data = c->out.data;
    b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    c->out.data = NULL;
    c->out.len = c->out.cap = 0;
    if (uv_write(&w->req, (uv_stream_t *)&c->link.tcp, &b, 1, on_written)) {
        free(w->data);
        free(w);
        thaw__conn_close(c);
        return;
    }
    if (c->ex_active &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->link.tcp) > HOLD_BYTES)
        thaw_exchange_hold(&c->ex, 1);
}

void thaw__conn_flush_all(struct thaw_server *s)
{
    thaw_log_flush();
    /* flushing may parse a pipelined request, which may mark more
     * connections: loop until nothing is left */
    while (s->dirty) {
        struct conn *c = s->dirty;
        s->dirty = c->next_dirty;
        c->in_dirty = 0;
        flush(c);
    }
}

static int hop_by_hop(const char *name)
{
    static const char *const names[] = {
        "connection", "keep-alive", "transfer-encoding", "upgrade",
        "proxy-connection", "te", "trailer", "content-length",
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(name, names[i]) == 0)
            return 1;
    return 0;
}

static int header_safe(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return 0;
    return 1;
}

static void write_conn_header(struct conn *c)
{
    if (!c->keep_alive)
        thaw__conn_lit(c, "connection: close\r\n");
    else if (c->http10)
        thaw__conn_lit(c, "connection: keep-alive\r\n");
}

static void on_resp_head(struct thaw_exchange *ex, int status, const char *reason,
                         const char **names, const char **values, int n)
{
    struct conn *c = ex->conn;
    const char *length = NULL;
    int i, bodyless = status == 204 || status == 304 || status < 200;

    thaw__conn_printf(c, "HTTP/1.1 %d %s\r\n", status,
                      reason && *reason && header_safe(reason) ? reason
                                                               : thaw_h1_reason(status));
    for (i = 0; i < n; i++) {
        if (strcasecmp(names[i], "content-length") == 0)
            length = values[i];
        if (hop_by_hop(names[i]) || !header_safe(names[i]) || !header_safe(values[i]))
            continue;
        thaw__conn_printf(c, "%s: %s\r\n", names[i], values[i]);
    }
    c->chunked = 0;
    if (length) {
        thaw__conn_printf(c, "content-length: %s\r\n", length);
    } else if (!bodyless) {
        if (c->http10)
            c->keep_alive = 0; /* the body ends when the connection does */
        else {
            c->chunked = 1;
            thaw__conn_lit(c, "transfer-encoding: chunked\r\n");
        }
    }
    write_conn_header(c);
    thaw__conn_lit(c, "\r\n");
    c->resp_started = 1;
    c->resp_status = status;
}

static void on_resp_body(struct thaw_exchange *ex, const char *p, size_t n)
{
    struct conn *c = ex->conn;

    if (c->is_head || n == 0)
        return;
    if (c->chunked)
        thaw__conn_printf(c, "%zx\r\n", n);
    thaw__conn_write(c, p, n);
    if (c->chunked)
        thaw__conn_lit(c, "\r\n");
}

static void on_resp_end(struct thaw_exchange *ex)
{
    struct conn *c = ex->conn;

    if (c->chunked && !c->is_head)
        thaw__conn_lit(c, "0\r\n\r\n");
    thaw__conn_log_request(c, c->resp_status);
    thaw_exchange_release(ex);
    thaw__conn_request_done(c);
}

void thaw__conn_simple(struct conn *c, int status, const char *body, int close_conn)
{
    size_t n = strlen(body);

    if (close_conn)
        c->keep_alive = 0;
    thaw__conn_printf(c, "HTTP/1.1 %d %s\r\ncontent-type: text/plain;charset=UTF-8\r\n"
                         "content-length: %zu\r\n",
                      status, thaw_h1_reason(status), c->is_head ? 0 : n);
    if (status == 503) /* busy or over a limit: worth retrying soon */
        thaw__conn_lit(c, "retry-after: 1\r\n");
    write_conn_header(c);
    thaw__conn_lit(c, "\r\n");
    if (!c->is_head)
        thaw__conn_write(c, body, n);
    if (close_conn) {
        c->close_after_write = 1;
        thaw__conn_mark(c);
    }
}

static void on_fail(struct thaw_exchange *ex, int status, const char *msg)
{
    struct conn *c = ex->conn;

    thaw_exchange_release(ex);
    if (!status || c->resp_started) {
        thaw__conn_log_request(c, 0);
        c->ex_active = 0;
        thaw__conn_close(c); /* the client sees a cut response, not a lie */
        return;
    }
    thaw__conn_log_request(c, status);
    thaw__conn_simple(c, status, msg && *msg ? msg : thaw_h1_reason(status), 0);
    thaw__conn_request_done(c);
}

static void on_writable(struct thaw_exchange *ex)
{
    thaw__conn_pump_body(ex->conn);
    thaw__conn_update_reading(ex->conn);
}

const struct thaw_exchange_ops thaw__conn_ex_ops = {
    .on_resp_head = on_resp_head,
    .on_resp_body = on_resp_body,
    .on_resp_end = on_resp_end,
    .on_fail = on_fail,
    .on_writable = on_writable,
};
