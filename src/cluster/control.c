/* The control store's schema, the admin API's transactions on it and the
 * node's heartbeat (control.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/control.h"
#include "serve/fleet.h"
#include "util/log.h"

#define SCHEMA_VERSION "1"
#define HEARTBEAT_MS 1000
#define LIVE_SECONDS "5"

/* Created in one transaction under an advisory lock: nodes that start
 * together do not race on CREATE TABLE. */
static const char *const schema[] = {
    "BEGIN",
    "SELECT pg_advisory_xact_lock(7345019)",
    "CREATE TABLE IF NOT EXISTS thaw_schema (version int NOT NULL)",
    "CREATE TABLE IF NOT EXISTS thaw_workers (name text PRIMARY KEY, current int NOT NULL)",
    "CREATE TABLE IF NOT EXISTS thaw_versions (name text NOT NULL, version int NOT NULL, "
    "bundle bytea NOT NULL, meta text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), "
    "PRIMARY KEY (name, version))",
    "CREATE TABLE IF NOT EXISTS thaw_grants (name text PRIMARY KEY, patterns text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS thaw_nodes (name text PRIMARY KEY, internal text NOT NULL, "
    "heartbeat timestamptz NOT NULL)",
    "INSERT INTO thaw_schema (version) SELECT " SCHEMA_VERSION
    " WHERE NOT EXISTS (SELECT 1 FROM thaw_schema)",
    "DO $$ BEGIN IF (SELECT max(version) FROM thaw_schema) > " SCHEMA_VERSION " THEN "
    "RAISE EXCEPTION 'the control store''s schema is newer than this thaw knows (version "
    SCHEMA_VERSION "): upgrade thaw on this node'; END IF; END $$",
    "COMMIT",
    "LISTEN thaw_control",
};

static struct thaw_pg_job *setup_job(void *data)
{
    struct thaw_pg_job *j = thaw_pg_job_new(NULL, NULL);
    size_t i;

    for (i = 0; i < sizeof(schema) / sizeof(schema[0]); i++)
        thaw_pg_job_add(j, schema[i], 0, NULL, NULL, 0);
    return j;
}

static void on_heartbeat(uv_timer_t *t);

static void on_up(void *data)
{
    struct thaw_control *c = data;

    thaw__control_sync_all(c); /* NOTIFYs missed while down: read it all */
    on_heartbeat(&c->heartbeat); /* its row at once, not a second later */
}

static void on_notify(void *data, const char *channel, const char *payload)
{
    struct thaw_control *c = data;

    if (strncmp(payload, "w:", 2) == 0)
        thaw__control_mark(c, payload + 2);
    else if (strncmp(payload, "g:", 2) == 0)
        thaw__control_grants_changed(c, payload + 2);
}

/* ---- heartbeat and membership ---------------------------------------- */

static void on_heartbeat_done(void *data, struct thaw_pg_job *job, const char *err)
{
    struct thaw_control *c = data;
    PGresult *r = thaw_pg_result(job, 1);
    json_t *nodes;
    int i;

    if (err || !r)
        return;
    nodes = json_array();
    for (i = 0; i < PQntuples(r); i++)
        json_array_append_new(nodes, json_pack("{s:s,s:s}", "name", PQgetvalue(r, i, 0),
                                               "internal", PQgetvalue(r, i, 1)));
    json_decref(c->nodes);
    c->nodes = nodes;
}

static void on_heartbeat(uv_timer_t *t)
{
    struct thaw_control *c = t->data;
    const char *v[2] = {c->node, c->internal};
    struct thaw_pg_job *j;

    if (!thaw_pg_ready(&c->pg))
        return;
    j = thaw_pg_job_new(on_heartbeat_done, c);
    thaw_pg_job_add(j, "INSERT INTO thaw_nodes (name, internal, heartbeat) VALUES ($1, $2, now()) "
                    "ON CONFLICT (name) DO UPDATE SET internal = EXCLUDED.internal, "
                    "heartbeat = now()", 2, v, NULL, 0);
    thaw_pg_job_add(j, "SELECT name, internal FROM thaw_nodes WHERE heartbeat > now() - "
                    "interval '" LIVE_SECONDS " seconds' ORDER BY name", 0, NULL, NULL, 0);
    thaw_pg_run(&c->pg, j);
}

json_t *thaw_control_live_nodes(struct thaw_control *c)
{
    return c->nodes;
}

/* ---- start and state -------------------------------------------------- */

