/* thaw serve's workers with a cluster's control store (cluster/control.h):
 * a deploy, rollback or delete through this node is answered once the
 * store committed it (not committed: this node goes back to what it
 * served), and the store's word makes a worker here serve a version
 * without an API request (thaw_fleet_apply). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "cluster/control.h"
#include "serve/fleet-internal.h"
#include "serve/store.h"
#include "util/log.h"

/* Makes h serve version again without publishing it: the store's word,
 * or a version put back after its successor was not committed. */
static int apply_local(struct thaw_fleet *f, struct thaw_hosted *h, int version, int remote)
{
    struct thaw_op *op = thaw__fleet_op_new(f, h, version, NULL);
    char dir[PATH_MAX];

    if (!op)
        return -1;
    op->remote = remote;
    thaw_store_version_dir(f->state, h->name, version, dir, sizeof(dir));
    f->load_config(f->zygote, dir, thaw__fleet_op_loaded, op);
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
    thaw__fleet_op_finish(op, status, json_pack("{s:s}", "error", err));
    if (was_deploy)
        thaw_store_drop_version(f->state, h->name, v);
    if (h->version > 0 && h->live)
        apply_local(f, h, h->version, 0);
    else
        thaw__fleet_hosted_remove(f, h);
}

static void on_op_published(void *data, int status, const char *err)
{
    struct thaw_op *op = data;

    op->committing = 0;
    if (op->cancelled) { /* deleted meanwhile: h may be gone */
        thaw__fleet_op_free(op);
        return;
    }
    if (status)
        op_unpublished(op, status, err);
    else
        thaw__fleet_op_succeed(op);
}

void thaw__fleet_publish(struct thaw_op *op)
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
int thaw__fleet_published(struct thaw_fleet *f, struct thaw_hosted *h)
{
    char *meta = h->version > 0 ? thaw_store_read_meta(f->state, h->name, h->version) : NULL;
    json_t *j = meta ? json_loads(meta, 0, NULL) : NULL;
    int yes = json_string_value(json_object_get(j, "deploy_id")) != NULL;

    json_decref(j);
    free(meta);
    return yes;
}

int thaw_fleet_apply(struct thaw_fleet *f, const char *name, int version)
{
    struct thaw_hosted *h = thaw_fleet_find(f, name);

    if (h && thaw_fleet_busy(h))
        return 1;
    if (!h && !(h = thaw__fleet_hosted_new(f, name)))
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
