/* Cron leases in Redis (lease.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "cluster/lease.h"
#include "cluster/link.h"
#include "cron/sched.h"
#include "util/log.h"

/* One claim waiting for Redis's answer. */
struct claim {
    void (*done)(void *arg, int fire);
    void *arg;
    char what[256]; /* worker, cron and time, for the log */
};

static void on_set(redisAsyncContext *ac, void *r, void *privdata)
{
    struct claim *c = privdata;
    redisReply *reply = r;
    int fire = 0;

    if (!reply && !thaw_cluster.on) {
        /* shutting down: the other nodes fire it */
    } else if (!reply) {
        thaw_log("cron %s: not fired: the cluster's Redis at %s is unreachable (%s); no "
                 "node can take the lease", c->what, thaw_cluster.url,
                 thaw_cluster.lasterr[0] ? thaw_cluster.lasterr : "connection lost");
    } else if (reply->type == REDIS_REPLY_ERROR) {
        thaw_log("cron %s: not fired: Redis at %s refused the lease: %s", c->what,
                 thaw_cluster.url, reply->str);
    } else {
        /* "OK": ours; nil: another node set it first and fires it */
        fire = reply->type == REDIS_REPLY_STATUS;
    }
    c->done(c->arg, fire);
    free(c);
}

static void lease_claim(const char *worker, const char *cron, int64_t scheduled_ms,
                        void (*done)(void *arg, int fire), void *arg)
{
    struct claim *c = calloc(1, sizeof(*c));
    char key[1024], ttl[24];
    const char *argv[6];

    if (!c) {
        done(arg, 0);
        return;
    }
    c->done = done;
    c->arg = arg;
    snprintf(c->what, sizeof(c->what), "\"%s\" of %s at %lld", cron, worker,
             (long long)scheduled_ms);
    snprintf(key, sizeof(key), "%s:cron:%s:%lld:%s", thaw_cluster.prefix, worker,
             (long long)scheduled_ms, cron);
    snprintf(ttl, sizeof(ttl), "%d", THAW_LEASE_TTL_MS);
    argv[0] = "SET";
    argv[1] = key;
    argv[2] = thaw_cluster.node;
    argv[3] = "NX";
    argv[4] = "PX";
    argv[5] = ttl;
    if (thaw_cluster_cmd(on_set, c, 6, argv, NULL) < 0) {
        thaw_log("cron %s: not fired: the cluster's Redis at %s is unreachable (%s)",
                 c->what, thaw_cluster.url,
                 thaw_cluster.lasterr[0] ? thaw_cluster.lasterr : "cannot send");
        free(c);
        done(arg, 0);
    }
}

void thaw_cluster_lease_start(void)
{
    thaw_cron_set_claim(lease_claim, thaw_cluster.node);
}

/* After the link stopped (shutdown), no event may fire here without its
 * lease: the other nodes fire them. */
static void refuse(const char *worker, const char *cron, int64_t scheduled_ms,
                   void (*done)(void *arg, int fire), void *arg)
{
    done(arg, 0);
}

void thaw_cluster_lease_stop(void)
{
    thaw_cron_set_claim(refuse, thaw_cluster.node);
}
