/* What the files of the outbound WebSocket binding share (wsclient.c has
 * the whole story): the kind's state, one connection's state, and the
 * functions one file calls in another. Internal to src/bind/wsclient*.c.
 *
 * Who owns what does not change with the files: one struct wsc per call
 * owns its handles (the resolver request, a TCP handle per attempt, two
 * timers) and its memory; every handle closes through
 * thaw__wsc_close_handle, the call ends once (wsclient-end.c), and the
 * wsc is freed once, by thaw__wsc_maybe_free, when its handles are closed
 * and its call ended. */
#ifndef THAW_BIND_WSCLIENT_INTERNAL_H
#define THAW_BIND_WSCLIENT_INTERNAL_H

#include <netdb.h>
#include <stddef.h>

#include <http_parser.h>
#include <jansson.h>
#include <uv.h>

#include "bind/bind.h"
#include "bind/egress.h"
#include "bind/httphead.h"
#include "bind/tls.h"
#include "bind/wsclient-head.h"
#include "util/buf.h"
#include "ws/ws.h"

#define MAX_HEAD_BYTES (64 * 1024)
#define CLOSE_REPLY_MS 5000 /* the server's answer to our close frame */
#define PAUSE_MS 5          /* the instance's channel is full: look again */
#define MAX_OUT (16u << 20) /* bytes waiting for a server that reads nothing */

struct wsk {
    uv_loop_t *loop;
    struct thaw_egress_config cfg;
    char *config_file;
    size_t max_message;
    struct thaw_tls_ctx *tls; /* made at the first wss:// */
    int live;                 /* connections not yet freed */
    int closing;              /* the set is gone: free when live is 0 */
};

enum state { S_DIAL, S_TLS, S_HEAD, S_BODY, S_OPEN, S_OVER };

struct wsc {
    struct wsk *k;
    struct thaw_bind_call *call; /* NULL once ended */
    enum state st;
    struct thaw_wsc_url u;
    json_t *headers;
    char key[25];

    uv_getaddrinfo_t gai;
    int resolving;
    struct addrinfo *res, *next;
    uv_tcp_t *tcp;
    uv_connect_t creq;
    uv_timer_t timer;  /* connect, handshake, close deadlines */
    uv_timer_t resume; /* a full channel: reading again later */
    int open_handles;
    size_t out_bytes;  /* written, not yet sent */

    struct thaw_tls *tls;
    struct thaw_buf in; /* the response head */
    struct thaw_http_head head;
    http_parser hp;
    unsigned long long received;
    int body_done;
    struct thaw_ws *ws;
    int paused;

    char refused[1400];
    char error[300];
};

/* ---- the end (wsclient-end.c) ---------------------------------------- */

void thaw__wsc_kind_free(struct wsk *k);
/* Frees c once nothing holds it (its call, the resolver, its handles). */
void thaw__wsc_maybe_free(struct wsc *c);
/* The one way a handle of c closes (h NULL or closing already: nothing). */
void thaw__wsc_close_handle(struct wsc *c, uv_handle_t *h);
/* Everything goes: the connection at once (what is unsent is lost). */
void thaw__wsc_teardown(struct wsc *c);
/* The call fails (or its stream ends) with cls and msg, then teardown. */
void thaw__wsc_fail(struct wsc *c, const char *cls, const char *msg);
/* The socket is over: what is written goes out first, then it closes. */
void thaw__wsc_finish(struct wsc *c);
/* c->timer's callback, whatever the phase (connect, handshake, close). */
void thaw__wsc_on_timer(uv_timer_t *t);
/* The call's on_cancel: the instance dropped the socket, or is gone. */
void thaw__wsc_on_cancel(struct thaw_bind_call *call);

/* ---- bytes in and out (wsclient-io.c) -------------------------------- */

/* Writes p (n bytes) to the server, through TLS when there is TLS. */
void thaw__wsc_write_plain(struct wsc *c, const void *p, size_t n);
/* Writes what TLS has for the server. */
void thaw__wsc_flush_tls(struct wsc *c);
/* The TCP handle's read callbacks. */
void thaw__wsc_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);
void thaw__wsc_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

/* ---- the answer to the upgrade (wsclient-answer.c) ------------------- */

/* Bytes of the answer's head (state S_HEAD). */
void thaw__wsc_head_bytes(struct wsc *c, const char *p, size_t n);
/* Body bytes of a refusal (state S_BODY; n 0: the connection ended). */
void thaw__wsc_body_bytes(struct wsc *c, const char *p, size_t n);

/* ---- the socket after the 101 (wsclient-socket.c) -------------------- */

extern const struct thaw_ws_ops thaw__wsc_session_ops;
/* The call's on_message: a message or close() from the worker. */
void thaw__wsc_on_message(struct thaw_bind_call *call, int type, const void *p, size_t n);

/* ---- connecting (wsclient-dial.c) ------------------------------------ */

/* The resolver's callback: dials the addresses the policy allows. */
void thaw__wsc_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);
/* A step of the TLS handshake (state S_TLS); sends the upgrade once done. */
void thaw__wsc_tls_step(struct wsc *c);

#endif
