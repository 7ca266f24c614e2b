/* The HTTP/1 core shared by thaw's three servers: the public port
 * (server/http.c), the dev admin port (server/admin.c) and the serve admin
 * API (serve/api.c). Each keeps only its routing and handlers; everything
 * a port must do the same way is here, one job a file:
 *   h1-rules.c   the head rules (version, method, Host, absolute-form),
 *                declared sizes, the body clock, reason phrases
 *   h1-head.c    reading a head: the target and headers under max_header
 *   h1-link.c    a client's socket and timer, closed through uv_close
 *   h1-listen.c  binding a listener
 *   h1-server.c  accepting under a connection cap, flushing, shutdown
 *   h1-conn.c    the connection driver: keep-alive, pipelining, the
 *                header/body/idle clocks, limits, bodies streamed with
 *                backpressure, thaw's own error answers
 *   h1-write.c   answers: framing, output per loop iteration, queued bytes
 * The driver's interface (callbacks in, answers out) is h1-conn.h; this
 * header has the parts below it. */
#ifndef THAW_SERVER_H1_H
#define THAW_SERVER_H1_H

#include <http_parser.h>
#include <stdint.h>
#include <uv.h>

#include "config/limits.h"
#include "util/buf.h"

/* A body slower than body_min_rate is tolerated for this long first (a
 * client's TCP window opening, a phone waking its radio). */
#define THAW_H1_BODY_GRACE_MS 5000
/* How often a body in progress is looked at (rate and gap). */
#define THAW_H1_BODY_TICK_MS 1000

/* ---- h1-rules.c ------------------------------------------------------ */

/* The rules every port applies once a head is parsed: 505 for a version
 * other than 1.0/1.1, 501 for CONNECT and TRACE, 400 for several Host
 * headers or HTTP/1.1 without one (RFC 9112 §3.2). hosts: how many Host
 * headers came. 0, or the status with *why (a sentence for the body). */
int thaw_h1_check_head(const http_parser *p, int hosts, const char **why);

/* An absolute-form target ("http://name.example/path?q"): copies its
 * authority (which overrides Host, RFC 9112 §3.2.2) into host and returns
 * the offset of its path ("/" when there is none: *path_off == n). -1 when
 * the target is not absolute-form. */
long thaw_h1_absolute(const char *url, size_t n, char *host, size_t hostlen);

/* 413 when a declared size (Content-Length, or the chunk whose header was
 * just parsed) would take the body over max after so_far bytes; else 0. */
int thaw_h1_declared_over(const http_parser *p, uint64_t so_far, long long max);

/* The clock of a body being read. */
struct thaw_h1_body_clock {
    uint64_t start_ms;   /* the head ended */
    uint64_t last_ms;    /* the last body bytes came */
    uint64_t bytes;
};
void thaw_h1_body_start(struct thaw_h1_body_clock *k, uint64_t now);
/* Called every THAW_H1_BODY_TICK_MS while a body is read: 1 when the
 * client gave up (a gap over body_timeout_ms, or under body_min_rate
 * after the grace), else 0. */
int thaw_h1_body_late(const struct thaw_h1_body_clock *k, long long body_timeout_ms,
                      long long body_min_rate, uint64_t now);

const char *thaw_h1_reason(int status);

/* ---- h1-head.c: reading a head ---------------------------------------- */

struct thaw_h1_head;
/* A header, whole: name in lower case (not NUL-terminated; both point
 * into the reader's buffers until the next header). 0, or -1 to refuse
 * the head with 431. */
typedef int (*thaw_h1_header_cb)(struct thaw_h1_head *h, const char *name, size_t nlen,
                                 const char *value, size_t vlen);

struct thaw_h1_head {
    struct thaw_buf url;         /* the request target, as sent */
    struct thaw_buf field, value;
    int last_was_value;
    size_t bytes;                /* of the request line and headers */
    size_t max;                  /* max_header: -1 from a callback over it */
    int hosts;                   /* how many Host headers came */
    thaw_h1_header_cb on_header; /* the owner finds itself from h (container) */
};

