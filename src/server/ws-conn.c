/* The public port's WebSockets: a request that asks for one is checked
 * when its head is in (400/426 when it cannot be one), goes to the worker
 * like any request, and when the worker answers 101 (Response(None,
 * status=101, web_socket=client)) the connection is upgraded: its bytes
 * go to a session (ws/ws.h), whole messages travel as THAW_IPC_WS_*
 * frames on the request's stream, and the exchange stays attached to its
 * instance (counted in flight) until the socket is over. Who ends what:
 * the session says when the close handshake is over (done), the
 * connection's close (client gone, a clock) comes through on_abort; both
 * release the exchange (CANCEL: the worker's socket sees its close), and
 * the session's memory goes with the connection's (http.c on_free). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster/relay.h"
#include "do/ws.h"
#include "ipc/codec.h"
#include "server/conn.h"
#include "util/log.h"

/* How long the client has to answer the worker's close frame. */
#define CLOSE_REPLY_MS 5000

static struct conn *owner_conn(void *owner)
{
    return owner;
}

/* Something moved on the socket: its idle clock (ws_idle_timeout_ms)
 * starts again, unless the close handshake's deadline runs. */
static void touch(struct conn *c)
{
    long long idle = c->worker ? c->worker->limits.ws_idle_timeout_ms : 0;

    if (idle > 0 && !c->ws_closing)
        thaw_h1_tunnel_clock(&c->h1, (uint64_t)idle);
}

/* ---- the session's side ------------------------------------------------ */

static void ws_write(void *owner, const void *p, size_t n)
{
    thaw_h1_write(&owner_conn(owner)->h1, p, n);
}

static void ws_message(void *owner, int type, const void *p, size_t n)
{
    struct conn *c = owner_conn(owner);

    if (c->dows)
        thaw_do_ws_message(c->dows, type, p, n);
    else if (c->ex_active)
        thaw_exchange_frame(&c->ex, (uint8_t)type, p, n);
}

static void ws_closed(void *owner, int code, const char *reason, size_t n, int clean)
{
    struct conn *c = owner_conn(owner);
    struct thaw_buf b;

    if (c->dows) {
        thaw_do_ws_closed(c->dows, code, reason, n, clean);
        return;
    }
    if (!c->ex_active)
        return;
    thaw_buf_init(&b, 512);
    if (thaw_ws_close_payload(&b, code, reason, n, clean) == 0)
        thaw_exchange_frame(&c->ex, THAW_IPC_WS_CLOSE, b.data, b.len);
    thaw_buf_free(&b);
}

/* The socket is over: the exchange goes (its stream ends in the
 * instance), and the connection once its last frames are written. */
static void end_exchange(struct conn *c)
{
    if (c->relay) {
        struct thaw_relay *r = c->relay;
        c->relay = NULL;
        thaw_relay_detach(r);
    }
    if (c->dows) {
        thaw_do_ws_detach(c->dows);
        c->dows = NULL;
    }
    if (!c->ex_active)
        return;
    c->ex_active = 0;
    thaw__conn_log_request(c, 101);
    thaw_exchange_release(&c->ex);
    thaw__conn_exchange_over(c);
}

static void ws_done(void *owner)
{
    struct conn *c = owner_conn(owner);

    end_exchange(c);
    thaw_h1_done(&c->h1);
}

static const struct thaw_ws_ops session_ops = {
    .write = ws_write,
    .message = ws_message,
    .closed = ws_closed,
    .done = ws_done,
};

/* ---- the request -------------------------------------------------------- */

int thaw__conn_ws_check(struct conn *c)
{
    struct thaw_h1_conn *h = &c->h1;
    const char *why = NULL;
    int st = thaw_ws_offer_check(&c->offer, h->parser.method == HTTP_GET, !h->http10, &why);

    if (st <= 1)
        return 0;
    h->keep_alive = 0; /* what the client sends next may be frames */
    c->ex_active = 0;
    thaw__conn_log_request(c, st);
    thaw_h1_reply(h, st, "text/plain; charset=utf-8",
                  st == 426 ? "sec-websocket-version: 13\r\n" : NULL, why, strlen(why));
    return 1;
}

/* Headers of the worker's 101 that describe the connection itself: thaw
 * writes its own (and offers no extension, so none may be claimed). */
static int own_header(const char *name)
{
    static const char *const names[] = {
        "connection", "upgrade", "sec-websocket-accept", "sec-websocket-extensions",
        "content-length", "transfer-encoding", "keep-alive", "te", "trailer",
        "x-thaw-do-ws",
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(name, names[i]) == 0)
            return 1;
    return 0;
}

static int safe(const char *s)
{
    return !strpbrk(s, "\r\n");
}

/* The worker answered 101 to a request that is not an upgrade (or thaw
 * cannot hold the socket): an error, and its socket is dropped. */
static void refuse_101(struct conn *c, int status, const char *msg)
{
    c->resp_status = status;
    thaw__conn_log_request(c, status);
    c->ex_active = 0;
    thaw_exchange_release(&c->ex); /* CANCEL: the worker's socket closes */
    thaw__conn_exchange_over(c);
    thaw_h1_error(&c->h1, status, msg);
}

static void to_client(void *conn, int type, const char *p, size_t n);

/* ---- a socket relayed to the object's owner node (cluster/relay.h) ------ */

