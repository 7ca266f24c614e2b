/* The `kv` binding kind: `kv_namespaces = [{binding = "FOO", id = "..."}]`
 * in the worker config becomes env.FOO (python/workers/_kv.py), whose
 * calls land here. This file owns the config, Cloudflare's limits and the
 * shape of every answer; kv.h's backends store the data.
 *
 * Calls (args are JSON; a value travels as the call's body):
 *   get    {"keys": [k, ...]}      -> {"values": [null | {"len", "metadata",
 *                                      "expiration"}]}, body: the values
 *                                      found, one after the other
 *   put    {"key", "expiration"?, "expirationTtl"?, "metadata"? (JSON text)}
 *                                    + body -> null
 *   delete {"key"}                 -> null
 *   list   {"prefix"?, "limit"?, "cursor"?} -> null, body: the result as
 *                                      JSON (it may exceed one frame) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bind/bind.h"
#include "bind/kinds.h"
#include "bind/kv.h"
#include "policy/policy.h"
#include "util/idname.h"

/* One namespace bound in one version of a worker. */
struct kv_ns {
    char *binding;
    char *fname;   /* util/idname.h: the id (else the binding's name) as a file
                    * name, key part and name in messages */
    char *where;   /* for messages: the database file or the Redis URL */
    const struct thaw_kv_backend *be;
    void *store;
};

/* One call in flight. */
struct op {
    struct thaw_kv_req req;
    struct thaw_bind_call *call;
    struct kv_ns *ns;
    const char *keys[THAW_KV_MAX_BULK];
    char *after;     /* list: the decoded cursor */
    char *metadata;  /* put: JSON text */
};

void thaw_kv_req_clear(struct thaw_kv_req *req)
{
    size_t i, n = req->op == THAW_KV_GET ? req->n_keys : req->n_items;

    for (i = 0; req->items && i < n; i++) {
        free(req->items[i].name);
        free(req->items[i].value);
        free(req->items[i].metadata);
    }
    free(req->items);
    req->items = NULL;
    req->n_items = 0;
}

/* ---- config -------------------------------------------------------------- */

static void ns_free(struct kv_ns *ns)
{
    if (!ns)
        return;
    if (ns->store)
        ns->be->close(ns->store);
    free(ns->binding);
    free(ns->fname);
    free(ns->where);
    free(ns);
}

static const char *default_backend(json_t *config)
{
    json_t *b = json_object_get(json_object_get(json_object_get(config, "thaw"), "kv"),
                                "backend");
    return json_string_value(b);
}

/* kp: the operator's [kv] under thaw serve, NULL in thaw dev */
/* NULL with err, and *internal set when it is thaw's fault (no memory, a
 * store that does not open), not the entry's. */
