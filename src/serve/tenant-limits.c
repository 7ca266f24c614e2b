/* A deployed worker's limits against this server's ceilings: a tenant may
 * lower its memory, CPU time, instances, /tmp, ... never raise them past
 * what the operator allows (config/ceilings.c says where each ceiling
 * comes from). */
#include <stdio.h>
#include <string.h>

#include "serve/fleet.h"
#include "serve/tenant-limits.h"

static int bounds(struct thaw_fleet *f, struct thaw_limit_bounds *b, char *err,
                  size_t errlen)
{
    return thaw_limit_bounds(b, thaw_policy_table(&f->policy, "limits"),
                             f->policy.file[0] ? f->policy.file : "--config", &f->cli,
                             f->cli_set, err, errlen);
}

/* The config file's name, not where the bundle was unpacked on this host. */
static const char *file_name(const struct thaw_config *cfg)
{
    const char *slash = cfg->file ? strrchr(cfg->file, '/') : NULL;

    return slash ? slash + 1 : cfg->file ? cfg->file : "config";
}

static const char *whose(const struct thaw_limit_spec *s, int from, char *buf, size_t n)
{
    if (from == THAW_CEIL_OPERATOR)
        snprintf(buf, n, "set by the operator's config");
    else if (from == THAW_CEIL_FLAG)
        snprintf(buf, n, "set by the operator: thaw serve %s", s->flag);
    else
        snprintf(buf, n, "thaw serve's built-in ceiling; the operator may raise it with "
                 "`%s` in the [limits] table of the serve config", s->key);
    return buf;
}

/* 0, or 400 with a message: a key out of range, or over its ceiling. */
static int check(const struct thaw_limit_bounds *b, json_t *config,
                 const struct thaw_config *cfg, char *err, size_t errlen)
{
    int i;

    for (i = 0; i < thaw_n_limit_specs; i++) {
        const struct thaw_limit_spec *s = &thaw_limit_specs[i];
        long long v, c = *thaw_limit_field((struct thaw_limits *)&b->ceil, s);
        char have[48], most[48], src[160];
        json_t *tbl = json_object_get(config, s->table);
        json_t *jv = json_is_object(tbl) ? json_object_get(tbl, s->key) : NULL;

        if (!jv || (s->flags & THAW_LIM_SERVER))
            continue;
        if (thaw_limit_parse_json(s, jv, &v)) {
            snprintf(err, errlen, "%s: `%s.%s` must be %s", file_name(cfg), s->table,
                     s->key, thaw_limit_range_text(s));
            return 400;
        }
        if (!thaw_limit_over(s, v, c))
            continue;
        thaw_limit_format(s, v, have, sizeof(have));
        thaw_limit_format(s, c, most, sizeof(most));
        snprintf(err, errlen, "%s: %s.%s = %s is over this server's ceiling of %s (%s); "
                 "lower it or ask the operator", file_name(cfg), s->table, s->key, have,
                 most, whose(s, b->from[i], src, sizeof(src)));
        return 400;
    }
    return 0;
}

int thaw_tenant_limits(const struct thaw_tenant_ctx *c, char *err, size_t errlen)
{
    struct thaw_limit_bounds b;

    if (bounds(c->fleet, &b, err, errlen))
        return 400; /* not reached: the operator's table was checked at start */
    return check(&b, c->config, c->cfg, err, errlen);
}

int thaw_serve_worker_limits(struct thaw_fleet *f, const struct thaw_config *cfg,
                             struct thaw_limits *lim, char *err, size_t errlen)
{
    struct thaw_limit_bounds b;
    json_t *config;
    int i, rc;

    if (bounds(f, &b, err, errlen))
        return -1;
    config = json_loads(cfg->json ? cfg->json : "{}", 0, NULL);
    rc = config ? check(&b, config, cfg, err, errlen) : 0;
    json_decref(config);
    if (rc)
        return -1;
    *lim = b.def;
    if (thaw_limits_from_config(lim, cfg->json, cfg->file, err, errlen))
        return -1;
    /* the server's own limits apply before the worker is known */
    for (i = 0; i < thaw_n_limit_specs; i++)
        if (thaw_limit_specs[i].flags & THAW_LIM_SERVER)
            *thaw_limit_field(lim, &thaw_limit_specs[i]) =
                *thaw_limit_field(&b.def, &thaw_limit_specs[i]);
    return 0;
}

int thaw_serve_limits_validate(struct thaw_fleet *f, char *err, size_t errlen)
{
    struct thaw_limit_bounds b;

    return bounds(f, &b, err, errlen);
}
