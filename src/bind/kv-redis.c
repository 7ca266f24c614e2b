/* KV on Redis (hiredis, asynchronous on the libuv loop), for several thaw
 * nodes sharing one namespace.
 *
 * Layout, for the keyspace K of a namespace (kv.c: "thaw:kv:ID" in thaw
 * dev, "PREFIX:kv:WORKER:ID" under thaw serve):
 *   K:v:NAME   a hash {v: value, m: metadata JSON, e: expiration}, with
 *              Redis's own expiry (EXPIREAT) when e is set
 *   K:index    a sorted set of every NAME at score 0, so list() walks
 *              names in byte order (ZRANGEBYLEX)
 * put, delete and list are Lua scripts, so each is atomic; list drops the
 * index entries of names whose hash has expired as it meets them.
 *
 * The connection is made on the first call and again after it broke. A
 * server that stops answering fails the calls waiting on it after
 * REPLY_TIMEOUT_MS (the connection is dropped), never hangs them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "bind/kv.h"
#include "util/log.h"
#include "util/redis-uv.h"

#define REPLY_TIMEOUT_MS 10000
#define LIST_BATCH "256"

static const char PUT_LUA[] =
    "redis.call('DEL', KEYS[1])\n"
    "local f = {'v', ARGV[2]}\n"
    "if ARGV[3] ~= '' then f[#f+1] = 'm'; f[#f+1] = ARGV[3] end\n"
    "if ARGV[4] ~= '' then f[#f+1] = 'e'; f[#f+1] = ARGV[4] end\n"
    "redis.call('HSET', KEYS[1], unpack(f))\n"
    "if ARGV[4] ~= '' then redis.call('EXPIREAT', KEYS[1], ARGV[4]) end\n"
    "redis.call('ZADD', KEYS[2], 0, ARGV[1])\n"
    "return 1\n";

static const char DELETE_LUA[] =
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "return 1\n";

/* KEYS[1] index; ARGV: hash key prefix, ZRANGEBYLEX start, name prefix,
 * limit, now. Returns {complete, name, metadata, expiration, ...}. */
static const char LIST_LUA[] =
    "local start, prefix = ARGV[2], ARGV[3]\n"
    "local limit, now = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local out = {0}\n"
    "local n = 0\n"
    "while true do\n"
    "  local batch = redis.call('ZRANGEBYLEX', KEYS[1], start, '+', 'LIMIT', 0, " LIST_BATCH ")\n"
    "  if #batch == 0 then out[1] = 1; return out end\n"
    "  for _, name in ipairs(batch) do\n"
    "    if string.sub(name, 1, #prefix) ~= prefix then out[1] = 1; return out end\n"
    "    local h = redis.call('HMGET', ARGV[1] .. name, 'v', 'm', 'e')\n"
    "    if not h[1] then\n"
    "      redis.call('ZREM', KEYS[1], name)\n"
    "    elseif not h[3] or tonumber(h[3]) > now then\n"
    "      if n == limit then return out end\n"
    "      out[#out+1] = name; out[#out+1] = h[2] or ''; out[#out+1] = h[3] or ''\n"
    "      n = n + 1\n"
    "    end\n"
    "    start = '(' .. name\n"
    "  end\n"
    "end\n";

struct rstore {
    uv_loop_t *loop;
    char *url;
    char *ns;
    char *keyspace;  /* thaw:kv:NS, or PREFIX:kv:WORKER:NS */
    char *hprefix;   /* KEYSPACE:v: */
    char *index;     /* KEYSPACE:index */
    struct thaw_kv_redis_url u;
    redisAsyncContext *ac; /* NULL until connected, and after it broke */
    int pending;           /* commands of requests awaiting their reply */
    uint64_t progress;     /* uv_now of the last reply, or of the first send */
    uv_timer_t timer;
    char lasterr[256];
    int legacy_checked;    /* looked for data under the old layout once */
    int refs;
    struct rstore *next;
};

static struct rstore *registry;

/* One request: its commands answer into it. */
struct rop {
    struct rstore *s;
    struct thaw_kv_req *req;
    int outstanding;
    char **hkeys;        /* GET: one hash key per name */
};

