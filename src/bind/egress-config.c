/* The [thaw.egress] table: the policy's allow and deny lists and the limits
 * of outbound requests, one table of keys (STYLE.md habit 10). Under thaw
 * serve the operator's [egress] table (same keys but ca_file) is read by
 * the same code: it becomes the worker policy's outer policy, and its
 * numbers the ceilings (and defaults) of the worker's. */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/egress.h"
#include "policy/policy.h"

#define MIB (1024LL * 1024)

static const struct {
    const char *key;
    size_t offset;
    long long def, min, max;
    const char *unit;
} NUMBERS[] = {
    {"timeout_ms", offsetof(struct thaw_egress_config, timeout_ms), 30000, 1, 86400000,
     "milliseconds"},
    {"connect_timeout_ms", offsetof(struct thaw_egress_config, connect_timeout_ms), 10000, 1,
     3600000, "milliseconds"},
    {"max_response_bytes", offsetof(struct thaw_egress_config, max_response_bytes), 100 * MIB,
     1, 1LL << 40, "bytes"},
    {"max_connections", offsetof(struct thaw_egress_config, max_connections), 100, 1, 100000,
     "connections"},
};
#define N_NUMBERS (sizeof(NUMBERS) / sizeof(NUMBERS[0]))

static long long *number(struct thaw_egress_config *c, size_t i)
{
    return (long long *)((char *)c + NUMBERS[i].offset);
}

static long long number_of(const struct thaw_egress_config *c, size_t i)
{
    return *(const long long *)((const char *)c + NUMBERS[i].offset);
}

/* Which table is read: names and examples in its messages. */
struct table {
    const char *file;
    const char *name;  /* "thaw.egress", "egress" */
    int operator;      /* the operator's [egress] */
};

