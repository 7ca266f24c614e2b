/* The admin API's HTTP side (thaw serve --admin), on the shared HTTP/1
 * core (server/h1-conn.h: keep-alive, limits, clocks): bodies up to a
 * bound (a bundle), bearer-token auth checked in constant time before any
 * body is read, JSON answers and chunked streams (tail). What each path does is the handler's business
 * (src/serve/endpoints.c). */
#ifndef THAW_SERVE_API_H
#define THAW_SERVE_API_H

#include <jansson.h>
#include <http_parser.h>
#include <uv.h>

#include "config/limits.h"
#include "server/h1-conn.h"
#include "util/buf.h"

struct thaw_api;
struct thaw_api_req;

/* Called once per authenticated request whose body is complete. The
 * handler answers now or later (thaw_api_reply*), or starts a stream. */
typedef void (*thaw_api_handler)(struct thaw_api_req *r, void *data);

struct thaw_api {
    struct thaw_h1_server srv;  /* the HTTP side (server/h1-conn.h) */
    char token[256];
    long long max_body;
    /* the header, body and idle timeouts (header_timeout_ms,
     * body_timeout_ms, keepalive_timeout_ms); NULL: thaw's defaults */
    const struct thaw_limits *limits;
    struct thaw_limits default_limits; /* what limits points at when it was NULL */
    thaw_api_handler handler;
    void *data;
    /* unauthenticated GETs (/healthz, /readyz): status and body */
    int (*probe)(const char *path, char *body, size_t n, void *data);
};

struct thaw_api_req {
    struct thaw_h1_conn h1;     /* first: the server allocates the whole;
                                 * one per connection, reused by each of
                                 * its requests */
    struct thaw_api *api;
    int method;             /* enum http_method */
    char path[512];         /* without the query string */
    char query[512];
    char auth[512];         /* the Authorization header */
    int auth_over;          /* it was longer than auth */
    struct thaw_buf body;   /* the whole body, during the handler's call */
    /* the handler's state for a late answer; on_gone runs when the client
     * leaves first (the request must not be answered after that) */
    void *pending;
    void (*on_gone)(struct thaw_api_req *r);
    struct thaw_api_req *next_sub; /* handler's lists (tail subscribers) */
    long long dropped;      /* stream lines dropped: the client read too slowly */
};

/* The admin API's connection cap: a few dozen operators and scripts; the
 * rest wait in the backlog or take an idle one's place (h1-server.c). */
#define THAW_API_MAX_CONNS 64

/* addr is "IP:PORT" or "[IPv6]:PORT". 0 or a libuv error. */
int thaw_api_listen(struct thaw_api *a, uv_loop_t *loop, const char *addr);
void thaw_api_close(struct thaw_api *a);

/* A complete answer; the connection may carry the client's next request. */
void thaw_api_reply(struct thaw_api_req *r, int status, const char *ctype,
                    const char *body, size_t n);
/* Takes ownership of j. */
void thaw_api_reply_json(struct thaw_api_req *r, int status, json_t *j);
/* {"error": msg} with status. */
void thaw_api_error(struct thaw_api_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A chunked answer that stays open until the client leaves. */
void thaw_api_stream_begin(struct thaw_api_req *r, const char *ctype);
void thaw_api_stream_write(struct thaw_api_req *r, const char *p, size_t n);
/* Bytes written to the stream that the client has not taken yet. */
size_t thaw_api_stream_queued(struct thaw_api_req *r);
/* Ends a stream (the last chunk). */
void thaw_api_stream_end(struct thaw_api_req *r);

/* Constant-time comparison: 1 when equal. */
int thaw_api_token_equal(const char *a, const char *b);

#endif
