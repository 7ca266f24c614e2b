/* thaw serve's workers and the operations on them. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cli/cli.h"
#include "cluster/control.h"
#include "cluster/tail.h"
#include "serve/bundle.h"
#include "serve/do-scripts.h"
#include "serve/fleet.h"
#include "serve/routes.h"
#include "serve/tenant.h"
#include "serve/tenant-limits.h"
#include "serve/store.h"
#include "server/server.h"
#include "util/log.h"

/* A deploy or rollback in flight: from its config load to its build. */
struct thaw_op {
    struct thaw_fleet *f;
    struct thaw_hosted *h;
    struct thaw_api_req *req;  /* NULL once the client left */
    int version;
    int is_deploy;             /* a failed deploy drops its version */
    int building;              /* its config loaded, the build asked for */
    int cancelled;             /* its worker was deleted while its config loaded */
    int files;
    long long bytes;
    uint64_t start_ns;
    struct thaw_limits old_limits;
    /* with a control store (fleet.h): */
    int publish;               /* an API call: committed there before it is answered */
    int remote;                /* the store's word: nothing to publish */
    int committing;            /* built; its transaction not yet answered */
    void *bundle;              /* the deploy's bundle, kept for the commit */
    size_t bundle_len;
    char *meta;                /* the version's .json, as the store has it */
    int existed;               /* the worker was in the store when the deploy began */
    double build_ms, top_level_ms;
};

static void op_free(struct thaw_op *op)
{
    free(op->bundle);
    free(op->meta);
    free(op);
}

static unsigned bucket_of(const char *name)
{
    unsigned h = 2166136261u;

    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 16777619u;
    return h % THAW_FLEET_BUCKETS;
}

struct thaw_hosted *thaw_fleet_find(struct thaw_fleet *f, const char *name)
{
    struct thaw_hosted *h;

    for (h = f->buckets[bucket_of(name)]; h; h = h->next)
        if (strcmp(h->name, name) == 0)
            return h;
    return NULL;
}

static struct thaw_hosted *hosted_new(struct thaw_fleet *f, const char *name)
{
    struct thaw_hosted *h = calloc(1, sizeof(*h));
    unsigned b = bucket_of(name);

    if (!h)
        return NULL;
    snprintf(h->name, sizeof(h->name), "%s", name);
    h->fleet = f;
    h->next = f->buckets[b];
    f->buckets[b] = h;
    h->next_all = f->all;
    f->all = h;
    f->n++;
    return h;
}

static void graveyard_unlink(struct thaw_fleet *f, struct thaw_hosted *h)
{
    struct thaw_hosted **pp;

    for (pp = &f->graveyard; *pp; pp = &(*pp)->next_all)
        if (*pp == h) {
            *pp = h->next_all;
            break;
        }
}

/* The one place a hosted worker's memory goes: deleted, its worker closed
 * (pool: processes gone, pidfds and timers closed), no load pending. */
static void hosted_maybe_free(struct thaw_hosted *h)
{
    if (!h->removed || h->worker_closing || h->loads)
        return;
    graveyard_unlink(h->fleet, h);
    free(h);
}

static void on_worker_closed(struct thaw_worker *w)
{
    struct thaw_hosted *h = w->data;

    h->worker_closing = 0;
    hosted_maybe_free(h);
}

/* Out of the tables, into the graveyard; its worker is closed (requests
 * fail, processes killed) and its memory goes once that finished. */
static void hosted_remove(struct thaw_fleet *f, struct thaw_hosted *h)
{
    struct thaw_hosted **pp;

    if (h->removed)
        return;
    h->removed = 1;
    /* first, so that the cron timer's uv_close (below) completes before
     * the worker's handles do (libuv runs close callbacks newest first) */
    if (h->started) {
        h->worker_closing = 1;
        thaw_worker_close(&h->w, on_worker_closed);
    }
    if (h->cron_on) {
        thaw_cron_sched_stop(&h->cron);
        h->cron_on = 0;
    }
    while (h->tails) { /* their streams end with the worker */
        struct thaw_api_req *r = h->tails;
        h->tails = r->next_sub;
        f->n_tails--;
        thaw_cluster_tail_watch(h->name, -1);
        thaw_api_stream_end(r);
    }
    for (pp = &f->buckets[bucket_of(h->name)]; *pp; pp = &(*pp)->next)
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    for (pp = &f->all; *pp; pp = &(*pp)->next_all)
        if (*pp == h) {
            *pp = h->next_all;
            break;
        }
    thaw_router_remove(&f->router, h);
    h->live = 0;
    h->next_all = f->graveyard;
    f->graveyard = h;
    f->n--;
    hosted_maybe_free(h);
}

