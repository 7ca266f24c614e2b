/* Writing answers on every port: bytes collect per connection and go out
 * once per loop iteration (before it polls), so an answer produced in
 * pieces during one iteration leaves in one write, straight to the socket
 * when it takes it all; the HTTP/1.1 framing (status line, connection
 * header, chunks) is done here once. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/h1-conn.h"
#include "util/log.h"

/* a connection keeps an output buffer this big for its next answer */
#define KEEP_OUT (64u * 1024)

struct write_req {
    uv_write_t req;
    char *data;
};

static size_t libuv_queued(struct thaw_h1_conn *c)
{
    return uv_stream_get_write_queue_size((uv_stream_t *)&c->link.tcp);
}

void thaw_h1_mark(struct thaw_h1_conn *c)
{
    if (c->in_dirty || c->closing)
        return;
    c->in_dirty = 1;
    c->next_dirty = c->srv->dirty;
    c->srv->dirty = c;
}

void thaw__h1_unmark(struct thaw_h1_conn *c)
{
    struct thaw_h1_conn **pp;

    if (!c->in_dirty)
        return;
    for (pp = &c->srv->dirty; *pp; pp = &(*pp)->next_dirty)
        if (*pp == c) {
            *pp = c->next_dirty;
            break;
        }
    c->in_dirty = 0;
}

void thaw_h1_write(struct thaw_h1_conn *c, const void *p, size_t n)
{
    if (c->closing)
        return;
    if (thaw_buf_append(&c->out, p, n)) {
        thaw_h1_close(c);
        return;
    }
    thaw_h1_mark(c);
}

void thaw_h1_printf(struct thaw_h1_conn *c, const char *fmt, ...)
{
    va_list ap;
    int rc;

    if (c->closing)
        return;
    va_start(ap, fmt);
    rc = thaw_buf_vprintf(&c->out, fmt, ap);
    va_end(ap);
    if (rc) {
        thaw_h1_close(c);
        return;
    }
    thaw_h1_mark(c);
}

size_t thaw_h1_queued(struct thaw_h1_conn *c)
{
    return c->closing ? 0 : c->out.len + libuv_queued(c);
}

/* ---- to libuv --------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct thaw_h1_conn *c = req->handle->data;

    free(w->data);
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        thaw_h1_close(c);
        return;
    }
    if (c->srv->ops->on_drain && libuv_queued(c) < THAW_H1_RELEASE_BYTES)
        c->srv->ops->on_drain(c);
    if (c->close_after_write && !c->out.len && libuv_queued(c) == 0)
        thaw_h1_close(c);
}

static void flush(struct thaw_h1_conn *c)
{
    struct write_req *w;
    uv_buf_t b;

    thaw__h1_resume(c);
    if (c->closing)
        return;
    if (!c->out.len) {
        if (c->close_after_write && libuv_queued(c) == 0)
            thaw_h1_close(c);
        return;
    }
    /* Most answers leave whole at once: written here, the buffer stays
     * for the next one, and no write request exists. uv_write would take
     * the buffer (a new one per answer) and, once done, re-arm the socket
     * in epoll: an epoll_ctl per answer (issue 16; the supfast branch's
     * change to the public port, carried into the core). Output the owner
     * paces by on_drain (a static file's parts) keeps to uv_write. */
    if (!c->paced && libuv_queued(c) == 0) {
        int n;
        b = uv_buf_init(c->out.data, (unsigned)c->out.len);
        n = uv_try_write((uv_stream_t *)&c->link.tcp, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            thaw_h1_close(c);
            return;
        }
        if (n > 0)
            thaw_buf_consume(&c->out, (size_t)n);
        if (!c->out.len) {
            if (c->out.cap > KEEP_OUT)
                thaw_buf_free(&c->out); /* a big answer's memory goes with it */
            if (c->close_after_write)
                thaw_h1_close(c);
            return;
        }
    }
    if (!(w = malloc(sizeof(*w)))) {
        thaw_h1_close(c);
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
        thaw_h1_close(c);
        return;
    }
    if (c->srv->ops->on_full && libuv_queued(c) > THAW_H1_HOLD_BYTES)
        c->srv->ops->on_full(c);
}

