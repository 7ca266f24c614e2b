/* One PostgreSQL connection on the libuv loop (control-conn.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/control-conn.h"
#include "util/log.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 2000

struct stmt {
    char *sql;
    int n;
    char **vals;
    int *lens, *fmts;
    int binres;
    PGresult *res;
};

struct thaw_pg_job {
    struct thaw_pg_job *next;
    struct stmt *st;
    int n, at;
    int failed, rolling_back;
    char err[512];
    char sqlstate[8];
    thaw_pg_cb cb;
    void *data;
};

/* The poll of one socket of a connection; a new one when libpq changes
 * its socket while it connects. last: the connection's final close. */
struct pollh {
    uv_poll_t poll;
    struct thaw_pg_sock *sock;
    int last;
};

struct thaw_pg_sock {
    struct thaw_pg *pg;
    PGconn *conn;
    struct pollh *ph;
    int fd;
    int connected;
};

/* ---- jobs ------------------------------------------------------------- */

struct thaw_pg_job *thaw_pg_job_new(thaw_pg_cb cb, void *data)
{
    struct thaw_pg_job *j = calloc(1, sizeof(*j));

    if (!j)
        abort();
    j->cb = cb;
    j->data = data;
    return j;
}

void thaw_pg_job_add(struct thaw_pg_job *j, const char *sql, int n,
                     const char *const *vals, const int *lens, int binary_result)
{
    struct stmt *s;
    int i;

    j->st = realloc(j->st, (size_t)(j->n + 1) * sizeof(*j->st));
    if (!j->st)
        abort();
    s = &j->st[j->n++];
    memset(s, 0, sizeof(*s));
    s->sql = strdup(sql);
    s->n = n;
    s->binres = binary_result;
    s->vals = calloc((size_t)n + 1, sizeof(char *));
    s->lens = calloc((size_t)n + 1, sizeof(int));
    s->fmts = calloc((size_t)n + 1, sizeof(int));
    if (!s->sql || !s->vals || !s->lens || !s->fmts)
        abort();
    for (i = 0; i < n; i++) {
        if (lens && lens[i] >= 0) { /* borrowed (control-conn.h) */
            s->vals[i] = (char *)vals[i];
            s->lens[i] = lens[i];
            s->fmts[i] = 1;
        } else {
            s->vals[i] = vals[i] ? strdup(vals[i]) : NULL;
            s->lens[i] = -1;
        }
    }
}

static void job_free(struct thaw_pg_job *j)
{
    int i, k;

    for (i = 0; i < j->n; i++) {
        struct stmt *s = &j->st[i];
        for (k = 0; k < s->n; k++)
            if (!s->fmts[k])
                free(s->vals[k]);
        free(s->vals);
        free(s->lens);
        free(s->fmts);
        free(s->sql);
        if (s->res)
            PQclear(s->res);
    }
    free(j->st);
    free(j);
}

PGresult *thaw_pg_result(struct thaw_pg_job *j, int i)
{
    return i >= 0 && i < j->n ? j->st[i].res : NULL;
}

const char *thaw_pg_sqlstate(struct thaw_pg_job *j)
{
    return j->sqlstate;
}

static void job_done(struct thaw_pg_job *j, const char *err)
{
    j->cb(j->data, j, err);
    job_free(j);
}

/* ---- the connection --------------------------------------------------- */

static void connect_now(struct thaw_pg *pg);
static void on_poll(uv_poll_t *p, int status, int events);

static void on_poll_closed(uv_handle_t *hd)
{
    struct pollh *ph = hd->data;

    if (ph->last) { /* the fd is libpq's: it goes with PQfinish, after libuv let go */
        PQfinish(ph->sock->conn);
        free(ph->sock);
    }
    free(ph);
}

static int poll_fd(struct thaw_pg_sock *s, int fd, int events)
{
    struct pollh *ph;

    if (s->ph && s->fd == fd)
        return uv_poll_start(&s->ph->poll, events, on_poll);
    if (s->ph) /* libpq moved to a new socket (another host, no SSL) */
        uv_close((uv_handle_t *)&s->ph->poll, on_poll_closed);
    s->ph = NULL;
    if (!(ph = calloc(1, sizeof(*ph))))
        abort();
    ph->sock = s;
    ph->poll.data = ph;
    if (uv_poll_init(s->pg->loop, &ph->poll, fd) < 0) {
        free(ph);
        return -1;
    }
    s->ph = ph;
    s->fd = fd;
    return uv_poll_start(&ph->poll, events, on_poll);
}

static void sock_close(struct thaw_pg_sock *s)
{
    if (s->ph) {
        s->ph->last = 1;
        uv_close((uv_handle_t *)&s->ph->poll, on_poll_closed);
    } else {
        PQfinish(s->conn);
        free(s);
    }
}

static void on_retry(uv_timer_t *t)
{
    connect_now(t->data);
}

/* The connection broke (or never came): every queued job fails, and a
 * new one is tried after the backoff. */
