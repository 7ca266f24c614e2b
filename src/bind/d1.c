/* The D1 binding kind: `d1_databases = [{binding, database_name,
 * database_id}]`. Each database is one SQLite file,
 * <state_dir>/d1/<database_id or database_name, escaped>.sqlite (util/idname.h), the layout
 * `thaw d1 execute` (python/thaw_tools/d1.py) uses too. Its statements run
 * on the libuv threadpool behind one ordered queue (sqlq.h), one job of a
 * worker at a time (d1-lane.h); the SQL work itself is d1-exec.c, under
 * the policy of d1-policy.c.
 *
 * Ops (args are JSON; the answer is JSON text sent as the reply's body,
 * so it may be over a frame's 1 MiB, and is written once, by d1-exec.c):
 *   query {sql, params, first}  -> {columns, rows, meta}
 *   batch {statements: [{sql, params}, ...]} -> [result, ...]
 *   exec  {sql}                 -> {count, duration} */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bind/bind.h"
#include "bind/d1.h"
#include "bind/d1-exec.h"
#include "bind/d1-lane.h"
#include "bind/kinds.h"
#include "bind/sqlq.h"
#include "cluster/owner-d1.h"
#include "cluster/owner.h"
#include "util/idname.h"
#include "util/log.h"

/* ---- open databases, shared by every version of a worker ---------------- */

/* One queue per file: two versions of a worker (a reload while requests
 * run on the old one) write through the same connection, in order. */
struct d1_db {
    char *path;
    struct thaw_sqlq *q;
    int refs;
    struct d1_db *next;
};

static struct d1_db *open_dbs;

static struct d1_db *db_get(uv_loop_t *loop, const char *path, char *err, size_t errlen)
{
    struct d1_db *d;

