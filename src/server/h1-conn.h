/* The HTTP/1 connection driver every port runs on: a server that accepts
 * clients, reads their requests (keep-alive, pipelined requests answered
 * in order), keeps the header, body and idle clocks, applies the limits
 * and the head rules, answers what goes wrong itself (400, 408, 413, 431,
 * 501, 505) and writes the owner's responses. The owner (the public
 * port, the admin ports) sees a request as callbacks and answers with the
 * functions below, now or later.
 *
 * A request's life: on_begin, on_header for each header, on_head (the
 * head passed the rules: route it, answer it, or start it), on_body per
 * piece of body, on_body_end; the owner answers (thaw_h1_reply, or
 * thaw_h1_status ... thaw_h1_head_end ... thaw_h1_body ... thaw_h1_done)
 * and the next request is parsed only once the answer is done. A request
 * answered before its body is in has the rest of its body read and
 * dropped. When the core ends a request the owner has not answered (a
 * timeout, a limit, the client left) it calls on_abort first. A client
 * that half-closes after a whole request still gets its answer (and the
 * connection ends after it); one that leaves mid-request, or during an
 * endless stream, ends the request. */
#ifndef THAW_SERVER_H1_CONN_H
#define THAW_SERVER_H1_CONN_H

#include "server/h1.h"

struct thaw_h1_conn;

/* Every callback is optional. */
struct thaw_h1_ops {
    /* the connection is accepted: set up the owner's part */
    void (*on_open)(struct thaw_h1_conn *c);
    /* a request begins: forget the last one */
    void (*on_begin)(struct thaw_h1_conn *c);
    /* one header, whole; name in lower case. 0, or -1 for 431 */
    int (*on_header)(struct thaw_h1_conn *c, const char *name, size_t nlen,
                     const char *value, size_t vlen);
    /* the head passed the rules (c->head.url: the target): answer now,
     * later, or start reading the body. 0, or a status thaw answers with
     * (the connection closes after it) */
    int (*on_head)(struct thaw_h1_conn *c);
    /* a piece of the body, while the request is not answered; `at` is
     * good only during the call. 0, or a status as for on_head */
    int (*on_body)(struct thaw_h1_conn *c, const char *at, size_t n);
    /* the request is whole (while it is not answered). 0, or a status */
    int (*on_body_end)(struct thaw_h1_conn *c);
    /* 1 while the owner cannot take more body (backpressure): reading
     * stops until the owner calls thaw_h1_update_reading */
    int (*body_full)(struct thaw_h1_conn *c);
    /* the request ends unanswered by the owner: status is what the
     * client is told (408, 413...), 499 when it left, 0 when its answer
     * is cut short. The owner lets go of the request's state. */
    void (*on_abort)(struct thaw_h1_conn *c, int status);
    /* output over THAW_H1_HOLD_BYTES waits for the client: produce no
     * more until on_drain */
    void (*on_full)(struct thaw_h1_conn *c);
    /* a write completed and under THAW_H1_RELEASE_BYTES wait: more */
    void (*on_drain)(struct thaw_h1_conn *c);
    /* the connection is closing: let go of what points at it */
    void (*on_close)(struct thaw_h1_conn *c);
    /* its memory goes after this: free the owner's buffers */
    void (*on_free)(struct thaw_h1_conn *c);
    /* after thaw_h1_upgrade: the bytes the client sent, all of them
     * taken (good only during the call) */
    void (*on_raw)(struct thaw_h1_conn *c, const char *p, size_t n);
};

#define THAW_H1_HOLD_BYTES (4u * 1024 * 1024)
#define THAW_H1_RELEASE_BYTES (1u * 1024 * 1024)