void thaw_control_start(struct thaw_control *c, uv_loop_t *loop,
                        const struct thaw_cluster_config *cc, struct thaw_fleet *f)
{
    c->fleet = f;
    snprintf(c->node, sizeof(c->node), "%s", cc->node);
    snprintf(c->internal, sizeof(c->internal), "%s", cc->internal);
    snprintf(c->pg.conninfo, sizeof(c->pg.conninfo), "%s", cc->control);
    c->dirty = json_object();
    c->active = json_object();
    c->settled = json_object();
    c->nodes = json_array();
    c->pg.setup = setup_job;
    c->pg.on_up = on_up;
    c->pg.on_notify = on_notify;
    c->pg.data = c;
    uv_timer_init(loop, &c->heartbeat);
    c->heartbeat.data = c;
    uv_timer_start(&c->heartbeat, on_heartbeat, 0, HEARTBEAT_MS);
    thaw_pg_start(&c->pg, loop);
}

int thaw_control_accepting(struct thaw_control *c, char *why, size_t n)
{
    if (!thaw_pg_ready(&c->pg)) {
        snprintf(why, n, "the control store (PostgreSQL) is unreachable: %s; nothing was "
                 "changed: retry once it is back", c->pg.why);
        return 0;
    }
    if (!c->caught_up && !thaw_control_caught_up(c, why, n))
        return 0;
    return 1;
}

int thaw_control_caught_up(struct thaw_control *c, char *why, size_t n)
{
    const char *name;
    json_t *v;

    if (c->caught_up)
        return 1;
    if (!c->synced) {
        snprintf(why, n, "catching up: the control store (PostgreSQL) has not been read yet "
                 "(%s)", c->pg.why[0] ? c->pg.why : "connecting");
        return 0;
    }
    json_object_foreach(c->want, name, v) {
        struct thaw_hosted *h = thaw_fleet_find(c->fleet, name);
        int want = (int)json_integer_value(v);
        /* the same number may be another deploy (deleted and deployed
         * again): only a reconcile tells */
        int ok = json_object_get(c->settled, name) &&
                 (want ? h && h->live && !h->op && h->loaded && h->version == want
                       : !h || !h->live);
        if (!ok) {
            snprintf(why, n, "catching up with the control store: worker %s %s%d", name,
                     want ? "is not serving version " : "is deleted there; still here: version ",
                     want ? want : h->version);
            return 0;
        }
    }
    c->caught_up = 1;
    thaw_log("caught up with the control store (PostgreSQL): %zu worker(s)",
             json_object_size(c->want));
    return 1;
}

void thaw_control_apply_failed(struct thaw_control *c, const char *name)
{
    if (c->want)
        json_object_del(c->want, name);
}

/* ---- the admin API's transactions ------------------------------------ */

struct publish {
    thaw_control_cb cb;
    void *data;
    int check_row;  /* statement whose row count must be 1 (0: none) */
    char what[96];
};

static void on_published(void *data, struct thaw_pg_job *job, const char *err)
{
    struct publish *p = data;
    PGresult *r = p->check_row ? thaw_pg_result(job, p->check_row) : NULL;
    char msg[700];

    if (err && strcmp(thaw_pg_sqlstate(job), "23505") == 0) {
        snprintf(msg, sizeof(msg), "%s conflicts with a change another node made meanwhile "
                 "(the same version number); nothing was changed: retry", p->what);
        p->cb(p->data, 409, msg);
    } else if (err) {
        snprintf(msg, sizeof(msg), "the control store (PostgreSQL) did not record the %s: %s; "
                 "if the connection broke during its commit, GET /v1/workers shows whether "
                 "it was", p->what, err);
        p->cb(p->data, 503, msg);
    } else if (r && strcmp(PQcmdTuples(r), "1") != 0) {
        snprintf(msg, sizeof(msg), "%s conflicts with a change another node made meanwhile "
                 "(the worker was deleted, or deployed, there); nothing was changed: retry",
                 p->what);
        p->cb(p->data, 409, msg);
    } else {
        p->cb(p->data, 0, NULL);
    }
    free(p);
}

static struct thaw_pg_job *publish_job(thaw_control_cb cb, void *data, const char *what,
                                       struct publish **out)
{
    struct publish *p = calloc(1, sizeof(*p));

    if (!p)
        abort();
    p->cb = cb;
    p->data = data;
    snprintf(p->what, sizeof(p->what), "%s", what);
    *out = p;
    return thaw_pg_job_new(on_published, p);
}