static void conn_fail(struct thaw_pg *pg, const char *why)
{
    struct thaw_pg_job *list = pg->head, *j;
    int was_ready = pg->state == THAW_PG_READY;
    char msg[sizeof(pg->why)];

    snprintf(msg, sizeof(msg), "%s", why && *why ? why : "connection lost");
    msg[strcspn(msg, "\n")] = '\0';
    snprintf(pg->why, sizeof(pg->why), "%s", msg);
    if (pg->sock)
        sock_close(pg->sock);
    pg->sock = NULL;
    pg->state = THAW_PG_DOWN;
    pg->head = pg->tail = NULL;
    pg->sent = 0;
    /* the first failure, then a line a minute while it lasts */
    if (was_ready || !pg->logged_ms || uv_now(pg->loop) - pg->logged_ms >= 60000) {
        thaw_log("control store (PostgreSQL): %s; retrying", pg->why);
        pg->logged_ms = uv_now(pg->loop);
    }
    while ((j = list)) {
        list = j->next;
        job_done(j, pg->why);
    }
    if (was_ready && pg->on_down)
        pg->on_down(pg->data);
    if (pg->closing)
        return;
    pg->backoff_ms = !pg->backoff_ms ? BACKOFF_FIRST_MS
                     : pg->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : pg->backoff_ms * 2;
    uv_timer_start(&pg->retry, on_retry, (uint64_t)pg->backoff_ms, 0);
}

static void flush_out(struct thaw_pg *pg)
{
    struct thaw_pg_sock *s = pg->sock;
    int r = PQflush(s->conn);

    if (r < 0) {
        conn_fail(pg, PQerrorMessage(s->conn));
        return;
    }
    if (poll_fd(s, s->fd, UV_READABLE | (r ? UV_WRITABLE : 0)) < 0)
        conn_fail(pg, "cannot watch the connection's socket");
}

static void send_head(struct thaw_pg *pg)
{
    struct thaw_pg_job *j = pg->head;
    struct stmt *s;

    if (!j || pg->sent || !pg->sock || !pg->sock->connected)
        return;
    if (j->rolling_back) {
        if (!PQsendQuery(pg->sock->conn, "ROLLBACK")) {
            conn_fail(pg, PQerrorMessage(pg->sock->conn));
            return;
        }
    } else {
        s = &j->st[j->at];
        if (!PQsendQueryParams(pg->sock->conn, s->sql, s->n, NULL,
                               (const char *const *)s->vals, s->lens, s->fmts, s->binres)) {
            conn_fail(pg, PQerrorMessage(pg->sock->conn));
            return;
        }
    }
    pg->sent = 1;
    pg->busy_since = uv_now(pg->loop);
    flush_out(pg);
}

static void enqueue(struct thaw_pg *pg, struct thaw_pg_job *j, int front)
{
    if (front) {
        j->next = pg->head;
        pg->head = j;
        if (!pg->tail)
            pg->tail = j;
    } else {
        if (pg->tail)
            pg->tail->next = j;
        else
            pg->head = j;
        pg->tail = j;
    }
    send_head(pg);
}

/* The head's statement ended (PQgetResult gave NULL). */
static void statement_done(struct thaw_pg *pg)
{
    struct thaw_pg_job *j = pg->head;

    pg->sent = 0;
    if (j->rolling_back) {
        j->rolling_back = 0;
        j->at = j->n;
    } else if (j->failed && j->n > 0 && strcmp(j->st[0].sql, "BEGIN") == 0 &&
               j->at < j->n - 1) {
        /* its transaction is aborted: end it before the next job */
        j->rolling_back = 1;
        send_head(pg);
        return;
    } else {
        j->at++;
    }
    if (!j->failed && j->at < j->n) {
        send_head(pg);
        return;
    }
    pg->head = j->next;
    if (!pg->head)
        pg->tail = NULL;
    job_done(j, j->failed ? j->err : NULL);
    send_head(pg);
}

static void take_result(struct thaw_pg_job *j, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    const char *code;

    if (j->rolling_back) {
        PQclear(r);
        return;
    }
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !j->failed) {
        j->failed = 1;
        snprintf(j->err, sizeof(j->err), "%s", PQresultErrorMessage(r));
        j->err[strcspn(j->err, "\n")] = '\0';
        code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(j->sqlstate, sizeof(j->sqlstate), "%s", code ? code : "");
    }
    if (j->st[j->at].res)
        PQclear(j->st[j->at].res);
    j->st[j->at].res = r;
}

static void on_setup_done(void *data, struct thaw_pg_job *job, const char *err)
{
    struct thaw_pg *pg = data;

    if (err) {
        if (pg->state == THAW_PG_SETUP) {
            char msg[600];
            snprintf(msg, sizeof(msg), "cannot set up the schema: %s", err);
            conn_fail(pg, msg);
        }
        return;
    }
    pg->state = THAW_PG_READY;
    pg->backoff_ms = 0;
    pg->why[0] = '\0';
    thaw_log("control store (PostgreSQL): connected");
    if (pg->on_up)
        pg->on_up(pg->data);
}

