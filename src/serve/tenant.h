/* thaw serve: a deployed worker's config against the operator's policy,
 * before anything of it is built or run. Tenant input that would widen the
 * policy (a path outside the bundle, a limit over a ceiling, a network
 * target, a route not granted or held by another worker) refuses the
 * deploy with a status and a message naming the key and the fix. */
#ifndef THAW_SERVE_TENANT_H
#define THAW_SERVE_TENANT_H

#include <stddef.h>

#include <jansson.h>

#include "config/config.h"
#include "policy/policy.h"

struct thaw_fleet;
struct thaw_hosted;

struct thaw_tenant_ctx {
    const struct thaw_policy *policy;
    struct thaw_fleet *fleet;
    struct thaw_hosted *h;          /* the worker being deployed */
    const struct thaw_config *cfg;  /* its new config (dir: the unpacked bundle) */
    json_t *config;                 /* cfg->json, parsed (borrowed) */
};

/* One check: 0 when the config stays within the policy, else an HTTP
 * status (400: the config is bad; 403: not granted; 409: held by another
 * worker) with a message in err. */
typedef int (*thaw_tenant_check_fn)(const struct thaw_tenant_ctx *c, char *err,
                                    size_t errlen);

/* Runs every check; the first refusal wins. Returns 0 or the status. */
int thaw_tenant_check(struct thaw_fleet *f, struct thaw_hosted *h,
                      const struct thaw_config *cfg, char *err, size_t errlen);

#endif
