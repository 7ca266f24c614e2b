/* Objects' storage (storage.h): the SQL runs with D1's executor and
 * policy (bind/d1-exec.h: no ATTACH, no file PRAGMAs, D1's limits) on a
 * queue per file (bind/sqlq.h), so one object's writes are ordered and
 * never share a thread. Open files are kept for the next call (storage.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/d1-exec.h"
#include "bind/sqlq.h"
#include "do/alarms.h"
#include "do/call.h"
#include "do/storage.h"
#include "util/log.h"

struct thaw_do_file {
    char *path;
    struct thaw_sqlq *q;
    int jobs;           /* in flight: not closed meanwhile */
    int txn_held;       /* a transactionSync is open: one more hold on jobs */
    uint64_t used;
    struct thaw_do_file *next;
};

static void file_close(struct thaw_do_file *f)
{
    thaw_sqlq_close(f->q); /* after its queued jobs */
    free(f->path);
    free(f);
}

/* Over the cap: the least recently used idle files go. */
static void trim(struct thaw_do_store *s)
{
    while (s->n_files > THAW_DO_MAX_OPEN) {
        struct thaw_do_file **pp, **lru = NULL, *f;
        for (pp = &s->files; *pp; pp = &(*pp)->next)
            if ((*pp)->jobs == 0 && (!lru || (*pp)->used < (*lru)->used))
                lru = pp;
        if (!lru)
            return; /* all busy: over the cap until some finish */
        f = *lru;
        *lru = f->next;
        file_close(f);
        s->n_files--;
    }
}

void thaw__do_storage_close(struct thaw_do_store *s)
{
    struct thaw_do_file *f;

    while ((f = s->files)) {
        s->files = f->next;
        file_close(f);
    }
    s->n_files = 0;
}