/* NOTICEs ("relation already exists, skipping") are not thaw's log's */
static void quiet(void *arg, const char *msg)
{
}

static void connected(struct thaw_pg *pg)
{
    struct thaw_pg_job *j;

    pg->sock->connected = 1;
    PQsetnonblocking(pg->sock->conn, 1);
    PQsetNoticeProcessor(pg->sock->conn, quiet, NULL);
    pg->state = THAW_PG_SETUP;
    j = pg->setup(pg->data);
    j->cb = on_setup_done;
    j->data = pg;
    enqueue(pg, j, 1);
}

static void read_in(struct thaw_pg *pg)
{
    struct thaw_pg_sock *s = pg->sock;
    PGnotify *n;

    if (!PQconsumeInput(s->conn)) {
        conn_fail(pg, PQerrorMessage(s->conn));
        return;
    }
    while (pg->sock == s && pg->head && pg->sent && !PQisBusy(s->conn)) {
        PGresult *r = PQgetResult(s->conn);
        if (r)
            take_result(pg->head, r);
        else
            statement_done(pg);
    }
    while (pg->sock == s && (n = PQnotifies(s->conn))) {
        if (pg->on_notify)
            pg->on_notify(pg->data, n->relname, n->extra);
        PQfreemem(n);
    }
    if (pg->sock == s && PQstatus(s->conn) == CONNECTION_BAD)
        conn_fail(pg, PQerrorMessage(s->conn));
}

static void connect_step(struct thaw_pg *pg)
{
    struct thaw_pg_sock *s = pg->sock;
    PostgresPollingStatusType st = PQconnectPoll(s->conn);
    int fd = PQsocket(s->conn);

    if (st == PGRES_POLLING_FAILED || fd < 0) {
        conn_fail(pg, PQerrorMessage(s->conn));
        return;
    }
    if (st == PGRES_POLLING_OK) {
        if (poll_fd(s, fd, UV_READABLE) < 0)
            conn_fail(pg, "cannot watch the connection's socket");
        else
            connected(pg);
        return;
    }
    if (poll_fd(s, fd, st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE) < 0)
        conn_fail(pg, "cannot watch the connection's socket");
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct pollh *ph = p->data;
    struct thaw_pg_sock *s = ph->sock;
    struct thaw_pg *pg = s->pg;

    if (pg->sock != s)
        return;
    if (status < 0) {
        conn_fail(pg, uv_strerror(status));
        return;
    }
    if (!s->connected) {
        connect_step(pg);
        return;
    }
    if (events & UV_WRITABLE)
        flush_out(pg);
    if (pg->sock == s && (events & UV_READABLE))
        read_in(pg);
}

static void connect_now(struct thaw_pg *pg)
{
    struct thaw_pg_sock *s = calloc(1, sizeof(*s));
    int fd;

    if (!s)
        abort();
    s->pg = pg;
    s->fd = -1;
    pg->sock = s;
    pg->state = THAW_PG_CONNECTING;
    pg->busy_since = uv_now(pg->loop);
    s->conn = PQconnectStart(pg->conninfo);
    if (!s->conn || PQstatus(s->conn) == CONNECTION_BAD) {
        conn_fail(pg, s->conn ? PQerrorMessage(s->conn) : "out of memory");
        return;
    }
    fd = PQsocket(s->conn);
    /* libpq: start as if PQconnectPoll had asked to write */
    if (fd < 0 || poll_fd(s, fd, UV_WRITABLE) < 0)
        conn_fail(pg, fd < 0 ? PQerrorMessage(s->conn) : "cannot watch the connection's socket");
}

/* PQconnectPoll has no timeout of its own (connect_timeout is for the
 * blocking calls), and a statement waits as long as the server is silent. */
static void on_watchdog(uv_timer_t *t)
{
    struct thaw_pg *pg = t->data;
    int stalled = pg->state == THAW_PG_CONNECTING || (pg->sock && pg->sent);

    if (stalled && uv_now(pg->loop) - pg->busy_since > THAW_PG_STALL_MS)
        conn_fail(pg, pg->state == THAW_PG_CONNECTING
                  ? "no connection within 15 s" : "no answer within 15 s");
}

void thaw_pg_start(struct thaw_pg *pg, uv_loop_t *loop)
{
    pg->loop = loop;
    uv_timer_init(loop, &pg->retry);
    pg->retry.data = pg;
    uv_timer_init(loop, &pg->watchdog);
    pg->watchdog.data = pg;
    uv_timer_start(&pg->watchdog, on_watchdog, 1000, 1000);
    snprintf(pg->why, sizeof(pg->why), "not connected yet");
    connect_now(pg);
}

int thaw_pg_ready(const struct thaw_pg *pg)
{
    return pg->state == THAW_PG_READY;
}

void thaw_pg_run(struct thaw_pg *pg, struct thaw_pg_job *j)
{
    if (pg->state != THAW_PG_READY) {
        job_done(j, pg->why[0] ? pg->why : "not connected");
        return;
    }
    enqueue(pg, j, 0);
}
