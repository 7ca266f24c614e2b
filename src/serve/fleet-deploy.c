/* thaw serve's admin API calls on its workers: deploy (a bundle unpacked
 * as a new version), rollback and delete. Each checks what it can before
 * an operation begins (fleet-op.c runs it); a delete cancels one in
 * flight. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/control.h"
#include "serve/bundle.h"
#include "serve/fleet-internal.h"
#include "serve/store.h"
#include "util/log.h"

/* A deploy refused before its op began, for thaw's own reason. */
static void api_internal(struct thaw_api_req *r, const char *name, const char *detail)
{
    thaw_log("worker %s: internal error during a deploy: %s", name, detail);
    thaw_api_error(r, 500, "internal error: the deploy was refused; thaw's log has the "
                   "details");
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
    if (!h && !(h = thaw__fleet_hosted_new(f, name))) {
        thaw_store_drop_version(f->state, name, v);
        thaw_api_error(r, 500, "out of memory");
        return;
    }
    if (!(op = thaw__fleet_op_new(f, h, v, r))) {
        thaw_api_error(r, 500, "out of memory");
        return;
    }
    op->is_deploy = 1;
    op->files = files;
    op->bytes = bytes;
    if (f->control) { /* the store gets the bundle itself: the request's goes */
        op->publish = 1;
        op->existed = thaw__fleet_published(f, h);
        if (!(op->bundle = malloc(len ? len : 1))) {
            thaw__fleet_op_refuse(op, 500, "out of memory", NULL);
            return;
        }
        memcpy(op->bundle, bundle, len);
        op->bundle_len = len;
    }
    thaw_log("deploying %s version %d: %d files, %lld bytes", name, v, files, bytes);
    f->load_config(f->zygote, dir, thaw__fleet_op_loaded, op);
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
    if (!thaw__fleet_op_new(f, h, version, r)) {
        thaw_api_error(r, 500, "out of memory");
        return;
    }
    h->op->publish = f->control != NULL;
    thaw_store_version_dir(f->state, h->name, version, dir, sizeof(dir));
    thaw_log("rolling %s back to version %d", h->name, version);
    f->load_config(f->zygote, dir, thaw__fleet_op_loaded, h->op);
}

void thaw_fleet_delete(struct thaw_fleet *f, struct thaw_hosted *h)
{
    /* a deploy or rollback in flight is cancelled; its build is stopped
     * by the worker's close (thaw__fleet_hosted_remove): a top level that
     * never ends must not keep the worker */
    if (h->op)
        thaw__fleet_op_cancel(h->op);
    thaw_store_delete(f->state, h->name);
    thaw_log("worker %s deleted", h->name);
    thaw__fleet_hosted_remove(f, h); /* h may be freed here */
}