struct rcmd {
    struct rop *op;
    size_t idx;
};

/* ---- URL --------------------------------------------------------------------- */

int thaw_kv_redis_parse_url(const char *url, struct thaw_kv_redis_url *out,
                            char *err, size_t errlen)
{
    const char *p = url + strlen("redis://"), *at, *slash, *colon, *hostend;
    char *end;
    long n;

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "it does not start with redis://");
        return -1;
    }
    slash = strchr(p, '/');
    hostend = slash ? slash : p + strlen(p);
    at = memchr(p, '@', (size_t)(hostend - p));
    if (at) {
        /* [user]:password@ : only the password is used (AUTH) */
        const char *pc = memchr(p, ':', (size_t)(at - p));
        const char *pw = pc ? pc + 1 : p;
        if ((size_t)(at - pw) >= sizeof(out->password)) {
            snprintf(err, errlen, "the password is too long");
            return -1;
        }
        memcpy(out->password, pw, (size_t)(at - pw));
        p = at + 1;
    }
    colon = memchr(p, ':', (size_t)(hostend - p));
    if ((colon ? colon : hostend) == p ||
        (size_t)((colon ? colon : hostend) - p) >= sizeof(out->host)) {
        snprintf(err, errlen, "no host");
        return -1;
    }
    memcpy(out->host, p, (size_t)((colon ? colon : hostend) - p));
    if (colon) {
        errno = 0;
        n = strtol(colon + 1, &end, 10);
        if (end != hostend || colon + 1 == hostend || n < 1 || n > 65535) {
            snprintf(err, errlen, "the port is not a number from 1 to 65535");
            return -1;
        }
        out->port = (int)n;
    }
    if (slash && slash[1]) {
        n = strtol(slash + 1, &end, 10);
        if (*end || n < 0 || n > 1000000) {
            snprintf(err, errlen, "the database (after the /) is not a number");
            return -1;
        }
        out->db = (int)n;
    }
    return 0;
}

/* ---- connection ------------------------------------------------------------- */

static void op_fail(struct rop *op, const char *errclass, const char *fmt, const char *detail)
{
    struct thaw_kv_req *r = op->req;

    if (r->errclass)
        return; /* the first failure says it */
    r->errclass = errclass;
    snprintf(r->errmsg, sizeof(r->errmsg), fmt, op->s->ns, op->s->url, detail);
}

static void conn_lost(struct rstore *s, const redisAsyncContext *ac)
{
    if (s->ac == ac) {
        if (ac->errstr[0])
            snprintf(s->lasterr, sizeof(s->lasterr), "%s", ac->errstr);
        s->ac = NULL;
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK)
        conn_lost(ac->data, ac);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    conn_lost(ac->data, ac);
}

/* Answers of AUTH and SELECT: a failure shows in the calls' errors too
 * (NOAUTH, or data in the wrong database), so only log-worthy here. */
static void on_setup(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rstore *s = ac->data;
    redisReply *reply = r;

    if (reply && reply->type == REDIS_REPLY_ERROR)
        snprintf(s->lasterr, sizeof(s->lasterr), "%s", reply->str);
}

/* thaw serve once kept keys as thaw:kv:ID like thaw dev; since keys carry
 * the worker (PREFIX:kv:WORKER:ID) such data is not read any more. It is
 * not moved here (any worker could name that id and claim it): the log
 * tells the operator it is there, and docs/bindings/kv.md how to move it. */
static void on_legacy(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rstore *s = ac->data;
    redisReply *reply = r;

    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
        thaw_log("KV namespace \"%s\": Redis at %s holds data under thaw's old key layout "
                 "(thaw:kv:%s:...), which is not read any more: keys are now %s:...; move "
                 "it to the worker that owns it as docs/bindings/kv.md says", s->ns, s->url,
                 s->ns, s->keyspace);
}