struct thaw_worker *thaw_fleet_route(struct thaw_server *s, const char *host,
                                     const char *target, size_t n)
{
    struct thaw_fleet *f = s->route_data;
    struct thaw_hosted *h = NULL;
    char hn[256], path[16], name[64];

    /* NAME.DOMAIN first: no route can take a worker's own host */
    thaw_router_split(host, target, n, hn, sizeof(hn), path, sizeof(path));
    if (thaw_router_host_name(hn, f->domain, name, sizeof(name)))
        h = thaw_fleet_find(f, name);
    if (!h || !h->live)
        h = thaw_router_match(&f->router, host, target, n);
    return h && h->live ? &h->w : NULL;
}

/* The config's routes into the router (routes.c decides which it may
 * hold); check_only: -1 with err on a bad pattern. */
static int set_routes(struct thaw_fleet *f, struct thaw_hosted *h, const char *json,
                      int check_only, char *err, size_t errlen)
{
    json_t *root = json_loads(json ? json : "{}", 0, NULL), *routes, *r;
    struct thaw_route tmp;
    size_t i;
    int rc = 0;

    if (!check_only) {
        /* what is not allowed now (grants, holders) is left out and logged */
        thaw_routes_apply(f, h, json);
        json_decref(root);
        return 0;
    }
    routes = root ? json_object_get(root, "routes") : NULL;
    for (i = 0; routes && i < json_array_size(routes) && !rc; i++) {
        const char *pat;
        r = json_array_get(routes, i);
        /* a pattern string, or a table { pattern = ..., zone_name = ... } */
        pat = json_is_string(r) ? json_string_value(r)
                                : json_string_value(json_object_get(r, "pattern"));
        if (!pat) {
            snprintf(err, errlen, "`routes` item %zu must be a pattern string like "
                     "\"example.com/*\" or a table with `pattern`", i + 1);
            rc = -1;
        } else if (!(rc = thaw_route_parse(pat, &tmp, err, errlen))) {
            thaw_route_free(&tmp);
        }
    }
    json_decref(root);
    return rc;
}

/* ---- operations ------------------------------------------------------- */

static void op_gone(struct thaw_api_req *r)
{
    struct thaw_op *op = r->pending;

    if (op)
        op->req = NULL; /* the deploy goes on; nobody hears how it ended */
}

static void op_finish(struct thaw_op *op, int status, json_t *answer)
{
    if (op->h && op->h->op == op)
        op->h->op = NULL;
    if (op->req) {
        op->req->pending = NULL;
        thaw_api_reply_json(op->req, status, answer);
    } else {
        json_decref(answer);
    }
    op_free(op);
}

static const char *op_kind(const struct thaw_op *op)
{
    return op->remote ? "switch (from the control store)" : op->is_deploy ? "deploy"
                                                                           : "rollback";
}

/* A deploy refused before any build: the worker is as it was. */
static void op_refuse(struct thaw_op *op, int status, const char *msg, const char *tb)
{
    struct thaw_fleet *f = op->f;
    struct thaw_hosted *h = op->h;
    json_t *j = json_pack("{s:s}", "error", msg);

    thaw_log("%s of %s version %d refused: %s", op_kind(op),
             h->name, op->version, msg);
    if (tb) {
        json_object_set_new(j, "traceback", json_string(tb));
        thaw_log_block(h->name, tb, strlen(tb));
    }
    if (op->is_deploy)
        thaw_store_drop_version(f->state, h->name, op->version);
    if (op->remote && f->control)
        thaw_control_apply_failed(f->control, h->name);
    op_finish(op, status == 0 ? 422 : status, j);
    if (!h->live) /* a first deploy that failed: no worker */
        hosted_remove(f, h);
}

