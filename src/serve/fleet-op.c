/* thaw serve's operations: a deploy, a rollback or a control store's
 * switch, each a struct thaw_op from its config load through its build
 * (and, in a cluster, its commit: fleet-control.c) to its answer. A
 * version serves only once it built; a failed one is refused by whose
 * fault it is (config 400, the worker's code 422, thaw's own 500) and the
 * previous version keeps serving. Also every hosted worker's on_built. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cluster/control.h"
#include "serve/fleet-internal.h"
#include "serve/store.h"
#include "serve/tenant.h"
#include "serve/tenant-limits.h"
#include "util/log.h"

void thaw__fleet_op_free(struct thaw_op *op)
{
    free(op->bundle);
    free(op->meta);
    free(op);
}

static void op_gone(struct thaw_api_req *r)
{
    struct thaw_op *op = r->pending;

    if (op)
        op->req = NULL; /* the deploy goes on; nobody hears how it ended */
}

struct thaw_op *thaw__fleet_op_new(struct thaw_fleet *f, struct thaw_hosted *h, int version,
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

void thaw__fleet_op_finish(struct thaw_op *op, int status, json_t *answer)
{
    if (op->h && op->h->op == op)
        op->h->op = NULL;
    if (op->req) {
        op->req->pending = NULL;
        thaw_api_reply_json(op->req, status, answer);
    } else {
        json_decref(answer);
    }
    thaw__fleet_op_free(op);
}

static const char *op_kind(const struct thaw_op *op)
{
    return op->remote ? "switch (from the control store)" : op->is_deploy ? "deploy"
                                                                           : "rollback";
}

/* A deploy refused before any build: the worker is as it was. */
void thaw__fleet_op_refuse(struct thaw_op *op, int status, const char *msg, const char *tb)
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
    thaw__fleet_op_finish(op, status == 0 ? 422 : status, j);
    if (!h->live) /* a first deploy that failed: no worker */
        thaw__fleet_hosted_remove(f, h);
}

/* The deploy's worker is deleted: its client hears so now, and the op
 * leaves the worker (a build in flight is cancelled by the worker's close,
 * thaw_worker_close; a config still loading ends in thaw__fleet_op_loaded,
 * which frees the op without touching the worker, which may be gone by
 * then). */
void thaw__fleet_op_cancel(struct thaw_op *op)
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
        thaw__fleet_op_free(op);
    else /* its config load, or its commit, frees it */
        op->cancelled = 1;
}

/* thaw's own failure: the client is told no more than that (whose fault
 * it is), the log has the details. */
static void op_internal(struct thaw_op *op, const char *detail)
{
    thaw_log("worker %s: internal error during the %s of version %d: %s", op->h->name,
             op_kind(op), op->version, detail);
    thaw__fleet_op_refuse(op, 500, op->is_deploy
                          ? "internal error: the deploy was refused and the previous version "
                            "keeps serving; thaw's log has the details"
                          : "internal error: the rollback was refused; thaw's log has the "
                            "details", NULL);
}

void thaw__fleet_op_loaded(void *data, int rc, struct thaw_config *cfg, const char *err)
{
    struct thaw_op *op = data;
    struct thaw_hosted *h = op->h;
    struct thaw_limits lim;
    char dir[PATH_MAX], msg[1024];
    int status;

    if (op->cancelled) {
        if (!rc)
            thaw_config_free(cfg);
        thaw__fleet_op_free(op);
        return;
    }
    if (rc == THAW_LOAD_E_INTERNAL) {
        op_internal(op, err);
        return;
    }
    if (rc) {
        thaw__fleet_op_refuse(op, 400, err, NULL);
        return;
    }
    if (strcmp(cfg->name, h->name) != 0) {
        snprintf(msg, sizeof(msg), "%s: `name` is \"%s\" but the bundle was uploaded as "
                 "worker \"%s\"", cfg->file, cfg->name, h->name);
        thaw_config_free(cfg);
        thaw__fleet_op_refuse(op, 400, msg, NULL);
        return;
    }
    if ((status = thaw_tenant_check(op->f, h, cfg, msg, sizeof(msg)))) {
        thaw_config_free(cfg);
        thaw__fleet_op_refuse(op, status, msg, NULL);
        return;
    }
    if (thaw__fleet_set_routes(op->f, h, cfg->json, 1, msg, sizeof(msg)) ||
        thaw_serve_worker_limits(op->f, cfg, &lim, msg, sizeof(msg))) {
        thaw_config_free(cfg);
        thaw__fleet_op_refuse(op, 400, msg, NULL);
        return;
    }
    thaw_store_version_dir(op->f->state, h->name, op->version, dir, sizeof(dir));
    op->building = 1;
    if (!h->started) {
        thaw__fleet_start_worker(op->f, h, dir, cfg, &lim);
        return;
    }
    if (h->w.building) { /* its lost template is being rebuilt meanwhile */
        thaw_config_free(cfg);
        thaw__fleet_op_refuse(op, 409, "the worker is being rebuilt; retry shortly", NULL);
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
        thaw__fleet_op_refuse(op, 400, v->error, NULL);
        return;
    case THAW_FAULT_INTERNAL: /* set_failed logged the details */
        op_internal(op, v->error);
        return;
    case THAW_FAULT_TIMEOUT: /* first line: where it was; then its stack */
        nl = strchr(v->error, '\n');
        snprintf(msg, sizeof(msg), "%.*s: %s", nl ? (int)(nl - v->error) : (int)strlen(v->error),
                 v->error, tail);
        thaw__fleet_op_refuse(op, 422, msg, nl ? nl + 1 : "");
        return;
    case THAW_FAULT_WORKER:
        break;
    }
    snprintf(msg, sizeof(msg), "%s: %s", op->is_deploy ? "the worker's top level failed"
             : "the version failed to build", tail);
    thaw__fleet_op_refuse(op, 422, msg, v->error);
}

void thaw__fleet_on_built(struct thaw_worker *w, struct thaw_version *v)
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
        thaw__fleet_publish(op);
        return;
    }
    thaw__fleet_op_succeed(op);
}

/* Built (and committed in a cluster): it serves; the client is told. */
void thaw__fleet_op_succeed(struct thaw_op *op)
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
    if (thaw__fleet_set_routes(f, h, w->cfg.json, 0, err, sizeof(err)))
        thaw_log("worker %s: %s", h->name, err);
    h->live = 1;
    if (w->current)
        follow_crons(h, w->current);
    thaw_log("worker %s: version %d %s in %.1f ms (template %.1f ms)", h->name, op->version,
             op->remote ? "from the control store serves" : op->is_deploy ? "deployed"
             : "rolled back to", (double)(uv_hrtime() - op->start_ns) / 1e6, op->build_ms);
    thaw__fleet_op_finish(op, 200, json_pack("{s:s,s:i,s:f,s:f,s:f,s:I,s:i}", "name", h->name,
                                             "version", op->version, "build_ms", op->build_ms,
                                             "top_level_ms", op->top_level_ms, "total_ms",
                                             (double)(uv_hrtime() - op->start_ns) / 1e6,
                                             "bundle_bytes", (json_int_t)op->bytes, "files",
                                             op->files));
}
