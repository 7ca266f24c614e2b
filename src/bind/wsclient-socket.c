/* An outbound WebSocket once the server said 101 (wsclient.c has the
 * whole story): ws/session.c (wslay, as the client) speaks RFC 6455, and
 * these are its callbacks (bytes to write, whole messages, the close)
 * and the worker's side (its messages and close() on the binding call).
 * When the instance's channel is full, reading stops and the resume
 * timer looks again: the server waits in its TCP window. */
#include "bind/wsclient-internal.h"
#include "ipc/ipc-proto.h"

static void on_resume(uv_timer_t *t);

static void s_write(void *owner, const void *p, size_t n)
{
    thaw__wsc_write_plain(owner, p, n);
}

static void s_message(void *owner, int type, const void *p, size_t n)
{
    struct wsc *c = owner;

    if (!c->call)
        return;
    thaw_bind_message(c->call, type == THAW_IPC_WS_TEXT ? THAW_IPC_BIND_WS_TEXT
                                                        : THAW_IPC_BIND_WS_BINARY, p, n);
    if (thaw_bind_congested(c->call) && !c->paused && c->tcp) {
        /* the instance is behind: the server waits, in its TCP window */
        c->paused = 1;
        uv_read_stop((uv_stream_t *)c->tcp);
        uv_timer_start(&c->resume, on_resume, PAUSE_MS, 0);
    }
}

static void s_closed(void *owner, int code, const char *reason, size_t n, int clean)
{
    struct wsc *c = owner;
    struct thaw_buf b;

    if (!c->call)
        return;
    thaw_buf_init(&b, 512);
    if (thaw_ws_close_payload(&b, code, reason, n, clean) == 0)
        thaw_bind_message(c->call, THAW_IPC_BIND_WS_CLOSE, b.data, b.len);
    thaw_buf_free(&b);
}

static void s_done(void *owner)
{
    thaw__wsc_finish(owner);
}

const struct thaw_ws_ops thaw__wsc_session_ops = {
    .write = s_write,
    .message = s_message,
    .closed = s_closed,
    .done = s_done,
};

static void on_resume(uv_timer_t *t)
{
    struct wsc *c = t->data;

    if (c->st != S_OPEN || !c->paused || !c->tcp)
        return;
    if (c->call && thaw_bind_congested(c->call)) {
        uv_timer_start(&c->resume, on_resume, PAUSE_MS, 0);
        return;
    }
    c->paused = 0;
    uv_read_start((uv_stream_t *)c->tcp, thaw__wsc_on_alloc, thaw__wsc_on_read);
}

/* A message or close() from the worker. */
void thaw__wsc_on_message(struct thaw_bind_call *call, int type, const void *p, size_t n)
{
    struct wsc *c = call->data;
    const char *reason;
    size_t rlen;
    int code;

    if (c->st != S_OPEN)
        return;
    if (type != THAW_IPC_BIND_WS_CLOSE) {
        if (c->out_bytes > MAX_OUT) {
            /* the server reads nothing and the worker keeps sending */
            thaw_ws_fail(c->ws, 1008, "the server does not read what the worker sends");
            return;
        }
        thaw_ws_send(c->ws, type == THAW_IPC_BIND_WS_TEXT ? THAW_IPC_WS_TEXT
                                                          : THAW_IPC_WS_BINARY, p, n);
        return;
    }
    thaw_ws_close_parse(p, n, &code, &reason, &rlen);
    thaw_ws_close(c->ws, code, reason, rlen);
    /* a server that never answers does not hold the socket */
    if (c->st == S_OPEN && thaw_ws_close_sent(c->ws))
        uv_timer_start(&c->timer, thaw__wsc_on_timer, CLOSE_REPLY_MS, 0);
}
