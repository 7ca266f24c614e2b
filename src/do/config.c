/* `durable_objects.bindings = [{name, class_name, script_name}]` and the
 * classes `migrations` gives (migrations.c): every bound class must have
 * been created by a migration and not deleted since, unless `script_name`
 * names another worker, whose class it is (thaw serve only: scripts.h;
 * serve checks the name and the operator's grant, src/serve/do-scripts.c,
 * and the class is looked up at call time). Runs when the config
 * loads (src/config/config.c), before any worker code: each error here is
 * a config error (400 on deploy). Whether the worker's module defines the
 * classes is known only after its top level ran (python/workers/
 * _durable.py, 422). */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "do/config.h"
#include "do/migrations.h"
#include "do/scripts.h"
#include "util/log.h"

/* The namespace key of a class: stable for a worker's name and the name
 * the class was created under (a rename keeps it: its objects follow). */
static void namespace_key(const char *worker, const char *origin, char hex[65])
{
    static const char tagline[] = "thaw durable object namespace";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int i;

    /* NULs between the parts: ("ab", "c") and ("a", "bc") differ */
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(ctx, tagline, sizeof(tagline)) ||
        !EVP_DigestUpdate(ctx, worker, strlen(worker) + 1) ||
        !EVP_DigestUpdate(ctx, origin, strlen(origin)) ||
        !EVP_DigestFinal_ex(ctx, md, &n) || n < 32)
        memset(md, 0, sizeof(md)); /* not reached: SHA-256 cannot fail here */
    EVP_MD_CTX_free(ctx);
    for (i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static int check_entry(json_t *b, size_t i, const char *file, const char *worker,
                       char *err, size_t errlen)
{
    json_t *name, *cls, *script;
    const char *key;
    json_t *v;

    if (!json_is_object(b)) {
        snprintf(err, errlen,
                 "%s: durable_objects.bindings[%zu] must be a table like "
                 "{ name = \"COUNTER\", class_name = \"Counter\" }", file, i);
        return -1;
    }
    name = json_object_get(b, "name");
    cls = json_object_get(b, "class_name");
    script = json_object_get(b, "script_name");
    if (!json_is_string(name) || !*json_string_value(name)) {
        snprintf(err, errlen,
                 "%s: durable_objects.bindings[%zu]: `name` must be a string: the name "
                 "the worker reads the namespace by (env.COUNTER for \"COUNTER\")", file, i);
        return -1;
    }
    if (!json_is_string(cls) || !*json_string_value(cls)) {
        snprintf(err, errlen,
                 "%s: durable_objects.bindings[%zu] (\"%s\"): `class_name` must be a "
                 "string: the name of the Durable Object class in the worker's main module",
                 file, i, json_string_value(name));
        return -1;
    }
    if (script && !json_is_string(script)) {
        snprintf(err, errlen,
                 "%s: durable_objects.bindings[%zu] (\"%s\"): `script_name` must be a "
                 "string: the name of the worker whose class this is", file, i,
                 json_string_value(name));
        return -1;
    }
    /* a class of this same worker may name it; another worker's runs only
     * under thaw serve, which runs more than one */
    if (script && strcmp(json_string_value(script), worker) != 0 && !thaw__do_scripts_on()) {
        snprintf(err, errlen,
                 "%s: durable_objects.bindings[%zu] (\"%s\"): `script_name` binds a class "
                 "of another worker (\"%s\"), and thaw dev runs one worker: define the class "
                 "in this worker and remove `script_name`, or deploy both workers to thaw "
                 "serve, whose operator grants the binding (docs/bindings/durable-objects.md)",
                 file, i, json_string_value(name), json_string_value(script));
        return -1;
    }
    json_object_foreach(b, key, v) {
        if (strcmp(key, "name") && strcmp(key, "class_name") && strcmp(key, "script_name") &&
            strcmp(key, "environment"))
            thaw_log("%s: durable_objects.bindings[%zu]: `%s` is not a key thaw knows: "
                     "ignored", file, i, key);
    }
    return 0;
}

/* A bound class that no migration left alive: say why and what to add. */
static int not_migrated(const struct thaw_do_classes *c, size_t i, const char *binding,
                        const char *cls, const char *file, char *err, size_t errlen)
{
    json_t *by = json_object_get(c->gone, cls);
    size_t n = json_array_size(c->tags);

    if (by) {
        snprintf(err, errlen,
                 "%s: durable_objects.bindings[%zu] (\"%s\") binds class \"%s\", which "
                 "migration \"%s\" deleted or renamed away: bind the class it is now, or "
                 "remove the binding", file, i, binding, cls, json_string_value(by));
        return -1;
    }
    snprintf(err, errlen,
             "%s: durable_objects.bindings[%zu] (\"%s\") binds class \"%s\", which no "
             "migration creates (Cloudflare refuses it too: \"not currently configured to "
             "implement Durable Objects\"): add a migration at the end of `migrations`, "
             "like [[migrations]] tag = \"v%zu\" new_sqlite_classes = [\"%s\"]",
             file, i, binding, cls, n + 1, cls);
    return -1;
}

int thaw_do_config(json_t *root, const char *file, const char *worker, char *err,
                   size_t errlen)
{
    json_t *dobj = json_object_get(root, "durable_objects");
    json_t *migs = json_object_get(root, "migrations");
    json_t *list = dobj ? json_object_get(dobj, "bindings") : NULL;
    json_t *out, *bindings, *classes, *deleted, *b, *v;
    struct thaw_do_classes c;
    const char *key;
    char hex[65];
    size_t i;

    if (!dobj && !migs)
        return 0;
    if (dobj) {
        json_object_foreach(dobj, key, v)
            if (strcmp(key, "bindings") != 0)
                thaw_log("%s: `durable_objects.%s` is not a key thaw knows: ignored", file,
                         key);
    }
    if (list && !json_is_array(list)) {
        snprintf(err, errlen,
                 "%s: `durable_objects.bindings` must be an array of tables, like "
                 "[[durable_objects.bindings]] name = \"COUNTER\" class_name = \"Counter\"",
                 file);
        return -1;
    }
    json_array_foreach(list, i, b)
        if (check_entry(b, i, file, worker, err, errlen))
            return -1;
    memset(&c, 0, sizeof(c));
    if (thaw__do_migrations(migs, file, &c, err, errlen)) {
        thaw__do_classes_free(&c);
        return -1;
    }
    bindings = json_object();
    classes = json_object();
    json_object_foreach(c.live, key, v) {
        namespace_key(worker, json_string_value(json_object_get(v, "origin")), hex);
        json_object_set_new(classes, key,
                            json_pack("{s:s, s:O, s:O}", "key", hex,
                                      "sqlite", json_object_get(v, "sqlite"),
                                      "tag", json_object_get(v, "tag")));
    }
    json_array_foreach(list, i, b) {
        const char *name = json_string_value(json_object_get(b, "name"));
        const char *cls = json_string_value(json_object_get(b, "class_name"));
        const char *script = json_string_value(json_object_get(b, "script_name"));
        json_t *info = json_object_get(classes, cls);
        if (json_object_get(bindings, name)) {
            snprintf(err, errlen,
                     "%s: durable_objects.bindings[%zu]: two bindings are named \"%s\": "
                     "give each binding its own name", file, i, name);
            goto fail;
        }
        if (script && strcmp(script, worker) != 0) {
            /* another worker's class: its key comes from that worker's
             * config when the binding is first used (bind.c, "info") */
            json_object_set_new(bindings, name, json_pack("{s:s, s:s}", "class_name", cls,
                                                          "script", script));
            continue;
        }
        if (!info) {
            not_migrated(&c, i, name, cls, file, err, errlen);
            goto fail;
        }
        json_object_set_new(bindings, name,
                            json_pack("{s:s, s:O, s:O}", "class_name", cls,
                                      "key", json_object_get(info, "key"),
                                      "sqlite", json_object_get(info, "sqlite")));
    }
    deleted = json_array();
    json_array_foreach(c.deleted, i, v) {
        namespace_key(worker, json_string_value(json_object_get(v, "origin")), hex);
        json_array_append_new(deleted, json_pack("{s:s, s:O}", "key", hex, "tag",
                                                 json_object_get(v, "tag")));
    }
    out = json_pack("{s:s, s:o, s:o, s:O, s:o}", "worker", worker, "bindings", bindings,
                    "classes", classes, "tags", c.tags, "deleted", deleted);
    thaw__do_classes_free(&c);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_object_set_new(root, "_thaw_do", out);
    return 0;
fail:
    json_decref(bindings);
    json_decref(classes);
    thaw__do_classes_free(&c);
    return -1;
}