static int load_ranges(struct thaw_egress_config *c, const struct table *t, const char *key,
                       json_t *list, char *err, size_t errlen)
{
    int (*add)(struct thaw_egress *, const char *, char *, size_t) =
        strcmp(key, "deny") == 0 ? thaw_egress_deny : thaw_egress_allow;
    char why[400];
    size_t i;

    if (!json_is_array(list)) {
        snprintf(err, errlen, "%s: `%s.%s` must be a list of address ranges, like "
                 "%s = [\"127.0.0.0/8\", \"::1\", \"10.0.0.5:6379\"]", t->file, t->name, key,
                 key);
        return -1;
    }
    for (i = 0; i < json_array_size(list); i++) {
        json_t *v = json_array_get(list, i);
        if (!json_is_string(v)) {
            snprintf(err, errlen, "%s: `%s.%s` item %zu is not a string; write ranges as "
                     "strings, like \"127.0.0.0/8\"", t->file, t->name, key, i + 1);
            return -1;
        }
        if (add(c->policy, json_string_value(v), why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s: `%s.%s`: %s", t->file, t->name, key, why);
            return -1;
        }
    }
    return 0;
}

static int load_ports(struct thaw_egress_config *c, const struct table *t, json_t *ports,
                      char *err, size_t errlen)
{
    char why[200];
    size_t i;

    if (!json_is_array(ports)) {
        snprintf(err, errlen, "%s: `%s.allow_ports` must be a list of port numbers, like "
                 "allow_ports = [25]", t->file, t->name);
        return -1;
    }
    for (i = 0; i < json_array_size(ports); i++) {
        json_t *v = json_array_get(ports, i);
        if (!json_is_integer(v) ||
            thaw_egress_allow_port(c->policy, (int)(json_integer_value(v) > 65535 ? -1 :
                                   json_integer_value(v)), why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s: `%s.allow_ports` item %zu is not a port number "
                     "from 1 to 65535; write it like allow_ports = [25]", t->file, t->name,
                     i + 1);
            return -1;
        }
    }
    return 0;
}

static int load_ca_file(struct thaw_egress_config *c, const struct table *t, json_t *v,
                        const char *dir, char *err, size_t errlen)
{
    const char *s = json_string_value(v);
    char path[PATH_MAX];

    if (t->operator) {
        /* a CA file is each worker's own business (and the sandbox would
         * have to grant it to every worker): not an operator setting */
        snprintf(err, errlen, "%s: `%s.ca_file` is not an operator setting: a worker that "
                 "talks to a server with a private CA sets `ca_file` in its own "
                 "[thaw.egress]", t->file, t->name);
        return -1;
    }
    if (!s || !*s) {
        snprintf(err, errlen, "%s: `%s.ca_file` must be the path of a PEM file of CA "
                 "certificates", t->file, t->name);
        return -1;
    }
    if (s[0] == '/' || !dir)
        snprintf(path, sizeof(path), "%s", s);
    else
        snprintf(path, sizeof(path), "%s/%s", dir, s);
    free(c->ca_file);
    c->ca_file = strdup(path);
    return 0;
}

/* Fills c (the defaults, then tbl's keys; tbl NULL: the defaults). */
static int load_table(struct thaw_egress_config *c, json_t *tbl, const struct table *t,
                      const char *dir, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    size_t i;

    memset(c, 0, sizeof(*c));
    for (i = 0; i < N_NUMBERS; i++)
        *number(c, i) = NUMBERS[i].def;
    if (!(c->policy = thaw_egress_new())) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!tbl)
        return 0;
    if (!json_is_object(tbl)) {
        snprintf(err, errlen, "%s: `%s` must be a table ([%s] in TOML)", t->file, t->name,
                 t->name);
        goto fail;
    }
    json_object_foreach(tbl, key, v) {
        int known = 0;
        if (strcmp(key, "allow") == 0 || strcmp(key, "deny") == 0) {
            if (load_ranges(c, t, key, v, err, errlen) < 0)
                goto fail;
            continue;
        }
        if (strcmp(key, "allow_ports") == 0) {
            if (load_ports(c, t, v, err, errlen) < 0)
                goto fail;
            continue;
        }
        if (strcmp(key, "ca_file") == 0) {
            if (load_ca_file(c, t, v, dir, err, errlen) < 0)
                goto fail;
            continue;
        }
        for (i = 0; i < N_NUMBERS; i++) {
            if (strcmp(key, NUMBERS[i].key) != 0)
                continue;
            known = 1;
            if (!json_is_integer(v) || json_integer_value(v) < NUMBERS[i].min ||
                json_integer_value(v) > NUMBERS[i].max) {
                snprintf(err, errlen, "%s: `%s.%s` must be a whole number of %s from %lld "
                         "to %lld", t->file, t->name, key, NUMBERS[i].unit, NUMBERS[i].min,
                         NUMBERS[i].max);
                goto fail;
            }
            *number(c, i) = json_integer_value(v);
            c->set |= 1u << i;
        }
        if (!known) {
            snprintf(err, errlen, "%s: unknown key `%s.%s`; the keys are allow, deny, "
                     "allow_ports, timeout_ms, connect_timeout_ms, max_response_bytes, "
                     "max_connections%s (see docs/bindings/fetch.md)", t->file, t->name, key,
                     t->operator ? "" : " and ca_file");
            goto fail;
        }
    }
    return 0;
fail:
    thaw_egress_config_free(c);
    return -1;
}

static json_t *worker_table(json_t *config)
{
    json_t *thaw = json_object_get(config, "thaw");

    return json_is_object(thaw) ? json_object_get(thaw, "egress") : NULL;
}

int thaw_egress_operator_load(struct thaw_egress_config *c, const struct thaw_policy *policy,
                              char *err, size_t errlen)
{
    struct table t = {policy && policy->file[0] ? policy->file : "thaw serve --config",
                      "egress", 1};

    return load_table(c, thaw_policy_table(policy, "egress"), &t, NULL, err, errlen);
}