static struct kv_ns *open_one(const struct thaw_bind_env *env, json_t *entry, size_t i,
                              const struct thaw_kv_policy *kp, int *internal, char *err,
                              size_t errlen)
{
    const char *file = env->config_file;
    json_t *jb = json_object_get(entry, "binding");
    json_t *jid = json_object_get(entry, "id");
    json_t *jbe = json_object_get(entry, "backend");
    const char *backend;
    struct kv_ns *ns;
    char path[4096], keyspace[512];

    if (!json_is_object(entry)) {
        snprintf(err, errlen, "%s: kv_namespaces[%zu] must be a table like "
                 "{ binding = \"MY_KV\", id = \"my-kv\" }", file, i);
        return NULL;
    }
    if (!json_is_string(jb) || json_string_length(jb) == 0) {
        snprintf(err, errlen, "%s: kv_namespaces[%zu] needs `binding`, the name the "
                 "worker uses (env.NAME), e.g. binding = \"MY_KV\"", file, i);
        return NULL;
    }
    if (!jid || (json_is_string(jid) && json_string_length(jid) == 0))
        jid = json_object_get(entry, "preview_id");
    if (jid && !json_is_string(jid)) {
        snprintf(err, errlen, "%s: kv_namespaces[%zu] (binding \"%s\"): `id` must be a "
                 "string (any string: it names the namespace's data)", file, i,
                 json_string_value(jb));
        return NULL;
    }
    if (jid && json_string_length(jid) == 0)
        jid = NULL;
    if (jbe && !json_is_string(jbe)) {
        snprintf(err, errlen, "%s: kv_namespaces[%zu] (binding \"%s\"): `backend` must "
                 "be a string: \"sqlite\" or \"redis://host:port/db\"", file, i,
                 json_string_value(jb));
        return NULL;
    }
    ns = calloc(1, sizeof(*ns));
    if (!ns) {
        *internal = 1;
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ns->binding = strdup(json_string_value(jb));
    /* no id: the binding's name names the data, as in wrangler's local mode.
     * Any id is accepted (templates ship "<YOUR_KV_NAMESPACE_ID>"): the
     * file name and key prefix are its escaped form, never the text */
    {
        const char *id = jid ? json_string_value(jid) : ns->binding;
        size_t n = jid ? json_string_length(jid) : strlen(id);
        char fname[THAW_IDNAME_SIZE];
        thaw_id_filename(id, n, fname);
        ns->fname = strdup(fname);
    }
    backend = jbe ? json_string_value(jbe) : default_backend(env->config);
    if (kp && backend && !thaw_kv_policy_offers(kp, backend)) {
        /* the deploy check refused this already; a worker stored under an
         * older operator config meets it here */
        char key[64];
        snprintf(key, sizeof(key), jbe ? "kv_namespaces[%zu].backend" : "thaw.kv.backend", i);
        thaw_kv_policy_refusal(kp, env->policy, file, key, backend, err, errlen);
        ns_free(ns);
        return NULL;
    }
    if (kp && !backend)
        backend = kp->backend;
    /* under serve, keys carry the operator's prefix and the worker: a
     * namespace id names data inside one worker only. thaw dev keeps the
     * layout it always had (docs/bindings/kv.md) */
    if (kp)
        snprintf(keyspace, sizeof(keyspace), "%s:kv:%s:%s", kp->prefix, env->worker_name,
                 ns->fname);
    else
        snprintf(keyspace, sizeof(keyspace), "thaw:kv:%s", ns->fname);
    if (!backend || strcmp(backend, "sqlite") == 0) {
        ns->be = &thaw_kv_sqlite;
        snprintf(path, sizeof(path), "%s/kv/%s.sqlite", env->state_dir, ns->fname);
        ns->where = strdup(path);
    } else if (strncmp(backend, "redis://", 8) == 0) {
        struct thaw_kv_redis_url u;
        char why[256];
        if (thaw_kv_redis_parse_url(backend, &u, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s: the KV backend of binding \"%s\" (`%s`) is not a "
                     "usable Redis URL: %s; write redis://HOST:PORT/DB", file,
                     ns->binding, jbe ? "backend" : "thaw.kv.backend", why);
            ns_free(ns);
            return NULL;
        }
        ns->be = &thaw_kv_redis;
        ns->where = strdup(backend);
    } else {
        snprintf(err, errlen, "%s: the KV backend of binding \"%s\" (`%s`) is \"%s\"; "
                 "use \"sqlite\" (the default) or \"redis://HOST:PORT/DB\"", file,
                 ns->binding, jbe ? "backend" : "thaw.kv.backend", backend);
        ns_free(ns);
        return NULL;
    }
    ns->store = ns->be->open(env->loop, ns->where, ns->fname, keyspace, err, errlen);
    if (!ns->store) {
        char why[1024];
        *internal = 1;
        snprintf(why, sizeof(why), "%s", err);
        snprintf(err, errlen, "%s: KV binding \"%s\": %s", file, ns->binding, why);
        ns_free(ns);
        return NULL;
    }
    return ns;
}

static int kv_open(const struct thaw_bind_env *env, struct thaw_bindings *set,
                   char *err, size_t errlen)
{
    json_t *list = json_object_get(env->config, "kv_namespaces");
    json_t *tkv = json_object_get(json_object_get(env->config, "thaw"), "kv");
    struct thaw_kv_policy kp;
    int tenant = env->policy && env->policy->tenant;
    const char *k;
    json_t *v;
    size_t i;
    int internal = 0;

    if (tenant && thaw_kv_policy_load(&kp, env->policy, err, errlen) < 0)
        return -1;
    if (tkv && !json_is_object(tkv))
        goto bad_default;
    json_object_foreach(tkv, k, v)
        if (strcmp(k, "backend") != 0 || !json_is_string(v))
            goto bad_default;
    if (!list)
        return 0;
    for (i = 0; i < json_array_size(list); i++) {
        struct kv_ns *ns = open_one(env, json_array_get(list, i), i, tenant ? &kp : NULL,
                                    &internal, err, errlen);
        if (!ns)
            return internal ? THAW_BIND_INTERNAL : -1;
        if (thaw_bindings_add(set, ns->binding, &thaw_bind_kv, ns, err, errlen) < 0) {
            ns_free(ns);
            return -1;
        }
    }
    return 0;
bad_default:
    snprintf(err, errlen, "%s: [thaw.kv] takes one key, backend = \"sqlite\" or "
             "\"redis://HOST:PORT/DB\" (the default backend of kv_namespaces)",
             env->config_file);
    return -1;
}

static void kv_close(void *impl)
{
    ns_free(impl);
}

/* ---- arguments ------------------------------------------------------------ */

/* A valid key, or NULL with the reason in the call's failure. */
static const char *arg_key(struct thaw_bind_call *call, json_t *v, const char *what)
{
    size_t n;

    if (!json_is_string(v)) {
        thaw_bind_fail(call, "TypeError", "KV %s: %s must be a string", call->op, what);
        return NULL;
    }
    n = json_string_length(v);
    if (n != strlen(json_string_value(v))) {
        thaw_bind_fail(call, "ValueError", "KV %s: %s contains a NUL character (U+0000), "
                       "which keys cannot hold", call->op, what);
        return NULL;
    }
    if (n == 0 || strcmp(json_string_value(v), ".") == 0 ||
        strcmp(json_string_value(v), "..") == 0) {
        thaw_bind_fail(call, "ValueError", "KV %s: %s is \"%s\"; a key cannot be empty, "
                       "\".\" or \"..\"", call->op, what, json_string_value(v));
        return NULL;
    }
    if (n > THAW_KV_MAX_KEY) {
        thaw_bind_fail(call, "ValueError", "KV %s: %s is %zu bytes long (UTF-8); keys can "
                       "be at most %d bytes", call->op, what, n, THAW_KV_MAX_KEY);
        return NULL;
    }
    return json_string_value(v);
}

/* Seconds given as a JSON number: whole and positive, or -1 after failing. */
static long long arg_seconds(struct thaw_bind_call *call, json_t *v, const char *name)
{
    double d;

    if (!json_is_number(v)) {
        thaw_bind_fail(call, "TypeError", "KV put: %s must be a number of seconds", name);
        return -1;
    }
    d = json_number_value(v);
    if (!(d >= 1 && d < 1e15)) {
        thaw_bind_fail(call, "ValueError", "KV put: %s of %g is not a positive number of "
                       "seconds", name, d);
        return -1;
    }
    return (long long)d;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A cursor is the last name of the previous page, hex-encoded so callers
 * treat it as opaque. */
static char *cursor_encode(const char *name)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, n = strlen(name);
    char *s = malloc(2 * n + 1);

    if (!s)
        return NULL;
    for (i = 0; i < n; i++) {
        s[2 * i] = hex[(unsigned char)name[i] >> 4];
        s[2 * i + 1] = hex[(unsigned char)name[i] & 15];
    }
    s[2 * n] = 0;
    return s;
}

static char *cursor_decode(const char *s)
{
    size_t i, n = strlen(s);
    char *out;

    if (n == 0 || n % 2 || n > 2 * THAW_KV_MAX_KEY)
        return NULL;
    out = malloc(n / 2 + 1);
    if (!out)
        return NULL;
    for (i = 0; i < n; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
            free(out);
            return NULL;
        }
        out[i / 2] = (char)(hi << 4 | lo);
    }
    out[n / 2] = 0;
    return out;
}

