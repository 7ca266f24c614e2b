/* thaw serve: which routes a worker may hold (docs/api.md "Routing").
 *
 * A worker always answers at NAME.DOMAIN, and every host under DOMAIN is
 * reserved that way: no route may match NAME.DOMAIN (or a subdomain of
 * it) of another name, whatever was granted. Any other route in a
 * worker's config must lie within one of its grants (thaw_route_within)
 * and may not overlap a route another worker holds: one host and path
 * belong to one worker, the first to deploy it. Grants come from the
 * admin API (STATE/grants.json, grants.c) and from the operator config's
 * [routes] table ("NAME" = [patterns], "*" = [patterns] any worker may
 * claim). */
#ifndef THAW_SERVE_ROUTES_H
#define THAW_SERVE_ROUTES_H

#include <stddef.h>

#include <jansson.h>

struct thaw_api_req;
struct thaw_fleet;
struct thaw_hosted;
struct thaw_route;
struct thaw_tenant_ctx;

/* routes.c --------------------------------------------------------------- */

/* tenant.c's row for `routes`: on a deploy or rollback, 400 for a bad
 * pattern, 403 for one outside the worker's grants (or on a host reserved
 * for a worker name not deployed), 409 for one that another worker holds
 * or whose NAME.DOMAIN it would take, with the pattern and the holder or
 * missing grant in err. 0 at start: thaw_routes_apply drops instead. */
int thaw_routes_check(const struct thaw_tenant_ctx *c, char *err, size_t errlen);

/* The worker's routes (config json) into the router, replacing its
 * earlier ones; a route not allowed now (a grant revoked, held by another
 * worker) is left out with a log line naming it and why. */
void thaw_routes_apply(struct thaw_fleet *f, struct thaw_hosted *h, const char *json);

/* Whether h may hold r now: 0, or 403/409 with why in err. */
int thaw_routes_allowed(struct thaw_fleet *f, struct thaw_hosted *h,
                        const struct thaw_route *r, char *err, size_t errlen);

/* grants.c --------------------------------------------------------------- */

/* Loads STATE/grants.json and checks the operator config's [routes].
 * 0, or -1 with a message naming the file and key (serve stops). */
int thaw_grants_open(struct thaw_fleet *f, char *err, size_t errlen);

/* Every pattern granted to name, from the API and the operator config
 * (its own and "*"), as a new array of strings. */
json_t *thaw_grants_of(struct thaw_fleet *f, const char *name);

/* The admin API's grant calls (docs/api.md): GET, PUT (replace), POST
 * (add), DELETE (revoke: the body's patterns, or all) on
 * /v1/workers/NAME/grants, and GET /v1/grants. */
void thaw_grants_handle(struct thaw_fleet *f, const char *name, struct thaw_api_req *r);
void thaw_grants_list(struct thaw_fleet *f, struct thaw_api_req *r);

/* The control store's word (cluster/control-sync.c): name's grants, or all
 * of them, replaced here (STATE/grants.json) and the routes of the
 * workers concerned applied again. Take ownership of list and all. */
void thaw_grants_store(struct thaw_fleet *f, const char *name, json_t *list);
void thaw_grants_replace(struct thaw_fleet *f, json_t *all);

#endif
