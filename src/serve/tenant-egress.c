/* thaw serve's deploy check of a worker's network targets (tenant-egress.h).
 * The bindings enforce the same bounds again when they open (the
 * intersection in egress-config.c, the backend choice in kv.c): this check
 * is what turns a request for more into a refused deploy with a message,
 * before anything is built. */
#include <stdio.h>
#include <string.h>

#include "bind/egress.h"
#include "bind/kv.h"
#include "serve/tenant-egress.h"

static int egress_check(const struct thaw_tenant_ctx *c, const char *file, char *err,
                        size_t errlen)
{
    struct thaw_egress_config op, mine;
    int status = 0;

    /* a malformed table is the tenant's mistake (400), said as dev says it */
    if (thaw_egress_config_load(&mine, c->config, file, c->cfg->dir, NULL, err, errlen) < 0)
        return 400;
    thaw_egress_config_free(&mine);
    if (thaw_egress_operator_load(&op, c->policy, err, errlen) < 0)
        return 500; /* serve checks the operator's config when it starts */
    if (thaw_egress_config_within(&op, c->config, file, c->policy->file, err, errlen) < 0)
        status = 403;
    thaw_egress_config_free(&op);
    return status;
}

int thaw_tenant_network(const struct thaw_tenant_ctx *c, char *err, size_t errlen)
{
    const char *slash = c->cfg->file ? strrchr(c->cfg->file, '/') : NULL;
    const char *file = slash ? slash + 1 : c->cfg->file ? c->cfg->file : "the config";
    int status;

    if (!c->policy || !c->policy->tenant)
        return 0;
    if ((status = egress_check(c, file, err, errlen)))
        return status;
    return thaw_kv_tenant_check(c->policy, c->config, file, err, errlen);
}