/* ---- answers --------------------------------------------------------------- */

static json_t *metadata_json(const char *text)
{
    json_t *m;

    if (!text)
        return json_null();
    m = json_loads(text, JSON_DECODE_ANY, NULL);
    return m ? m : json_string(text);
}

static void op_free(struct op *o)
{
    thaw_kv_req_clear(&o->req);
    free(o->after);
    free(o->metadata);
    free(o);
}

static json_t *value_json(const struct thaw_kv_item *it)
{
    json_t *v = json_pack("{s:I, s:o}", "len", (json_int_t)it->len, "metadata",
                          metadata_json(it->metadata));

    if (it->expiration)
        json_object_set_new(v, "expiration", json_integer(it->expiration));
    return v;
}

static void answer_get(struct op *o)
{
    struct thaw_kv_req *r = &o->req;
    json_t *values = json_array();
    struct thaw_buf body;
    size_t i;

    thaw_buf_init(&body, (size_t)-1);
    if (r->n_keys == 1 && r->items[0].found && r->items[0].len) {
        /* one value: send it as it is, no second copy of up to 25 MiB */
        json_array_append_new(values, value_json(&r->items[0]));
        thaw_bind_ok_body(o->call, json_pack("{s:o}", "values", values),
                          r->items[0].value, r->items[0].len);
        return;
    }
    for (i = 0; i < r->n_keys; i++) {
        struct thaw_kv_item *it = &r->items[i];

        json_array_append_new(values, it->found ? value_json(it) : json_null());
        if (!it->found)
            continue;
        if (it->len && thaw_buf_append(&body, it->value, it->len) < 0) {
            thaw_buf_free(&body);
            json_decref(values);
            thaw_bind_fail(o->call, "MemoryError", "KV get: out of memory");
            return;
        }
    }
    if (body.len)
        thaw_bind_ok_body(o->call, json_pack("{s:o}", "values", values), body.data,
                          body.len);
    else
        thaw_bind_ok(o->call, json_pack("{s:o}", "values", values));
    thaw_buf_free(&body);
}

