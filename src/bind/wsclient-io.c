/* Bytes to and from the server of an outbound WebSocket (wsclient.c has
 * the whole story): writes (through TLS when there is TLS, counted in
 * out_bytes until sent), reads (through TLS), and what the connection's
 * state does with the plain bytes: the answer's head, a refusal's body,
 * or frames for the socket. One read buffer serves every connection:
 * the loop reads one at a time. */
#include <stdlib.h>
#include <string.h>

#include "bind/wsclient-internal.h"

static char rbuf[64 * 1024]; /* one read at a time on the loop */

static void on_written(uv_write_t *req, int status)
{
    struct wsc *c = req->data;

    c->out_bytes -= ((uv_buf_t *)(req + 1))->len;
    free(req);
}

static void write_raw(struct wsc *c, const void *p, size_t n)
{
    uv_write_t *req;
    uv_buf_t *b;

    if (!c->tcp || uv_is_closing((uv_handle_t *)c->tcp) || !n)
        return;
    req = malloc(sizeof(*req) + sizeof(*b) + n);
    if (!req)
        return;
    b = (uv_buf_t *)(req + 1);
    *b = uv_buf_init((char *)(b + 1), (unsigned)n);
    memcpy(b->base, p, n);
    req->data = c;
    if (uv_write(req, (uv_stream_t *)c->tcp, b, 1, on_written) < 0) {
        free(req);
        return;
    }
    c->out_bytes += n;
}

void thaw__wsc_flush_tls(struct wsc *c)
{
    size_t k;

    while ((k = thaw_tls_take(c->tls, rbuf, sizeof(rbuf))) > 0)
        write_raw(c, rbuf, k);
}

void thaw__wsc_write_plain(struct wsc *c, const void *p, size_t n)
{
    if (!c->tls) {
        write_raw(c, p, n);
        return;
    }
    if (thaw_tls_write(c->tls, p, n) == 0)
        thaw__wsc_flush_tls(c);
}

static void plain_bytes(struct wsc *c, const char *p, size_t n)
{
    switch (c->st) {
    case S_HEAD:
        thaw__wsc_head_bytes(c, p, n);
        break;
    case S_BODY:
        thaw__wsc_body_bytes(c, p, n);
        break;
    case S_OPEN:
        thaw_ws_feed(c->ws, p, n);
        break;
    default:
        break;
    }
}

/* The connection ended (EOF or an error) while st says what was going on. */
static void connection_gone(struct wsc *c, const char *why)
{
    char msg[600];

    switch (c->st) {
    case S_TLS:
    case S_HEAD:
        snprintf(msg, sizeof(msg), "the WebSocket handshake with %s failed: the server "
                 "closed the connection without an answer%s%s", c->u.url, why ? ": " : "",
                 why ? why : "");
        thaw__wsc_fail(c, "ConnectionError", msg);
        break;
    case S_BODY:
        if (!why) {
            thaw__wsc_body_bytes(c, NULL, 0);
            break;
        }
        snprintf(msg, sizeof(msg), "the response of %s was cut: %s", c->u.url, why);
        thaw__wsc_fail(c, "ConnectionError", msg);
        break;
    case S_OPEN:
        /* no close frame: the worker's close event says 1006 (its end) */
        thaw__wsc_finish(c);
        break;
    default:
        thaw__wsc_teardown(c);
    }
}

void thaw__wsc_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    *b = uv_buf_init(rbuf, sizeof(rbuf));
}

void thaw__wsc_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct wsc *c = s->data;
    static char plain[64 * 1024];
    ssize_t k;

    if (n == 0)
        return;
    if (n < 0) {
        connection_gone(c, n == UV_EOF ? NULL : uv_strerror((int)n));
        return;
    }
    if (!c->tls) {
        plain_bytes(c, b->base, (size_t)n);
        return;
    }
    if (thaw_tls_feed(c->tls, b->base, (size_t)n) < 0) {
        thaw__wsc_fail(c, "Error", "out of memory");
        return;
    }
    if (c->st == S_TLS) {
        thaw__wsc_tls_step(c);
        if (c->st != S_HEAD)
            return;
    }
    /* the state can change under each piece (a refusal's body is done,
     * the socket closed): stop once it is over */
    while (c->st == S_HEAD || c->st == S_BODY || c->st == S_OPEN) {
        k = thaw_tls_read(c->tls, plain, sizeof(plain));
        if (k == 0)
            break;
        if (k < 0) {
            connection_gone(c, NULL);
            break;
        }
        plain_bytes(c, plain, (size_t)k);
    }
    if (c->tls && c->st != S_OVER)
        thaw__wsc_flush_tls(c);
}
