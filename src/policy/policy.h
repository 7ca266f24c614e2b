/* The operator's policy for `thaw serve`. Under serve, everything in a
 * worker's bundle (its wrangler config included) is tenant input: it may
 * narrow what the operator allows, never widen it. What the operator
 * allows comes only from serve's command line and its config file
 * (`thaw serve --config /etc/thaw/serve.toml`). thaw dev has no policy
 * (NULL): the developer is the operator and the config is trusted.
 *
 * The config file's tables, each read by the part it configures:
 *   [limits]  ceilings of every worker's limits (src/config/limits.c)
 *   [egress]  the network a worker may reach (src/bind/egress-config.c)
 *   [kv]      KV backend URL and key prefix (src/bind/kv.c)
 *   [routes]  route grants: worker name -> patterns (src/serve/routes.c)
 *   [cluster] this node in a cluster of thaw nodes (src/cluster/config.c)
 *   [durable_objects]  worker name -> the workers whose Durable Object
 *             classes it may bind (src/serve/do-scripts.c)
 * docs/security.md ("thaw serve: tenant and operator") explains the split. */
#ifndef THAW_POLICY_H
#define THAW_POLICY_H

#include <stddef.h>

#include <jansson.h>

struct thaw_policy {
    int tenant;       /* 1: worker configs are tenant input (thaw serve) */
    char file[4096];  /* the operator config read, for messages; "" when none */
    json_t *root;     /* the operator config (an object; empty when none) */
};

/* An empty tenant policy (serve without --config). */
void thaw_policy_init(struct thaw_policy *p);
/* Loads the operator config, already as JSON (TOML goes through the
 * zygote). Unknown tables are an error naming the file and the table.
 * Returns 0, or -1 with a message in err. */
int thaw_policy_load_json(struct thaw_policy *p, const char *json, const char *file,
                          char *err, size_t errlen);
/* The operator's table `name` (borrowed), or NULL when the file has none
 * (or there is no policy: p NULL). */
json_t *thaw_policy_table(const struct thaw_policy *p, const char *name);
void thaw_policy_free(struct thaw_policy *p);

#endif