static void on_timer(uv_timer_t *t)
{
    struct rstore *s = t->data;

    if (s->pending == 0) {
        uv_timer_stop(t);
        return;
    }
    if (s->ac && uv_now(s->loop) - s->progress >= REPLY_TIMEOUT_MS) {
        redisAsyncContext *ac = s->ac;
        snprintf(s->lasterr, sizeof(s->lasterr), "no answer within %d s",
                 REPLY_TIMEOUT_MS / 1000);
        s->ac = NULL;
        /* runs every waiting callback with a NULL reply: their calls fail */
        redisAsyncFree(ac);
    }
}

static int connect_now(struct rstore *s)
{
    char old[300];
    redisAsyncContext *ac = thaw_redis_uv_connect(s->loop, &s->u, on_setup, s, s->lasterr,
                                                  sizeof(s->lasterr));

    if (!ac)
        return -1;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    s->ac = ac;
    s->lasterr[0] = 0;
    snprintf(old, sizeof(old), "thaw:kv:%s", s->ns);
    if (!s->legacy_checked && strcmp(s->keyspace, old) != 0)
        redisAsyncCommand(ac, on_legacy, NULL, "EXISTS %s:index", old);
    s->legacy_checked = 1;
    return 0;
}

/* ---- requests ------------------------------------------------------------------- */

static void op_finish(struct rop *op)
{
    struct thaw_kv_req *req = op->req;
    size_t i;

    for (i = 0; op->hkeys && i < req->n_keys; i++)
        free(op->hkeys[i]);
    free(op->hkeys);
    free(op);
    req->done(req);
}

static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static void fill_get(struct rop *op, size_t idx, redisReply *r)
{
    struct thaw_kv_item *it = &op->req->items[idx];
    long long e;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return; /* no such key */
    e = r->element[2]->type == REDIS_REPLY_STRING ? atoll(r->element[2]->str) : 0;
    if (e && e <= op->req->now)
        return; /* expired, Redis has yet to drop it */
    it->found = 1;
    it->len = r->element[0]->len;
    if (it->len && !(it->value = dup_n(r->element[0]->str, it->len)))
        op_fail(op, "MemoryError", "KV namespace \"%s\" (%s): %s", "out of memory");
    if (r->element[1]->type == REDIS_REPLY_STRING)
        it->metadata = dup_n(r->element[1]->str, r->element[1]->len);
    it->expiration = e;
}

static void fill_list(struct rop *op, redisReply *r)
{
    struct thaw_kv_req *req = op->req;
    size_t i;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        op_fail(op, "OSError", "KV namespace \"%s\": Redis at %s: %s",
                "unexpected answer to list");
        return;
    }
    req->complete = r->element[0]->integer == 1;
    req->items = calloc((r->elements - 1) / 3 + 1, sizeof(*req->items));
    for (i = 1; req->items && i + 2 < r->elements; i += 3) {
        struct thaw_kv_item *it = &req->items[req->n_items++];
        it->found = 1;
        it->name = dup_n(r->element[i]->str, r->element[i]->len);
        if (r->element[i + 1]->len)
            it->metadata = dup_n(r->element[i + 1]->str, r->element[i + 1]->len);
        if (r->element[i + 2]->len)
            it->expiration = atoll(r->element[i + 2]->str);
    }
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct rcmd *cmd = privdata;
    struct rop *op = cmd->op;
    struct rstore *s = op->s;
    redisReply *reply = r;

    s->pending--;
    s->progress = uv_now(s->loop);
    if (!reply) {
        /* the connection broke or timed out: ac->errstr says why */
        const char *why = ac->errstr[0] ? ac->errstr : s->lasterr[0] ? s->lasterr
                          : "connection lost";
        op_fail(op, "ConnectionError", "KV namespace \"%s\": Redis at %s is unreachable: %s",
                why);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        op_fail(op, "OSError", "KV namespace \"%s\": Redis at %s answered: %s", reply->str);
    } else if (op->req->op == THAW_KV_GET) {
        fill_get(op, cmd->idx, reply);
    } else if (op->req->op == THAW_KV_LIST) {
        fill_list(op, reply);
    }
    free(cmd);
    if (--op->outstanding == 0)
        op_finish(op);
}

/* Queues one command of op; on failure op is failed (and finished when it
 * had nothing else outstanding). */