static void answer_list(struct op *o)
{
    struct thaw_kv_req *r = &o->req;
    json_t *keys = json_array(), *res;
    char *text;
    size_t i;

    for (i = 0; i < r->n_items; i++) {
        struct thaw_kv_item *it = &r->items[i];
        json_t *k = json_pack("{s:s}", "name", it->name);
        if (it->expiration)
            json_object_set_new(k, "expiration", json_integer(it->expiration));
        if (it->metadata)
            json_object_set_new(k, "metadata", metadata_json(it->metadata));
        json_array_append_new(keys, k);
    }
    res = json_pack("{s:o, s:b, s:n}", "keys", keys, "list_complete", r->complete,
                    "cacheStatus");
    if (!r->complete && r->n_items) {
        char *c = cursor_encode(r->items[r->n_items - 1].name);
        json_object_set_new(res, "cursor", json_string(c ? c : ""));
        free(c);
    }
    text = json_dumps(res, JSON_COMPACT);
    json_decref(res);
    if (!text) {
        thaw_bind_fail(o->call, "MemoryError", "KV list: out of memory");
        return;
    }
    thaw_bind_ok_body(o->call, NULL, text, strlen(text));
    free(text);
}

static void on_done(struct thaw_kv_req *req)
{
    struct op *o = req->data;

    if (req->errclass)
        thaw_bind_fail(o->call, req->errclass, "%s", req->errmsg);
    else if (req->op == THAW_KV_GET)
        answer_get(o);
    else if (req->op == THAW_KV_LIST)
        answer_list(o);
    else
        thaw_bind_ok(o->call, NULL);
    op_free(o);
}

/* ---- calls ----------------------------------------------------------------- */

static int prepare_get(struct op *o, json_t *args)
{
    struct thaw_bind_call *call = o->call;
    json_t *keys = json_object_get(args, "keys");
    size_t i, n = json_array_size(keys);

    if (!json_is_array(keys) || n == 0) {
        thaw_bind_fail(call, "TypeError", "KV get: give a key, or a list of 1 to %d keys",
                       THAW_KV_MAX_BULK);
        return -1;
    }
    if (n > THAW_KV_MAX_BULK) {
        thaw_bind_fail(call, "ValueError", "KV get: %zu keys at once; a bulk get takes "
                       "at most %d", n, THAW_KV_MAX_BULK);
        return -1;
    }
    for (i = 0; i < n; i++)
        if (!(o->keys[i] = arg_key(call, json_array_get(keys, i), "the key")))
            return -1;
    o->req.op = THAW_KV_GET;
    o->req.n_keys = n;
    return 0;
}

static int prepare_put(struct op *o, json_t *args)
{
    struct thaw_bind_call *call = o->call;
    json_t *ttl = json_object_get(args, "expirationTtl");
    json_t *exp = json_object_get(args, "expiration");
    json_t *meta = json_object_get(args, "metadata");
    struct thaw_kv_req *r = &o->req;

    if (!(o->keys[0] = arg_key(call, json_object_get(args, "key"), "the key")))
        return -1;
    if (call->body_len > THAW_KV_MAX_VALUE) {
        thaw_bind_fail(call, "ValueError", "KV put: the value of \"%s\" is %zu bytes; values "
                       "can be at most 25 MiB (%u bytes)", o->keys[0], call->body_len,
                       THAW_KV_MAX_VALUE);
        return -1;
    }
    /* Cloudflare: with both, the TTL wins */
    if (ttl && !json_is_null(ttl)) {
        long long s = arg_seconds(call, ttl, "expirationTtl");
        if (s < 0)
            return -1;
        if (s < THAW_KV_MIN_TTL) {
            thaw_bind_fail(call, "ValueError", "KV put: expirationTtl of %lld seconds; it "
                           "must be at least %d", s, THAW_KV_MIN_TTL);
            return -1;
        }
        r->expiration = r->now + s;
    } else if (exp && !json_is_null(exp)) {
        if ((r->expiration = arg_seconds(call, exp, "expiration")) < 0)
            return -1;
    }
    if (meta && !json_is_null(meta)) {
        json_t *parsed;
        if (!json_is_string(meta)) {
            thaw_bind_fail(call, "TypeError", "KV put: metadata must travel as JSON text");
            return -1;
        }
        if (json_string_length(meta) > THAW_KV_MAX_METADATA) {
            thaw_bind_fail(call, "ValueError", "KV put: the metadata of \"%s\" is %zu bytes "
                           "as JSON; metadata can be at most %d bytes", o->keys[0],
                           json_string_length(meta), THAW_KV_MAX_METADATA);
            return -1;
        }
        parsed = json_loads(json_string_value(meta), JSON_DECODE_ANY, NULL);
        if (!parsed) {
            thaw_bind_fail(call, "TypeError", "KV put: metadata is not valid JSON");
            return -1;
        }
        json_decref(parsed);
        o->metadata = strdup(json_string_value(meta));
        r->metadata = o->metadata;
    }
    r->op = THAW_KV_PUT;
    r->n_keys = 1;
    r->value = call->body;
    r->value_len = call->body ? call->body_len : 0;
    return 0;
}

