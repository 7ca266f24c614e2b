/* The admin API's paths (docs/api.md): JSON in, JSON out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/control.h"
#include "serve/fleet.h"
#include "serve/migrations.h"
#include "serve/routes.h"
#include "serve/store.h"
#include "server/admin.h"

static const char *state_of(struct thaw_hosted *h)
{
    if (h->op)
        return "deploying";
    if (h->started && h->w.cold)
        return "cold";
    if (!h->started || !h->w.current)
        return "starting";
    switch (h->w.current->state) {
    case VER_READY: return "ready";
    case VER_FAILED: return "failed";
    default: return "building";
    }
}

/* The routes it holds now (granted and free), as written in its config. */
static json_t *routes_of(struct thaw_fleet *f, struct thaw_hosted *h)
{
    json_t *out = json_array();
    size_t i;

    for (i = 0; i < f->router.n; i++)
        if (f->router.routes[i].target == h)
            json_array_append_new(out, json_string(f->router.routes[i].pattern));
    return out;
}

static json_t *summary(struct thaw_fleet *f, struct thaw_hosted *h)
{
    struct thaw_worker_stats st;

    memset(&st, 0, sizeof(st));
    if (h->started)
        thaw_worker_stats(&h->w, &st);
    return json_pack("{s:s,s:i,s:s,s:o,s:s+++,s:i}", "name", h->name, "version", h->version,
                     "state", state_of(h), "routes", routes_of(f, h), "host", h->name, ".",
                     f->domain, "", "instances", st.instances);
}

static void list_workers(struct thaw_fleet *f, struct thaw_api_req *r)
{
    json_t *arr = json_array();
    struct thaw_hosted *h;

    for (h = f->all; h; h = h->next_all)
        if (h->live)
            json_array_append_new(arr, summary(f, h));
    thaw_api_reply_json(r, 200, json_pack("{s:o}", "workers", arr));
}

static void get_worker(struct thaw_fleet *f, struct thaw_hosted *h, struct thaw_api_req *r)
{
    json_t *j = summary(f, h), *vers = json_array();
    int n, i, *list = thaw_store_versions(f->state, h->name, &n);

    for (i = 0; i < n; i++) {
        char *meta = thaw_store_read_meta(f->state, h->name, list[i]);
        json_t *m = meta ? json_loads(meta, 0, NULL) : NULL;
        if (!m)
            m = json_pack("{s:i}", "version", list[i]);
        json_object_set_new(m, "current", json_boolean(list[i] == h->version));
        json_array_append_new(vers, m);
        free(meta);
    }
    free(list);
    json_object_set_new(j, "versions", vers);
    /* why it is failed: its clients are told only that it could not start
     * (pool's thaw__version_answer); its owner reads the error here */
    if (h->started && h->w.current && h->w.current->state == VER_FAILED &&
        h->w.current->error)
        json_object_set_new(j, "error", json_string(h->w.current->fault == THAW_FAULT_INTERNAL
                                                        ? "internal error: thaw's log has the details"
                                                        : h->w.current->error));
    thaw_api_reply_json(r, 200, j);
}

static int rollback_version(struct thaw_api_req *r, int *version)
{
    json_t *j, *v;

    *version = 0;
    if (r->body.len == 0)
        return 0;
    j = json_loadb(r->body.data, r->body.len, 0, NULL);
    v = j ? json_object_get(j, "version") : NULL;
    if (!j || !json_is_object(j) || (v && !json_is_integer(v))) {
        json_decref(j);
        return -1;
    }
    if (v)
        *version = (int)json_integer_value(v);
    json_decref(j);
    return 0;
}

/* Prometheus text, a series per worker (as thaw dev --admin has for its
 * one); behind the token like every call here. */
