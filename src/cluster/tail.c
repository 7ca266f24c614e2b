/* Tail across the cluster's nodes through Redis pub/sub (tail.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "cluster/link.h"
#include "cluster/tail.h"
#include "util/log.h"
#include "util/redis-uv.h"

#define BUCKETS 1024
#define RETRY_MS 1000

struct held {
    struct held *next;
    size_t n;
    char line[];
};

/* What this node knows of one worker's tails; kept until shutdown (one
 * per worker name that logged or was tailed here: small). */
struct tw {
    char name[64];
    int local;            /* tails open on this node */
    int subscribed;       /* SUBSCRIBE sent on the current subscriber */
    int remote;           /* other nodes' subscriptions, at checked_at */
    int checked;          /* remote was ever asked */
    int checking;         /* a PUBSUB NUMSUB in flight */
    uint64_t checked_at;
    struct held *held, **held_tail;
    int n_held;
    struct tw *next;
};

static struct tw *buckets[BUCKETS];
static thaw_cluster_tail_sink sink;
static void *sink_data;
static redisAsyncContext *sub; /* the subscriber connection, while tails are open */
static uv_timer_t retry;
static int retry_init;

static unsigned hash(const char *s)
{
    unsigned h = 5381;

    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h % BUCKETS;
}

static struct tw *tw_get(const char *worker)
{
    unsigned b = hash(worker);
    struct tw *t;

    for (t = buckets[b]; t; t = t->next)
        if (strcmp(t->name, worker) == 0)
            return t;
    if (strlen(worker) >= sizeof(t->name) || !(t = calloc(1, sizeof(*t))))
        return NULL;
    snprintf(t->name, sizeof(t->name), "%s", worker);
    t->held_tail = &t->held;
    t->next = buckets[b];
    buckets[b] = t;
    return t;
}

static void channel(const char *worker, char *out, size_t n)
{
    snprintf(out, n, "%s:tail:%s", thaw_cluster.prefix, worker);
}

static void drop_held(struct tw *t)
{
    while (t->held) {
        struct held *h = t->held;
        t->held = h->next;
        free(h);
    }
    t->held_tail = &t->held;
    t->n_held = 0;
}

static void on_published(redisAsyncContext *ac, void *r, void *privdata)
{
    /* a lost line is a tail's only loss: nothing to undo */
}

/* PUBLISH CHANNEL "NODE\tLINE" */
static void send_line(struct tw *t, const char *line, size_t n)
{
    char chan[160];
    const char *argv[3];
    size_t lens[3], nl = strlen(thaw_cluster.node);
    char *payload = malloc(nl + 1 + n);

    if (!payload)
        return;
    memcpy(payload, thaw_cluster.node, nl);
    payload[nl] = '\t';
    memcpy(payload + nl + 1, line, n);
    channel(t->name, chan, sizeof(chan));
    argv[0] = "PUBLISH";
    argv[1] = chan;
    argv[2] = payload;
    lens[0] = 7;
    lens[1] = strlen(chan);
    lens[2] = nl + 1 + n;
    thaw_cluster_cmd(on_published, NULL, 3, argv, lens); /* hiredis copied it */
    free(payload);
}

static void on_numsub(redisAsyncContext *ac, void *r, void *privdata)
{
    struct tw *t = privdata;
    redisReply *reply = r;
    long long n = 0;

    t->checking = 0;
    t->checked = 1;
    t->checked_at = uv_now(thaw_cluster.loop);
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[1]->type == REDIS_REPLY_INTEGER)
        n = reply->element[1]->integer;
    /* this node's own subscription is not someone else's tail */
    t->remote = (int)(n - (t->subscribed ? 1 : 0));
    if (t->remote > 0)
        for (struct held *h = t->held; h; h = h->next)
            send_line(t, h->line, h->n);
    drop_held(t);
}

static int fresh(const struct tw *t)
{
    return t->checked && uv_now(thaw_cluster.loop) - t->checked_at < THAW_TAIL_CHECK_MS;
}

int thaw_cluster_tail_wanted(const char *worker)
{
    struct tw *t;

    if (!thaw_cluster.on || !(t = tw_get(worker)))
        return 0;
    return !fresh(t) || t->remote > 0;
}

void thaw_cluster_tail_publish(const char *worker, const char *line, size_t n)
{
    struct tw *t;
    struct held *h;
    char chan[160];
    const char *argv[3];

    if (!thaw_cluster.on || !(t = tw_get(worker)))
        return;
    if (fresh(t)) {
        if (t->remote > 0)
            send_line(t, line, n);
        return;
    }
    /* not known: hold the line until Redis says whether anyone listens */
    if (t->n_held < THAW_TAIL_HELD && (h = malloc(sizeof(*h) + n))) {
        h->next = NULL;
        h->n = n;
        memcpy(h->line, line, n);
        *t->held_tail = h;
        t->held_tail = &h->next;
        t->n_held++;
    }
    if (t->checking)
        return;
    channel(worker, chan, sizeof(chan));
    argv[0] = "PUBSUB";
    argv[1] = "NUMSUB";
    argv[2] = chan;
    if (thaw_cluster_cmd(on_numsub, t, 3, argv, NULL) == 0) {
        t->checking = 1;
    } else {
        /* Redis unreachable: other nodes' tails miss these lines; ask
         * again in a second, not at every line */
        t->checked = 1;
        t->checked_at = uv_now(thaw_cluster.loop);
        t->remote = 0;
        drop_held(t);
    }
}