static int prepare_list(struct op *o, json_t *args)
{
    struct thaw_bind_call *call = o->call;
    json_t *prefix = json_object_get(args, "prefix");
    json_t *limit = json_object_get(args, "limit");
    json_t *cursor = json_object_get(args, "cursor");
    struct thaw_kv_req *r = &o->req;

    r->prefix = "";
    if (prefix && !json_is_null(prefix)) {
        if (!json_is_string(prefix) ||
            json_string_length(prefix) != strlen(json_string_value(prefix))) {
            thaw_bind_fail(call, "TypeError", "KV list: prefix must be a string "
                           "(without NUL characters)");
            return -1;
        }
        r->prefix = json_string_value(prefix);
    }
    r->limit = THAW_KV_MAX_LIST;
    if (limit && !json_is_null(limit)) {
        if (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
            json_integer_value(limit) > THAW_KV_MAX_LIST) {
            thaw_bind_fail(call, "ValueError", "KV list: limit must be a whole number from "
                           "1 to %d", THAW_KV_MAX_LIST);
            return -1;
        }
        r->limit = (int)json_integer_value(limit);
    }
    if (cursor && !json_is_null(cursor) &&
        !(json_is_string(cursor) && json_string_length(cursor) == 0)) {
        if (!json_is_string(cursor) || !(o->after = cursor_decode(json_string_value(cursor)))) {
            thaw_bind_fail(call, "ValueError", "KV list: the cursor is not one a list() of "
                           "this namespace returned");
            return -1;
        }
        r->after = o->after;
    }
    r->op = THAW_KV_LIST;
    return 0;
}

static void kv_call(void *impl, struct thaw_bind_call *call)
{
    struct kv_ns *ns = impl;
    struct op *o = calloc(1, sizeof(*o));
    json_t *args = call->args;
    int rc;

    if (!o) {
        thaw_bind_fail(call, "MemoryError", "KV: out of memory");
        return;
    }
    o->call = call;
    o->ns = ns;
    o->req.keys = o->keys;
    o->req.now = (long long)time(NULL);
    o->req.done = on_done;
    o->req.data = o;
    if (!json_is_object(args) && strcmp(call->op, "list") != 0) {
        thaw_bind_fail(call, "TypeError", "KV %s: arguments missing", call->op);
        free(o);
        return;
    }
    if (strcmp(call->op, "get") == 0) {
        rc = prepare_get(o, args);
    } else if (strcmp(call->op, "put") == 0) {
        rc = prepare_put(o, args);
    } else if (strcmp(call->op, "delete") == 0) {
        o->req.op = THAW_KV_DELETE;
        o->req.n_keys = 1;
        rc = (o->keys[0] = arg_key(call, json_object_get(args, "key"), "the key")) ? 0 : -1;
    } else if (strcmp(call->op, "list") == 0) {
        rc = prepare_list(o, args);
    } else {
        thaw_bind_fail(call, "TypeError", "KV has no operation \"%s\"", call->op);
        rc = -1;
    }
    if (rc < 0) {
        op_free(o); /* the call was failed */
        return;
    }
    ns->be->run(ns->store, &o->req);
}

const struct thaw_bind_kind thaw_bind_kv = {
    .name = "kv",
    .open = kv_open,
    .call = kv_call,
    .close = kv_close,
};