static void metrics(struct thaw_fleet *f, struct thaw_api_req *r)
{
    struct thaw_worker **ws = calloc((size_t)f->n + 1, sizeof(*ws));
    struct thaw_hosted *h;
    size_t len;
    char *text;
    int n = 0;

    if (!ws) {
        thaw_api_error(r, 500, "out of memory");
        return;
    }
    for (h = f->all; h && n < f->n; h = h->next_all)
        if (h->started && h->live)
            ws[n++] = &h->w;
    text = thaw_admin_metrics_many(ws, n, &len);
    free(ws);
    thaw_api_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

/* "/d1/DB/migrations[/apply]": DB (percent-decoded) and what follows
 * "migrations". 1 when rest has that shape. */
static int migrations_path(const char *rest, char *db, size_t dbn, char *tail, size_t tn)
{
    const char *p, *end;
    size_t k = 0;

    if (strncmp(rest, "/d1/", 4) != 0 || !(end = strstr(rest + 4, "/migrations")) ||
        end == rest + 4 || memchr(rest + 4, '/', (size_t)(end - rest - 4)))
        return 0;
    for (p = rest + 4; p < end && k + 1 < dbn; p++) {
        unsigned int c;
        if (*p == '%' && end - p > 2 && sscanf(p + 1, "%2x", &c) == 1 && c) {
            db[k++] = (char)c;
            p += 2;
        } else {
            db[k++] = *p;
        }
    }
    db[k] = '\0';
    end += strlen("/migrations");
    if (*end && *end != '/')
        return 0;
    snprintf(tail, tn, "%s", end);
    return 1;
}

void thaw_endpoints_handle(struct thaw_api_req *r, void *data)
{
    struct thaw_fleet *f = data;
    char name[128], rest[512], db[256], tail[32];
    struct thaw_hosted *h;
    const char *p = r->path;
    int version;

    if (strcmp(p, "/metrics") == 0 && r->method == HTTP_GET) {
        metrics(f, r);
        return;
    }
    if (!f->started) {
        thaw_api_error(r, 503, "thaw serve is still starting; retry shortly");
        return;
    }
    if (strcmp(p, "/v1/workers") == 0 || strcmp(p, "/v1/workers/") == 0) {
        if (r->method != HTTP_GET) {
            thaw_api_error(r, 405, "use GET /v1/workers");
            return;
        }
        list_workers(f, r);
        return;
    }
    if (strcmp(p, "/v1/nodes") == 0 && r->method == HTTP_GET) {
        if (!f->control) {
            thaw_api_error(r, 404, "this node is not in a cluster with a control store "
                           "(the operator config's [cluster] `control`: docs/scale-out.md)");
            return;
        }
        thaw_api_reply_json(r, 200, json_pack("{s:O}", "nodes",
                                              thaw_control_live_nodes(f->control)));
        return;
    }
    if (strcmp(p, "/v1/grants") == 0) {
        thaw_grants_list(f, r);
        return;
    }
    rest[0] = '\0';
    if (strncmp(p, "/v1/workers/", 12) != 0 ||
        sscanf(p + 12, "%127[^/]%511s", name, rest) < 1) {
        thaw_api_error(r, 404, "no such API path %s (see docs/api.md: /v1/workers..., "
                       "/v1/grants)", p);
        return;
    }
    if (!thaw_worker_name_ok(name)) {
        thaw_api_error(r, 400, "\"%s\" is not a valid worker name: 1 to 63 of a-z, 0-9 "
                       "and '-', not starting or ending with '-'", name);
        return;
    }
    if (strcmp(rest, "/grants") == 0) { /* a name may be granted before its first deploy */
        thaw_grants_handle(f, name, r);
        return;
    }
    h = thaw_fleet_find(f, name);
    if (!rest[0] && r->method == HTTP_PUT) {
        thaw_fleet_deploy(f, name, r->body.data, r->body.len, r);
        return;
    }
    if (!h || (!h->live && !h->op)) {
        thaw_api_error(r, 404, "no worker named %s is deployed", name);
        return;
    }
    if (!rest[0] && r->method == HTTP_GET) {
        get_worker(f, h, r);
    } else if (!rest[0] && r->method == HTTP_DELETE) {
        thaw_fleet_delete_api(f, h, r); /* cancels a deploy in flight */
    } else if (strcmp(rest, "/rollback") == 0 && r->method == HTTP_POST) {
        if (rollback_version(r, &version)) {
            thaw_api_error(r, 400, "the body must be empty or {\"version\": N}");
            return;
        }
        thaw_fleet_rollback(f, h, version, r);
    } else if (strcmp(rest, "/tail") == 0 && r->method == HTTP_GET) {
        thaw_fleet_tail(f, h, r);
    } else if (migrations_path(rest, db, sizeof(db), tail, sizeof(tail))) {
        if (!tail[0] && r->method == HTTP_GET)
            thaw_migrations_handle(f, h, db, 0, r);
        else if (strcmp(tail, "/apply") == 0 && r->method == HTTP_POST)
            thaw_migrations_handle(f, h, db, 1, r);
        else
            thaw_api_error(r, tail[0] && strcmp(tail, "/apply") ? 404 : 405,
                           "no such API call: %s %s (GET .../d1/DB/migrations, POST "
                           ".../d1/DB/migrations/apply; see docs/api.md)",
                           http_method_str(r->method), p);
    } else {
        thaw_api_error(r, rest[0] && strcmp(rest, "/rollback") && strcmp(rest, "/tail")
                       ? 404 : 405, "no such API call: %s %s (see docs/api.md)",
                       http_method_str(r->method), p);
    }
}

int thaw_endpoints_probe(const char *path, char *body, size_t n, void *data)
{
    struct thaw_fleet *f = data;
    int pending;

    if (strcmp(path, "/healthz") == 0) {
        snprintf(body, n, "ok\n");
        return 200;
    }
    if (strcmp(path, "/readyz") != 0)
        return 0;
    if (!f->started) {
        snprintf(body, n, "starting: the Python zygote is not ready yet\n");
        return 503;
    }
    if (f->control && !thaw_control_caught_up(f->control, body, n))
        return 503;
    if ((pending = thaw_fleet_pending(f))) {
        snprintf(body, n, "%d of %d worker templates still building\n", pending, f->n);
        return 503;
    }
    snprintf(body, n, "ready: %d worker(s)\n", f->n);
    return 200;
}