static void on_built(struct thaw_worker *w, struct thaw_version *v);
static void on_lost(struct thaw_worker *w);
static void op_succeed(struct thaw_op *op);
static void publish(struct thaw_op *op);

static void start_worker(struct thaw_fleet *f, struct thaw_hosted *h, const char *dir,
                         struct thaw_config *cfg, const struct thaw_limits *lim)
{
    char data[PATH_MAX];

    thaw_store_data_dir(f->state, h->name, data, sizeof(data));
    h->started = 1;
    thaw_worker_init(&h->w, f->loop, f->zygote, f->preload, dir, data, cfg, lim, &f->policy,
                     on_built, h);
    h->w.keep_serving = 1;
    h->w.lazy_spares = 1;
    h->w.on_lost = on_lost;
    h->w.on_log = thaw__fleet_on_log;       /* fleet-tail.c */
    h->w.on_output = thaw__fleet_on_output;
}

/* The server's defaults (its command line), lowered by the worker's
 * config, never over the operator's ceilings (serve/tenant-limits.c). */
static int worker_limits(struct thaw_fleet *f, struct thaw_config *cfg,
                         struct thaw_limits *lim, char *err, size_t errlen)
{
    return thaw_serve_worker_limits(f, cfg, lim, err, errlen);
}

/* The deploy's worker is deleted: its client hears so now, and the op
 * leaves the worker (a build in flight is cancelled by the worker's close,
 * thaw_worker_close; a config still loading ends in op_loaded, which frees
 * the op without touching the worker, which may be gone by then). */
static void op_cancel(struct thaw_op *op)
{
    struct thaw_hosted *h = op->h;

    thaw_log("%s of %s version %d cancelled: the worker was deleted",
             op_kind(op), h->name, op->version);
    if (op->req) {
        op->req->pending = NULL;
        thaw_api_error(op->req, 409, "worker %s was deleted while version %d was being "
                       "built: the %s was cancelled", h->name, op->version,
                       op->is_deploy ? "deploy" : "rollback");
        op->req = NULL;
    }
    h->op = NULL;
    if (op->building && !op->committing)
        op_free(op);
    else /* its config load, or its commit, frees it */
        op->cancelled = 1;
}

/* thaw's own failure: the client is told no more than that (whose fault
 * it is), the log has the details. */
static void op_internal(struct thaw_op *op, const char *detail)
{
    thaw_log("worker %s: internal error during the %s of version %d: %s", op->h->name,
             op_kind(op), op->version, detail);
    op_refuse(op, 500, op->is_deploy ? "internal error: the deploy was refused and the "
              "previous version keeps serving; thaw's log has the details"
              : "internal error: the rollback was refused; thaw's log has the details", NULL);
}

static void op_loaded(void *data, int rc, struct thaw_config *cfg, const char *err)
{
    struct thaw_op *op = data;
    struct thaw_hosted *h = op->h;
    struct thaw_limits lim;
    char dir[PATH_MAX], msg[1024];
    int status;

    if (op->cancelled) {
        if (!rc)
            thaw_config_free(cfg);
        op_free(op);
        return;
    }
    if (rc == THAW_LOAD_E_INTERNAL) {
        op_internal(op, err);
        return;
    }
    if (rc) {
        op_refuse(op, 400, err, NULL);
        return;
    }
    if (strcmp(cfg->name, h->name) != 0) {
        snprintf(msg, sizeof(msg), "%s: `name` is \"%s\" but the bundle was uploaded as "
                 "worker \"%s\"", cfg->file, cfg->name, h->name);
        thaw_config_free(cfg);
        op_refuse(op, 400, msg, NULL);
        return;
    }
    if ((status = thaw_tenant_check(op->f, h, cfg, msg, sizeof(msg)))) {
        thaw_config_free(cfg);
        op_refuse(op, status, msg, NULL);
        return;
    }
    if (set_routes(op->f, h, cfg->json, 1, msg, sizeof(msg)) ||
        worker_limits(op->f, cfg, &lim, msg, sizeof(msg))) {
        thaw_config_free(cfg);
        op_refuse(op, 400, msg, NULL);
        return;
    }
    thaw_store_version_dir(op->f->state, h->name, op->version, dir, sizeof(dir));
    op->building = 1;
    if (!h->started) {
        start_worker(op->f, h, dir, cfg, &lim);
        return;
    }
    if (h->w.building) { /* its lost template is being rebuilt meanwhile */
        thaw_config_free(cfg);
        op_refuse(op, 409, "the worker is being rebuilt; retry shortly", NULL);
        return;
    }
    op->old_limits = h->w.limits;
    h->w.limits = lim;
    thaw_worker_rebuild(&h->w, cfg);
}