static void relay_write(void *conn, const char *p, size_t n)
{
    struct conn *c = conn;

    touch(c);
    thaw_h1_write(&c->h1, p, n);
}

static void relay_gone(void *conn)
{
    struct conn *c = conn;

    c->relay = NULL;
    thaw_h1_done(&c->h1); /* after the owner's last frames */
}

static void relay_resume(void *conn)
{
    thaw_h1_update_reading(&((struct conn *)conn)->h1);
}

static const struct thaw_relay_client relay_ops = {
    .write = relay_write,
    .gone = relay_gone,
    .resume = relay_resume,
};

/* The object's socket, from the worker's fetch (stub.fetch returned the
 * object's 101): it takes the connection's messages from now on, and the
 * worker's request is over (its slot free). 0, or -1 when refused. */
static int take_object_socket(struct conn *c, const char **names, const char **values, int n)
{
    int i;

    for (i = 0; i < n; i++)
        if (strcasecmp(names[i], "x-thaw-do-ws") == 0)
            break;
    if (i == n)
        return 0;
    if (!(c->dows = thaw_do_ws_claim(c->worker, values[i], c, to_client)) &&
        !(c->relay = thaw_relay_claim(values[i], c->worker->cfg.name, c, &relay_ops))) {
        thaw_ws_free(c->ws);
        c->ws = NULL;
        refuse_101(c, 500, "500 Internal Server Error: the worker returned a Durable "
                   "Object's WebSocket that is gone or was returned before\n");
        return -1;
    }
    return 0;
}

void thaw__conn_ws_accept(struct conn *c, const char **names, const char **values, int n)
{
    struct thaw_h1_conn *h = &c->h1;
    char accept[29];
    int i;

    if (!c->offer.valid) {
        thaw_log("worker %s: answered 101 (a WebSocket) to %s %s, which is not a WebSocket "
                 "upgrade request", c->worker ? c->worker->cfg.name : "?", c->req_method,
                 c->req_path);
        refuse_101(c, 500, "500 Internal Server Error: the worker answered 101 Switching "
                   "Protocols (Response(web_socket=...)) to a request that is not a "
                   "WebSocket upgrade; answer with a WebSocket only when "
                   "request.headers.get(\"Upgrade\") is \"websocket\"\n");
        return;
    }
    if (!(c->ws = thaw_ws_new(&session_ops, c, (size_t)c->worker->limits.ws_max_message))) {
        refuse_101(c, 500, "500 Internal Server Error: out of memory\n");
        return;
    }
    if (take_object_socket(c, names, values, n))
        return;
    thaw_ws_accept_value(&c->offer, accept);
    thaw_h1_status(h, 101, "Switching Protocols");
    thaw_h1_printf(h, "upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: %s\r\n",
                   accept);
    for (i = 0; i < n; i++)
        if (!own_header(names[i]) && safe(names[i]) && safe(values[i]))
            thaw_h1_printf(h, "%s: %s\r\n", names[i], values[i]);
    thaw_h1_lit(h, "\r\n");
    c->resp_status = 101;
    c->ex.tunnel = 1;
    c->ws_closing = 0;
    thaw_h1_upgrade(h);
    touch(c);
    if (c->dows || c->relay) { /* the worker's part is done: the object's socket holds no slot */
        if (c->dows)
            thaw_do_ws_flush(c->dows);
        else
            thaw_relay_flush(c->relay);
        thaw__conn_log_request(c, 101);
        c->ex_active = 0;
        thaw_exchange_release(&c->ex);
        thaw__conn_exchange_over(c);
    }
}

/* ---- frames of both sides ------------------------------------------------ */

/* A Durable Object's frame for its client (do/ws.c). */
static void to_client(void *conn, int type, const char *p, size_t n)
{
    if (type == THAW_DO_WS_LOST)
        thaw__conn_ws_lost(conn);
    else
        thaw__conn_ws_frame(conn, type, p, n);
}

void thaw__conn_ws_raw(struct conn *c, const char *p, size_t n)
{
    if (c->relay) { /* the owner's session reads the frames */
        touch(c);
        thaw_relay_feed(c->relay, p, n);
        return;
    }
    if (!c->ws)
        return;
    touch(c);
    thaw_ws_feed(c->ws, p, n);
}

/* WS_* from the instance. */
void thaw__conn_ws_frame(struct conn *c, int type, const char *p, size_t n)
{
    const char *reason;
    size_t rlen;
    int code;

    if (!c->ws)
        return; /* before its 101, or refused: nobody to send to */
    touch(c);
    if (type != THAW_IPC_WS_CLOSE) {
        thaw_ws_send(c->ws, type, p, n);
        return;
    }
    thaw_ws_close_parse(p, n, &code, &reason, &rlen);
    thaw_ws_close(c->ws, code, reason, rlen);
    /* a client that never answers does not hold the connection */
    if (thaw_ws_close_sent(c->ws)) {
        c->ws_closing = 1;
        thaw_h1_tunnel_clock(&c->h1, CLOSE_REPLY_MS);
    }
}

/* The instance is gone (or thaw ended the request): the client is told
 * with 1011, and the connection ends after it. */
void thaw__conn_ws_lost(struct conn *c)
{
    thaw__conn_log_request(c, 101);
    thaw_ws_fail(c->ws, 1011, "the worker's instance ended");
}

/* The connection closes under the socket (client gone, a clock). */
void thaw__conn_ws_abort(struct conn *c)
{
    end_exchange(c);
}
