/* The rules of who may hold a route under thaw serve (routes.h). */
#include <stdio.h>
#include <string.h>

#include "serve/fleet.h"
#include "serve/routes.h"
#include "serve/tenant.h"
#include "util/log.h"

/* A pattern built from a host, for comparisons: prefix "*" gives the
 * host and its subdomains, "*." its subdomains only; every path. 0 or -1. */
static int host_route(struct thaw_route *out, const char *prefix, const char *host)
{
    char pat[512], err[256];

    snprintf(pat, sizeof(pat), "%s%s/*", prefix, host);
    return thaw_route_parse(pat, out, err, sizeof(err));
}

/* The worker whose NAME.DOMAIN (or a subdomain of it) r would match,
 * other than h: the first by name, so the answer does not depend on the
 * order workers were deployed in. NULL when none is deployed. */
static struct thaw_hosted *name_taken(struct thaw_fleet *f, struct thaw_hosted *h,
                                      const struct thaw_route *r)
{
    struct thaw_hosted *o, *best = NULL;
    struct thaw_route own;
    char host[256];

    for (o = f->all; o; o = o->next_all) {
        if (o == h || (best && strcmp(o->name, best->name) >= 0))
            continue;
        snprintf(host, sizeof(host), "%s.%s", o->name, f->domain);
        if (host_route(&own, "*", host))
            continue;
        if (thaw_route_overlaps(r, &own))
            best = o;
        thaw_route_free(&own);
    }
    return best;
}

/* Under DOMAIN, every host is some worker's NAME.DOMAIN or below it. */
static int reserved(struct thaw_fleet *f, struct thaw_hosted *h, const struct thaw_route *r,
                    char *err, size_t errlen)
{
    struct thaw_route dom;
    struct thaw_hosted *o;
    int hit;

    if (host_route(&dom, "*.", f->domain))
        return 0;
    hit = thaw_route_overlaps(r, &dom);
    thaw_route_free(&dom);
    if (!hit)
        return 0;
    if ((o = name_taken(f, h, r))) {
        snprintf(err, errlen, "route \"%s\" would take %s.%s, the host of worker %s: a "
                 "worker's NAME.%s is its own", r->pattern, o->name, f->domain, o->name,
                 f->domain);
        return 409;
    }
    snprintf(err, errlen, "route \"%s\" matches hosts under .%s, which are reserved for the "
             "workers of those names (each answers at NAME.%s): use a host outside %s",
             r->pattern, f->domain, f->domain, f->domain);
    return 403;
}

static int granted(struct thaw_fleet *f, struct thaw_hosted *h, const struct thaw_route *r,
                   char *err, size_t errlen)
{
    json_t *grants = thaw_grants_of(f, h->name), *g;
    char list[512] = "";
    size_t i, k = 0;
    int ok = 0;

    json_array_foreach(grants, i, g) {
        struct thaw_route gr;
        char e[256];
        if (thaw_route_parse(json_string_value(g), &gr, e, sizeof(e)))
            continue;
        ok = thaw_route_within(r, &gr);
        thaw_route_free(&gr);
        if (ok)
            break;
        if (k < sizeof(list))
            k += (size_t)snprintf(list + k, sizeof(list) - k, "%s\"%s\"", k ? ", " : "",
                                  json_string_value(g));
    }
    json_decref(grants);
    if (ok)
        return 0;
    snprintf(err, errlen, "route \"%s\" is not granted to worker %s (its grants: %s): the "
             "operator grants it with `thaw routes grant %s \"%s\" --to ADMIN` (PUT "
             "/v1/workers/%s/grants) or in [routes] of thaw serve's --config", r->pattern,
             h->name, k ? list : "none", h->name, r->pattern, h->name);
    return 403;
}

static int held(struct thaw_fleet *f, struct thaw_hosted *h, const struct thaw_route *r,
                char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < f->router.n; i++) {
        const struct thaw_route *o = &f->router.routes[i];
        struct thaw_hosted *holder = o->target;
        if (holder == h || !thaw_route_overlaps(r, o))
            continue;
        snprintf(err, errlen, "route \"%s\" overlaps route \"%s\" of worker %s: a host and "
                 "path belong to one worker (the first to deploy it); delete %s or remove "
                 "that route from it first", r->pattern, o->pattern, holder->name,
                 holder->name);
        return 409;
    }
    return 0;
}

int thaw_routes_allowed(struct thaw_fleet *f, struct thaw_hosted *h,
                        const struct thaw_route *r, char *err, size_t errlen)
{
    struct thaw_route own;
    char host[256];
    int status, mine;

    /* its own host, and below it: always the worker's */
    snprintf(host, sizeof(host), "%s.%s", h->name, f->domain);
    if (!host_route(&own, "*", host)) {
        mine = thaw_route_within(r, &own);
        thaw_route_free(&own);
        if (mine)
            return 0;
    }
    if ((status = reserved(f, h, r, err, errlen)) ||
        (status = granted(f, h, r, err, errlen)))
        return status;
    return held(f, h, r, err, errlen);
}

/* The pattern of `routes` item i: a string, or wrangler's table
 * { pattern = ..., zone_name = ... }. */
static const char *item_pattern(json_t *item)
{
    return json_is_string(item) ? json_string_value(item)
                                : json_string_value(json_object_get(item, "pattern"));
}

int thaw_routes_check(const struct thaw_tenant_ctx *c, char *err, size_t errlen)
{
    json_t *routes = json_object_get(c->config, "routes"), *item;
    size_t i;
    int status = 0;

    if (!c->h->op || !routes)
        return 0; /* at start a route no longer allowed is dropped, not the worker */
    if (!json_is_array(routes)) {
        snprintf(err, errlen, "%s: `routes` must be a list of patterns like "
                 "[\"example.com/*\"]", c->cfg->file);
        return 400;
    }
    json_array_foreach(routes, i, item) {
        const char *pat = item_pattern(item);
        struct thaw_route r;
        if (!pat) {
            snprintf(err, errlen, "%s: `routes` item %zu must be a pattern string like "
                     "\"example.com/*\" or a table with `pattern`", c->cfg->file, i + 1);
            return 400;
        }
        if (thaw_route_parse(pat, &r, err, errlen))
            return 400;
        status = thaw_routes_allowed(c->fleet, c->h, &r, err, errlen);
        thaw_route_free(&r);
        if (status)
            return status;
    }
    return 0;
}

void thaw_routes_apply(struct thaw_fleet *f, struct thaw_hosted *h, const char *json)
{
    json_t *root = json_loads(json ? json : "{}", 0, NULL), *routes, *item;
    char err[1024];
    size_t i;

    thaw_router_remove(&f->router, h);
    routes = root ? json_object_get(root, "routes") : NULL;
    json_array_foreach(routes, i, item) {
        const char *pat = item_pattern(item);
        struct thaw_route r;
        int status;
        if (!pat || thaw_route_parse(pat, &r, err, sizeof(err))) {
            thaw_log("worker %s: `routes` item %zu dropped: %s", h->name, i + 1,
                     pat ? err : "not a pattern");
            continue;
        }
        status = thaw_routes_allowed(f, h, &r, err, sizeof(err));
        thaw_route_free(&r);
        if (status) {
            thaw_log("worker %s: route \"%s\" dropped (%s): %s; it serves %s.%s and its "
                     "other routes", h->name, pat, status == 403 ? "not granted" : "held",
                     err, h->name, f->domain);
            continue;
        }
        if (thaw_router_add(&f->router, pat, h, err, sizeof(err)))
            thaw_log("worker %s: %s", h->name, err);
    }
    json_decref(root);
}