/* The version's .json; in a cluster with a deploy id, which tells one
 * deploy of a number from another (control-sync.c). malloc'd. */
static char *meta_text(struct thaw_op *op)
{
    char when[40], *text, id[40];
    unsigned char raw[8];
    time_t now = time(NULL);
    struct tm tm;
    size_t i;
    json_t *j;

    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    j = json_pack("{s:i,s:s,s:I,s:i,s:f,s:f}", "version", op->version, "deployed_at", when,
                  "bundle_bytes", (json_int_t)op->bytes, "files", op->files, "build_ms",
                  op->build_ms, "top_level_ms", op->top_level_ms);
    if (op->publish) {
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
            memset(raw, 0, sizeof(raw));
        for (i = 0; i < sizeof(raw); i++)
            snprintf(id + 2 * i, 3, "%02x", raw[i]);
        json_object_set_new(j, "deploy_id", json_string(id));
        json_object_set_new(j, "node", json_string(op->f->control->node));
    }
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return text ? text : strdup("{}");
}

/* The scheduler follows the serving version: a deploy, a rollback and
 * the first build at start arm its crons (none: the timer stops); a
 * rebuild of the same version (a lost template) leaves them be. */
static void follow_crons(struct thaw_hosted *h, struct thaw_version *v)
{
    if (v->state != VER_READY || h->cron_version == h->version)
        return;
    if (!h->cron_on) {
        thaw_cron_sched_setup(&h->cron, h->fleet->loop, &h->w, h->fleet->cron_offset_ms);
        h->cron_on = 1;
    }
    h->cron_version = h->version;
    thaw_cron_sched_config(&h->cron, h->w.cfg.json ? h->w.cfg.json : "{}", h->w.cfg.file);
}

/* A build that failed, answered by whose fault it is (pool.h). */
static void refuse_failed(struct thaw_op *op, struct thaw_version *v)
{
    const char *tail = op->is_deploy ? "the deploy was refused and the previous version "
                                       "keeps serving" : "the rollback was refused";
    char msg[1024];
    const char *nl;

    switch (v->fault) {
    case THAW_FAULT_CONFIG: /* no code ran; the message names file and key */
        op_refuse(op, 400, v->error, NULL);
        return;
    case THAW_FAULT_INTERNAL: /* set_failed logged the details */
        op_internal(op, v->error);
        return;
    case THAW_FAULT_TIMEOUT: /* first line: where it was; then its stack */
        nl = strchr(v->error, '\n');
        snprintf(msg, sizeof(msg), "%.*s: %s", nl ? (int)(nl - v->error) : (int)strlen(v->error),
                 v->error, tail);
        op_refuse(op, 422, msg, nl ? nl + 1 : "");
        return;
    case THAW_FAULT_WORKER:
        break;
    }
    snprintf(msg, sizeof(msg), "%s: %s", op->is_deploy ? "the worker's top level failed"
             : "the version failed to build", tail);
    op_refuse(op, 422, msg, v->error);
}

static void on_built(struct thaw_worker *w, struct thaw_version *v)
{
    struct thaw_hosted *h = w->data;
    struct thaw_op *op = h->op;

    if (op && v->woken)
        op = NULL; /* the serving version built again (it was cold) */
    h->loaded = 1;
    if (h->removed)
        return; /* its build was cancelled by the delete (thaw_worker_close) */
    if (!op) {
        /* a start or a rebuild after a lost template */
        if (v->state == VER_FAILED) {
            thaw_log("worker %s version %d failed to build:", h->name, h->version);
            thaw_log_block(h->name, v->error, strlen(v->error));
        } else {
            thaw_log("worker %s version %d ready: template built in %.1f ms", h->name,
                     h->version, v->build_ms);
            follow_crons(h, v);
        }
        return;
    }
    if (v->state != VER_READY) {
        if (h->live)
            h->w.limits = op->old_limits;
        refuse_failed(op, v);
        return;
    }
    op->build_ms = v->build_ms;
    op->top_level_ms = v->top_level_ms;
    if (op->is_deploy)
        op->meta = meta_text(op);
    if (op->publish) {
        publish(op);
        return;
    }
    op_succeed(op);
}

