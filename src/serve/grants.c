/* Route grants: what the operator lets each worker route (routes.h), from
 * the admin API (kept in STATE/grants.json) and the operator config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/control.h"
#include "serve/fleet.h"
#include "serve/routes.h"
#include "serve/store.h"
#include "util/log.h"

/* A grant under .DOMAIN would give nothing (those hosts are workers'
 * own): refusing it says so at once instead of at a deploy. */
static int grant_ok(struct thaw_fleet *f, const char *pat, char *err, size_t errlen)
{
    struct thaw_route r, dom;
    char dp[300], e[256];
    int inside = 0;

    if (thaw_route_parse(pat, &r, err, errlen))
        return -1;
    snprintf(dp, sizeof(dp), "*.%s/*", f->domain);
    if (!thaw_route_parse(dp, &dom, e, sizeof(e))) {
        inside = thaw_route_within(&r, &dom);
        thaw_route_free(&dom);
    }
    thaw_route_free(&r);
    if (inside) {
        snprintf(err, errlen, "grant \"%s\" lies under .%s, where each host NAME.%s belongs "
                 "to the worker of that name: grant hosts outside %s", pat, f->domain,
                 f->domain, f->domain);
        return -1;
    }
    return 0;
}

/* { NAME: [pattern, ...] } with "*" allowed as a name when any is set. */
static int table_ok(struct thaw_fleet *f, json_t *t, int any, const char *where, char *err,
                    size_t errlen)
{
    const char *name;
    json_t *pats, *p;
    size_t i;
    char e[512];

    if (!json_is_object(t)) {
        snprintf(err, errlen, "%s must be a table of worker names", where);
        return -1;
    }
    json_object_foreach(t, name, pats) {
        if (!(any && strcmp(name, "*") == 0) && !thaw_worker_name_ok(name)) {
            snprintf(err, errlen, "%s: \"%s\" is not a worker name (1 to 63 of a-z, 0-9 and "
                     "'-')%s", where, name, any ? " or \"*\" (any worker, first come)" : "");
            return -1;
        }
        if (!json_is_array(pats)) {
            snprintf(err, errlen, "%s: `%s` must be a list of patterns like "
                     "[\"shop.example.com/*\"]", where, name);
            return -1;
        }
        json_array_foreach(pats, i, p) {
            if (!json_is_string(p)) {
                snprintf(err, errlen, "%s: `%s` item %zu must be a pattern string", where,
                         name, i + 1);
                return -1;
            }
            if (grant_ok(f, json_string_value(p), e, sizeof(e))) {
                snprintf(err, errlen, "%s: `%s`: %s", where, name, e);
                return -1;
            }
        }
    }
    return 0;
}

int thaw_grants_open(struct thaw_fleet *f, char *err, size_t errlen)
{
    json_t *conf = thaw_policy_table(&f->policy, "routes"), *g;
    char where[4200], *text;
    int missing;

    snprintf(where, sizeof(where), "%s: [routes]", f->policy.file);
    if (conf && table_ok(f, conf, 1, where, err, errlen))
        return -1;
    snprintf(where, sizeof(where), "%s/grants.json", f->state);
    text = thaw_store_read_grants(f->state, &missing);
    if (!text && !missing) {
        snprintf(err, errlen, "cannot read %s", where);
        return -1;
    }
    g = text ? json_loads(text, 0, NULL) : json_object();
    free(text);
    if (!g || table_ok(f, g, 0, where, err, errlen)) {
        if (!g)
            snprintf(err, errlen, "%s is not JSON: fix it or remove it (it holds the route "
                     "grants of the admin API)", where);
        json_decref(g);
        return -1;
    }
    json_decref(f->grants);
    f->grants = g;
    return 0;
}

static void append_all(json_t *out, json_t *arr)
{
    json_t *p;
    size_t i;

    json_array_foreach(arr, i, p)
        json_array_append(out, p);
}

json_t *thaw_grants_of(struct thaw_fleet *f, const char *name)
{
    json_t *out = json_array(), *conf = thaw_policy_table(&f->policy, "routes");

    append_all(out, f->grants ? json_object_get(f->grants, name) : NULL);
    append_all(out, conf ? json_object_get(conf, name) : NULL);
    append_all(out, conf ? json_object_get(conf, "*") : NULL);
    return out;
}

static json_t *copy_or_empty(json_t *arr)
{
    return arr ? json_deep_copy(arr) : json_array();
}

