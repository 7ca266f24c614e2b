/* A forwarded Durable Object's WebSocket on its owner (internal-ws.h).
 * The same part the public port plays (server/ws-conn.c), on an internal
 * connection: a session (ws/ws.h) reads the client's frames and writes
 * the object's, the object's record (do/ws.h) takes the messages. */
#include <stdlib.h>

#include "cluster/internal-ws.h"
#include "cluster/relay.h"
#include "do/ws-internal.h"
#include "do/ws.h"
#include "ipc/codec.h"
#include "pool/pool.h"
#include "ws/ws.h"

/* How long the client has to answer the object's close frame. */
#define CLOSE_REPLY_MS 5000

struct thaw_iws {
    struct thaw_h1_conn *c;
    struct thaw_worker *w;
    struct thaw_ws *ws;
    struct thaw_do_ws *dows;   /* NULL once let go of */
    struct thaw_relay *relay;  /* or: the object passed on a socket of
                                * an object on a third node */
    int closing;
};

static void touch(struct thaw_iws *s)
{
    long long idle = s->w->limits.ws_idle_timeout_ms;

    if (idle > 0 && !s->closing)
        thaw_h1_tunnel_clock(s->c, (uint64_t)idle);
}

static void ws_write(void *owner, const void *p, size_t n)
{
    thaw_h1_write(((struct thaw_iws *)owner)->c, p, n);
}

static void ws_message(void *owner, int type, const void *p, size_t n)
{
    struct thaw_iws *s = owner;

    if (s->dows)
        thaw_do_ws_message(s->dows, type, p, n);
}

static void ws_closed(void *owner, int code, const char *reason, size_t n, int clean)
{
    struct thaw_iws *s = owner;

    if (s->dows)
        thaw_do_ws_closed(s->dows, code, reason, n, clean);
}

static void ws_done(void *owner)
{
    struct thaw_iws *s = owner;

    thaw_iws_detach(s);
    thaw_h1_done(s->c); /* the forwarding node sees the end, and closes its client */
}

static const struct thaw_ws_ops session_ops = {
    .write = ws_write,
    .message = ws_message,
    .closed = ws_closed,
    .done = ws_done,
};

/* The object's frames for its client. */
static void to_client(void *owner, int type, const char *p, size_t n)
{
    struct thaw_iws *s = owner;
    const char *reason;
    size_t rlen;
    int code;

    if (type == THAW_DO_WS_LOST) {
        thaw_ws_fail(s->ws, 1011, "the worker's instance ended");
        return;
    }
    touch(s);
    if (type != THAW_IPC_WS_CLOSE) {
        thaw_ws_send(s->ws, type, p, n);
        return;
    }
    thaw_ws_close_parse(p, n, &code, &reason, &rlen);
    thaw_ws_close(s->ws, code, reason, rlen);
    if (thaw_ws_close_sent(s->ws)) {
        s->closing = 1;
        thaw_h1_tunnel_clock(s->c, CLOSE_REPLY_MS);
    }
}

/* ---- a socket this node relays on (relay.h) ----------------------------- */

static void relay_write(void *owner, const char *p, size_t n)
{
    struct thaw_iws *s = owner;

    touch(s);
    thaw_h1_write(s->c, p, n);
}

static void relay_gone(void *owner)
{
    struct thaw_iws *s = owner;

    s->relay = NULL;
    thaw_h1_done(s->c);
}

static void relay_resume(void *owner)
{
    thaw_h1_update_reading(((struct thaw_iws *)owner)->c);
}

static const struct thaw_relay_client relay_ops = {
    .write = relay_write,
    .gone = relay_gone,
    .resume = relay_resume,
};

struct thaw_iws *thaw_iws_start(struct thaw_h1_conn *c, struct thaw_worker *w,
                                const char *sid, const char *head_json)
{
    struct thaw_iws *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->c = c;
    s->w = w;
    if (!(s->ws = thaw_ws_new(&session_ops, s, (size_t)w->limits.ws_max_message))) {
        free(s);
        return NULL;
    }
    /* the socket was made for the object's own worker: this connection
     * stands for that worker's client */
    thaw__do_ws_allow(sid, w);
    if (!(s->dows = thaw_do_ws_claim(w, sid, s, to_client)) &&
        !(s->relay = thaw_relay_claim(sid, w->cfg.name, s, &relay_ops))) {
        thaw_ws_free(s->ws);
        free(s);
        return NULL;
    }
    thaw_h1_status(c, 101, "Switching Protocols");
    thaw_h1_printf(c, "x-thaw-do-head: %s\r\n\r\n", head_json);
    thaw_h1_upgrade(c);
    touch(s);
    if (s->dows)
        thaw_do_ws_flush(s->dows);
    else
        thaw_relay_flush(s->relay);
    return s;
}

void thaw_iws_raw(struct thaw_iws *s, const char *p, size_t n)
{
    touch(s);
    if (s->relay)
        thaw_relay_feed(s->relay, p, n);
    else
        thaw_ws_feed(s->ws, p, n);
}

int thaw_iws_full(const struct thaw_iws *s)
{
    return s && s->relay && thaw_relay_full(s->relay);
}

void thaw_iws_hold(struct thaw_iws *s, int hold)
{
    if (s && s->relay)
        thaw_relay_hold(s->relay, hold);
}

void thaw_iws_detach(struct thaw_iws *s)
{
    if (s && s->relay) {
        struct thaw_relay *r = s->relay;
        s->relay = NULL;
        thaw_relay_detach(r);
    }
    if (s && s->dows) {
        struct thaw_do_ws *d = s->dows;
        s->dows = NULL;
        thaw_do_ws_detach(d);
    }
}

void thaw_iws_free(struct thaw_iws *s)
{
    if (!s)
        return;
    thaw_iws_detach(s);
    thaw_ws_free(s->ws);
    free(s);
}