/* Built (and committed in a cluster): it serves; the client is told. */
static void op_succeed(struct thaw_op *op)
{
    struct thaw_hosted *h = op->h;
    struct thaw_fleet *f = op->f;
    struct thaw_worker *w = &h->w;
    char err[1024];

    if (op->is_deploy && op->meta)
        thaw_store_write_meta(f->state, h->name, op->version, op->meta);
    if (thaw_store_set_current(f->state, h->name, op->version)) {
        thaw_log("worker %s: cannot record version %d as current in %s", h->name,
                 op->version, f->state);
    }
    h->version = op->version;
    if (set_routes(f, h, w->cfg.json, 0, err, sizeof(err)))
        thaw_log("worker %s: %s", h->name, err);
    h->live = 1;
    if (w->current)
        follow_crons(h, w->current);
    thaw_log("worker %s: version %d %s in %.1f ms (template %.1f ms)", h->name, op->version,
             op->remote ? "from the control store serves" : op->is_deploy ? "deployed"
             : "rolled back to", (double)(uv_hrtime() - op->start_ns) / 1e6, op->build_ms);
    op_finish(op, 200, json_pack("{s:s,s:i,s:f,s:f,s:f,s:I,s:i}", "name", h->name, "version",
                                 op->version, "build_ms", op->build_ms, "top_level_ms",
                                 op->top_level_ms, "total_ms",
                                 (double)(uv_hrtime() - op->start_ns) / 1e6, "bundle_bytes",
                                 (json_int_t)op->bytes, "files", op->files));
}

/* ---- with a control store (cluster/control.h) ------------------------ */

static struct thaw_op *op_new(struct thaw_fleet *f, struct thaw_hosted *h, int version,
                              struct thaw_api_req *r);

/* Makes h serve version again without publishing it: the store's word,
 * or a version put back after its successor was not committed. */
static int apply_local(struct thaw_fleet *f, struct thaw_hosted *h, int version, int remote)
{
    struct thaw_op *op = op_new(f, h, version, NULL);
    char dir[PATH_MAX];

    if (!op)
        return -1;
    op->remote = remote;
    thaw_store_version_dir(f->state, h->name, version, dir, sizeof(dir));
    f->load_config(f->zygote, dir, op_loaded, op);
    return 0;
}

/* The store did not take it: the client hears why, and this node goes
 * back to what it served (the store's state; its next NOTIFY or reconnect
 * puts right whatever differs). */
static void op_unpublished(struct thaw_op *op, int status, const char *err)
{
    struct thaw_hosted *h = op->h;
    struct thaw_fleet *f = op->f;
    int was_deploy = op->is_deploy, v = op->version;

    thaw_log("worker %s: %s", h->name, err);
    op_finish(op, status, json_pack("{s:s}", "error", err));
    if (was_deploy)
        thaw_store_drop_version(f->state, h->name, v);
    if (h->version > 0 && h->live)
        apply_local(f, h, h->version, 0);
    else
        hosted_remove(f, h);
}

static void on_op_published(void *data, int status, const char *err)
{
    struct thaw_op *op = data;

    op->committing = 0;
    if (op->cancelled) { /* deleted meanwhile: h may be gone */
        op_free(op);
        return;
    }
    if (status)
        op_unpublished(op, status, err);
    else
        op_succeed(op);
}

static void publish(struct thaw_op *op)
{
    struct thaw_control *c = op->f->control;

    op->committing = 1;
    if (op->is_deploy)
        thaw_control_publish_deploy(c, op->h->name, op->version, op->bundle, op->bundle_len,
                                    op->meta, op->existed, on_op_published, op);
    else
        thaw_control_publish_rollback(c, op->h->name, op->version, on_op_published, op);
}