static json_t *held_by(struct thaw_fleet *f, struct thaw_hosted *h)
{
    json_t *out = json_array();
    size_t i;

    for (i = 0; h && i < f->router.n; i++)
        if (f->router.routes[i].target == h)
            json_array_append_new(out, json_string(f->router.routes[i].pattern));
    return out;
}

static json_t *describe(struct thaw_fleet *f, const char *name)
{
    json_t *conf = thaw_policy_table(&f->policy, "routes");
    struct thaw_hosted *h = thaw_fleet_find(f, name);
    char host[300];

    snprintf(host, sizeof(host), "%s.%s", name, f->domain);
    return json_pack("{s:s,s:s,s:o,s:o,s:o,s:o}", "name", name, "host", host, "grants",
                     copy_or_empty(f->grants ? json_object_get(f->grants, name) : NULL),
                     "config", copy_or_empty(conf ? json_object_get(conf, name) : NULL),
                     "shared", copy_or_empty(conf ? json_object_get(conf, "*") : NULL),
                     "routes", held_by(f, h && h->live ? h : NULL));
}

/* The patterns of a grant call's body: {"patterns": [...]} or [...]. */
static json_t *body_patterns(struct thaw_api_req *r, int optional, char *err, size_t errlen)
{
    json_t *j, *p;

    if (r->body.len == 0 && optional)
        return NULL;
    j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    p = json_is_object(j) ? json_incref(json_object_get(j, "patterns")) : json_incref(j);
    json_decref(j);
    if (!json_is_array(p) || json_array_size(p) == 0) {
        json_decref(p);
        snprintf(err, errlen, "the body must be {\"patterns\": [\"shop.example.com/*\", ...]}");
        return NULL;
    }
    return p;
}

static int has(json_t *arr, const char *s)
{
    json_t *p;
    size_t i;

    json_array_foreach(arr, i, p)
        if (strcmp(json_string_value(p), s) == 0)
            return 1;
    return 0;
}

/* The new list of name's grants after the call, or NULL with status. */
static json_t *changed(struct thaw_fleet *f, const char *name, int method, json_t *pats,
                       int *status, char *err, size_t errlen)
{
    json_t *now = json_object_get(f->grants, name), *out = json_array(), *p;
    size_t i;

    if (method == HTTP_POST)
        append_all(out, now);
    json_array_foreach(pats, i, p) {
        const char *s = json_string_value(p);
        if (!s || (method != HTTP_DELETE && grant_ok(f, s, err, errlen))) {
            if (!s)
                snprintf(err, errlen, "pattern %zu is not a string", i + 1);
            *status = 400;
            json_decref(out);
            return NULL;
        }
        if (method == HTTP_DELETE && !has(now, s)) {
            snprintf(err, errlen, "worker %s has no grant \"%s\" from the API (GET "
                     "/v1/workers/%s/grants lists them)", name, s, name);
            *status = 404;
            json_decref(out);
            return NULL;
        }
        if (method != HTTP_DELETE && !has(out, s))
            json_array_append(out, p);
    }
    json_array_foreach(method == HTTP_DELETE && pats ? now : NULL, i, p)
        if (!has(pats, json_string_value(p)))
            json_array_append(out, p);
    return out;
}

/* Writes the grants with name's new list (takes ownership of list). */
static int save(struct thaw_fleet *f, const char *name, json_t *list)
{
    json_t *next = f->grants ? json_deep_copy(f->grants) : json_object();
    char *text;
    int rc;

    if (json_array_size(list))
        json_object_set_new(next, name, list);
    else {
        json_decref(list);
        json_object_del(next, name);
    }
    text = json_dumps(next, JSON_INDENT(2) | JSON_SORT_KEYS);
    rc = text ? thaw_store_write_grants(f->state, text) : -1;
    free(text);
    if (rc) {
        json_decref(next);
        return -1;
    }
    json_decref(f->grants);
    f->grants = next;
    return 0;
}

/* The serving version's routes follow its grants at once (while a
 * version builds, w.cfg is the new one and kept_cfg serves). */
static void follow(struct thaw_fleet *f, const char *name)
{
    struct thaw_hosted *h = thaw_fleet_find(f, name);

    if (h && h->live && h->started)
        thaw_routes_apply(f, h, h->w.building ? h->w.kept_cfg.json : h->w.cfg.json);
}

