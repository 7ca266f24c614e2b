/* A thaw cluster (docs/scale-out.md): the operator's [cluster] table.
 *
 *     [cluster]
 *     node = "n1"                           # this node's name in the cluster
 *     control = "postgresql:///thaw?host=/run/postgresql"   # deployments
 *     redis = "redis://127.0.0.1:6379/0"    # cron leases, tail, default KV
 *     internal = "127.0.0.1:9101"           # where other nodes reach this one (IP:PORT)
 *
 * Every node of one cluster names the same control store and Redis; each
 * has its own node name and internal address. The shared secret of the
 * internal port is THAW_CLUSTER_SECRET (not in a file that gets copied
 * around). Without the table, serve is one machine as before. */
#ifndef THAW_CLUSTER_CONFIG_H
#define THAW_CLUSTER_CONFIG_H

#include <stddef.h>

struct thaw_policy;

#define THAW_CLUSTER_MAX_NODE 63

struct thaw_cluster_config {
    int on;              /* the operator's config has a [cluster] table */
    char node[THAW_CLUSTER_MAX_NODE + 1];
    char control[1024];  /* "" or a postgresql:// (postgres://) URL */
    char redis[512];     /* "" or a redis:// URL */
    char internal[128];  /* "" or IP:PORT ([v6]:PORT) */
};

/* Reads and checks the [cluster] table (absent: on = 0). A missing `node`
 * is the host's name. 0, or -1 with a message naming the file and key. */
int thaw_cluster_config_load(struct thaw_cluster_config *c, const struct thaw_policy *p,
                             char *err, size_t errlen);

#endif
