/* The HTTP/1.1 front end: accepts clients, parses requests with
 * http-parser, hands each to the pool as an exchange and writes the
 * response the instance streams back. */
#ifndef THAW_SERVER_H
#define THAW_SERVER_H

#include <uv.h>

#include "pool/pool.h"
#include "server/h1.h"

struct conn;

struct thaw_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int listening;
    struct thaw_worker *worker;
    /* thaw serve: picks the worker for a request from its Host header and
     * target (NULL: 404). thaw dev leaves it NULL and `worker` serves every
     * request; under serve, `worker` holds only the server-wide limits and
     * the metrics of requests that matched no worker. */
    struct thaw_worker *(*route)(struct thaw_server *s, const char *host,
                                 const char *target, size_t n);
    void *route_data;
    char authority[128];   /* ip:port, for requests without Host */
    uv_prepare_t flusher;  /* writes what a loop iteration produced */
    struct thaw_h1_link *conns; /* every open connection (struct conn) */
    struct conn *dirty;    /* connections with output or work pending */
};

/* Binds and listens. Returns 0 or a libuv error (port taken...). */
int thaw_server_listen(struct thaw_server *s, uv_loop_t *loop, const char *ip,
                       int port, struct thaw_worker *w);
/* Stops accepting and drops every connection (shutdown). */
void thaw_server_close(struct thaw_server *s);

#endif
