/* The Durable Object binding kind: one binding per entry of
 * `_thaw_do.bindings` (src/do/config.c checked the config), so a name
 * shared with a KV or D1 binding is refused like theirs. Namespaces and
 * ids live in the instance (python/workers/_durable_id.py); a namespace's
 * calls (fetch, rpc) go to the object's host (call.h). One more binding,
 * ":do" (no env name can be it), is the objects' storage (storage.h).
 *
 * Opening also checks the config's migrations against those this worker's
 * deployed versions applied (history.h): the last applied tag must still
 * be in the list. A version that builds ready records its tags. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bind/bind.h"
#include "bind/kinds.h"
#include "do/alarms.h"
#include "do/call.h"
#include "do/history.h"
#include "do/scripts.h"
#include "do/storage.h"
#include "do/ws.h"
#include "util/log.h"

struct record {
    char *path;
    char *worker;
    char *state_dir;
    struct thaw_worker *w;
    json_t *tags;
    json_t *deleted; /* _thaw_do.deleted: [{key, tag}] */
};

static void record_free(void *arg)
{
    struct record *r = arg;

    free(r->path);
    free(r->worker);
    free(r->state_dir);
    json_decref(r->tags);
    json_decref(r->deleted);
    free(r);
}

static int has_tag(json_t *tags, const char *tag)
{
    size_t i;
    json_t *t;

    json_array_foreach(tags, i, t)
        if (json_is_string(t) && strcmp(json_string_value(t), tag) == 0)
            return 1;
    return 0;
}

/* A class's objects' files, STATE/do/<key>/ (storage.c names them: only
 * hex names and their SQLite companions are there). How many objects. */
static int remove_class_data(const char *state_dir, const char *key)
{
    char dir[4096], path[4400];
    struct dirent *e;
    int n = 0;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/do/%s", state_dir, key);
    if (!(d = opendir(dir)))
        return 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) == 0 && len > 7 && strcmp(e->d_name + len - 7, ".sqlite") == 0)
            n++;
    }
    closedir(d);
    rmdir(dir);
    return n;
}

/* `deleted_classes` of the tags this version applies first: their data
 * goes now, when the version that applies them is ready (a build that
 * fails applies nothing), as Cloudflare deletes it at deploy. */
static void delete_classes(struct record *r, json_t *had)
{
    size_t i;
    json_t *del;

    json_array_foreach(r->deleted, i, del) {
        const char *key = json_string_value(json_object_get(del, "key"));
        const char *tag = json_string_value(json_object_get(del, "tag"));
        int n;
        if (!key || !tag || !thaw__do_hex64(key) || (had && has_tag(had, tag)))
            continue;
        n = remove_class_data(r->state_dir, key);
        thaw__do_alarms_forget(r->w, key);
        thaw_log("worker %s: migration \"%s\" deleted a Durable Object class: the data of "
                 "its %d object%s is deleted", r->worker, tag, n, n == 1 ? "" : "s");
    }
}

static void record_ready(void *arg)
{
    struct record *r = arg;
    char err[512];
    json_t *had = thaw__do_history_load(r->path, err, sizeof(err));
    int rc;

    if (had && json_equal(had, r->tags)) {
        json_decref(had);
        return;
    }
    delete_classes(r, had);
    json_decref(had);
    if ((rc = thaw__do_history_save(r->path, r->tags)) < 0)
        thaw_log("worker %s: cannot record its Durable Object migrations in %s: %s",
                 r->worker, r->path, strerror(-rc));
}

/* The last tag a deployed version applied must still be in the list. */
static int check_history(const struct thaw_bind_env *env, const char *path, json_t *tags,
                         char *err, size_t errlen)
{
    char why[512];
    json_t *had = thaw__do_history_load(path, why, sizeof(why));
    const char *last;
    size_t i;
    json_t *t;

    if (!had) { /* a damaged record must not stop the worker: say so */
        thaw_log("worker %s: the record of applied Durable Object migrations cannot be "
                 "read (%s): not checked", env->worker_name, why);
        return 0;
    }
    if (json_array_size(had) == 0) {
        json_decref(had);
        return 0;
    }
    last = json_string_value(json_array_get(had, json_array_size(had) - 1));
    json_array_foreach(tags, i, t) {
        if (strcmp(json_string_value(t), last) == 0) {
            json_decref(had);
            return 0;
        }
    }
    snprintf(err, errlen,
             "%s: `migrations` no longer holds tag \"%s\", the last one a deployed version "
             "of this worker applied: migrations apply once, in order; keep the applied ones "
             "and add new ones at the end (thaw dev: delete %s to start over)",
             env->config_file, last, path);
    json_decref(had);
    return -1;
}

static void ns_close(void *impl)
{
    struct thaw_do_ns *ns = impl;

    free(ns->binding);
    free(ns->class_name);
    free(ns->script);
    free(ns->from);
    free(ns);
}

