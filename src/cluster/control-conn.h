/* One PostgreSQL connection on the libuv loop (libpq's async API): it
 * connects (PQconnectStart/PQconnectPoll), runs a setup job (schema,
 * LISTEN) before it calls itself up, then runs jobs one at a time, hands
 * NOTIFYs on, and when the connection breaks fails every queued job,
 * calls itself down and connects again with backoff.
 *
 * Lifetimes: each connection attempt is a struct thaw_pg_sock that owns
 * its uv_poll_t and its PGconn; it has one close path (uv_close, then in
 * the close callback PQfinish, which closes the fd, then free). */
#ifndef THAW_CLUSTER_CONTROL_CONN_H
#define THAW_CLUSTER_CONTROL_CONN_H

#include <libpq-fe.h>
#include <uv.h>

struct thaw_pg_job;
struct thaw_pg_sock;

/* err: NULL when every statement succeeded; then thaw_pg_result(job, i)
 * has statement i's result. Called once; the job is freed after. */
typedef void (*thaw_pg_cb)(void *data, struct thaw_pg_job *job, const char *err);

#define THAW_PG_STALL_MS 15000

enum thaw_pg_state { THAW_PG_DOWN, THAW_PG_CONNECTING, THAW_PG_SETUP, THAW_PG_READY };

struct thaw_pg {
    uv_loop_t *loop;
    char conninfo[1024];
    enum thaw_pg_state state;
    struct thaw_pg_sock *sock;      /* the connection, NULL when down */
    struct thaw_pg_job *head, *tail; /* head runs once sent */
    int sent;                       /* head has been sent */
    uv_timer_t retry;
    int backoff_ms;
    /* a connection that neither connects nor answers (a peer gone without
     * a reset) is given up after THAW_PG_STALL_MS */
    uv_timer_t watchdog;
    uint64_t busy_since;            /* uv_now() of the connect or the head's send */
    int closing;
    char why[512];                  /* why it is down (the last error) */
    uint64_t logged_ms;             /* when the log last said so */
    /* a new job (thaw_pg_job_new) run first on every connection: the
     * schema and LISTEN; its failure breaks the connection */
    struct thaw_pg_job *(*setup)(void *data);
    void (*on_up)(void *data);
    void (*on_down)(void *data);
    void (*on_notify)(void *data, const char *channel, const char *payload);
    void *data;
};

/* Starts connecting (the callbacks and conninfo set). */
void thaw_pg_start(struct thaw_pg *pg, uv_loop_t *loop);
int thaw_pg_ready(const struct thaw_pg *pg);

struct thaw_pg_job *thaw_pg_job_new(thaw_pg_cb cb, void *data);
/* Adds a statement with n parameters. A text parameter (lens NULL or
 * lens[i] < 0) is copied; a binary one (lens[i] >= 0 bytes) is borrowed:
 * the caller keeps it alive until the callback. binary_result: columns
 * come in binary (a bytea as its bytes). */
void thaw_pg_job_add(struct thaw_pg_job *job, const char *sql, int n,
                     const char *const *vals, const int *lens, int binary_result);
/* Queues the job; when not ready, its callback runs now with why. */
void thaw_pg_run(struct thaw_pg *pg, struct thaw_pg_job *job);
PGresult *thaw_pg_result(struct thaw_pg_job *job, int i);
/* The SQLSTATE of the statement that failed ("" when none). */
const char *thaw_pg_sqlstate(struct thaw_pg_job *job);

#endif