void thaw_h1_head_init(struct thaw_h1_head *h, size_t max, thaw_h1_header_cb on_header);
/* For the next request (max: max_header now). */
void thaw_h1_head_reset(struct thaw_h1_head *h, size_t max);
void thaw_h1_head_free(struct thaw_h1_head *h);
/* The bodies of http-parser's on_url, on_header_field, on_header_value
 * and (the last header) on_headers_complete: 0, or -1 for 431. */
int thaw_h1_head_url(struct thaw_h1_head *h, const char *at, size_t n);
int thaw_h1_head_field(struct thaw_h1_head *h, const char *at, size_t n);
int thaw_h1_head_value(struct thaw_h1_head *h, const char *at, size_t n);
int thaw_h1_head_done(struct thaw_h1_head *h);

/* http-parser's on_url, on_header_field and on_header_value for a
 * connection type (h1-conn.c's, the fuzz target's) whose parser.data
 * points at it and that has `head` and `err_status` (431 when the head is
 * over max_header). */
#define THAW_H1_HEAD_CALLBACK(name, fn, conn_type)                         \
    static int name(http_parser *p, const char *at, size_t n)              \
    {                                                                      \
        conn_type *c = p->data;                                            \
        return fn(&c->head, at, n) ? (c->err_status = 431, -1) : 0;       \
    }
#define THAW_H1_HEAD_CALLBACKS(conn_type)                                  \
    THAW_H1_HEAD_CALLBACK(on_url, thaw_h1_head_url, conn_type)             \
    THAW_H1_HEAD_CALLBACK(on_header_field, thaw_h1_head_field, conn_type)  \
    THAW_H1_HEAD_CALLBACK(on_header_value, thaw_h1_head_value, conn_type)

/* Every server's parser callbacks go by the same names. */
#define THAW_H1_SET_CALLBACKS(st)                                          \
    do {                                                                   \
        (st).on_message_begin = on_message_begin;                          \
        (st).on_url = on_url;                                              \
        (st).on_header_field = on_header_field;                            \
        (st).on_header_value = on_header_value;                            \
        (st).on_headers_complete = on_headers_complete;                    \
        (st).on_chunk_header = on_chunk_header;                            \
        (st).on_body = on_body;                                            \
        (st).on_message_complete = on_message_complete;                    \
    } while (0)

/* ---- h1-link.c: a client connection's socket and clock ---------------- */

/* The first member of every port's connection struct: tcp.data and
 * timer.data point at it (so at the connection). Both handles are closed
 * through uv_close before on_free gives the memory back. */
struct thaw_h1_link {
    uv_tcp_t tcp;
    uv_timer_t timer;
    int handles;                 /* open libuv handles */
    void (*on_free)(struct thaw_h1_link *l);
    struct thaw_h1_link **list, *prev, *next; /* the server's open connections */
    char peer_ip[64];            /* the client's address */
    char peer_port[8];
};

/* Accepts a client of server into l (zeroed, the owner's memory) and puts
 * it on list. 0; or -1: the accept failed and on_free(l) comes later. */
int thaw_h1_link_accept(struct thaw_h1_link *l, uv_stream_t *server,
                        struct thaw_h1_link **list, void (*on_free)(struct thaw_h1_link *l));
/* Off the list; both handles close, then on_free. */
void thaw_h1_link_close(struct thaw_h1_link *l);

/* ---- h1-listen.c ----------------------------------------------------- */

/* Binds and listens on ip:port ("::1" style IPv6 without brackets).
 * authority (may be NULL) gets "ip:port" or "[ip]:port". 0 or a libuv
 * error; on error the listener is closed. cb NULL: the kernel listens
 * (clients connect and wait in its backlog) but nothing is accepted
 * until uv_listen(l, backlog, cb). */
int thaw_h1_listen(uv_tcp_t *l, uv_loop_t *loop, const char *ip, int port, int backlog,
                   uv_connection_cb cb, char *authority, size_t alen);
/* "IP:PORT" or "[IPv6]:PORT" into host (no brackets) and port; 0, or
 * UV_EINVAL when it is not one. */
int thaw_h1_parse_addr(const char *addr, char *host, size_t n, int *port);
/* The client's address of an accepted connection (port may be NULL). */
void thaw_h1_peer(uv_tcp_t *t, char *ip, size_t iplen, char *port, size_t portlen);

#endif
