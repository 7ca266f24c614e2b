/* Reconciling this node with the control store (control.h): for one
 * worker, read its versions and current version from PostgreSQL, drop
 * what the store no longer has, pull the bundles this node lacks into its
 * state directory, then build and switch to the current one. A worker
 * with a deploy, rollback or build in flight here is reconciled once that
 * ended (the kick timer). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/control.h"
#include "serve/bundle.h"
#include "serve/fleet.h"
#include "serve/routes.h"
#include "serve/store.h"
#include "util/log.h"

#define KICK_AGAIN_MS 50

struct rec {
    struct thaw_control *c;
    char name[64];
    int current;
    int n, i;
    int *vers;
    char **metas;
    int later;
};

static void rec_end(struct rec *r)
{
    int i;

    json_object_del(r->c->active, r->name);
    if (!r->later) /* readyz: reconciled once since start (control.c) */
        json_object_set_new(r->c->settled, r->name, json_true());
    for (i = 0; i < r->n; i++)
        free(r->metas[i]);
    free(r->metas);
    free(r->vers);
    free(r);
}

/* Later: its worker is busy, or the store could not be read. */
static void rec_later(struct rec *r)
{
    struct thaw_control *c = r->c;
    char name[64];

    snprintf(name, sizeof(name), "%s", r->name);
    r->later = 1;
    rec_end(r);
    thaw__control_mark(c, name);
}

/* The deploy id in a version's meta ("" when none). */
static void deploy_id(const char *meta, char *out, size_t n)
{
    json_t *j = meta ? json_loads(meta, 0, NULL) : NULL;
    const char *s = j ? json_string_value(json_object_get(j, "deploy_id")) : NULL;

    snprintf(out, n, "%s", s ? s : "");
    json_decref(j);
}

static int local_current(struct thaw_fleet *f, const char *name)
{
    struct thaw_hosted *h = thaw_fleet_find(f, name);

    return h ? h->version : thaw_store_current(f->state, name);
}

/* A worker deployed here before the node joined a cluster: its serving
 * version's .json has no deploy id. The store never had it, so its
 * absence there is no delete: it is left alone (and logged). */
static int unpublished(struct thaw_fleet *f, const char *name)
{
    int cur = local_current(f, name);
    char *meta = cur > 0 ? thaw_store_read_meta(f->state, name, cur) : NULL;
    char id[64];

    if (!meta)
        return 0;
    deploy_id(meta, id, sizeof(id));
    free(meta);
    return id[0] == '\0';
}

static void remove_local(struct thaw_fleet *f, const char *name)
{
    struct thaw_hosted *h = thaw_fleet_find(f, name);
    char dir[PATH_MAX + 80];

    if (h) {
        thaw_fleet_delete(f, h);
        return;
    }
    snprintf(dir, sizeof(dir), "%s/workers/%s", f->state, name);
    if (access(dir, F_OK) == 0)
        thaw_store_delete(f->state, name);
}

static void apply(struct rec *r)
{
    struct thaw_fleet *f = r->c->fleet;
    struct thaw_hosted *h = thaw_fleet_find(f, r->name);
    int rc;

    if (h && h->live && h->version == r->current) {
        rec_end(r);
        return;
    }
    rc = thaw_fleet_apply(f, r->name, r->current);
    if (rc > 0) {
        rec_later(r);
        return;
    }
    if (rc < 0) {
        thaw_log("worker %s: cannot switch to version %d from the control store", r->name,
                 r->current);
        thaw_control_apply_failed(r->c, r->name);
    }
    rec_end(r);
}

static void fetch_next(struct rec *r);

static void on_bundle(void *data, struct thaw_pg_job *job, const char *err)
{
    struct rec *r = data;
    struct thaw_fleet *f = r->c->fleet;
    struct thaw_hosted *h = thaw_fleet_find(f, r->name);
    PGresult *res = thaw_pg_result(job, 0);
    char dir[PATH_MAX], e[1024];
    int v = r->vers[r->i], files = 0;
    long long bytes = 0;

    if (err || !res || PQntuples(res) != 1 || (h && thaw_fleet_busy(h))) {
        rec_later(r); /* gone meanwhile: the NOTIFY of its delete comes next */
        return;
    }
    if (thaw_store_make_version(f->state, r->name, v, dir, sizeof(dir), e, sizeof(e)) ||
        thaw_bundle_unpack(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), dir, &files,
                           &bytes, e, sizeof(e)) ||
        thaw_store_write_meta(f->state, r->name, v, r->metas[r->i])) {
        thaw_log("worker %s: cannot unpack version %d from the control store: %s", r->name, v,
                 e);
        thaw_store_drop_version(f->state, r->name, v);
        thaw_control_apply_failed(r->c, r->name);
        rec_end(r);
        return;
    }
    thaw_log("worker %s: version %d pulled from the control store (%d files, %lld bytes)",
             r->name, v, files, bytes);
    r->i++;
    fetch_next(r);
}