/* h serves a version the store has (its .json has a deploy id); a worker
 * from before the node joined the cluster does not (control-sync.c). */
static int published(struct thaw_fleet *f, struct thaw_hosted *h)
{
    char *meta = h->version > 0 ? thaw_store_read_meta(f->state, h->name, h->version) : NULL;
    json_t *j = meta ? json_loads(meta, 0, NULL) : NULL;
    int yes = json_string_value(json_object_get(j, "deploy_id")) != NULL;

    json_decref(j);
    free(meta);
    return yes;
}

int thaw_fleet_busy(struct thaw_hosted *h)
{
    return h->op || h->loads || h->removed || (h->started && h->w.building);
}

int thaw_fleet_apply(struct thaw_fleet *f, const char *name, int version)
{
    struct thaw_hosted *h = thaw_fleet_find(f, name);

    if (h && thaw_fleet_busy(h))
        return 1;
    if (!h && !(h = hosted_new(f, name)))
        return -1;
    thaw_log("worker %s: switching to version %d (control store)", name, version);
    return apply_local(f, h, version, 1);
}

struct delete_call {
    struct thaw_fleet *f;
    char name[64];
    struct thaw_api_req *req;
};

static void delete_gone(struct thaw_api_req *r)
{
    struct delete_call *d = r->pending;

    d->req = NULL;
}

static void on_delete_published(void *data, int status, const char *err)
{
    struct delete_call *d = data;
    struct thaw_hosted *h;

    if (!status && (h = thaw_fleet_find(d->f, d->name)))
        thaw_fleet_delete(d->f, h);
    if (d->req) {
        d->req->pending = NULL;
        if (status)
            thaw_api_error(d->req, status, "%s", err);
        else
            thaw_api_reply_json(d->req, 200, json_pack("{s:s}", "deleted", d->name));
    }
    free(d);
}

void thaw_fleet_delete_api(struct thaw_fleet *f, struct thaw_hosted *h, struct thaw_api_req *r)
{
    struct delete_call *d;
    char why[700];

    if (!f->control) {
        char name[64];
        snprintf(name, sizeof(name), "%s", h->name);
        thaw_fleet_delete(f, h); /* cancels a deploy in flight */
        thaw_api_reply_json(r, 200, json_pack("{s:s}", "deleted", name));
        return;
    }
    if (h->op && !h->op->remote) {
        /* its commit could land after the delete's and bring it back: the
         * delete waits for it (one node alone cancels it instead) */
        thaw_api_error(r, 409, "worker %s is being deployed or rolled back through this "
                       "node; delete it when that finished", h->name);
        return;
    }
    if (!thaw_control_accepting(f->control, why, sizeof(why))) {
        thaw_api_error(r, 503, "%s", why);
        return;
    }
    if (!(d = calloc(1, sizeof(*d)))) {
        thaw_api_error(r, 500, "out of memory");
        return;
    }
    d->f = f;
    snprintf(d->name, sizeof(d->name), "%s", h->name);
    d->req = r;
    r->pending = d;
    r->on_gone = delete_gone;
    thaw_control_publish_delete(f->control, d->name, on_delete_published, d);
}

static void start_loaded(struct thaw_hosted *h, int rc, struct thaw_config *cfg,
                         const char *err);

static void restart_loaded(void *data, int rc, struct thaw_config *cfg, const char *err)
{
    struct thaw_hosted *h = data;
    struct thaw_fleet *f = h->fleet;
    int at_start = !h->started;

    h->loads--;
    if (h->removed) { /* deleted while its config loaded */
        if (!rc)
            thaw_config_free(cfg);
        hosted_maybe_free(h);
    } else {
        start_loaded(h, rc, cfg, err);
    }
    if (at_start && --f->configs_pending == 0 && f->on_started)
        f->on_started(f);
}