void thaw__h1_flush_all(struct thaw_h1_server *s)
{
    thaw_log_flush();
    /* flushing may parse a pipelined request, which may mark more
     * connections: loop until nothing is left */
    while (s->dirty) {
        struct thaw_h1_conn *c = s->dirty;
        s->dirty = c->next_dirty;
        c->in_dirty = 0;
        flush(c);
    }
}

/* ---- framing ---------------------------------------------------------- */

/* The owner's answer goes only to a request it has not answered yet (a
 * late answer to one the core ended, or a second one, would be read by
 * the client as the answer to its next request). */

static void status_line(struct thaw_h1_conn *c, int status, const char *reason)
{
    char line[16] = "HTTP/1.1 ", *p = line + 9;

    if (status == 200 && !reason) {
        thaw_h1_lit(c, "HTTP/1.1 200 OK\r\n");
    } else {
        if (status < 100 || status > 999)
            status = 500; /* the callers' are checked: never three digits short */
        if (!reason)
            reason = thaw_h1_reason(status);
        *p++ = (char)('0' + status / 100);
        *p++ = (char)('0' + status / 10 % 10);
        *p++ = (char)('0' + status % 10);
        *p++ = ' ';
        thaw_h1_write(c, line, (size_t)(p - line));
        thaw_h1_write(c, reason, strlen(reason));
        thaw_h1_lit(c, "\r\n");
    }
    c->resp_started = 1;
    c->chunked = 0;
}

static void head_end(struct thaw_h1_conn *c, enum thaw_h1_framing f)
{
    if (f == THAW_H1_OPEN) {
        if (c->http10)
            c->keep_alive = 0; /* the body ends when the connection does */
        else {
            c->chunked = 1;
            thaw_h1_lit(c, "transfer-encoding: chunked\r\n");
        }
    }
    if (!c->keep_alive)
        thaw_h1_lit(c, "connection: close\r\n\r\n");
    else if (c->http10)
        thaw_h1_lit(c, "connection: keep-alive\r\n\r\n");
    else
        thaw_h1_lit(c, "\r\n");
}

void thaw_h1_status(struct thaw_h1_conn *c, int status, const char *reason)
{
    if (c->active && !c->resp_started)
        status_line(c, status, reason);
}

void thaw_h1_head_end(struct thaw_h1_conn *c, enum thaw_h1_framing f)
{
    if (c->active)
        head_end(c, f);
}

void thaw_h1_body(struct thaw_h1_conn *c, const char *p, size_t n)
{
    if (!c->active || c->is_head || n == 0)
        return;
    if (c->chunked)
        thaw_h1_printf(c, "%zx\r\n", n);
    thaw_h1_write(c, p, n);
    if (c->chunked)
        thaw_h1_lit(c, "\r\n");
}

static void whole(struct thaw_h1_conn *c, int status, const char *ctype, const char *extra,
                  const char *body, size_t n)
{
    status_line(c, status, NULL);
    thaw_h1_printf(c, "content-type: %s\r\ncontent-length: %zu\r\n%s", ctype, n,
                   extra ? extra : "");
    head_end(c, THAW_H1_SIZED);
    if (!c->is_head)
        thaw_h1_write(c, body, n);
    thaw__h1_finish(c);
}

void thaw_h1_reply(struct thaw_h1_conn *c, int status, const char *ctype, const char *extra,
                   const char *body, size_t n)
{
    if (c->active && !c->resp_started)
        whole(c, status, ctype, extra, body, n);
}

void thaw__h1_error(struct thaw_h1_conn *c, int status, const char *msg)
{
    /* busy or over a limit: worth retrying soon */
    whole(c, status, "text/plain; charset=utf-8", status == 503 ? "retry-after: 1\r\n" : NULL,
          msg, strlen(msg));
}

void thaw_h1_error(struct thaw_h1_conn *c, int status, const char *msg)
{
    if (c->active && !c->resp_started)
        thaw__h1_error(c, status, msg);
}

void thaw_h1_stream_begin(struct thaw_h1_conn *c, const char *ctype)
{
    if (!c->active || c->resp_started)
        return;
    status_line(c, 200, NULL);
    thaw_h1_printf(c, "content-type: %s\r\ncache-control: no-cache\r\n", ctype);
    head_end(c, THAW_H1_OPEN);
    c->endless = 1;
}