    for (d = open_dbs; d; d = d->next) {
        if (strcmp(d->path, path) == 0) {
            d->refs++;
            return d;
        }
    }
    d = calloc(1, sizeof(*d));
    if (!d || !(d->path = strdup(path))) {
        free(d);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->q = thaw_sqlq_open(loop, path, err, errlen);
    if (!d->q) {
        free(d->path);
        free(d);
        return NULL;
    }
    d->refs = 1;
    d->next = open_dbs;
    open_dbs = d;
    return d;
}

static void db_put(struct d1_db *d)
{
    struct d1_db **pp;

    if (--d->refs > 0)
        return;
    for (pp = &open_dbs; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    thaw_sqlq_close(d->q); /* after its queued jobs */
    free(d->path);
    free(d);
}

void thaw_d1_file(const char *state_dir, const char *id, size_t n, char *out,
                  size_t outlen)
{
    char fname[THAW_IDNAME_SIZE];

    /* any id (templates ship placeholders): the file is named by its
     * escaped form (util/idname.h), as `thaw d1` finds it */
    thaw_id_filename(id, n, fname);
    snprintf(out, outlen, "%s/d1/%s.sqlite", state_dir, fname);
}

/* A call from outside the bindings: it holds the database and the lane
 * until its done callback ran. */
struct run {
    struct d1_db *db;
    struct thaw_d1_lane *lane;
    thaw_sqlq_work_cb work;
    thaw_sqlq_done_cb done;
    void *arg;
};

static void run_work(sqlite3 *db, void *arg)
{
    struct run *r = arg;

    r->work(db, r->arg);
}

static void run_done(void *arg)
{
    struct run *r = arg;

    r->done(r->arg);
    db_put(r->db);
    thaw_d1_lane_put(r->lane);
    free(r);
}

int thaw_d1_run(uv_loop_t *loop, const char *worker, const char *path,
                thaw_sqlq_work_cb work, thaw_sqlq_done_cb done, void *arg, char *err,
                size_t errlen)
{
    struct run *r = calloc(1, sizeof(*r));

    if (!r || !(r->lane = thaw_d1_lane_get(worker))) {
        free(r);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!(r->db = db_get(loop, path, err, errlen))) {
        thaw_d1_lane_put(r->lane);
        free(r);
        return -1;
    }
    r->work = work;
    r->done = done;
    r->arg = arg;
    thaw_d1_lane_submit(r->lane, r->db->q, run_work, run_done, r);
    return 0;
}

/* ---- config ------------------------------------------------------------- */

struct d1_binding {
    struct d1_db *db;
    struct thaw_d1_lane *lane; /* the worker's turn on the pool */
    char *id;                  /* database_id (else database_name): its owner's key */
};

static const char *opt_string(json_t *item, const char *key, int *bad)
{
    json_t *v = json_object_get(item, key);

    if (v && !json_is_string(v))
        *bad = 1;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int open_one(const struct thaw_bind_env *env, struct thaw_bindings *set,
                    json_t *item, size_t i, char *err, size_t errlen)
{
    const char *file = env->config_file;
    const char *binding, *id, *name, *which;
    struct d1_binding *b;
    char path[4096], why[512];
    int bad = 0;

    if (!json_is_object(item)) {
        snprintf(err, errlen, "%s: d1_databases[%zu] must be a table like { binding = "
                 "\"DB\", database_name = \"my-db\", database_id = \"...\" }", file, i);
        return -1;
    }
    binding = opt_string(item, "binding", &bad);
    id = opt_string(item, "database_id", &bad);
    name = opt_string(item, "database_name", &bad);
    if (bad || !binding || !*binding) {
        snprintf(err, errlen, "%s: d1_databases[%zu] needs `binding`, the name the "
                 "worker uses (binding = \"DB\" gives self.env.DB), and string "
                 "`database_name` / `database_id`", file, i);
        return -1;
    }
    /* read by `thaw d1 migrations` and the admin API (serve/migrations.c),
     * which take the worker's build to have checked them */
    opt_string(item, "migrations_dir", &bad);
    opt_string(item, "migrations_table", &bad);
    if (bad) {
        snprintf(err, errlen, "%s: d1_databases[%zu] (binding \"%s\"): `migrations_dir` "
                 "and `migrations_table` must be strings (defaults: \"migrations\", "
                 "\"d1_migrations\")", file, i, binding);
        return -1;
    }
    which = id && *id ? "database_id" : "database_name";
    if (!(id && *id))
        id = name;
    if (!id || !*id) {
        snprintf(err, errlen, "%s: d1_databases[%zu] (binding \"%s\") needs "
                 "`database_name` or `database_id`: it names the local database "
                 "file", file, i, binding);
        return -1;
    }
    thaw_d1_file(env->state_dir, id, json_string_length(json_object_get(item, which)),
                 path, sizeof(path));
    b = calloc(1, sizeof(*b));
    if (!b || !(b->id = strdup(id))) {
        free(b);
        snprintf(err, errlen, "out of memory");
        return THAW_BIND_INTERNAL;
    }
    b->lane = thaw_d1_lane_get(env->worker_name);
    b->db = b->lane ? db_get(env->loop, path, why, sizeof(why)) : NULL;
    if (!b->lane)
        snprintf(why, sizeof(why), "out of memory");
    if (!b->db) {
        thaw_d1_lane_put(b->lane);
        snprintf(err, errlen, "%s: d1_databases[%zu] (binding \"%s\"): %s", file, i,
                 binding, why);
        free(b->id);
        free(b);
        return THAW_BIND_INTERNAL; /* the entry was fine: the file would not open */
    }
    if (thaw_bindings_add(set, binding, &thaw_bind_d1, b, err, errlen) < 0) {
        db_put(b->db);
        thaw_d1_lane_put(b->lane);
        free(b->id);
        free(b);
        return -1;
    }
    return 0;
}

static int d1_open(const struct thaw_bind_env *env, struct thaw_bindings *set,
                   char *err, size_t errlen)
{
    json_t *list = json_object_get(env->config, "d1_databases");
    size_t i;
    int rc;

    for (i = 0; i < json_array_size(list); i++)
        if ((rc = open_one(env, set, json_array_get(list, i), i, err, errlen)) < 0)
            return rc;
    return 0;
}

static void d1_close(void *impl)
{
    struct d1_binding *b = impl;

    db_put(b->db);
    thaw_d1_lane_put(b->lane);
    free(b->id);
    free(b);
}

/* ---- calls ----------------------------------------------------------------- */

enum op { OP_QUERY, OP_BATCH, OP_EXEC };

struct job {
    struct thaw_bind_call *call;
    struct thaw_d1_ctl ctl;
    struct thaw_buf out;
    int rc;
    char err[4096];
};

int thaw_d1_work(sqlite3 *db, struct thaw_d1_ctl *ctl, const char *op, json_t *a,
                 struct thaw_buf *out, char *err, size_t errlen)
{
    const char *sql = json_string_value(json_object_get(a, "sql"));

    struct timespec ts;

    /* it may have waited for its turn longer than its caller */
    if (__atomic_load_n(&ctl->cancelled, __ATOMIC_RELAXED)) {
        snprintf(err, errlen, "D1_ERROR: the request that ran this query went away: "
                 "SQLITE_INTERRUPT");
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ctl->lease_until_ms > 0 && ts.tv_sec * 1e3 + ts.tv_nsec / 1e6 > ctl->lease_until_ms) {
        /* another node may own it by now: no split-brain */
        snprintf(err, errlen, "D1_ERROR: 503 Service Unavailable: this node's lease on the "
                 "database (%d ms) ran out while the query waited for its turn: retry",
                 THAW_OWNER_LEASE_MS);
        return -1;
    }
    if (!strcmp(op, "query"))
        return thaw_d1_query(db, ctl, sql, json_object_get(a, "params"),
                             json_is_true(json_object_get(a, "first")) ? 1 : 0, out, err,
                             errlen);
    if (!strcmp(op, "batch"))
        return thaw_d1_batch(db, ctl, json_object_get(a, "statements"), out, err, errlen);
    return thaw_d1_exec(db, ctl, sql, out, err, errlen);
}

static void on_work(sqlite3 *db, void *arg)
{
    struct job *j = arg;

    j->rc = thaw_d1_work(db, &j->ctl, j->call->op, j->call->args, &j->out, j->err,
                         sizeof(j->err));
}

static void on_done(void *arg)
{
    struct job *j = arg;
    struct thaw_bind_call *call = j->call;

    call->on_cancel = NULL;
    if (j->rc < 0)
        thaw_bind_fail(call, "Error", "%s", j->err);
    else
        thaw_bind_ok_body(call, NULL, j->out.data, j->out.len);
    thaw_buf_free(&j->out);
    free(j);
}

static void on_cancel(struct thaw_bind_call *call)
{
    struct job *j = call->data;

    __atomic_store_n(&j->ctl.cancelled, 1, __ATOMIC_RELAXED);
}

/* Checks the arguments on the loop, so the pool thread only runs SQL. */
static const char *bad_args(enum op op, json_t *a)
{
    json_t *params = json_object_get(a, "params"), *list;
    size_t i;

    if (op == OP_BATCH) {
        list = json_object_get(a, "statements");
        if (!json_is_array(list))
            return "batch() takes a list of prepared statements";
        for (i = 0; i < json_array_size(list); i++) {
            json_t *s = json_array_get(list, i);
            json_t *p = json_object_get(s, "params");
            if (!json_is_string(json_object_get(s, "sql")) || (p && !json_is_array(p)))
                return "batch() takes a list of prepared statements";
        }
        return NULL;
    }
    if (!json_is_string(json_object_get(a, "sql")))
        return "the SQL must be a string";
    if (params && !json_is_array(params))
        return "parameters must be a list";
    return NULL;
}

int thaw_d1_check(const char *op, json_t *args, const char **errclass, char *why,
                  size_t n)
{
    const char *bad;
    enum op o;

    *errclass = "TypeError";
    if (strcmp(op, "query") == 0)
        o = OP_QUERY;
    else if (strcmp(op, "batch") == 0)
        o = OP_BATCH;
    else if (strcmp(op, "exec") == 0)
        o = OP_EXEC;
    else {
        snprintf(why, n, "D1 has no operation \"%s\"", op);
        return -1;
    }
    if ((bad = bad_args(o, args))) {
        snprintf(why, n, "D1_TYPE_ERROR: %s", bad);
        return -1;
    }
    return 0;
}

/* Runs a checked call on this node's file. */
static void call_here(void *impl, struct thaw_bind_call *call, double lease_until_ms)
{
    struct d1_binding *b = impl;
    struct job *j = calloc(1, sizeof(*j));

    if (!j) {
        thaw_bind_fail(call, "Error", "D1_ERROR: out of memory");
        return;
    }
    j->call = call;
    j->ctl.lease_until_ms = lease_until_ms;
    thaw_buf_init(&j->out, THAW_D1_MAX_RESULT);
    call->data = j;
    call->on_cancel = on_cancel;
    thaw_d1_lane_submit(b->lane, b->db->q, on_work, on_done, j);
}

static void d1_call(void *impl, struct thaw_bind_call *call)
{
    struct d1_binding *b = impl;
    const char *errclass;
    char why[512];

    if (thaw_d1_check(call->op, call->args, &errclass, why, sizeof(why))) {
        thaw_bind_fail(call, errclass, "%s", why);
        return;
    }
    /* in a cluster the database lives on its owner node (owner-d1.h) */
    if (thaw_owners_cluster)
        thaw_owner_d1_call(thaw_owners_cluster, b->id, call, call_here, b);
    else
        call_here(b, call, 0);
}

const struct thaw_bind_kind thaw_bind_d1 = {
    .name = "d1",
    .open = d1_open,
    .call = d1_call,
    .close = d1_close,
};