static int send_cmd(struct rop *op, size_t idx, int argc, const char **argv,
                    const size_t *lens)
{
    struct rstore *s = op->s;
    struct rcmd *cmd = calloc(1, sizeof(*cmd));

    if (!cmd || !s->ac ||
        redisAsyncCommandArgv(s->ac, on_reply, cmd, argc, argv, lens) != REDIS_OK) {
        free(cmd);
        op_fail(op, "ConnectionError", "KV namespace \"%s\": Redis at %s is unreachable: %s",
                s->lasterr[0] ? s->lasterr : "cannot send");
        return -1;
    }
    cmd->op = op;
    cmd->idx = idx;
    op->outstanding++;
    if (s->pending++ == 0) {
        s->progress = uv_now(s->loop);
        uv_timer_start(&s->timer, on_timer, 1000, 1000);
    }
    return 0;
}

static char *hkey(struct rstore *s, const char *name)
{
    size_t a = strlen(s->hprefix), b = strlen(name);
    char *k = malloc(a + b + 1);

    if (k) {
        memcpy(k, s->hprefix, a);
        memcpy(k + a, name, b + 1);
    }
    return k;
}

static void run_get(struct rop *op)
{
    struct thaw_kv_req *r = op->req;
    size_t i;

    r->items = calloc(r->n_keys, sizeof(*r->items));
    op->hkeys = calloc(r->n_keys, sizeof(char *));
    if (!r->items || !op->hkeys) {
        op_fail(op, "MemoryError", "KV namespace \"%s\" (%s): %s", "out of memory");
        return;
    }
    for (i = 0; i < r->n_keys; i++) {
        const char *argv[5] = {"HMGET", NULL, "v", "m", "e"};
        if (!(op->hkeys[i] = hkey(op->s, r->keys[i]))) {
            op_fail(op, "MemoryError", "KV namespace \"%s\" (%s): %s", "out of memory");
            return;
        }
        argv[1] = op->hkeys[i];
        if (send_cmd(op, i, 5, argv, NULL) < 0)
            return;
    }
}

static void run_script(struct rop *op, const char *lua, int nargs, const char **args,
                       const size_t *argl)
{
    struct thaw_kv_req *r = op->req;
    const char *argv[12];
    size_t lens[12];
    char *hk = NULL;
    int i, argc = 0;

    argv[argc] = "EVAL";
    lens[argc++] = 4;
    argv[argc] = lua;
    lens[argc++] = strlen(lua);
    argv[argc] = "2";
    lens[argc++] = 1;
    if (r->op == THAW_KV_LIST) {
        /* list takes the hash key prefix as an argument instead */
        hk = strdup(op->s->hprefix);
    } else {
        hk = hkey(op->s, r->keys[0]);
    }
    if (!hk) {
        op_fail(op, "MemoryError", "KV namespace \"%s\" (%s): %s", "out of memory");
        return;
    }
    argv[argc] = r->op == THAW_KV_LIST ? op->s->index : hk;
    lens[argc] = strlen(argv[argc]);
    argc++;
    argv[argc] = r->op == THAW_KV_LIST ? hk : op->s->index;
    lens[argc] = strlen(argv[argc]);
    argc++;
    if (r->op == THAW_KV_LIST)
        argv[2] = "1"; /* one key (the index); the prefix is ARGV[1] */
    for (i = 0; i < nargs; i++) {
        argv[argc] = args[i];
        lens[argc++] = argl ? argl[i] : strlen(args[i]);
    }
    send_cmd(op, 0, argc, argv, lens); /* hiredis copied the arguments */
    free(hk);
}

static void run_list(struct rop *op)
{
    struct thaw_kv_req *r = op->req;
    char limit[16], now[32], *start;
    const char *args[4];
    size_t n;

    /* resume after the cursor's name, or start at the prefix */
    if (r->after && strcmp(r->after, r->prefix) >= 0) {
        n = strlen(r->after);
        start = malloc(n + 2);
        if (start) {
            start[0] = '(';
            memcpy(start + 1, r->after, n + 1);
        }
    } else if (r->prefix[0]) {
        n = strlen(r->prefix);
        start = malloc(n + 2);
        if (start) {
            start[0] = '[';
            memcpy(start + 1, r->prefix, n + 1);
        }
    } else {
        start = strdup("-");
    }
    if (!start) {
        op_fail(op, "MemoryError", "KV namespace \"%s\" (%s): %s", "out of memory");
        return;
    }
    snprintf(limit, sizeof(limit), "%d", r->limit);
    snprintf(now, sizeof(now), "%lld", r->now);
    args[0] = start;
    args[1] = r->prefix;
    args[2] = limit;
    args[3] = now;
    run_script(op, LIST_LUA, 4, args, NULL);
    free(start);
}

