/* A public-port connection: the HTTP/1 core's connection (h1-conn.h) and
 * what the public port adds to its request, the exchange with the worker
 * that serves it. Shared by http.c (routing, dispatch), response.c (the
 * instance's answer), static.c (asset files) and reqlog.c (the log). */
#ifndef THAW_SERVER_CONN_H
#define THAW_SERVER_CONN_H

#include "server/h1-conn.h"
#include "server/server.h"
#include "util/buf.h"
#include "ws/ws.h"

struct thaw_do_ws;
struct thaw_relay;

struct conn {
    struct thaw_h1_conn h1;  /* first: the core allocates the whole */
    struct thaw_server *srv;

    /* the request's head, for the worker */
    struct thaw_buf hdrs;   /* name, value fields, ready for REQ_HEAD */
    char host[256];         /* Host, or an absolute-form target's authority */
    const char *target;     /* the path and query: into h1.head.url */
    size_t target_len;

    /* its body, read whole before the request takes an instance slot
     * unless it may stream (a client trickling its body holds a
     * connection, not an instance) */
    struct thaw_buf body;   /* what came of it (empty when it came in one piece) */
    size_t body_sent;       /* of body, handed to the exchange */
    int dispatched;         /* the exchange went to the pool (or a static file) */
    int body_stream;        /* dispatched before its body ended: counted in
                             * worker->body_streams */

    /* for the request log and the metrics */
    uint64_t req_start_ns;
    char req_method[16];
    char req_path[256];
    int resp_status;

    /* the exchange with the worker */
    struct thaw_worker *worker;  /* that serves it (srv->route's choice) */
    struct thaw_exchange ex;
    int ex_active;          /* dispatched, response not finished */

    struct thaw_static_send *static_send; /* an asset file being sent (static.c) */

    /* WebSockets (ws-conn.c) */
    struct thaw_ws_offer offer;  /* what the request's headers ask for */
    struct thaw_ws *ws;          /* after the worker's 101: the socket's
                                  * frames; freed with the connection */
    int ws_closing;              /* the worker's close frame went: the
                                  * connection's clock is the answer's */
    struct thaw_do_ws *dows;     /* a Durable Object's socket (do/ws.h): its
                                  * messages go there, not to c->ex */
    struct thaw_relay *relay;    /* one whose owner is another node
                                  * (cluster/relay.h): bytes go there */
};

/* response.c */
extern const struct thaw_exchange_ops thaw__conn_ex_ops;

/* reqlog.c: one JSON line and the metrics for a finished request;
 * status 0 when the response was cut short, 499 when the client left */
void thaw__conn_log_request(struct conn *c, int status);

/* http.c */
/* The exchange is over (answered, or failed): the request's slot and
 * state go; the answer itself is the caller's. */
void thaw__conn_exchange_over(struct conn *c);
/* Hands the buffered body to the exchange while it takes more. */
void thaw__conn_pump_body(struct conn *c);

/* ws-conn.c */
/* In on_head: an upgrade request that cannot be one is answered (400,
 * 426): 1; else 0 (offer.valid says whether it is one). */
int thaw__conn_ws_check(struct conn *c);
/* The worker's 101: the handshake's answer and the upgrade, or a 500
 * when the request did not ask for a WebSocket. */
void thaw__conn_ws_accept(struct conn *c, const char **names, const char **values, int n);
/* The client's bytes after the upgrade. */
void thaw__conn_ws_raw(struct conn *c, const char *p, size_t n);
/* A THAW_IPC_WS_* frame from the instance. */
void thaw__conn_ws_frame(struct conn *c, int type, const char *p, size_t n);
/* The exchange failed (instance gone): 1011 to the client, then the end. */
void thaw__conn_ws_lost(struct conn *c);
/* The connection closes under an open socket. */
void thaw__conn_ws_abort(struct conn *c);

#endif
