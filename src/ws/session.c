/* One upgraded connection's frames, on wslay's event API: bytes from the
 * client go in (thaw_ws_feed), whole messages come out to the owner;
 * the worker's messages and close go out as frames. wslay answers pings
 * and the client's close frame itself, and fails the connection on
 * unmasked client frames (1002), text that is not UTF-8 (1007) and
 * messages over the limit (1009); this file tells the owner, once, how
 * the socket closed and when it is over. */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <string.h>

#include <wslay/wslay.h>

#include "ipc/ipc-proto.h"
#include "ws/ws.h"

struct thaw_ws {
    wslay_event_context_ptr ctx;
    const struct thaw_ws_ops *ops;
    void *owner;
    const char *in;      /* bytes being fed, during thaw_ws_feed */
    size_t in_len;
    int told_closed;     /* ops->closed was called */
    int over;            /* ops->done was called */
    int failing;         /* thaw_ws_fail: no wait for the client's answer */
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
    struct thaw_ws *ws = user;
    size_t k = ws->in_len < len ? ws->in_len : len;

    if (!k) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    memcpy(buf, ws->in, k);
    ws->in += k;
    ws->in_len -= k;
    return (ssize_t)k;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct thaw_ws *ws = user;

    ws->ops->write(ws->owner, data, len); /* the connection buffers it */
    return (ssize_t)len;
}

static void tell_closed(struct thaw_ws *ws, int code, const char *reason, size_t n, int clean)
{
    if (ws->told_closed)
        return;
    ws->told_closed = 1;
    ws->ops->closed(ws->owner, code, reason, n, clean);
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                   void *user)
{
    struct thaw_ws *ws = user;

    switch (a->opcode) {
    case WSLAY_TEXT_FRAME: /* UTF-8: wslay checked it */
        ws->ops->message(ws->owner, THAW_IPC_WS_TEXT, a->msg, a->msg_length);
        return;
    case WSLAY_BINARY_FRAME:
        ws->ops->message(ws->owner, THAW_IPC_WS_BINARY, a->msg, a->msg_length);
        return;
    case WSLAY_CONNECTION_CLOSE: {
        /* the payload is the code (2 bytes) then the reason; wslay
         * queued the answering close frame already */
        const char *reason = a->msg_length > 2 ? (const char *)a->msg + 2 : "";
        size_t n = a->msg_length > 2 ? a->msg_length - 2 : 0;
        tell_closed(ws, a->status_code ? a->status_code : WSLAY_CODE_NO_STATUS_RCVD, reason,
                    n, 1);
        return;
    }
    default:
        return; /* ping (answered by wslay), pong */
    }
}

/* A client masks every frame with a fresh key (RFC 6455 §5.3): from the
 * kernel's generator, as the key must not be predictable. */
static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    size_t got = 0;

    while (got < len) {
        ssize_t k = getrandom(buf + got, len - got, 0);
        if (k < 0 && errno != EINTR) {
            wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
        if (k > 0)
            got += (size_t)k;
    }
    return 0;
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .genmask_callback = genmask_cb,
    .on_msg_recv_callback = on_msg,
};

static struct thaw_ws *session_new(const struct thaw_ws_ops *ops, void *owner,
                                   size_t max_message, int client)
{
    struct thaw_ws *ws = calloc(1, sizeof(*ws));
    int rc;

    if (!ws)
        return NULL;
    ws->ops = ops;
    ws->owner = owner;
    rc = client ? wslay_event_context_client_init(&ws->ctx, &callbacks, ws)
                : wslay_event_context_server_init(&ws->ctx, &callbacks, ws);
    if (rc) {
        free(ws);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(ws->ctx, max_message);
    return ws;
}

struct thaw_ws *thaw_ws_new(const struct thaw_ws_ops *ops, void *owner, size_t max_message)
{
    return session_new(ops, owner, max_message, 0);
}

struct thaw_ws *thaw_ws_new_client(const struct thaw_ws_ops *ops, void *owner,
                                   size_t max_message)
{
    return session_new(ops, owner, max_message, 1);
}

void thaw_ws_free(struct thaw_ws *ws)
{
    if (!ws)
        return;
    wslay_event_context_free(ws->ctx);
    free(ws);
}

/* Writes what is queued, then: is the socket over? Over when nothing is
 * left to write and nothing more is to be read (the close frames crossed,
 * or reading stopped on an error and our close frame went). */
static void pump(struct thaw_ws *ws)
{
    if (ws->over)
        return;
    if (wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) < 0) {
        tell_closed(ws, WSLAY_CODE_ABNORMAL_CLOSURE, "", 0, 0);
        ws->over = 1;
        ws->ops->done(ws->owner);
        return;
    }
    if (!wslay_event_get_read_enabled(ws->ctx) && !ws->told_closed) {
        /* wslay failed the connection (a protocol error, 1002; bad
         * UTF-8, 1007; a message over the limit, 1009): the code it sent
         * is the worker's too */
        int code = wslay_event_get_status_code_sent(ws->ctx);
        tell_closed(ws, code == WSLAY_CODE_NO_STATUS_RCVD ? WSLAY_CODE_PROTOCOL_ERROR : code,
                    "", 0, 0);
    }
    if (wslay_event_want_write(ws->ctx))
        return;
    if (!wslay_event_want_read(ws->ctx) || (ws->failing && wslay_event_get_close_sent(ws->ctx))) {
        ws->over = 1;
        ws->ops->done(ws->owner);
    }
}

void thaw_ws_feed(struct thaw_ws *ws, const char *p, size_t n)
{
    if (ws->over || !wslay_event_get_read_enabled(ws->ctx))
        return;
    ws->in = p;
    ws->in_len = n;
    if (wslay_event_recv(ws->ctx) < 0)
        wslay_event_shutdown_read(ws->ctx);
    ws->in = NULL;
    ws->in_len = 0;
    pump(ws);
}

void thaw_ws_send(struct thaw_ws *ws, int type, const void *p, size_t n)
{
    struct wslay_event_msg m = {
        .opcode = type == THAW_IPC_WS_TEXT ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME,
        .msg = p,
        .msg_length = n,
    };

    if (ws->over)
        return;
    wslay_event_queue_msg(ws->ctx, &m); /* refused after a close: dropped */
    pump(ws);
}

void thaw_ws_close(struct thaw_ws *ws, int code, const char *reason, size_t n)
{
    if (ws->over)
        return;
    if (n > 123)
        n = 123; /* a control frame's payload is at most 125 bytes */
    wslay_event_queue_close(ws->ctx, (uint16_t)code, (const uint8_t *)reason, n);
    pump(ws);
}

void thaw_ws_fail(struct thaw_ws *ws, int code, const char *reason)
{
    if (ws->over)
        return;
    ws->failing = 1;
    wslay_event_queue_close(ws->ctx, (uint16_t)code, (const uint8_t *)reason, strlen(reason));
    wslay_event_shutdown_read(ws->ctx);
    ws->told_closed = 1; /* the worker's side is what went */
    pump(ws);
}

int thaw_ws_close_sent(const struct thaw_ws *ws)
{
    return wslay_event_get_close_sent(ws->ctx);
}
