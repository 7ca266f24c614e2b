/* KV namespaces: the storage interface under the `kv` binding kind (kv.c).
 *
 * kv.c parses the config, checks every argument against Cloudflare's
 * limits and shapes the answers; a backend only stores and finds. A
 * backend answers each request exactly once, on the event loop, by
 * calling req->done (possibly before run() returned).
 *
 * Backends: kv-sqlite.c (the default: one database file per namespace id
 * under the state directory) and kv-redis.c (`backend = "redis://..."`).
 * Under thaw serve the operator chooses the backend (kv-policy.c). */
#ifndef THAW_BIND_KV_H
#define THAW_BIND_KV_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

/* Cloudflare's limits */
#define THAW_KV_MAX_KEY 512                      /* bytes of UTF-8 */
#define THAW_KV_MAX_VALUE (25u * 1024 * 1024)    /* 25 MiB */
#define THAW_KV_MAX_METADATA 1024                /* bytes of JSON */
#define THAW_KV_MAX_LIST 1000                    /* keys per list() page */
#define THAW_KV_MAX_BULK 100                     /* keys per get([...]) */
#define THAW_KV_MIN_TTL 60                       /* seconds */

enum thaw_kv_op { THAW_KV_GET, THAW_KV_PUT, THAW_KV_DELETE, THAW_KV_LIST };

/* One value found by a get, or one key of a list page. */
struct thaw_kv_item {
    int found;
    char *name;          /* list: the key (malloc'd) */
    char *value;         /* get: malloc'd (NULL when empty) */
    size_t len;
    char *metadata;      /* JSON text (malloc'd), or NULL */
    long long expiration; /* seconds since the epoch, 0 = none */
};

struct thaw_kv_req {
    enum thaw_kv_op op;
    long long now;       /* seconds since the epoch: what has expired */

    /* GET: n_keys keys; PUT and DELETE: keys[0] */
    const char **keys;
    size_t n_keys;

    /* PUT: the value (borrowed until done), expiration (0 = none) and
     * metadata (JSON text, or NULL) */
    const char *value;
    size_t value_len;
    long long expiration;
    const char *metadata;

    /* LIST: names starting with prefix ("" for all) after `after` (NULL to
     * start at the first), at most limit of them */
    const char *prefix;
    const char *after;
    int limit;

    /* results: GET fills items[n_keys]; LIST fills items[n_items] and
     * complete (no name matching prefix follows the last one) */
    struct thaw_kv_item *items;
    size_t n_items;
    int complete;

    /* failure: errclass (a static string such as "ConnectionError" or
     * "OSError") and a message; errclass NULL on success */
    const char *errclass;
    char errmsg[512];

    void (*done)(struct thaw_kv_req *req);
    void *data;
};

struct thaw_kv_backend {
    const char *name; /* "sqlite", "redis" */
    /* Opens the store of namespace id ns: for sqlite `where` is the database
     * path, for redis the URL and keyspace the start of every key ("thaw:kv:ID"
     * in thaw dev, "PREFIX:kv:WORKER:ID" under serve). NULL with a message
     * in err. */
    void *(*open)(uv_loop_t *loop, const char *where, const char *ns,
                  const char *keyspace, char *err, size_t errlen);
    void (*run)(void *store, struct thaw_kv_req *req);
    /* No request is pending on this handle any more. */
    void (*close)(void *store);
};

extern const struct thaw_kv_backend thaw_kv_sqlite;
extern const struct thaw_kv_backend thaw_kv_redis;

/* Frees the results a backend put in req. */
void thaw_kv_req_clear(struct thaw_kv_req *req);

/* Parses redis://[:password@]host[:port][/db]. 0, or -1 with a message
 * saying what is wrong with the URL. */
struct thaw_kv_redis_url {
    char host[256];
    int port;
    int db;
    char password[256];
};
int thaw_kv_redis_parse_url(const char *url, struct thaw_kv_redis_url *out,
                            char *err, size_t errlen);

/* ---- thaw serve: the operator's [kv] (kv-policy.c) ---------------------- */

#define THAW_KV_MAX_PREFIX 64

struct thaw_policy;

struct thaw_kv_policy {
    char backend[1024];                  /* "sqlite" or a Redis URL */
    char prefix[THAW_KV_MAX_PREFIX + 1]; /* of every Redis key: "thaw" */
};

/* The operator's [kv] table (the defaults when none). 0, or -1 with a
 * message naming the operator's file and the key. */
int thaw_kv_policy_load(struct thaw_kv_policy *kp, const struct thaw_policy *policy,
                        char *err, size_t errlen);
/* 1 when a worker may name backend: "sqlite" or the operator's own. */
int thaw_kv_policy_offers(const struct thaw_kv_policy *kp, const char *backend);
/* The message of a refused backend (key: "thaw.kv.backend", ...). */
void thaw_kv_policy_refusal(const struct thaw_kv_policy *kp, const struct thaw_policy *policy,
                            const char *file, const char *key, const char *backend,
                            char *err, size_t errlen);
/* thaw serve's deploy check of a worker config's KV backends: 0, or an
 * HTTP status (403) with a message in err. */
int thaw_kv_tenant_check(const struct thaw_policy *policy, json_t *config, const char *file,
                         char *err, size_t errlen);

#endif
