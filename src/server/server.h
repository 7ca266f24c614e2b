/* The public port: on the shared HTTP/1 core (h1-conn.h), each request
 * is routed to a worker and handed to the pool as an exchange (or
 * answered from the worker's static assets), and the response the
 * instance streams back is written to the client. */
#ifndef THAW_SERVER_H
#define THAW_SERVER_H

#include <uv.h>

#include "pool/pool.h"
#include "server/h1-conn.h"

struct thaw_server {
    struct thaw_h1_server h1;  /* the port (h1-server.c); data: this */
    struct thaw_worker *worker;
    /* thaw serve: picks the worker for a request from its Host header and
     * target (NULL: 404). thaw dev leaves it NULL and `worker` serves every
     * request; under serve, `worker` holds only the server-wide limits and
     * the metrics of requests that matched no worker. */
    struct thaw_worker *(*route)(struct thaw_server *s, const char *host,
                                 const char *target, size_t n);
    void *route_data;
    char authority[128];   /* ip:port, for requests without Host */
};

/* Binds and listens. Returns 0 or a libuv error (port taken...). */
int thaw_server_listen(struct thaw_server *s, uv_loop_t *loop, const char *ip,
                       int port, struct thaw_worker *w);
/* The same, but accepting starts with thaw_server_accept (thaw dev: the
 * port is taken at once, and a client that connects before the worker's
 * first build has begun waits for it rather than getting an error). */
int thaw_server_bind(struct thaw_server *s, uv_loop_t *loop, const char *ip, int port,
                     struct thaw_worker *w);
int thaw_server_accept(struct thaw_server *s);
/* Stops accepting and drops every connection (shutdown). */
void thaw_server_close(struct thaw_server *s);

#endif