void thaw_grants_store(struct thaw_fleet *f, const char *name, json_t *list)
{
    if (save(f, name, list))
        thaw_log("route grants of %s from the control store: cannot write %s/grants.json",
                 name, f->state);
    follow(f, name);
}

void thaw_grants_replace(struct thaw_fleet *f, json_t *all)
{
    struct thaw_hosted *h;
    char *text = json_dumps(all, JSON_INDENT(2) | JSON_SORT_KEYS);

    if (!text || thaw_store_write_grants(f->state, text))
        thaw_log("route grants from the control store: cannot write %s/grants.json", f->state);
    free(text);
    json_decref(f->grants);
    f->grants = all;
    for (h = f->all; h; h = h->next_all)
        follow(f, h->name);
}

/* A grant call in a cluster: answered once the control store has it. */
struct grant_call {
    struct thaw_fleet *f;
    char name[64];
    json_t *list;
    struct thaw_api_req *req;
    char *text;
};

static void grant_call_gone(struct thaw_api_req *r)
{
    struct grant_call *g = r->pending;

    g->req = NULL;
}

static void on_grants_published(void *data, int status, const char *err)
{
    struct grant_call *g = data;

    if (!status) {
        thaw_log("route grants of %s set through the control store", g->name);
        thaw_grants_store(g->f, g->name, g->list);
        g->list = NULL;
    }
    if (g->req) {
        g->req->pending = NULL;
        if (status)
            thaw_api_error(g->req, status, "%s", err);
        else
            thaw_api_reply_json(g->req, 200, describe(g->f, g->name));
    }
    json_decref(g->list);
    free(g->text);
    free(g);
}

static void publish(struct thaw_fleet *f, const char *name, json_t *list,
                    struct thaw_api_req *r)
{
    struct grant_call *g;
    char why[700];

    if (!thaw_control_accepting(f->control, why, sizeof(why))) {
        json_decref(list);
        thaw_api_error(r, 503, "%s", why);
        return;
    }
    if (!(g = calloc(1, sizeof(*g))) || !(g->text = json_dumps(list, JSON_COMPACT))) {
        free(g);
        json_decref(list);
        thaw_api_error(r, 500, "out of memory");
        return;
    }
    g->f = f;
    snprintf(g->name, sizeof(g->name), "%s", name);
    g->list = list;
    g->req = r;
    r->pending = g;
    r->on_gone = grant_call_gone;
    thaw_control_publish_grants(f->control, name, g->text, on_grants_published, g);
}

void thaw_grants_handle(struct thaw_fleet *f, const char *name, struct thaw_api_req *r)
{
    json_t *pats, *list;
    char err[1024];
    int status = 400;

    if (r->method == HTTP_GET) {
        thaw_api_reply_json(r, 200, describe(f, name));
        return;
    }
    if (r->method != HTTP_PUT && r->method != HTTP_POST && r->method != HTTP_DELETE) {
        thaw_api_error(r, 405, "use GET, PUT, POST or DELETE on /v1/workers/%s/grants",
                       name);
        return;
    }
    err[0] = '\0';
    pats = body_patterns(r, r->method == HTTP_DELETE, err, sizeof(err));
    if (!pats && err[0]) {
        thaw_api_error(r, 400, "%s", err);
        return;
    }
    if (!(list = changed(f, name, r->method, pats, &status, err, sizeof(err)))) {
        json_decref(pats);
        thaw_api_error(r, status, "%s", err);
        return;
    }
    json_decref(pats);
    if (f->control) { /* the control store first: every node follows it */
        publish(f, name, list, r);
        return;
    }
    if (save(f, name, list)) {
        thaw_api_error(r, 500, "cannot write %s/grants.json", f->state);
        return;
    }
    thaw_log("route grants of %s %s", name, r->method == HTTP_DELETE ? "revoked" : "set");
    follow(f, name);
    thaw_api_reply_json(r, 200, describe(f, name));
}

void thaw_grants_list(struct thaw_fleet *f, struct thaw_api_req *r)
{
    json_t *conf = thaw_policy_table(&f->policy, "routes");

    if (r->method != HTTP_GET) {
        thaw_api_error(r, 405, "use GET /v1/grants");
        return;
    }
    thaw_api_reply_json(r, 200, json_pack("{s:o,s:o}", "grants",
                                          f->grants ? json_deep_copy(f->grants)
                                                    : json_object(),
                                          "config", conf ? json_deep_copy(conf)
                                                         : json_object()));
}