static void start_loaded(struct thaw_hosted *h, int rc, struct thaw_config *cfg,
                         const char *err)
{
    struct thaw_fleet *f = h->fleet;
    struct thaw_limits lim;
    char dir[PATH_MAX], msg[1024];

    /* the operator's policy may have changed since it was deployed */
    if (!rc && (thaw_tenant_check(f, h, cfg, msg, sizeof(msg)) ||
                worker_limits(f, cfg, &lim, msg, sizeof(msg)))) {
        thaw_config_free(cfg);
        rc = -1;
        err = msg;
    }
    if (rc) {
        thaw_log("worker %s version %d: %s", h->name, h->version, err);
        h->loaded = 1;
        return;
    }
    if (h->started) { /* its template was lost: build it again */
        thaw_worker_rebuild(&h->w, cfg);
        return;
    }
    if (set_routes(f, h, cfg->json, 0, msg, sizeof(msg)))
        thaw_log("worker %s: %s", h->name, msg);
    thaw_store_version_dir(f->state, h->name, h->version, dir, sizeof(dir));
    h->live = 1; /* requests wait for the first build */
    start_worker(f, h, dir, cfg, &lim);
}

static void on_lost(struct thaw_worker *w)
{
    struct thaw_hosted *h = w->data;
    struct thaw_fleet *f = h->fleet;
    char dir[PATH_MAX];

    if (h->op || !h->live)
        return; /* a build is on its way anyway */
    thaw_store_version_dir(f->state, h->name, h->version, dir, sizeof(dir));
    h->loads++;
    f->load_config(f->zygote, dir, restart_loaded, h);
}

void thaw_fleet_start(struct thaw_fleet *f)
{
    char **names = thaw_store_workers(f->state), **p, err[1024];

    if (thaw_grants_open(f, err, sizeof(err)) || thaw_do_scripts_open(f, err, sizeof(err))) {
        fprintf(stderr, "thaw: %s\n", err);
        exit(2);
    }
    f->started = 1;
    for (p = names; p && *p; p++)
        f->configs_pending++;
    f->configs_pending++; /* held until every load is asked for */
    for (p = names; p && *p; p++) {
        struct thaw_hosted *h = hosted_new(f, *p);
        char dir[PATH_MAX];
        if (!h) {
            f->configs_pending--;
            continue;
        }
        h->version = thaw_store_current(f->state, *p);
        thaw_store_version_dir(f->state, *p, h->version, dir, sizeof(dir));
        h->loads++;
        f->load_config(f->zygote, dir, restart_loaded, h);
    }
    thaw_log("%d worker(s) in %s", f->n, f->state);
    thaw_store_free_list(names);
    if (--f->configs_pending == 0 && f->on_started)
        f->on_started(f);
}

/* A deploy refused before its op began, for thaw's own reason. */
static void api_internal(struct thaw_api_req *r, const char *name, const char *detail)
{
    thaw_log("worker %s: internal error during a deploy: %s", name, detail);
    thaw_api_error(r, 500, "internal error: the deploy was refused; thaw's log has the "
                   "details");
}

static struct thaw_op *op_new(struct thaw_fleet *f, struct thaw_hosted *h, int version,
                              struct thaw_api_req *r)
{
    struct thaw_op *op = calloc(1, sizeof(*op));

    if (!op)
        return NULL;
    op->f = f;
    op->h = h;
    op->version = version;
    op->req = r;
    op->start_ns = uv_hrtime();
    if (r) {
        r->pending = op;
        r->on_gone = op_gone;
    }
    h->op = op;
    return op;
}