static void kv_redis_run(void *store, struct thaw_kv_req *req)
{
    struct rstore *s = store;
    struct rop *op = calloc(1, sizeof(*op));

    if (!op) {
        req->errclass = "MemoryError";
        snprintf(req->errmsg, sizeof(req->errmsg), "out of memory");
        req->done(req);
        return;
    }
    op->s = s;
    op->req = req;
    /* one reference for the sending itself, so a reply that arrives at
     * once cannot finish the request while commands are still queued */
    op->outstanding = 1;
    if (!s->ac && connect_now(s) < 0) {
        op_fail(op, "ConnectionError", "KV namespace \"%s\": Redis at %s is unreachable: %s",
                s->lasterr);
    } else {
        switch (req->op) {
        case THAW_KV_GET:
            run_get(op);
            break;
        case THAW_KV_PUT: {
            char exp[32];
            const char *args[4] = {req->keys[0], req->value ? req->value : "",
                                   req->metadata ? req->metadata : "", exp};
            size_t lens[4];
            exp[0] = 0;
            if (req->expiration)
                snprintf(exp, sizeof(exp), "%lld", req->expiration);
            lens[0] = strlen(args[0]);
            lens[1] = req->value ? req->value_len : 0;
            lens[2] = strlen(args[2]);
            lens[3] = strlen(exp);
            run_script(op, PUT_LUA, 4, args, lens);
            break;
        }
        case THAW_KV_DELETE: {
            const char *args[1] = {req->keys[0]};
            run_script(op, DELETE_LUA, 1, args, NULL);
            break;
        }
        case THAW_KV_LIST:
            run_list(op);
            break;
        }
    }
    if (--op->outstanding == 0)
        op_finish(op);
}

/* ---- the store ---------------------------------------------------------------------- */

static void *kv_redis_open(uv_loop_t *loop, const char *url, const char *ns,
                           const char *keyspace, char *err, size_t errlen)
{
    struct rstore *s;
    char buf[512];

    for (s = registry; s; s = s->next) {
        if (strcmp(s->url, url) == 0 && strcmp(s->keyspace, keyspace) == 0) {
            s->refs++;
            return s;
        }
    }
    s = calloc(1, sizeof(*s));
    if (!s || thaw_kv_redis_parse_url(url, &s->u, err, errlen) < 0) {
        if (!s)
            snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    s->loop = loop;
    s->url = strdup(url);
    s->ns = strdup(ns);
    s->keyspace = strdup(keyspace);
    snprintf(buf, sizeof(buf), "%s:v:", keyspace);
    s->hprefix = strdup(buf);
    snprintf(buf, sizeof(buf), "%s:index", keyspace);
    s->index = strdup(buf);
    s->refs = 1;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_unref((uv_handle_t *)&s->timer);
    s->next = registry;
    registry = s;
    return s; /* connects on its first call */
}

static void on_timer_closed(uv_handle_t *h)
{
    struct rstore *s = h->data;

    free(s->url);
    free(s->ns);
    free(s->keyspace);
    free(s->hprefix);
    free(s->index);
    free(s);
}

static void kv_redis_close(void *store)
{
    struct rstore *s = store, **pp;

    if (--s->refs > 0)
        return;
    for (pp = &registry; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    if (s->ac) {
        redisAsyncContext *ac = s->ac;
        s->ac = NULL;
        redisAsyncFree(ac); /* only AUTH/SELECT can be waiting: no request */
    }
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

const struct thaw_kv_backend thaw_kv_redis = {
    .name = "redis",
    .open = kv_redis_open,
    .run = kv_redis_run,
    .close = kv_redis_close,
};
