/* WebSockets (RFC 6455) in the supervisor: the upgrade request's checks
 * and the handshake's answer (offer.c), the connection's frames after it
 * (session.c, on wslay: framing, masking, fragments, ping/pong, UTF-8
 * validation of text, the message limit, the close handshake). The worker
 * sees whole messages over its channel (THAW_IPC_WS_*); docs/websockets.md
 * has the whole path. No libuv handle lives here: the client's socket
 * and clock are its HTTP connection's (server/ws-conn.c). */
#ifndef THAW_WS_H
#define THAW_WS_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* ---- offer.c: the upgrade request ------------------------------------- */

struct thaw_ws_offer {
    int upgrade;        /* an Upgrade header names "websocket" */
    int conn_upgrade;   /* a Connection header names "upgrade" */
    int keys;           /* Sec-WebSocket-Key headers */
    char key[32];       /* the (last) one, when it fits */
    int versions;       /* Sec-WebSocket-Version headers */
    int version13;      /* ... and one said 13 */
    int valid;          /* thaw_ws_offer_check said 1 */
};

void thaw_ws_offer_reset(struct thaw_ws_offer *o);
/* One request header (name in lower case). */
void thaw_ws_offer_header(struct thaw_ws_offer *o, const char *name, size_t nlen,
                          const char *value, size_t vlen);
/* Once the head is in: 0 when the request does not ask for a WebSocket
 * (no "Upgrade: websocket"), 1 when it is a valid upgrade (RFC 6455
 * §4.2.1), else the status to refuse it with (400; 426 for a version
 * other than 13, answered with "Sec-WebSocket-Version: 13") and *why, a
 * sentence for the body. */
int thaw_ws_offer_check(struct thaw_ws_offer *o, int is_get, int http11, const char **why);
/* The Sec-WebSocket-Accept value for the offer's key (28 chars + NUL). */
void thaw_ws_accept_value(const struct thaw_ws_offer *o, char out[29]);

/* ---- session.c: one upgraded connection -------------------------------- */

/* What a session calls on its owner. */
struct thaw_ws_ops {
    /* bytes for the client (frames), in order */
    void (*write)(void *owner, const void *p, size_t n);
    /* a whole message for the worker: type THAW_IPC_WS_TEXT or _BINARY */
    void (*message)(void *owner, int type, const void *p, size_t n);
    /* the socket closed on the client's side, once: its close frame
     * (clean: code and reason as sent; 1005 without a code), or thaw
     * failed it (not clean: 1002 protocol error, 1007 bad UTF-8, 1009 a
     * message over the limit) */
    void (*closed)(void *owner, int code, const char *reason, size_t n, int clean);
    /* the close handshake is over (or the connection broken): nothing
     * more will be read or written; end the connection after the output */
    void (*done)(void *owner);
};

struct thaw_ws;

/* A session for an upgraded connection; NULL when out of memory.
 * max_message: the largest message the client may send (1009 over it). */
struct thaw_ws *thaw_ws_new(const struct thaw_ws_ops *ops, void *owner, size_t max_message);
/* The same for a connection thaw made (ws/client.c): thaw is the client,
 * so its frames are masked and the server's must not be. */
struct thaw_ws *thaw_ws_new_client(const struct thaw_ws_ops *ops, void *owner,
                                   size_t max_message);
void thaw_ws_free(struct thaw_ws *ws);
/* Bytes from the client. */
void thaw_ws_feed(struct thaw_ws *ws, const char *p, size_t n);
/* A message from the worker (THAW_IPC_WS_TEXT or _BINARY). */
void thaw_ws_send(struct thaw_ws *ws, int type, const void *p, size_t n);
/* The worker's close(code, reason): the close frame goes; done() once
 * the client answers it. */
void thaw_ws_close(struct thaw_ws *ws, int code, const char *reason, size_t n);
/* The worker's side is gone (its instance died, or thaw's limit ended
 * the request): a close frame with code, then done() without waiting. */
void thaw_ws_fail(struct thaw_ws *ws, int code, const char *reason);
/* 1 once a close frame went to the client. */
int thaw_ws_close_sent(const struct thaw_ws *ws);

/* ---- closemsg.c: a close between the supervisor and an instance ------- */

/* The WS_CLOSE payload for the instance: code, reason, clean. 0 or -1. */
int thaw_ws_close_payload(struct thaw_buf *b, int code, const char *reason, size_t n,
                          int clean);
/* The worker's WS_CLOSE payload: its code (1000 when it has none that
 * parses) and reason (pointing into p). */
void thaw_ws_close_parse(const void *p, size_t n, int *code, const char **reason,
                         size_t *rlen);

#endif