static void notify_add(struct thaw_pg_job *j, const char *kind, const char *name)
{
    char payload[128];
    const char *v[1] = {payload};

    snprintf(payload, sizeof(payload), "%s:%s", kind, name);
    thaw_pg_job_add(j, "SELECT pg_notify('thaw_control', $1)", 1, v, NULL, 0);
}

void thaw_control_publish_deploy(struct thaw_control *c, const char *name, int version,
                                 const void *bundle, size_t len, const char *meta,
                                 int existed, thaw_control_cb cb, void *data)
{
    char ver[16], what[96];
    const char *v[5] = {name, ver, bundle, meta, existed ? "1" : "0"};
    int lens[5] = {-1, -1, (int)len, -1, -1};
    struct publish *p;
    struct thaw_pg_job *j;

    snprintf(ver, sizeof(ver), "%d", version);
    snprintf(what, sizeof(what), "deploy of %s version %d", name, version);
    j = publish_job(cb, data, what, &p);
    p->check_row = 1;
    thaw_pg_job_add(j, "BEGIN", 0, NULL, NULL, 0);
    thaw_pg_job_add(j, "INSERT INTO thaw_versions (name, version, bundle, meta) "
                    "SELECT $1, $2::int, $3::bytea, $4 WHERE (SELECT count(*) FROM thaw_workers "
                    "WHERE name = $1) = $5::int", 5, v, lens, 0);
    thaw_pg_job_add(j, "INSERT INTO thaw_workers (name, current) VALUES ($1, $2::int) "
                    "ON CONFLICT (name) DO UPDATE SET current = EXCLUDED.current", 2, v, NULL, 0);
    notify_add(j, "w", name);
    thaw_pg_job_add(j, "COMMIT", 0, NULL, NULL, 0);
    thaw_pg_run(&c->pg, j);
}

void thaw_control_publish_rollback(struct thaw_control *c, const char *name, int version,
                                   thaw_control_cb cb, void *data)
{
    char ver[16], what[96];
    const char *v[2] = {name, ver};
    struct publish *p;
    struct thaw_pg_job *j;

    snprintf(ver, sizeof(ver), "%d", version);
    snprintf(what, sizeof(what), "rollback of %s to version %d", name, version);
    j = publish_job(cb, data, what, &p);
    p->check_row = 1;
    thaw_pg_job_add(j, "BEGIN", 0, NULL, NULL, 0);
    thaw_pg_job_add(j, "UPDATE thaw_workers SET current = $2::int WHERE name = $1 AND EXISTS "
                    "(SELECT 1 FROM thaw_versions WHERE name = $1 AND version = $2::int)",
                    2, v, NULL, 0);
    notify_add(j, "w", name);
    thaw_pg_job_add(j, "COMMIT", 0, NULL, NULL, 0);
    thaw_pg_run(&c->pg, j);
}

void thaw_control_publish_delete(struct thaw_control *c, const char *name,
                                 thaw_control_cb cb, void *data)
{
    const char *v[1] = {name};
    char what[96];
    struct publish *p;
    struct thaw_pg_job *j;

    snprintf(what, sizeof(what), "delete of %s", name);
    j = publish_job(cb, data, what, &p);
    thaw_pg_job_add(j, "BEGIN", 0, NULL, NULL, 0);
    thaw_pg_job_add(j, "DELETE FROM thaw_versions WHERE name = $1", 1, v, NULL, 0);
    thaw_pg_job_add(j, "DELETE FROM thaw_workers WHERE name = $1", 1, v, NULL, 0);
    notify_add(j, "w", name);
    thaw_pg_job_add(j, "COMMIT", 0, NULL, NULL, 0);
    thaw_pg_run(&c->pg, j);
}

void thaw_control_publish_grants(struct thaw_control *c, const char *name,
                                 const char *patterns, thaw_control_cb cb, void *data)
{
    const char *v[2] = {name, patterns};
    char what[96];
    struct publish *p;
    struct thaw_pg_job *j;

    snprintf(what, sizeof(what), "route grants of %s", name);
    j = publish_job(cb, data, what, &p);
    thaw_pg_job_add(j, "BEGIN", 0, NULL, NULL, 0);
    thaw_pg_job_add(j, "DELETE FROM thaw_grants WHERE name = $1", 1, v, NULL, 0);
    thaw_pg_job_add(j, "INSERT INTO thaw_grants (name, patterns) SELECT $1::text, $2::text "
                    "WHERE $2::text <> '[]'", 2, v, NULL, 0);
    notify_add(j, "g", name);
    thaw_pg_job_add(j, "COMMIT", 0, NULL, NULL, 0);
    thaw_pg_run(&c->pg, j);
}