static struct thaw_do_file *file_get(struct thaw_do_store *s, const char *path, char *err,
                                     size_t errlen)
{
    struct thaw_do_file *f;

    for (f = s->files; f; f = f->next)
        if (strcmp(f->path, path) == 0)
            break;
    if (!f) {
        if (!(f = calloc(1, sizeof(*f))) || !(f->path = strdup(path))) {
            free(f);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        if (!(f->q = thaw_sqlq_open(s->loop, path, err, errlen))) {
            free(f->path);
            free(f);
            return NULL;
        }
        f->next = s->files;
        s->files = f;
        s->n_files++;
    }
    f->jobs++;
    f->used = ++s->use_clock;
    return f;
}

enum { TXN_NONE, TXN_BEGIN, TXN_COMMIT, TXN_ROLLBACK, TXN_INSIDE };

struct job {
    struct thaw_bind_call *call;
    struct thaw_do_store *store;
    struct thaw_do_file *file;
    int batch;
    int txn;            /* op txn: TXN_BEGIN ...; op sql: 1 if inside one */
    int stale;          /* a transactionSync left open was rolled back first */
    json_t *stmts;      /* op alarm: the statements it runs */
    int64_t at, if_at;  /* op alarm: what alarms.h is told */
    struct thaw_d1_ctl ctl;
    struct thaw_buf out;
    int rc;
    char err[4096];
};

static void on_work(sqlite3 *db, void *arg)
{
    struct job *j = arg;
    json_t *a = j->call->args;

    int open = !sqlite3_get_autocommit(db);

    /* a transactionSync holds its transaction across calls (one object's
     * calls run one at a time, and its closure never awaits); anything
     * else that finds one open finds it abandoned (its instance died) */
    if (open && j->txn != TXN_INSIDE && j->txn != TXN_COMMIT && j->txn != TXN_ROLLBACK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        j->stale = 1;
        open = 0;
    }
    if (j->txn == TXN_BEGIN || j->txn == TXN_COMMIT || j->txn == TXN_ROLLBACK) {
        const char *sql = j->txn == TXN_BEGIN ? "BEGIN IMMEDIATE"
                          : j->txn == TXN_COMMIT ? "COMMIT" : "ROLLBACK";
        j->rc = 0;
        if (j->txn != TXN_BEGIN && !open)
            j->rc = j->txn == TXN_ROLLBACK ? 0 : -1; /* gone: nothing to commit */
        else if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
            j->rc = -1;
        if (j->rc < 0)
            snprintf(j->err, sizeof(j->err), "transactionSync(): %s", open || j->txn ==
                     TXN_BEGIN ? sqlite3_errmsg(db) : "the transaction is no longer open");
        thaw_buf_append(&j->out, "null", 4);
        return;
    }
    if (j->txn == TXN_INSIDE && !open) {
        j->rc = -1;
        snprintf(j->err, sizeof(j->err), "transactionSync(): the transaction is no longer open");
        return;
    }
    j->ctl.keep_open = j->txn == TXN_INSIDE;
    if (__atomic_load_n(&j->ctl.cancelled, __ATOMIC_RELAXED)) {
        j->rc = -1;
        snprintf(j->err, sizeof(j->err), "the call that ran this went away");
        return;
    }
    if (j->batch)
        j->rc = thaw_d1_batch(db, &j->ctl, j->stmts ? j->stmts : json_object_get(a, "statements"), &j->out,
                              j->err, sizeof(j->err));
    else
        j->rc = thaw_d1_query(db, &j->ctl, json_string_value(json_object_get(a, "sql")),
                              json_object_get(a, "params"), 0, &j->out, j->err,
                              sizeof(j->err));
}

static void on_done(void *arg)
{
    struct job *j = arg;
    struct thaw_bind_call *call = j->call;

    call->on_cancel = NULL;
    /* a transaction held open keeps its file open (trim() skips it) */
    if ((j->stale || j->txn == TXN_COMMIT || j->txn == TXN_ROLLBACK) && j->file->txn_held) {
        j->file->txn_held = 0;
        j->file->jobs--;
    }
    if (j->txn == TXN_BEGIN && j->rc == 0 && !j->file->txn_held) {
        j->file->txn_held = 1;
        j->file->jobs++;
    }
    if (j->stale)
        thaw_log("worker %s: a Durable Object's transactionSync was left open (its instance "
                 "went away): rolled back", j->store->worker);
    /* before the answer, which may release the last hold on the store */
    j->file->jobs--;
    trim(j->store);
    if (j->rc < 0) {
        thaw_bind_fail(call, "Error", "%s", j->err);
    } else if (j->stmts) {
        json_t *a = call->args;
        thaw__do_alarms_note(j->store->w, json_string_value(json_object_get(a, "ns")),
                             json_string_value(json_object_get(a, "id")), j->at, j->if_at);
        thaw_bind_ok(call, json_null());
    } else {
        /* in the reply's head, not as a body: ctx.storage.sql.exec() is
         * synchronous, and the instance's blocking wait reads heads only;
         * so one answer is at most a frame (1 MiB of JSON: bind.c says so) */
        json_error_t jerr;
        json_t *res = json_loadb(j->out.data ? j->out.data : "null", j->out.len ? j->out.len : 4,
                                 JSON_DECODE_ANY, &jerr);
        if (res)
            thaw_bind_ok(call, res);
        else
            thaw_bind_fail(call, "Error", "thaw: a storage answer that is not JSON: %s",
                           jerr.text);
    }
    thaw_buf_free(&j->out);
    json_decref(j->stmts);
    free(j);
}

static void on_cancel(struct thaw_bind_call *call)
{
    struct job *j = call->data;

    __atomic_store_n(&j->ctl.cancelled, 1, __ATOMIC_RELAXED);
}

/* op alarm's statements: the table, then the new state. at < 0: deleted
 * (only where it is if_at, if_at >= 0). */
static json_t *alarm_statements(int64_t at, int64_t if_at)
{
    json_t *st = json_array();

    json_array_append_new(st, json_pack("{s:s, s:[]}", "sql", THAW_DO_ALARM_TABLE, "params"));
    if (at >= 0)
        json_array_append_new(st, json_pack("{s:s, s:[I]}", "sql",
                                            "INSERT OR REPLACE INTO _cf_ALARM (k, at) "
                                            "VALUES (0, ?)", "params", (json_int_t)at));
    else if (if_at >= 0)
        json_array_append_new(st, json_pack("{s:s, s:[I]}", "sql",
                                            "DELETE FROM _cf_ALARM WHERE at = ?", "params",
                                            (json_int_t)if_at));
    else
        json_array_append_new(st, json_pack("{s:s, s:[]}", "sql", "DELETE FROM _cf_ALARM",
                                            "params"));
    return st;
}

/* An alarm's time: an integer of ms since the epoch, or null. */
static int alarm_time(json_t *v, int64_t *out)
{
    if (!v || json_is_null(v)) {
        *out = -1;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = json_integer_value(v);
    return 0;
}

void thaw__do_storage_call(struct thaw_do_store *s, struct thaw_bind_call *call)
{
    json_t *a = call->args;
    const char *ns = json_string_value(json_object_get(a, "ns"));
    const char *id = json_string_value(json_object_get(a, "id"));
    char path[4096], err[512];
    struct job *j;
    int alarm = strcmp(call->op, "alarm") == 0;
    int batch = alarm || strcmp(call->op, "batch") == 0;
    const char *action = json_string_value(json_object_get(a, "action"));
    int txn = TXN_NONE;
    int64_t at = -1, if_at = -1;

    if (alarm && (alarm_time(json_object_get(a, "at"), &at) ||
                  alarm_time(json_object_get(a, "if_at"), &if_at))) {
        thaw_bind_fail(call, "TypeError", "Durable Object storage: an alarm's time must be "
                       "a whole number of milliseconds since the epoch, at least 0");
        return;
    }
    if (strcmp(call->op, "txn") == 0) {
        txn = !action ? -1 : strcmp(action, "begin") == 0 ? TXN_BEGIN
              : strcmp(action, "commit") == 0 ? TXN_COMMIT
              : strcmp(action, "rollback") == 0 ? TXN_ROLLBACK : -1;
        if (txn < 0) {
            thaw_bind_fail(call, "TypeError", "Durable Object storage: txn's action is "
                           "begin, commit or rollback");
            return;
        }
    } else if (strcmp(call->op, "sql") == 0 && json_is_true(json_object_get(a, "txn"))) {
        txn = TXN_INSIDE;
    } else if (!batch && strcmp(call->op, "sql") != 0) {
        thaw_bind_fail(call, "TypeError", "Durable Object storage has no operation \"%s\"",
                       call->op);
        return;
    }
    /* a large batch (one turn's writes, workers/_durable_storage.py) comes
     * as the body: the head is one frame */
    if (batch && !alarm && json_is_object(a) && !json_object_get(a, "statements") &&
        call->body) {
        json_error_t jerr;
        json_t *st = json_loadb(call->body, call->body_len, 0, &jerr);
        if (st)
            json_object_set_new(a, "statements", st);
    }
    /* both name the file: hex only, so never a path */
    if (!thaw__do_hex64(ns) || !thaw__do_hex64(id) ||
        (alarm || (txn != TXN_NONE && txn != TXN_INSIDE) ? 0
         : batch ? !json_is_array(json_object_get(a, "statements"))
               : !json_is_string(json_object_get(a, "sql")))) {
        thaw_bind_fail(call, "TypeError", "Durable Object storage: bad arguments");
        return;
    }
    if (!(j = calloc(1, sizeof(*j)))) {
        thaw_bind_fail(call, "Error", "out of memory");
        return;
    }
    snprintf(path, sizeof(path), "%s/do/%s/%s.sqlite", s->state_dir, ns, id);
    if (!(j->file = file_get(s, path, err, sizeof(err)))) {
        free(j);
        thaw_log("worker %s: cannot open a Durable Object's storage: %s", s->worker, err);
        thaw_bind_fail(call, "Error", "the object's storage cannot be opened: %s", err);
        return;
    }
    j->call = call;
    j->store = s;
    j->batch = batch;
    j->txn = txn;
    if (alarm) {
        j->stmts = alarm_statements(at, if_at);
        j->at = at;
        j->if_at = if_at;
    }
    j->ctl.deadline_ms = 0;
    thaw_buf_init(&j->out, THAW_D1_MAX_RESULT);
    call->data = j;
    call->on_cancel = on_cancel;
    thaw_sqlq_submit(j->file->q, on_work, on_done, j);
}
