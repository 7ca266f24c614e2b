/* Where KV data lives under thaw serve: the operator's [kv] table.
 *
 *     [kv]
 *     backend = "redis://127.0.0.1:6379/0"   # default "sqlite"
 *     prefix = "thaw"                        # of every Redis key
 *
 * A backend is a network target the supervisor connects to, so it is the
 * operator's to choose, not the tenant's: a worker's `[thaw.kv] backend` or
 * a namespace's `backend` may only name "sqlite" (the worker's own files)
 * or repeat the operator's backend; anything else refuses the deploy.
 * Redis keys carry the prefix and the worker's name, so two workers naming
 * the same namespace id never share data (kv-redis.c).
 *
 * In a cluster (docs/scale-out.md) KV must be shared by every node: when
 * [kv] names no backend, the [cluster] table's `redis` is the default. */
#include <stdio.h>
#include <string.h>

#include "bind/kv.h"
#include "policy/policy.h"
#include "util/idname.h"

static const char *opfile(const struct thaw_policy *policy)
{
    return policy && policy->file[0] ? policy->file : "thaw serve --config";
}

static int prefix_ok(const char *s)
{
    return thaw_plain_name(s, THAW_KV_MAX_PREFIX);
}

int thaw_kv_policy_load(struct thaw_kv_policy *kp, const struct thaw_policy *policy,
                        char *err, size_t errlen)
{
    json_t *tbl = thaw_policy_table(policy, "kv"), *v;
    const char *key;
    const char *cluster_redis =
        json_string_value(json_object_get(thaw_policy_table(policy, "cluster"), "redis"));
    struct thaw_kv_redis_url u;
    char why[256];

    snprintf(kp->backend, sizeof(kp->backend), "sqlite");
    /* (cluster/config.c checks the URL and refuses a bad one at start) */
    if (cluster_redis && strlen(cluster_redis) < sizeof(kp->backend) &&
        thaw_kv_redis_parse_url(cluster_redis, &u, why, sizeof(why)) == 0)
        snprintf(kp->backend, sizeof(kp->backend), "%s", cluster_redis);
    snprintf(kp->prefix, sizeof(kp->prefix), "thaw");
    json_object_foreach(tbl, key, v) {
        const char *s = json_string_value(v);
        if (strcmp(key, "backend") == 0) {
            struct thaw_kv_redis_url u;
            char why[256];
            if (!s || (strcmp(s, "sqlite") != 0 &&
                       (strlen(s) >= sizeof(kp->backend) ||
                        thaw_kv_redis_parse_url(s, &u, why, sizeof(why)) < 0))) {
                snprintf(err, errlen, "%s: `kv.backend` must be \"sqlite\" or "
                         "\"redis://[:PASSWORD@]HOST[:PORT][/DB]\"%s%s", opfile(policy),
                         s && strncmp(s, "redis://", 8) == 0 ? ": " : "",
                         s && strncmp(s, "redis://", 8) == 0 ? why : "");
                return -1;
            }
            snprintf(kp->backend, sizeof(kp->backend), "%s", s);
        } else if (strcmp(key, "prefix") == 0) {
            if (!s || !prefix_ok(s)) {
                snprintf(err, errlen, "%s: `kv.prefix` must be 1 to %d letters, digits, "
                         "'-', '_' or '.' (it starts every Redis key: PREFIX:kv:WORKER:ID)",
                         opfile(policy), THAW_KV_MAX_PREFIX);
                return -1;
            }
            snprintf(kp->prefix, sizeof(kp->prefix), "%s", s);
        } else {
            snprintf(err, errlen, "%s: unknown key `kv.%s`; the keys of [kv] are backend "
                     "and prefix (see docs/bindings/kv.md)", opfile(policy), key);
            return -1;
        }
    }
    return 0;
}

int thaw_kv_policy_offers(const struct thaw_kv_policy *kp, const char *backend)
{
    return strcmp(backend, "sqlite") == 0 || strcmp(backend, kp->backend) == 0;
}

void thaw_kv_policy_refusal(const struct thaw_kv_policy *kp, const struct thaw_policy *policy,
                            const char *file, const char *key, const char *backend,
                            char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s \"%s\" is not a KV backend this server offers: KV "
             "backends are set by the operator (`backend` in the [kv] table of %s); this "
             "server offers \"sqlite\"%s. Remove `backend` to use the server's default",
             file, key, backend, opfile(policy),
             strcmp(kp->backend, "sqlite") != 0 ? " and the operator's Redis" : "");
}

int thaw_kv_tenant_check(const struct thaw_policy *policy, json_t *config, const char *file,
                         char *err, size_t errlen)
{
    json_t *list = json_object_get(config, "kv_namespaces");
    json_t *dflt = json_object_get(json_object_get(json_object_get(config, "thaw"), "kv"),
                                   "backend");
    struct thaw_kv_policy kp;
    char key[64];
    size_t i;

    if (thaw_kv_policy_load(&kp, policy, err, errlen) < 0)
        return 500; /* serve checks the operator's config when it starts */
    if (json_is_string(dflt) && !thaw_kv_policy_offers(&kp, json_string_value(dflt))) {
        thaw_kv_policy_refusal(&kp, policy, file, "thaw.kv.backend", json_string_value(dflt),
                               err, errlen);
        return 403;
    }
    for (i = 0; i < json_array_size(list); i++) {
        json_t *b = json_object_get(json_array_get(list, i), "backend");
        if (json_is_string(b) && !thaw_kv_policy_offers(&kp, json_string_value(b))) {
            snprintf(key, sizeof(key), "kv_namespaces[%zu].backend", i);
            thaw_kv_policy_refusal(&kp, policy, file, key, json_string_value(b), err,
                                   errlen);
            return 403;
        }
    }
    return 0;
}