/* ---- the subscriber -------------------------------------------------- */

/* ["message", CHANNEL, "NODE\tLINE"]: to the local tails, unless it is ours */
static void on_message(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    const char *pl, *tab, *worker;
    char pre[96], *buf;
    size_t plen, nlen, llen, k;

    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(reply->element[0]->str, "message") != 0 ||
        reply->element[2]->type != REDIS_REPLY_STRING)
        return;
    snprintf(pre, sizeof(pre), "%s:tail:", thaw_cluster.prefix);
    if (strncmp(reply->element[1]->str, pre, strlen(pre)) != 0)
        return;
    worker = reply->element[1]->str + strlen(pre);
    pl = reply->element[2]->str;
    plen = reply->element[2]->len;
    if (!(tab = memchr(pl, '\t', plen)) || tab[1] != '{')
        return;
    nlen = (size_t)(tab - pl);
    if (nlen == strlen(thaw_cluster.node) && memcmp(pl, thaw_cluster.node, nlen) == 0)
        return; /* our own line: the local tails had it */
    /* {"node":"NAME", + the line after its '{' */
    llen = plen - nlen - 2;
    if (!sink || !(buf = malloc(nlen + llen + 16)))
        return;
    k = (size_t)sprintf(buf, "{\"node\":\"%.*s\",", (int)nlen, pl);
    memcpy(buf + k, tab + 2, llen);
    sink(sink_data, worker, buf, k + llen);
    free(buf);
}

static void subscribe(struct tw *t)
{
    char chan[160];

    channel(t->name, chan, sizeof(chan));
    if (redisAsyncCommand(sub, on_message, NULL, "SUBSCRIBE %s", chan) == REDIS_OK)
        t->subscribed = 1;
}

static void sub_lost(const redisAsyncContext *ac);

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK)
        sub_lost(ac);
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status)
{
    sub_lost(ac);
}

static void on_retry(uv_timer_t *h);

/* The subscriber broke (or never connected): every tail's subscription is
 * gone; try again in a second while tails are open. */
static void sub_lost(const redisAsyncContext *ac)
{
    int b, any = 0;
    struct tw *t;

    if (sub != ac)
        return;
    sub = NULL;
    for (b = 0; b < BUCKETS; b++)
        for (t = buckets[b]; t; t = t->next) {
            t->subscribed = 0;
            any |= t->local > 0;
        }
    if (any && thaw_cluster.on) {
        thaw_log("cluster tail: the subscriber's connection to Redis at %s broke (%s); "
                 "other nodes' lines pause until it is back", thaw_cluster.url,
                 ac->errstr[0] ? ac->errstr : "closed");
        uv_timer_start(&retry, on_retry, RETRY_MS, 0);
    }
}

static int sub_connect(void)
{
    char err[256];
    int b;
    struct tw *t;

    if (sub)
        return 0;
    if (!retry_init) {
        uv_timer_init(thaw_cluster.loop, &retry);
        uv_unref((uv_handle_t *)&retry);
        retry_init = 1;
    }
    if (!(sub = thaw_redis_uv_connect(thaw_cluster.loop, &thaw_cluster.u, NULL, NULL, err,
                                      sizeof(err)))) {
        uv_timer_start(&retry, on_retry, RETRY_MS, 0);
        return -1;
    }
    redisAsyncSetConnectCallback(sub, on_sub_connect);
    redisAsyncSetDisconnectCallback(sub, on_sub_disconnect);
    for (b = 0; b < BUCKETS; b++)
        for (t = buckets[b]; t; t = t->next)
            if (t->local > 0)
                subscribe(t);
    return 0;
}

static void on_retry(uv_timer_t *h)
{
    if (thaw_cluster.on)
        sub_connect();
}

void thaw_cluster_tail_watch(const char *worker, int delta)
{
    struct tw *t;
    char chan[160];

    if (!thaw_cluster.on || !(t = tw_get(worker)))
        return;
    t->local += delta;
    if (t->local > 0 && !t->subscribed) {
        if (!sub)
            sub_connect(); /* subscribes every watched worker, t too */
        else
            subscribe(t);
    } else if (t->local <= 0 && t->subscribed) {
        t->local = 0;
        t->subscribed = 0;
        channel(t->name, chan, sizeof(chan));
        if (sub)
            redisAsyncCommand(sub, on_message, NULL, "UNSUBSCRIBE %s", chan);
    }
}

void thaw_cluster_tail_set_sink(thaw_cluster_tail_sink s, void *data)
{
    sink = s;
    sink_data = data;
}

void thaw_cluster_tail_stop(void)
{
    int b;

    if (sub) {
        redisAsyncContext *ac = sub;
        sub = NULL;
        redisAsyncFree(ac);
    }
    if (retry_init) {
        uv_close((uv_handle_t *)&retry, NULL);
        retry_init = 0;
    }
    for (b = 0; b < BUCKETS; b++)
        while (buckets[b]) {
            struct tw *t = buckets[b];
            buckets[b] = t->next;
            drop_held(t);
            free(t);
        }
}
