/* A node's link to the cluster's Redis ([cluster] redis, docs/scale-out.md):
 * one command connection on the supervisor's loop, shared by the cron
 * leases (lease.c) and tail's publishing (tail.c). Off (every call a no-op
 * or a refusal) when the operator's config names no Redis.
 *
 * The connection is made on the first command and again after it broke.
 * A server that stops answering fails the commands waiting on it after
 * THAW_LINK_TIMEOUT_MS (the connection is dropped): never a hang. */
#ifndef THAW_CLUSTER_LINK_H
#define THAW_CLUSTER_LINK_H

#include <stddef.h>

#include <hiredis/async.h>
#include <uv.h>

#include "bind/kv.h"
#include "cluster/config.h"

#define THAW_LINK_TIMEOUT_MS 5000

struct thaw_cluster_link {
    int on;
    uv_loop_t *loop;
    char node[THAW_CLUSTER_MAX_NODE + 1];
    char prefix[THAW_KV_MAX_PREFIX + 1]; /* of every key: [kv] prefix */
    char url[512];
    struct thaw_kv_redis_url u;
    redisAsyncContext *ac;  /* NULL until connected, and after it broke */
    int pending;            /* commands awaiting their reply */
    uint64_t progress;      /* uv_now of the last reply, or of the first send */
    uv_timer_t timer;       /* the reply timeout's watch */
    char lasterr[256];
};

/* The one link of this process (thaw serve). */
extern struct thaw_cluster_link thaw_cluster;

/* Turns the link on when c names a Redis; prefix is [kv]'s. 0 or -1. */
int thaw_cluster_link_start(uv_loop_t *loop, const struct thaw_cluster_config *c,
                            const char *prefix, char *err, size_t errlen);
/* Shutdown: fails what waits (callbacks get a NULL reply), closes the
 * connections (tail's too) and the timers. */
void thaw_cluster_link_stop(void);

/* Sends a command (redisAsyncCommandArgv's arguments). cb gets the reply,
 * or NULL when the connection broke or timed out (thaw_cluster.lasterr
 * says why). -1 when it cannot be sent: cb is then never called. */
int thaw_cluster_cmd(redisCallbackFn *cb, void *priv, int argc, const char **argv,
                     const size_t *lens);

#endif