struct thaw_h1_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int listening;
    int accepting;               /* 0: bound, clients wait in the backlog */
    int backlog;
    /* max_header, max_body and the clocks, read at every use: a config
     * edit (thaw dev) applies to the next request */
    const struct thaw_limits *limits;
    long long max_body;          /* 0: limits->max_body */
    int max_conns;               /* open connections (0: no cap) */
    const struct thaw_h1_ops *ops;
    size_t conn_size;            /* the owner's struct; a thaw_h1_conn first */
    void *data;                  /* the owner's */
    int n_conns;
    struct thaw_h1_link *conns;  /* open connections, newest first */
    uv_prepare_t flusher;        /* writes what a loop iteration produced */
    struct thaw_h1_conn *dirty;  /* connections with output or parsing pending */
};

/* Where a connection is: which clock runs. */
enum thaw_h1_phase {
    THAW_H1_IDLE,    /* between requests: the idle (keep-alive) clock */
    THAW_H1_HEAD,    /* a request began: the header clock */
    THAW_H1_BODY,    /* its body is read: the body clock */
    THAW_H1_WAIT,    /* whole, being answered: no clock (the owner's) */
    THAW_H1_TUNNEL,  /* upgraded (a WebSocket): the owner's clock, if any */
};

struct thaw_h1_conn {
    struct thaw_h1_link link;    /* first; link.timer: the phase's clock */
    struct thaw_h1_server *srv;
    http_parser parser;
    enum thaw_h1_phase phase;
    struct thaw_buf in;          /* read and not yet parsed */
    struct thaw_buf out;         /* answer bytes not yet handed to libuv */
    struct thaw_h1_head head;    /* head.url: the target, as sent */

    /* the request */
    int active;                  /* its head is in and the owner has not answered */
    int msg_done;                /* it is whole */
    int has_body;
    int expect_continue;
    int keep_alive;              /* the connection outlives the answer */
    int http10, is_head;
    uint64_t body_bytes;
    struct thaw_h1_body_clock clock;
    int err_status;              /* decided in a parser callback */
    const char *err_why;         /* its body, when a head rule decided */

    /* its answer */
    int resp_started;            /* the status line is written */
    int chunked;
    int endless;                 /* a stream that lasts until the client leaves */

    /* the connection */
    int reading, closing, eof, parsing;
    int close_after_write;
    int paced;                   /* the owner produces on on_drain (a file's
                                  * parts): every write goes by uv_write */
    int resume_pending;          /* parse the next pipelined request */
    int in_dirty;
    struct thaw_h1_conn *next_dirty;
    int upgraded;                /* thaw_h1_upgrade: bytes go to on_raw */
};

/* ---- h1-server.c ------------------------------------------------------ */

/* Listens on ip:port; set limits, ops, conn_size (and max_body,
 * max_conns, data) first. authority (may be NULL) gets "ip:port". 0 or a
 * libuv error. */
int thaw_h1_server_listen(struct thaw_h1_server *s, uv_loop_t *loop, const char *ip,
                          int port, int backlog, char *authority, size_t alen);
/* Binds ip:port as thaw_h1_server_listen does, but accepts nothing until
 * thaw_h1_server_accept: a client connects and waits, its request in the
 * kernel's buffer, while what answers it gets ready. */
int thaw_h1_server_bind(struct thaw_h1_server *s, uv_loop_t *loop, const char *ip, int port,
                        int backlog, char *authority, size_t alen);
/* Starts accepting (once; 0 when it already does) or a libuv error. */
int thaw_h1_server_accept(struct thaw_h1_server *s);
/* The same for "IP:PORT" or "[IPv6]:PORT"; UV_EINVAL when it is not one. */
int thaw_h1_server_listen_addr(struct thaw_h1_server *s, uv_loop_t *loop, const char *addr);
/* Stops accepting and drops every connection. */
void thaw_h1_server_close(struct thaw_h1_server *s);
long long thaw_h1_max_body(const struct thaw_h1_server *s);

/* ---- h1-conn.c -------------------------------------------------------- */

/* Starts closing: on_abort (a request in progress), on_close, then the
 * handles close and on_free. */