int thaw_egress_config_load(struct thaw_egress_config *c, json_t *config, const char *file,
                            const char *dir, const struct thaw_policy *policy, char *err,
                            size_t errlen)
{
    struct table t = {file, "thaw.egress", 0};
    struct thaw_egress_config op;
    size_t i;

    if (load_table(c, worker_table(config), &t, dir, err, errlen) < 0)
        return -1;
    if (!policy || !policy->tenant)
        return 0; /* thaw dev: the worker's config is the policy */
    if (thaw_egress_operator_load(&op, policy, err, errlen) < 0) {
        thaw_egress_config_free(c);
        return -1;
    }
    /* the intersection: whatever the deploy check let through (or missed,
     * for a worker deployed under an older, wider operator config), the
     * operator's policy bounds every connection and number */
    for (i = 0; i < N_NUMBERS; i++)
        if (!(c->set & (1u << i)) || number_of(&op, i) < *number(c, i))
            *number(c, i) = number_of(&op, i);
    if (thaw_egress_set_outer(c->policy, op.policy, policy->file) < 0) {
        snprintf(err, errlen, "out of memory");
        thaw_egress_config_free(&op);
        thaw_egress_config_free(c);
        return -1;
    }
    op.policy = NULL; /* c->policy owns it now */
    thaw_egress_config_free(&op);
    return 0;
}

/* "in the [egress] table of FILE" for messages about the operator's policy */
static void operator_where(const char *opfile, char *buf, size_t n)
{
    if (opfile && opfile[0])
        snprintf(buf, n, "set by the operator in the [egress] table of %s, thaw serve "
                 "--config", opfile);
    else
        snprintf(buf, n, "set by the operator in the [egress] table of thaw serve "
                 "--config; this server has none, so the default policy applies");
}

int thaw_egress_config_within(const struct thaw_egress_config *op, json_t *config,
                              const char *file, const char *opfile, char *err, size_t errlen)
{
    json_t *tbl = worker_table(config), *v;
    char what[300], where[1200];
    const char *key;
    size_t i;

    operator_where(opfile, where, sizeof(where));
    json_object_foreach(tbl, key, v) {
        if (strcmp(key, "allow") == 0) {
            for (i = 0; i < json_array_size(v); i++) {
                const char *spec = json_string_value(json_array_get(v, i));
                if (spec && thaw_egress_covers(op->policy, spec, what, sizeof(what)) == 0) {
                    snprintf(err, errlen, "%s: thaw.egress.allow \"%s\" is outside this "
                             "server's egress policy: %s (%s)", file, spec, what, where);
                    return -1;
                }
            }
        } else if (strcmp(key, "allow_ports") == 0) {
            for (i = 0; i < json_array_size(v); i++) {
                json_int_t port = json_integer_value(json_array_get(v, i));
                if (port > 0 && port < 65536 && !thaw_egress_port_allowed(op->policy,
                                                                          (int)port)) {
                    snprintf(err, errlen, "%s: thaw.egress.allow_ports %d is outside this "
                             "server's egress policy: port %d is closed on every address "
                             "(%s)", file, (int)port, (int)port, where);
                    return -1;
                }
            }
        } else {
            for (i = 0; i < N_NUMBERS; i++) {
                if (strcmp(key, NUMBERS[i].key) == 0 && json_is_integer(v) &&
                    json_integer_value(v) > number_of(op, i)) {
                    snprintf(err, errlen, "%s: thaw.egress.%s = %lld is over this server's "
                             "ceiling of %lld %s (%s); lower it or remove it", file, key,
                             (long long)json_integer_value(v), number_of(op, i),
                             NUMBERS[i].unit, where);
                    return -1;
                }
            }
        }
    }
    return 0;
}

void thaw_egress_config_free(struct thaw_egress_config *c)
{
    thaw_egress_free(c->policy);
    free(c->ca_file);
    memset(c, 0, sizeof(*c));
}
