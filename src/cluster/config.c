/* The operator's [cluster] table (cluster/config.h). The table is the
 * operator's alone: a worker's bundle cannot name a cluster, a control
 * store or another node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <libpq-fe.h>

#include "bind/kv.h"
#include "cluster/config.h"
#include "policy/policy.h"
#include "util/idname.h"

static const char *opfile(const struct thaw_policy *p)
{
    return p && p->file[0] ? p->file : "thaw serve --config";
}

static int name_ok(const char *s)
{
    return thaw_plain_name(s, THAW_CLUSTER_MAX_NODE);
}

/* IP:PORT with a port of 1..65535 (the IP may be [v6]): the internal
 * port listens there, and the other nodes connect to it as written, so
 * it is an address, not a name to resolve. */
static int hostport_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    char host[INET6_ADDRSTRLEN + 2], *end;
    unsigned char a[16];
    size_t n;
    long port;

    if (!colon || colon == s || (n = (size_t)(colon - s)) >= sizeof(host))
        return 0;
    memcpy(host, s, n);
    host[n] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || port <= 0 || port >= 65536)
        return 0;
    if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
        host[n - 1] = '\0';
        return inet_pton(AF_INET6, host + 1, a) == 1;
    }
    return inet_pton(AF_INET, host, a) == 1;
}

/* What libpq itself would refuse (an unknown parameter, a bad port),
 * said at start rather than at every reconnect. */
static int control_unparsable(const char *url, char *err, size_t errlen,
                              const struct thaw_policy *p)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &why);

    if (opts) {
        PQconninfoFree(opts);
        return 0;
    }
    snprintf(err, errlen, "%s: `cluster.control` is not a URL libpq takes: %s", opfile(p),
             why ? why : "out of memory");
    err[strcspn(err, "\n")] = '\0';
    PQfreemem(why);
    return -1;
}

static int set(char *dst, size_t n, const char *s)
{
    if (strlen(s) >= n)
        return -1;
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

int thaw_cluster_config_load(struct thaw_cluster_config *c, const struct thaw_policy *p,
                             char *err, size_t errlen)
{
    json_t *tbl = thaw_policy_table(p, "cluster"), *v;
    const char *key;

    memset(c, 0, sizeof(*c));
    if (!tbl)
        return 0;
    c->on = 1;
    json_object_foreach(tbl, key, v) {
        const char *s = json_string_value(v);
        int ok = s != NULL;
        const char *want = "";

        if (strcmp(key, "node") == 0) {
            ok = ok && name_ok(s) && set(c->node, sizeof(c->node), s) == 0;
            want = "1 to 63 letters, digits, '-', '_' or '.', unique in the cluster";
        } else if (strcmp(key, "control") == 0) {
            ok = ok && (strncmp(s, "postgresql://", 13) == 0 ||
                        strncmp(s, "postgres://", 11) == 0) &&
                 set(c->control, sizeof(c->control), s) == 0;
            want = "a PostgreSQL URL, postgresql://[USER[:PASSWORD]@][HOST][:PORT]/DB[?host=SOCKETDIR]";
            if (ok && control_unparsable(s, err, errlen, p))
                return -1;
        } else if (strcmp(key, "redis") == 0) {
            struct thaw_kv_redis_url u;
            char why[256];
            ok = ok && thaw_kv_redis_parse_url(s, &u, why, sizeof(why)) == 0 &&
                 set(c->redis, sizeof(c->redis), s) == 0;
            want = "redis://[:PASSWORD@]HOST[:PORT][/DB]";
        } else if (strcmp(key, "internal") == 0) {
            ok = ok && hostport_ok(s) && set(c->internal, sizeof(c->internal), s) == 0;
            want = "IP:PORT (an address, not a host name: this node listens there and the "
                   "others connect to it as written), where the other nodes reach this one";
        } else {
            snprintf(err, errlen, "%s: unknown key `cluster.%s`; the keys of [cluster] are "
                     "node, control, redis and internal (see docs/scale-out.md)",
                     opfile(p), key);
            return -1;
        }
        if (!ok) {
            snprintf(err, errlen, "%s: `cluster.%s` must be %s", opfile(p), key, want);
            return -1;
        }
    }
    if (!c->node[0]) {
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        if (!name_ok(host)) {
            snprintf(err, errlen, "%s: [cluster] has no `node`, and the host's name \"%s\" "
                     "cannot be one: set `cluster.node`", opfile(p), host);
            return -1;
        }
        set(c->node, sizeof(c->node), host);
    }
    return 0;
}
