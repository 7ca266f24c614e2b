/* One client connection; shared by http.c (reading, parsing) and
 * response.c (writing). */
#ifndef THAW_SERVER_CONN_H
#define THAW_SERVER_CONN_H

#include <http_parser.h>

#include "server/h1.h"
#include "server/server.h"
#include "util/buf.h"

struct conn {
    struct thaw_h1_link link; /* first; link.timer: header, body, keep-alive */
    int in_head;            /* a request has begun and its head is not complete */
    struct thaw_server *srv;
    http_parser parser;
    struct thaw_buf in;     /* bytes read and not yet parsed */
    int reading;
    int closing;
    int eof;

    /* the request being parsed */
    struct thaw_h1_head head; /* the target (head.url) and headers as read */
    struct thaw_buf hdrs;   /* name, value fields, ready for REQ_HEAD */
    char host[256];         /* Host, or an absolute-form target's authority */
    const char *target;     /* the path and query: into head.url */
    size_t target_len;
    int expect_continue;
    uint64_t body_bytes;
    int err_status;         /* decided inside a callback (413, 431, h1 rules) */
    const char *err_why;    /* its body, when a rule of h1-rules.c decided */

    /* the body, read whole before the request takes an instance slot (a
     * client trickling its body holds a connection, not an instance) */
    int in_body;            /* the head is in, the body is not */
    struct thaw_h1_body_clock clock;
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
    int msg_done;           /* whole request read */
    int resp_started;       /* response head written to the client */
    int resume_pending;     /* parse the next pipelined request */
    int keep_alive;
    int is_head;
    int chunked;
    int http10;

    struct thaw_static_send *static_send; /* an asset file being sent (static.c) */
    struct thaw_buf out;    /* response bytes not yet handed to libuv */
    int close_after_write;
    int in_dirty;
    struct conn *next_dirty;
};

/* response.c */
extern const struct thaw_exchange_ops thaw__conn_ex_ops;
void thaw__conn_write(struct conn *c, const void *p, size_t n);
/* A string literal, its length counted by the compiler. */
#define thaw__conn_lit(c, s) thaw__conn_write((c), (s), sizeof(s) - 1)
void thaw__conn_printf(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A complete response from thaw itself (errors); closes when close_conn. */
void thaw__conn_simple(struct conn *c, int status, const char *body, int close_conn);
void thaw__conn_flush_all(struct thaw_server *s);
void thaw__conn_mark(struct conn *c);

/* reqlog.c: one JSON line and the metrics for a finished request;
 * status 0 when the response was cut short, 499 when the client left */
void thaw__conn_log_request(struct conn *c, int status);

/* http.c */
void thaw__conn_close(struct conn *c);
/* The response of the current request is complete. */
void thaw__conn_request_done(struct conn *c);
void thaw__conn_parse(struct conn *c);
void thaw__conn_update_reading(struct conn *c);
void thaw__conn_arm_timer(struct conn *c, int head);
/* Hands the buffered body to the exchange while it takes more. */
void thaw__conn_pump_body(struct conn *c);

#endif
