/* thaw serve's ceilings (limits.h). Under serve a worker's config is
 * tenant input: it may lower its limits, never raise them past what the
 * operator allows. The operator speaks through serve's command line and
 * the `[limits]` table of its config file; thaw dev has no ceilings. */
#include <stdio.h>
#include <string.h>

#include "config/limits.h"

int thaw_limit_over(const struct thaw_limit_spec *s, long long v, long long c)
{
    if (s->flags & THAW_LIM_ZERO_NEVER) {
        if (c == 0)
            return 0; /* no ceiling: "never" allowed, and so is anything */
        return v == 0 || v > c;
    }
    return v > c;
}

static const struct thaw_limit_spec *spec_by_key(const char *key)
{
    int i;

    for (i = 0; i < thaw_n_limit_specs; i++)
        if (strcmp(thaw_limit_specs[i].key, key) == 0)
            return &thaw_limit_specs[i];
    return NULL;
}

/* The operator's table: every key a limit of the table, every value in
 * range; a misspelt key would leave a ceiling where the operator did not
 * mean it. */
static int check_operator_table(json_t *ops, const char *file, char *err, size_t errlen)
{
    const struct thaw_limit_spec *s;
    const char *key;
    long long n;
    json_t *v;

    json_object_foreach(ops, key, v) {
        if (!(s = spec_by_key(key))) {
            snprintf(err, errlen, "%s: unknown key `limits.%s` (the keys are those of a "
                     "worker's config: memory_mb, cpu_ms, tmp_size, ... see "
                     "docs/config.md)", file, key);
            return -1;
        }
        if (s->flags & THAW_LIM_SERVER) {
            snprintf(err, errlen, "%s: `limits.%s` is the server's own, not a worker's "
                     "ceiling: set it with %s on serve's command line", file, key, s->flag);
            return -1;
        }
        if (thaw_limit_parse_json(s, v, &n)) {
            snprintf(err, errlen, "%s: `limits.%s` must be %s", file, key,
                     thaw_limit_range_text(s));
            return -1;
        }
    }
    return 0;
}

int thaw_limit_bounds(struct thaw_limit_bounds *b, json_t *ops, const char *ops_file,
                      const struct thaw_limits *cli, const int *cli_set, char *err,
                      size_t errlen)
{
    int i;

    if (ops && check_operator_table(ops, ops_file, err, errlen))
        return -1;
    thaw_limits_defaults(&b->def);
    thaw_limits_defaults(&b->ceil);
    for (i = 0; i < thaw_n_limit_specs; i++) {
        const struct thaw_limit_spec *s = &thaw_limit_specs[i];
        long long *def = thaw_limit_field(&b->def, s), *ceil = thaw_limit_field(&b->ceil, s);
        long long flag = *thaw_limit_field((struct thaw_limits *)cli, s);
        json_t *v = ops ? json_object_get(ops, s->key) : NULL;

        /* a flag is the default of every worker, and its ceiling unless
         * the operator's config says otherwise */
        if (cli_set[i])
            *def = flag;
        if (v && thaw_limit_parse_json(s, v, ceil) == 0) {
            b->from[i] = THAW_CEIL_OPERATOR;
        } else if (cli_set[i]) {
            *ceil = flag;
            b->from[i] = THAW_CEIL_FLAG;
        } else {
            *ceil = s->ceiling;
            b->from[i] = THAW_CEIL_BUILTIN;
        }
        if (s->flags & THAW_LIM_SERVER)
            *ceil = *def; /* not a worker's to set: no ceiling to speak of */
        else if (thaw_limit_over(s, *def, *ceil))
            *def = *ceil; /* an operator's ceiling under thaw's default */
    }
    return 0;
}
