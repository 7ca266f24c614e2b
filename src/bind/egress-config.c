/* The [thaw.egress] table: the policy's allow list and the limits of
 * outbound requests, one table of keys (STYLE.md habit 10). */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind/egress.h"

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

static int load_allow(struct thaw_egress_config *c, json_t *allow, const char *file,
                      char *err, size_t errlen)
{
    char why[400];
    size_t i;

    if (!json_is_array(allow)) {
        snprintf(err, errlen, "%s: `thaw.egress.allow` must be a list of address ranges, "
                 "like allow = [\"127.0.0.0/8\", \"::1\"]", file);
        return -1;
    }
    for (i = 0; i < json_array_size(allow); i++) {
        json_t *v = json_array_get(allow, i);
        if (!json_is_string(v)) {
            snprintf(err, errlen, "%s: `thaw.egress.allow` item %zu is not a string; write "
                     "ranges as strings, like \"127.0.0.0/8\"", file, i + 1);
            return -1;
        }
        if (thaw_egress_allow(c->policy, json_string_value(v), why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s: `thaw.egress.allow`: %s", file, why);
            return -1;
        }
    }
    return 0;
}

static int load_ports(struct thaw_egress_config *c, json_t *ports, const char *file,
                      char *err, size_t errlen)
{
    char why[200];
    size_t i;

    if (!json_is_array(ports)) {
        snprintf(err, errlen, "%s: `thaw.egress.allow_ports` must be a list of port "
                 "numbers, like allow_ports = [25]", file);
        return -1;
    }
    for (i = 0; i < json_array_size(ports); i++) {
        json_t *v = json_array_get(ports, i);
        if (!json_is_integer(v) ||
            thaw_egress_allow_port(c->policy, (int)(json_integer_value(v) > 65535 ? -1 :
                                   json_integer_value(v)), why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s: `thaw.egress.allow_ports` item %zu is not a port "
                     "number from 1 to 65535; write it like allow_ports = [25]", file, i + 1);
            return -1;
        }
    }
    return 0;
}

int thaw_egress_config_load(struct thaw_egress_config *c, json_t *config, const char *file,
                            const char *dir, char *err, size_t errlen)
{
    json_t *thaw = json_object_get(config, "thaw");
    json_t *tbl = json_is_object(thaw) ? json_object_get(thaw, "egress") : NULL;
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
        snprintf(err, errlen, "%s: `thaw.egress` must be a table ([thaw.egress] in TOML, "
                 "\"thaw\": {\"egress\": {...}} in JSON)", file);
        goto fail;
    }
    json_object_foreach(tbl, key, v) {
        int known = 0;
        if (strcmp(key, "allow") == 0) {
            if (load_allow(c, v, file, err, errlen) < 0)
                goto fail;
            continue;
        }
        if (strcmp(key, "allow_ports") == 0) {
            if (load_ports(c, v, file, err, errlen) < 0)
                goto fail;
            continue;
        }
        if (strcmp(key, "ca_file") == 0) {
            const char *s = json_string_value(v);
            char path[PATH_MAX];
            if (!s || !*s) {
                snprintf(err, errlen, "%s: `thaw.egress.ca_file` must be the path of a PEM "
                         "file of CA certificates", file);
                goto fail;
            }
            if (s[0] == '/' || !dir)
                snprintf(path, sizeof(path), "%s", s);
            else
                snprintf(path, sizeof(path), "%s/%s", dir, s);
            free(c->ca_file);
            c->ca_file = strdup(path);
            continue;
        }
        for (i = 0; i < N_NUMBERS; i++) {
            if (strcmp(key, NUMBERS[i].key) != 0)
                continue;
            known = 1;
            if (!json_is_integer(v) || json_integer_value(v) < NUMBERS[i].min ||
                json_integer_value(v) > NUMBERS[i].max) {
                snprintf(err, errlen, "%s: `thaw.egress.%s` must be a whole number of %s "
                         "from %lld to %lld", file, key, NUMBERS[i].unit, NUMBERS[i].min,
                         NUMBERS[i].max);
                goto fail;
            }
            *number(c, i) = json_integer_value(v);
        }
        if (!known) {
            snprintf(err, errlen, "%s: unknown key `thaw.egress.%s`; the keys are allow, "
                     "allow_ports, timeout_ms, connect_timeout_ms, max_response_bytes, "
                     "max_connections and ca_file (see docs/bindings/fetch.md)", file, key);
            goto fail;
        }
    }
    return 0;
fail:
    thaw_egress_config_free(c);
    return -1;
}

void thaw_egress_config_free(struct thaw_egress_config *c)
{
    thaw_egress_free(c->policy);
    free(c->ca_file);
    memset(c, 0, sizeof(*c));
}