static void fetch_next(struct rec *r)
{
    struct thaw_fleet *f = r->c->fleet;
    char ver[16];
    const char *v[2] = {r->name, ver};
    struct thaw_pg_job *j;

    for (; r->i < r->n; r->i++) {
        char *meta = thaw_store_read_meta(f->state, r->name, r->vers[r->i]);
        free(meta);
        if (!meta)
            break;
    }
    if (r->i >= r->n) {
        apply(r);
        return;
    }
    snprintf(ver, sizeof(ver), "%d", r->vers[r->i]);
    j = thaw_pg_job_new(on_bundle, r);
    thaw_pg_job_add(j, "SELECT bundle FROM thaw_versions WHERE name = $1 AND version = $2::int",
                    2, v, NULL, 1);
    thaw_pg_run(&r->c->pg, j);
}

static int pg_index(struct rec *r, int v)
{
    int i;

    for (i = 0; i < r->n; i++)
        if (r->vers[i] == v)
            return i;
    return -1;
}

/* What this node holds that the store does not: versions it dropped, or a
 * worker deleted and deployed again while this node was away (the same
 * version number, another deploy id): then the whole worker goes. */
static void drop_stale(struct rec *r)
{
    struct thaw_fleet *f = r->c->fleet;
    int n, i, *list = thaw_store_versions(f->state, r->name, &n), cur = local_current(f, r->name);
    int replaced = 0;

    for (i = 0; i < n && !replaced; i++) {
        int k = pg_index(r, list[i]);
        char *meta = thaw_store_read_meta(f->state, r->name, list[i]);
        char a[64], b[64];
        deploy_id(meta, a, sizeof(a));
        free(meta);
        if (k >= 0) {
            deploy_id(r->metas[k], b, sizeof(b));
            replaced = strcmp(a, b) != 0;
        } else if (list[i] == cur) {
            replaced = 1;
        } else {
            thaw_store_forget_version(f->state, r->name, list[i]);
        }
    }
    free(list);
    if (replaced) {
        thaw_log("worker %s was deleted and deployed again through another node: "
                 "replacing this node's copy", r->name);
        remove_local(f, r->name);
    }
}

static void on_state(void *data, struct thaw_pg_job *job, const char *err)
{
    struct rec *r = data;
    struct thaw_fleet *f = r->c->fleet;
    struct thaw_hosted *h = thaw_fleet_find(f, r->name);
    PGresult *res = thaw_pg_result(job, 0);
    int i;

    if (err || !res || (h && thaw_fleet_busy(h))) {
        rec_later(r);
        return;
    }
    if (PQntuples(res) == 0 && unpublished(f, r->name)) {
        thaw_log("worker %s was deployed to %s before this node joined the cluster and is "
                 "not in the control store: left alone, served by this node only; deploy it "
                 "again to publish it to every node, or delete it", r->name, f->state);
        rec_end(r);
        return;
    }
    if (PQntuples(res) == 0) {
        remove_local(f, r->name);
        rec_end(r);
        return;
    }
    r->n = PQntuples(res);
    r->vers = calloc((size_t)r->n, sizeof(int));
    r->metas = calloc((size_t)r->n, sizeof(char *));
    if (!r->vers || !r->metas)
        abort();
    r->current = atoi(PQgetvalue(res, 0, 0));
    for (i = 0; i < r->n; i++) {
        r->vers[i] = atoi(PQgetvalue(res, i, 1));
        r->metas[i] = strdup(PQgetvalue(res, i, 2));
    }
    drop_stale(r);
    fetch_next(r);
}

static void rec_start(struct thaw_control *c, const char *name)
{
    struct rec *r = calloc(1, sizeof(*r));
    const char *v[1] = {name};
    struct thaw_pg_job *j;

    if (!r)
        abort();
    r->c = c;
    snprintf(r->name, sizeof(r->name), "%s", name);
    json_object_set_new(c->active, name, json_true());
    j = thaw_pg_job_new(on_state, r);
    thaw_pg_job_add(j, "SELECT w.current, v.version, v.meta FROM thaw_workers w JOIN "
                    "thaw_versions v ON v.name = w.name WHERE w.name = $1 ORDER BY v.version",
                    1, v, NULL, 0);
    thaw_pg_run(&c->pg, j);
}