/* fetch and rpc; and "info" of a binding to another worker's class: its
 * namespace key, which the instance needs to make ids (python/workers/
 * _durable_id.py). That worker, its grant and its class are looked up at
 * every call: it may have been deployed, changed or deleted since. */
static void ns_call(void *impl, struct thaw_bind_call *call)
{
    struct thaw_do_ns *ns = impl;
    int info = ns->script && strcmp(call->op, "info") == 0;
    struct thaw_do_target t;
    char err[1024];

    if (!info && strcmp(call->op, "fetch") != 0 && strcmp(call->op, "rpc") != 0) {
        thaw_bind_fail(call, "TypeError", "a Durable Object namespace has no operation "
                       "\"%s\"", call->op);
        return;
    }
    if (!ns->script) {
        thaw__do_call(ns, call);
        return;
    }
    if (thaw__do_resolve(ns->from, ns->script, ns->class_name, &t, err, sizeof(err))) {
        thaw_bind_fail(call, "Error", "%s (class %s of worker %s): %s", ns->binding,
                       ns->class_name, ns->script, err);
        return;
    }
    if (info)
        thaw_bind_ok(call, json_pack("{s:s, s:b}", "key", t.key, "sqlite", t.sqlite));
    else
        thaw__do_call(ns, call); /* looked up again when it runs (call.c) */
}

static void store_call(void *impl, struct thaw_bind_call *call)
{
    thaw__do_storage_call(impl, call);
}

static void store_close(void *impl)
{
    struct thaw_do_store *s = impl;

    thaw__do_storage_close(s);
    free(s->state_dir);
    free(s->worker);
    free(s);
}

static const struct thaw_bind_kind store_kind = {
    .name = "durable object storage",
    .call = store_call,
    .close = store_close,
};

static int add_ns(const struct thaw_bind_env *env, struct thaw_bindings *set,
                  const char *name, json_t *b, char *err, size_t errlen)
{
    struct thaw_do_ns *ns = calloc(1, sizeof(*ns));
    const char *script = json_string_value(json_object_get(b, "script"));

    if (!ns || !(ns->binding = strdup(name)) ||
        !(ns->class_name = strdup(json_string_value(json_object_get(b, "class_name")))) ||
        (script && (!(ns->script = strdup(script)) ||
                    !(ns->from = strdup(env->worker_name))))) {
        if (ns)
            ns_close(ns);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ns->worker = env->worker; /* a script binding's calls go to the worker found */
    if (thaw_bindings_add(set, name, &thaw_bind_do, ns, err, errlen)) {
        ns_close(ns);
        return -1;
    }
    return 0;
}

static int add_store(const struct thaw_bind_env *env, struct thaw_bindings *set, char *err,
                     size_t errlen)
{
    struct thaw_do_store *s = calloc(1, sizeof(*s));

    if (!s || !(s->state_dir = strdup(env->state_dir ? env->state_dir : ".")) ||
        !(s->worker = strdup(env->worker_name))) {
        if (s)
            free(s->state_dir);
        free(s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->loop = env->loop;
    s->w = env->worker;
    if (thaw_bindings_add(set, ":do", &store_kind, s, err, errlen)) {
        store_close(s);
        return -1;
    }
    return 0;
}

static int do_open(const struct thaw_bind_env *env, struct thaw_bindings *set, char *err,
                   size_t errlen)
{
    json_t *d = json_object_get(env->config, "_thaw_do");
    json_t *tags = json_object_get(d, "tags");
    struct record *r;
    const char *name;
    char path[4096];
    json_t *b;

    if (!d)
        return 0;
    json_object_foreach(json_object_get(d, "bindings"), name, b)
        if (add_ns(env, set, name, b, err, errlen))
            return -1;
    if (json_object_size(json_object_get(d, "classes")) &&
        (add_store(env, set, err, errlen) || thaw__do_ws_add(env, set, err, errlen)))
        return -1;
    if (!json_is_array(tags) || !env->state_dir)
        return 0;
    snprintf(path, sizeof(path), "%s/do/migrations.json", env->state_dir);
    if (check_history(env, path, tags, err, errlen))
        return -1;
    r = calloc(1, sizeof(*r));
    if (!r || !(r->path = strdup(path)) || !(r->worker = strdup(env->worker_name)) ||
        !(r->state_dir = strdup(env->state_dir))) {
        if (r) {
            free(r->path);
            free(r->worker);
        }
        free(r);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->w = env->worker;
    r->tags = json_incref(tags);
    r->deleted = json_incref(json_object_get(d, "deleted"));
    return thaw_bindings_on_ready(set, record_ready, record_free, r, err, errlen);
}

const struct thaw_bind_kind thaw_bind_do = {
    .name = "durable object",
    .open = do_open,
    .call = ns_call,
    .close = ns_close,
};
