/* The node's command connection to the cluster's Redis (link.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "cluster/lease.h"
#include "cluster/link.h"
#include "cluster/tail.h"
#include "util/log.h"
#include "util/redis-uv.h"

struct thaw_cluster_link thaw_cluster;

/* One command in flight: its caller's callback. */
struct lcmd {
    redisCallbackFn *cb;
    void *priv;
};

static void conn_lost(const redisAsyncContext *ac)
{
    struct thaw_cluster_link *l = &thaw_cluster;

    if (l->ac == ac) {
        if (ac->errstr[0])
            snprintf(l->lasterr, sizeof(l->lasterr), "%s", ac->errstr);
        l->ac = NULL;
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK)
        conn_lost(ac);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    conn_lost(ac);
}

static void on_setup(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;

    if (reply && reply->type == REDIS_REPLY_ERROR)
        snprintf(thaw_cluster.lasterr, sizeof(thaw_cluster.lasterr), "%s", reply->str);
}

static void on_timer(uv_timer_t *t)
{
    struct thaw_cluster_link *l = &thaw_cluster;

    if (l->pending == 0) {
        uv_timer_stop(t);
        return;
    }
    if (l->ac && uv_now(l->loop) - l->progress >= THAW_LINK_TIMEOUT_MS) {
        redisAsyncContext *ac = l->ac;
        snprintf(l->lasterr, sizeof(l->lasterr), "no answer within %d s",
                 THAW_LINK_TIMEOUT_MS / 1000);
        l->ac = NULL;
        redisAsyncFree(ac); /* every waiting callback gets a NULL reply */
    }
}

static int connect_now(struct thaw_cluster_link *l)
{
    redisAsyncContext *ac = thaw_redis_uv_connect(l->loop, &l->u, on_setup, l, l->lasterr,
                                                  sizeof(l->lasterr));

    if (!ac)
        return -1;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    l->lasterr[0] = 0;
    return 0;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct lcmd *c = privdata;
    struct thaw_cluster_link *l = &thaw_cluster;

    l->pending--;
    l->progress = uv_now(l->loop);
    if (!r && ac->errstr[0] && !l->lasterr[0])
        snprintf(l->lasterr, sizeof(l->lasterr), "%s", ac->errstr);
    c->cb(ac, r, c->priv);
    free(c);
}

int thaw_cluster_cmd(redisCallbackFn *cb, void *priv, int argc, const char **argv,
                     const size_t *lens)
{
    struct thaw_cluster_link *l = &thaw_cluster;
    struct lcmd *c;

    if (!l->on)
        return -1;
    if (!l->ac && connect_now(l) < 0)
        return -1;
    if (!(c = calloc(1, sizeof(*c))))
        return -1;
    c->cb = cb;
    c->priv = priv;
    if (redisAsyncCommandArgv(l->ac, on_reply, c, argc, argv, lens) != REDIS_OK) {
        free(c);
        snprintf(l->lasterr, sizeof(l->lasterr), "cannot send");
        return -1;
    }
    if (l->pending++ == 0) {
        l->progress = uv_now(l->loop);
        uv_timer_start(&l->timer, on_timer, 1000, 1000);
    }
    return 0;
}

int thaw_cluster_link_start(uv_loop_t *loop, const struct thaw_cluster_config *c,
                            const char *prefix, char *err, size_t errlen)
{
    struct thaw_cluster_link *l = &thaw_cluster;

    memset(l, 0, sizeof(*l));
    if (!c->on || !c->redis[0])
        return 0;
    if (thaw_kv_redis_parse_url(c->redis, &l->u, err, errlen) < 0)
        return -1;
    l->loop = loop;
    snprintf(l->node, sizeof(l->node), "%s", c->node);
    snprintf(l->prefix, sizeof(l->prefix), "%s", prefix);
    snprintf(l->url, sizeof(l->url), "%s", c->redis);
    uv_timer_init(loop, &l->timer);
    uv_unref((uv_handle_t *)&l->timer);
    l->on = 1;
    thaw_cluster_lease_start();
    thaw_log("cluster: node %s; cron leases, tail and the default KV on Redis at %s",
             l->node, l->url);
    return 0;
}

void thaw_cluster_link_stop(void)
{
    struct thaw_cluster_link *l = &thaw_cluster;

    if (!l->on)
        return;
    /* first the replies still due (their callbacks run with NULL and
     * still find the lease's and tail's state), then that state */
    l->on = 0;
    if (l->ac) {
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        redisAsyncFree(ac);
    }
    thaw_cluster_lease_stop();
    thaw_cluster_tail_stop();
    uv_close((uv_handle_t *)&l->timer, NULL);
}