void thaw_fleet_deploy(struct thaw_fleet *f, const char *name, const void *bundle,
                       size_t len, struct thaw_api_req *r)
{
    struct thaw_hosted *h = thaw_fleet_find(f, name);
    struct thaw_op *op;
    char dir[PATH_MAX], err[1024];
    int v, rc, files = 0;
    long long bytes = 0;

    if (thaw_bundle_walk(bundle, len, NULL, NULL, err, sizeof(err))) {
        thaw_api_error(r, 400, "%s", err);
        return;
    }
    if (h && (h->op || (h->started && h->w.building))) {
        thaw_api_error(r, 409, "worker %s is being built, deployed or rolled back "
                       "already; retry when that finished", name);
        return;
    }
    if (f->control && !thaw_control_accepting(f->control, err, sizeof(err))) {
        thaw_api_error(r, 503, "%s", err);
        return;
    }
    if ((v = thaw_store_new_version(f->state, name, dir, sizeof(dir), err, sizeof(err))) < 0) {
        api_internal(r, name, err);
        return;
    }
    if ((rc = thaw_bundle_unpack(bundle, len, dir, &files, &bytes, err, sizeof(err)))) {
        thaw_store_drop_version(f->state, name, v);
        if (rc == THAW_BUNDLE_E_INTERNAL)
            api_internal(r, name, err);
        else
            thaw_api_error(r, 400, "%s", err);
        return;
    }
    if (!h && !(h = hosted_new(f, name))) {
        thaw_store_drop_version(f->state, name, v);
        thaw_api_error(r, 500, "out of memory");
        return;
    }
    if (!(op = op_new(f, h, v, r))) {
        thaw_api_error(r, 500, "out of memory");
        return;
    }
    op->is_deploy = 1;
    op->files = files;
    op->bytes = bytes;
    if (f->control) { /* the store gets the bundle itself: the request's goes */
        op->publish = 1;
        op->existed = published(f, h);
        if (!(op->bundle = malloc(len ? len : 1))) {
            op_refuse(op, 500, "out of memory", NULL);
            return;
        }
        memcpy(op->bundle, bundle, len);
        op->bundle_len = len;
    }
    thaw_log("deploying %s version %d: %d files, %lld bytes", name, v, files, bytes);
    f->load_config(f->zygote, dir, op_loaded, op);
}

void thaw_fleet_rollback(struct thaw_fleet *f, struct thaw_hosted *h, int version,
                         struct thaw_api_req *r)
{
    int n, *list = thaw_store_versions(f->state, h->name, &n), i, found = 0;
    char dir[PATH_MAX];

    if (h->op || (h->started && h->w.building)) {
        free(list);
        thaw_api_error(r, 409, "worker %s is being deployed or rolled back already", h->name);
        return;
    }
    if (f->control && !thaw_control_accepting(f->control, dir, sizeof(dir))) {
        free(list);
        thaw_api_error(r, 503, "%s", dir);
        return;
    }
    if (version <= 0) { /* the one before the serving version */
        for (i = 0; i < n; i++)
            if (list[i] < h->version)
                version = list[i];
    }
    for (i = 0; i < n; i++)
        found |= list[i] == version;
    free(list);
    if (version <= 0 || !found) {
        thaw_api_error(r, 404, version <= 0 ? "worker %s has no version before %d to roll "
                       "back to" : "worker %s has no deployed version %d", h->name,
                       version <= 0 ? h->version : version);
        return;
    }
    if (!op_new(f, h, version, r)) {
        thaw_api_error(r, 500, "out of memory");
        return;
    }
    h->op->publish = f->control != NULL;
    thaw_store_version_dir(f->state, h->name, version, dir, sizeof(dir));
    thaw_log("rolling %s back to version %d", h->name, version);
    f->load_config(f->zygote, dir, op_loaded, h->op);
}

void thaw_fleet_delete(struct thaw_fleet *f, struct thaw_hosted *h)
{
    /* a deploy or rollback in flight is cancelled; its build is stopped
     * by the worker's close (hosted_remove): a top level that never ends
     * must not keep the worker */
    if (h->op)
        op_cancel(h->op);
    thaw_store_delete(f->state, h->name);
    thaw_log("worker %s deleted", h->name);
    hosted_remove(f, h); /* h may be freed here */
}

int thaw_fleet_alive(struct thaw_fleet *f)
{
    struct thaw_hosted *lists[2] = {f->all, f->graveyard}, *h;
    int n = 0, i;

    for (i = 0; i < 2; i++)
        for (h = lists[i]; h; h = h->next_all)
            if (h->started)
                n += thaw_worker_alive(&h->w);
    return n;
}

void thaw_fleet_signal(struct thaw_fleet *f, int sig)
{
    struct thaw_hosted *lists[2] = {f->all, f->graveyard}, *h;
    int i;

    for (i = 0; i < 2; i++)
        for (h = lists[i]; h; h = h->next_all)
            if (h->started)
                thaw_worker_terminate(&h->w, sig);
}

int thaw_fleet_pending(struct thaw_fleet *f)
{
    struct thaw_hosted *h;
    int n = 0;

    for (h = f->all; h; h = h->next_all)
        n += !h->loaded && h->version > 0;
    return n;
}
