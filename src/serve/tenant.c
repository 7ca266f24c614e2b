/* The checks of a deployed config against the operator's policy
 * (tenant.h), one row each: a part that reads a tenant key adds its
 * check here. */
#include <stdio.h>

#include "serve/do-scripts.h"
#include "serve/fleet.h"
#include "serve/routes.h"
#include "serve/tenant-egress.h"
#include "serve/tenant.h"
#include "serve/tenant-limits.h"

/* serve/tenant-paths.c: every path in the config stays inside the bundle */
int thaw_tenant_check_paths(const struct thaw_tenant_ctx *c, char *err, size_t errlen);

static const struct {
    const char *what;
    thaw_tenant_check_fn check;
} CHECKS[] = {
    {"paths", thaw_tenant_check_paths},
    {"routes", thaw_routes_check},
    {"network targets", thaw_tenant_network},
    {"limits under the operator's ceilings", thaw_tenant_limits},
    {"other workers' Durable Object classes", thaw_tenant_do_scripts},
    {NULL, NULL},
};

int thaw_tenant_check(struct thaw_fleet *f, struct thaw_hosted *h,
                      const struct thaw_config *cfg, char *err, size_t errlen)
{
    struct thaw_tenant_ctx c = {&f->policy, f, h, cfg, NULL};
    int i, status = 0;

    c.config = json_loads(cfg->json ? cfg->json : "{}", 0, NULL);
    if (!c.config)
        c.config = json_object();
    for (i = 0; CHECKS[i].check && !status; i++)
        status = CHECKS[i].check(&c, err, errlen);
    json_decref(c.config);
    return status;
}
