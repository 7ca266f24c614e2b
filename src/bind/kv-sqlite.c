/* KV on SQLite: one database file per namespace, one table, jobs on the
 * database's queue (sqlq.h), so a put is on disk (WAL, synchronous=FULL)
 * before it is answered.
 *
 * Every version of a worker opens its bindings anew; the stores are kept
 * in a registry by path so versions share one connection (and its queue,
 * which keeps their writes in order). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/kv.h"
#include "bind/sqlq.h"

/* Expired rows are filtered on every read and deleted by a put at most
 * this often. */
#define PURGE_EVERY 60

struct store {
    char *path;
    char *ns;
    struct thaw_sqlq *q;
    int refs;
    struct store *next;
    /* touched only by jobs, which run one at a time */
    char *schema_err;
    long long last_purge;
    /* the schema job may outlive the last close: it frees the store then */
    int schema_done, closed;
    /* loop thread: the writes waiting for the next commit, and whether a
     * commit is under way */
    struct batch *open;
    int writing;
};

static struct store *registry;

struct job {
    struct store *s;
    struct thaw_kv_req *req;
};

/* Writes committed together (see batch_work). */
struct batch {
    struct store *s;
    struct thaw_kv_req **reqs;
    size_t n, cap;
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS kv ("
    " key TEXT PRIMARY KEY,"      /* BINARY collation: UTF-8 byte order */
    " value BLOB NOT NULL,"
    " metadata TEXT,"              /* JSON, or NULL */
    " expiration INTEGER"          /* seconds since the epoch, or NULL */
    ");"
    "CREATE INDEX IF NOT EXISTS kv_expiration ON kv(expiration)"
    " WHERE expiration IS NOT NULL;";

static void fail(struct job *j, sqlite3 *db, const char *what)
{
    snprintf(j->req->errmsg, sizeof(j->req->errmsg),
             "KV namespace \"%s\": %s failed in %s: %s", j->s->ns, what, j->s->path,
             db ? sqlite3_errmsg(db) : "cannot set up the database");
    j->req->errclass = "OSError";
}

static char *dup_col(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? strdup((const char *)t) : NULL;
}

static void do_get(sqlite3 *db, struct job *j)
{
    struct thaw_kv_req *r = j->req;
    sqlite3_stmt *st = NULL;
    size_t i;

    r->items = calloc(r->n_keys, sizeof(*r->items));
    if (!r->items ||
        sqlite3_prepare_v2(db, "SELECT value, metadata, expiration FROM kv WHERE key = ?1"
                           " AND (expiration IS NULL OR expiration > ?2)", -1, &st,
                           NULL) != SQLITE_OK) {
        fail(j, db, "get");
        goto out;
    }
    for (i = 0; i < r->n_keys; i++) {
        struct thaw_kv_item *it = &r->items[i];
        int rc;

        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, r->keys[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, r->now);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const void *v = sqlite3_column_blob(st, 0);
            it->len = (size_t)sqlite3_column_bytes(st, 0);
            if (it->len) {
                it->value = malloc(it->len);
                if (!it->value) {
                    snprintf(r->errmsg, sizeof(r->errmsg), "out of memory");
                    r->errclass = "MemoryError";
                    goto out;
                }
                memcpy(it->value, v, it->len);
            }
            it->metadata = dup_col(st, 1);
            it->expiration = sqlite3_column_int64(st, 2);
            it->found = 1;
        } else if (rc != SQLITE_DONE) {
            fail(j, db, "get");
            goto out;
        }
    }
out:
    sqlite3_finalize(st);
}

static int exec1(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int write_one(sqlite3 *db, const struct thaw_kv_req *r)
{
    sqlite3_stmt *st = NULL;

    if (r->op == THAW_KV_DELETE) {
        if (sqlite3_prepare_v2(db, "DELETE FROM kv WHERE key = ?1", -1, &st, NULL) != SQLITE_OK)
            return -1;
        sqlite3_bind_text(st, 1, r->keys[0], -1, SQLITE_STATIC);
        return step_done(st);
    }
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO kv (key, value, metadata, expiration)"
                           " VALUES (?1, ?2, ?3, ?4)", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, r->keys[0], -1, SQLITE_STATIC);
    /* zeroblob: an empty value is still a value, never NULL */
    if (r->value_len)
        sqlite3_bind_blob64(st, 2, r->value, r->value_len, SQLITE_STATIC);
    else
        sqlite3_bind_zeroblob(st, 2, 0);
    if (r->metadata)
        sqlite3_bind_text(st, 3, r->metadata, -1, SQLITE_STATIC);
    if (r->expiration)
        sqlite3_bind_int64(st, 4, r->expiration);
    return step_done(st);
}

static int purge(sqlite3 *db, struct store *s, long long now)
{
    sqlite3_stmt *st = NULL;

    if (now - s->last_purge < PURGE_EVERY)
        return 0;
    if (sqlite3_prepare_v2(db, "DELETE FROM kv WHERE expiration <= ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, now);
    s->last_purge = now;
    return step_done(st);
}

/* Group commit: the puts and deletes that arrived while the previous
 * commit was on disk go in one transaction, so concurrent writers share an
 * fsync. Each is answered only after the commit: what was acknowledged is
 * on disk. One failing write fails the whole batch (nothing of it was
 * written). */
static void batch_work(sqlite3 *db, void *arg)
{
    struct batch *b = arg;
    struct store *s = b->s;
    const char *what = "write";
    char msg[512];
    size_t i;

    if (s->schema_err) {
        snprintf(msg, sizeof(msg), "KV namespace \"%s\": %s", s->ns, s->schema_err);
        goto fail;
    }
    if (exec1(db, "BEGIN IMMEDIATE") < 0)
        goto bad;
    if (purge(db, s, b->reqs[0]->now) < 0)
        goto rollback;
    for (i = 0; i < b->n; i++) {
        if (write_one(db, b->reqs[i]) < 0) {
            what = b->reqs[i]->op == THAW_KV_DELETE ? "delete" : "put";
            goto rollback;
        }
    }
    /* the commit is the fsync: once it returned, every write is durable */
    if (exec1(db, "COMMIT") == 0)
        return;
    what = "commit";
rollback:
    snprintf(msg, sizeof(msg), "KV namespace \"%s\": %s failed in %s: %s", s->ns, what,
             s->path, sqlite3_errmsg(db));
    exec1(db, "ROLLBACK");
    goto fail;
bad:
    snprintf(msg, sizeof(msg), "KV namespace \"%s\": %s failed in %s: %s", s->ns, what,
             s->path, sqlite3_errmsg(db));
fail:
    for (i = 0; i < b->n; i++) {
        snprintf(b->reqs[i]->errmsg, sizeof(b->reqs[i]->errmsg), "%s", msg);
        b->reqs[i]->errclass = "OSError";
    }
}

static void batch_submit(struct store *s);

static void batch_done(void *arg)
{
    struct batch *b = arg;
    struct store *s = b->s;
    size_t i;

    s->writing = 0;
    for (i = 0; i < b->n; i++)
        b->reqs[i]->done(b->reqs[i]);
    free(b->reqs);
    free(b);
    if (s->open)
        batch_submit(s);
}

static void batch_submit(struct store *s)
{
    struct batch *b = s->open;

    s->open = NULL;
    s->writing = 1;
    thaw_sqlq_submit(s->q, batch_work, batch_done, b);
}

/* Adds a put or delete to the open batch; 0, or -1 out of memory. */
static int batch_add(struct store *s, struct thaw_kv_req *req)
{
    struct batch *b = s->open;

    if (!b) {
        if (!(b = calloc(1, sizeof(*b))))
            return -1;
        b->s = s;
        s->open = b;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct thaw_kv_req **r = realloc(b->reqs, cap * sizeof(*r));
        if (!r) {
            if (!b->n) {
                free(b);
                s->open = NULL;
            }
            return -1;
        }
        b->reqs = r;
        b->cap = cap;
    }
    b->reqs[b->n++] = req;
    if (!s->writing)
        batch_submit(s);
    return 0;
}

static void do_list(sqlite3 *db, struct job *j)
{
    struct thaw_kv_req *r = j->req;
    size_t plen = strlen(r->prefix);
    sqlite3_stmt *st = NULL;
    /* `key >= prefix` starts the scan where the prefix's names begin; the
     * first name not starting with it ends it (names are in byte order) */
    const char *sql = r->after
        ? "SELECT key, metadata, expiration FROM kv WHERE key >= ?1 AND key > ?2"
          " AND (expiration IS NULL OR expiration > ?3) ORDER BY key"
        : "SELECT key, metadata, expiration FROM kv WHERE key >= ?1"
          " AND (expiration IS NULL OR expiration > ?3) ORDER BY key";
    int rc;

    r->items = calloc((size_t)r->limit, sizeof(*r->items));
    if (!r->items || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail(j, db, "list");
        goto out;
    }
    sqlite3_bind_text(st, 1, r->prefix, -1, SQLITE_STATIC);
    if (r->after)
        sqlite3_bind_text(st, 2, r->after, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->now);
    r->complete = 1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        struct thaw_kv_item *it;

        if (!name || strncmp(name, r->prefix, plen) != 0)
            break;
        if (r->n_items == (size_t)r->limit) {
            r->complete = 0; /* one more matches: the page is full */
            break;
        }
        it = &r->items[r->n_items++];
        it->found = 1;
        it->name = strdup(name);
        it->metadata = dup_col(st, 1);
        it->expiration = sqlite3_column_int64(st, 2);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        fail(j, db, "list");
out:
    sqlite3_finalize(st);
}

static void on_work(sqlite3 *db, void *arg)
{
    struct job *j = arg;

    if (j->s->schema_err) {
        snprintf(j->req->errmsg, sizeof(j->req->errmsg), "KV namespace \"%s\": %s",
                 j->s->ns, j->s->schema_err);
        j->req->errclass = "OSError";
        return;
    }
    switch (j->req->op) {
    case THAW_KV_GET: do_get(db, j); break;
    case THAW_KV_PUT: case THAW_KV_DELETE: break; /* batched */
    case THAW_KV_LIST: do_list(db, j); break;
    }
}

static void on_done(void *arg)
{
    struct job *j = arg;
    struct thaw_kv_req *req = j->req;

    free(j);
    req->done(req);
}

static void schema_work(sqlite3 *db, void *arg)
{
    struct store *s = arg;
    char *msg = NULL;

    if (sqlite3_exec(db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
        char buf[1024];
        snprintf(buf, sizeof(buf), "cannot create its table in %s: %s", s->path,
                 msg ? msg : "?");
        s->schema_err = strdup(buf);
    }
    sqlite3_free(msg);
}

static void store_free(struct store *s)
{
    free(s->schema_err);
    free(s->path);
    free(s->ns);
    free(s);
}

static void schema_done(void *arg)
{
    struct store *s = arg;

    s->schema_done = 1;
    if (s->closed)
        store_free(s);
}

static void *kv_sqlite_open(uv_loop_t *loop, const char *path, const char *ns,
                            const char *keyspace, char *err, size_t errlen)
{
    struct store *s;

    for (s = registry; s; s = s->next) {
        if (strcmp(s->path, path) == 0) {
            s->refs++;
            return s;
        }
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->q = thaw_sqlq_open(loop, path, err, errlen);
    if (!s->q) {
        free(s);
        return NULL;
    }
    s->path = strdup(path);
    s->ns = strdup(ns);
    s->refs = 1;
    s->next = registry;
    registry = s;
    /* first in the queue, so every request finds the table */
    thaw_sqlq_submit(s->q, schema_work, schema_done, s);
    return s;
}

static void kv_sqlite_run(void *store, struct thaw_kv_req *req)
{
    struct job *j;

    if (req->op == THAW_KV_PUT || req->op == THAW_KV_DELETE) {
        if (batch_add(store, req) < 0) {
            snprintf(req->errmsg, sizeof(req->errmsg), "out of memory");
            req->errclass = "MemoryError";
            req->done(req);
        }
        return;
    }
    j = calloc(1, sizeof(*j));
    if (!j) {
        snprintf(req->errmsg, sizeof(req->errmsg), "out of memory");
        req->errclass = "MemoryError";
        req->done(req);
        return;
    }
    j->s = store;
    j->req = req;
    thaw_sqlq_submit(j->s->q, on_work, on_done, j);
}

static void kv_sqlite_close(void *store)
{
    struct store *s = store, **pp;

    if (--s->refs > 0)
        return;
    for (pp = &registry; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    /* no request is pending; the queue closes once its jobs ran */
    thaw_sqlq_close(s->q);
    s->closed = 1;
    if (s->schema_done)
        store_free(s);
}

const struct thaw_kv_backend thaw_kv_sqlite = {
    .name = "sqlite",
    .open = kv_sqlite_open,
    .run = kv_sqlite_run,
    .close = kv_sqlite_close,
};