void thaw_h1_close(struct thaw_h1_conn *c);
/* After body_full turned 0: read again. */
void thaw_h1_update_reading(struct thaw_h1_conn *c);
/* The owner answered the request with 101 (its head written): the
 * connection is no longer HTTP. Every byte the client sends from now on
 * (those already read after the head first, from the loop) goes to
 * on_raw; the request stays active (on_abort when the connection
 * closes); its end is thaw_h1_done, which closes the connection once
 * the output is written. body_full still stops reading. */
void thaw_h1_upgrade(struct thaw_h1_conn *c);
/* An upgraded connection's clock: closes it ms from now (0: no clock). */
void thaw_h1_tunnel_clock(struct thaw_h1_conn *c, uint64_t ms);

/* ---- h1-write.c: answering -------------------------------------------- */

/* Raw bytes of the answer (a head's lines, a body the owner frames). */
void thaw_h1_write(struct thaw_h1_conn *c, const void *p, size_t n);
/* A string literal, its length counted by the compiler. */
#define thaw_h1_lit(c, s) thaw_h1_write((c), (s), sizeof(s) - 1)
void thaw_h1_printf(struct thaw_h1_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The owner wrote into c->out itself: flush it this loop iteration. */
void thaw_h1_mark(struct thaw_h1_conn *c);
/* Bytes written and not taken by the client yet. */
size_t thaw_h1_queued(struct thaw_h1_conn *c);

/* An answer in parts: the status line (reason NULL: the standard one),
 * header lines by thaw_h1_printf, then thaw_h1_head_end: SIZED when a
 * content-length was written or the status has no body, OPEN when the
 * length is unknown (chunked, or to the connection's end for HTTP/1.0).
 * Then thaw_h1_body and thaw_h1_done. These, thaw_h1_reply,
 * thaw_h1_error and thaw_h1_stream_begin do nothing once the request is
 * answered or ended by the core (c->active is 0). */
enum thaw_h1_framing { THAW_H1_SIZED, THAW_H1_OPEN };
void thaw_h1_status(struct thaw_h1_conn *c, int status, const char *reason);
void thaw_h1_head_end(struct thaw_h1_conn *c, enum thaw_h1_framing f);
void thaw_h1_body(struct thaw_h1_conn *c, const char *p, size_t n);
/* The answer is complete: the next request may be parsed (or the
 * connection closes when it is not kept alive). */
void thaw_h1_done(struct thaw_h1_conn *c);

/* A whole answer, then thaw_h1_done. extra: more header lines
 * ("name: value\r\n"...), or NULL. */
void thaw_h1_reply(struct thaw_h1_conn *c, int status, const char *ctype, const char *extra,
                   const char *body, size_t n);
/* Thaw's own answer, as text; 503 says when to retry. */
void thaw_h1_error(struct thaw_h1_conn *c, int status, const char *msg);
/* A chunked 200 that lasts until the owner ends it (thaw_h1_done) or the
 * client leaves. */
void thaw_h1_stream_begin(struct thaw_h1_conn *c, const char *ctype);

/* ---- between the core's own files ------------------------------------- */

/* h1-conn.c: a connection accepted by h1-server.c starts reading */
void thaw__h1_open(struct thaw_h1_conn *c);
void thaw__h1_free(struct thaw_h1_link *l);
/* h1-conn.c: the answer is written out: parse the next request */
void thaw__h1_resume(struct thaw_h1_conn *c);
/* h1-conn.c: thaw_h1_done for any answer, the core's own too */
void thaw__h1_finish(struct thaw_h1_conn *c);
/* h1-write.c: thaw_h1_error for a request the core ended */
void thaw__h1_error(struct thaw_h1_conn *c, int status, const char *msg);
/* h1-write.c: every marked connection's output to libuv */
void thaw__h1_flush_all(struct thaw_h1_server *s);
void thaw__h1_unmark(struct thaw_h1_conn *c);

#endif
