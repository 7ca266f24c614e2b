/* thaw serve's workers as they start: each worker of the state directory
 * at its current version when thaw serve starts, and again after its
 * template was lost; and what a deploy shares with them, a hosted
 * worker's thaw_worker (its callbacks) and its routes. A config load
 * holds the hosted worker (h->loads) so that a delete meanwhile does not
 * free it under the load (fleet.c). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "serve/do-scripts.h"
#include "serve/fleet-internal.h"
#include "serve/routes.h"
#include "serve/store.h"
#include "serve/tenant.h"
#include "serve/tenant-limits.h"
#include "util/log.h"

/* The config's routes into the router (routes.c decides which it may
 * hold); check_only: -1 with err on a bad pattern. */
int thaw__fleet_set_routes(struct thaw_fleet *f, struct thaw_hosted *h, const char *json,
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

static void on_lost(struct thaw_worker *w);

void thaw__fleet_start_worker(struct thaw_fleet *f, struct thaw_hosted *h, const char *dir,
                              struct thaw_config *cfg, const struct thaw_limits *lim)
{
    char data[PATH_MAX];

    thaw_store_data_dir(f->state, h->name, data, sizeof(data));
    h->started = 1;
    thaw_worker_init(&h->w, f->loop, f->zygote, f->preload, dir, data, cfg, lim, &f->policy,
                     thaw__fleet_on_built, h);
    h->w.keep_serving = 1;
    h->w.lazy_spares = 1;
    h->w.on_lost = on_lost;
    h->w.on_log = thaw__fleet_on_log;       /* fleet-tail.c */
    h->w.on_output = thaw__fleet_on_output;
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
        thaw__fleet_hosted_maybe_free(h);
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
                thaw_serve_worker_limits(f, cfg, &lim, msg, sizeof(msg)))) {
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
    if (thaw__fleet_set_routes(f, h, cfg->json, 0, msg, sizeof(msg)))
        thaw_log("worker %s: %s", h->name, msg);
    thaw_store_version_dir(f->state, h->name, h->version, dir, sizeof(dir));
    h->live = 1; /* requests wait for the first build */
    thaw__fleet_start_worker(f, h, dir, cfg, &lim);
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
        struct thaw_hosted *h = thaw__fleet_hosted_new(f, *p);
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