static void on_kick(uv_timer_t *t)
{
    struct thaw_control *c = t->data;
    const char *name;
    json_t *v;
    void *tmp;

    if (!thaw_pg_ready(&c->pg))
        return; /* its reconnect reads everything again */
    json_object_foreach_safe(c->dirty, tmp, name, v) {
        struct thaw_hosted *h = thaw_fleet_find(c->fleet, name);
        char copy[64];
        if (json_object_get(c->active, name) || (h && thaw_fleet_busy(h)))
            continue;
        snprintf(copy, sizeof(copy), "%s", name);
        json_object_del(c->dirty, copy);
        rec_start(c, copy);
    }
    if (json_object_size(c->dirty))
        uv_timer_start(&c->kick, on_kick, KICK_AGAIN_MS, 0);
}

void thaw__control_mark(struct thaw_control *c, const char *name)
{
    if (!thaw_worker_name_ok(name))
        return;
    json_object_set_new(c->dirty, name, json_true());
    if (!c->kick_on) {
        uv_timer_init(c->fleet->loop, &c->kick);
        c->kick.data = c;
        c->kick_on = 1;
    }
    if (!uv_is_active((uv_handle_t *)&c->kick))
        uv_timer_start(&c->kick, on_kick, 0, 0);
}

/* ---- grants ----------------------------------------------------------- */

static void on_grant_row(void *data, struct thaw_pg_job *job, const char *err)
{
    struct thaw_control *c = data;
    PGresult *res = thaw_pg_result(job, 0);
    json_t *list;

    if (err || !res || PQntuples(res) != 1)
        return;
    list = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    if (!json_is_array(list)) {
        json_decref(list);
        list = json_array();
    }
    thaw_grants_store(c->fleet, PQgetvalue(res, 0, 0), list); /* takes it */
}

void thaw__control_grants_changed(struct thaw_control *c, const char *name)
{
    const char *v[1] = {name};
    struct thaw_pg_job *j = thaw_pg_job_new(on_grant_row, c);

    /* one row always: no grants is an empty list */
    thaw_pg_job_add(j, "SELECT $1::text, coalesce((SELECT patterns FROM thaw_grants WHERE "
                    "name = $1), '[]')", 1, v, NULL, 0);
    thaw_pg_run(&c->pg, j);
}

/* ---- everything, after a (re)connect ---------------------------------- */

static void on_all(void *data, struct thaw_pg_job *job, const char *err)
{
    struct thaw_control *c = data;
    struct thaw_fleet *f = c->fleet;
    PGresult *ws = thaw_pg_result(job, 0), *gs = thaw_pg_result(job, 1);
    struct thaw_hosted *h;
    json_t *grants, *want;
    char **local, **p;
    int i;

    if (err || !ws || !gs)
        return; /* the connection broke: the next one reads again */
    want = json_object();
    for (i = 0; i < PQntuples(ws); i++) {
        json_object_set_new(want, PQgetvalue(ws, i, 0),
                            json_integer(atoi(PQgetvalue(ws, i, 1))));
        thaw__control_mark(c, PQgetvalue(ws, i, 0));
    }
    local = thaw_store_workers(f->state);
    for (p = local; p && *p; p++) {
        if (!json_object_get(want, *p) && !unpublished(f, *p))
            json_object_set_new(want, *p, json_integer(0));
        thaw__control_mark(c, *p);
    }
    thaw_store_free_list(local);
    for (h = f->all; h; h = h->next_all) {
        if (!json_object_get(want, h->name) && !unpublished(f, h->name))
            json_object_set_new(want, h->name, json_integer(0));
        thaw__control_mark(c, h->name);
    }
    if (!c->synced) {
        c->want = want;
        c->synced = 1;
    } else {
        json_decref(want);
    }
    grants = json_object();
    for (i = 0; i < PQntuples(gs); i++) {
        json_t *list = json_loads(PQgetvalue(gs, i, 1), 0, NULL);
        if (json_is_array(list))
            json_object_set_new(grants, PQgetvalue(gs, i, 0), list);
        else
            json_decref(list);
    }
    thaw_grants_replace(f, grants);
}

void thaw__control_sync_all(struct thaw_control *c)
{
    struct thaw_pg_job *j = thaw_pg_job_new(on_all, c);

    thaw_pg_job_add(j, "SELECT name, current FROM thaw_workers ORDER BY name", 0, NULL, NULL, 0);
    thaw_pg_job_add(j, "SELECT name, patterns FROM thaw_grants", 0, NULL, NULL, 0);
    thaw_pg_run(&c->pg, j);
}
