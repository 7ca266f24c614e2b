#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/bind.h"
#include "bind/sqlq.h"

struct job {
    thaw_sqlq_work_cb work;
    thaw_sqlq_done_cb done;
    void *arg;
    struct job *next;
};

struct thaw_sqlq {
    uv_loop_t *loop;
    sqlite3 *db;
    char *path;
    uv_work_t req;
    int running;       /* a job is on the pool */
    int in_done;       /* a done callback runs: it may close the queue */
    int closing;
    struct job *head, *tail;
    struct job *cur;
};

static void start_next(struct thaw_sqlq *q);

static void finish_close(struct thaw_sqlq *q)
{
    sqlite3_close_v2(q->db);
    free(q->path);
    free(q);
}

static void on_work(uv_work_t *req)
{
    struct thaw_sqlq *q = req->data;

    q->cur->work(q->db, q->cur->arg);
}

static void on_after(uv_work_t *req, int status)
{
    struct thaw_sqlq *q = req->data;
    struct job *j = q->cur;

    q->cur = NULL;
    q->running = 0;
    /* done may end the last call of a retired version, whose bindings then
     * close this queue: it is freed below, not under our feet */
    q->in_done = 1;
    if (j->done)
        j->done(j->arg);
    q->in_done = 0;
    free(j);
    start_next(q);
}

static void start_next(struct thaw_sqlq *q)
{
    if (q->running)
        return;
    if (!q->head) {
        if (q->closing)
            finish_close(q);
        return;
    }
    q->cur = q->head;
    q->head = q->head->next;
    if (!q->head)
        q->tail = NULL;
    q->running = 1;
    q->req.data = q;
    uv_queue_work(q->loop, &q->req, on_work, on_after);
}

static int exec_pragma(sqlite3 *db, const char *sql, char *err, size_t errlen,
                       const char *path)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, msg ? msg : "cannot configure");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

struct thaw_sqlq *thaw_sqlq_open(uv_loop_t *loop, const char *path, char *err,
                                 size_t errlen)
{
    struct thaw_sqlq *q;
    char dir[4096];
    char *slash;
    int rc;

    snprintf(dir, sizeof(dir), "%s", path);
    if ((slash = strrchr(dir, '/')) && slash != dir) {
        *slash = 0;
        if ((rc = thaw_bind_mkdirs(dir)) < 0) {
            snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
            return NULL;
        }
    }
    q = calloc(1, sizeof(*q));
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->loop = loop;
    q->path = strdup(path);
    /* NOMUTEX: the queue guarantees one thread at a time */
    rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                         SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        finish_close(q);
        return NULL;
    }
    sqlite3_busy_timeout(q->db, 5000);
    if (exec_pragma(q->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                    "PRAGMA foreign_keys=ON;", err, errlen, path) < 0) {
        finish_close(q);
        return NULL;
    }
    return q;
}

void thaw_sqlq_submit(struct thaw_sqlq *q, thaw_sqlq_work_cb work,
                      thaw_sqlq_done_cb done, void *arg)
{
    struct job *j = calloc(1, sizeof(*j));

    if (!j)
        abort(); /* nothing sensible to answer with; and 32 bytes */
    j->work = work;
    j->done = done;
    j->arg = arg;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    start_next(q);
}

void thaw_sqlq_close(struct thaw_sqlq *q)
{
    if (!q)
        return;
    q->closing = 1;
    if (!q->running && !q->head && !q->in_done)
        finish_close(q);
}

const char *thaw_sqlq_path(const struct thaw_sqlq *q)
{
    return q->path;
}
