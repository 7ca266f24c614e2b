/* Bindings to another worker's Durable Object class under thaw serve
 * (do-scripts.h): the operator's grants, the deploy's check, and the
 * resolver src/do calls at each call. */
#include <stdio.h>
#include <string.h>

#include "do/scripts.h"
#include "serve/do-scripts.h"
#include "serve/fleet.h"
#include "serve/router.h"

/* Whether the operator lets worker `from` bind the classes of `script`. */
static int granted(const struct thaw_policy *p, const char *from, const char *script)
{
    json_t *list = json_object_get(thaw_policy_table(p, "durable_objects"), from), *v;
    size_t i;

    json_array_foreach(list, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), script) == 0)
            return 1;
    return 0;
}

/* The class `cls` in the config a worker serves now; NULL when it has
 * none, with the classes it has listed in `have`. */
static json_t *class_of(struct thaw_hosted *h, const char *cls, char *have, size_t n)
{
    const char *text = h->w.building ? h->w.kept_cfg.json : h->w.cfg.json;
    json_t *root = text ? json_loads(text, 0, NULL) : NULL, *classes, *info, *v;
    const char *name;
    size_t k = 0;

    classes = json_object_get(json_object_get(root, "_thaw_do"), "classes");
    info = json_incref(json_object_get(classes, cls));
    have[0] = '\0';
    json_object_foreach(classes, name, v)
        if (k < n)
            k += (size_t)snprintf(have + k, n - k, "%s%s", k ? ", " : "", name);
    json_decref(root);
    return info;
}

static int resolve(void *data, const char *from, const char *script, const char *cls,
                   struct thaw_do_target *out, char *err, size_t errlen)
{
    struct thaw_fleet *f = data;
    struct thaw_hosted *h;
    json_t *info;
    char have[512];

    if (strcmp(from, script) != 0 && !granted(&f->policy, from, script)) {
        snprintf(err, errlen, "worker %s is not granted the classes of worker %s ([durable_"
                 "objects] of %s)", from, script,
                 f->policy.file[0] ? f->policy.file : "thaw serve's --config");
        return -1;
    }
    h = thaw_fleet_find(f, script);
    if (!h || !h->live || !h->started || h->removed) {
        snprintf(err, errlen, "worker %s is not deployed (deploy it, or fix `script_name`)",
                 script);
        return -1;
    }
    if (!(info = class_of(h, cls, have, sizeof(have)))) {
        snprintf(err, errlen, "worker %s has no Durable Object class %s (its classes: %s): "
                 "fix `class_name`, or add the class to worker %s with a migration", script,
                 cls, have[0] ? have : "none", script);
        return -1;
    }
    snprintf(out->key, sizeof(out->key), "%s",
             json_string_value(json_object_get(info, "key")) ?: "");
    out->sqlite = json_is_true(json_object_get(info, "sqlite"));
    out->w = &h->w;
    json_decref(info);
    if (strlen(out->key) != 64) {
        snprintf(err, errlen, "worker %s's class %s has no namespace key", script, cls);
        return -1;
    }
    return 0;
}

int thaw_do_scripts_open(struct thaw_fleet *f, char *err, size_t errlen)
{
    json_t *t = thaw_policy_table(&f->policy, "durable_objects"), *list, *v;
    const char *name;
    size_t i;

    json_object_foreach(t, name, list) {
        if (!thaw_worker_name_ok(name)) {
            snprintf(err, errlen, "%s: [durable_objects]: \"%s\" is not a worker name (1 to 63 "
                     "of a-z, 0-9 and '-')", f->policy.file, name);
            return -1;
        }
        if (!json_is_array(list)) {
            snprintf(err, errlen, "%s: [durable_objects]: `%s` must be a list of the workers "
                     "whose classes it may bind, like %s = [\"chat\"]", f->policy.file, name,
                     name);
            return -1;
        }
        json_array_foreach(list, i, v) {
            if (!json_is_string(v) || !thaw_worker_name_ok(json_string_value(v))) {
                snprintf(err, errlen, "%s: [durable_objects]: `%s` item %zu must be a worker "
                         "name (1 to 63 of a-z, 0-9 and '-')", f->policy.file, name, i + 1);
                return -1;
            }
        }
    }
    thaw_do_set_resolver(resolve, f);
    return 0;
}

int thaw_tenant_do_scripts(const struct thaw_tenant_ctx *c, char *err, size_t errlen)
{
    json_t *list = json_object_get(json_object_get(c->config, "durable_objects"), "bindings");
    const char *slash = c->cfg->file ? strrchr(c->cfg->file, '/') : NULL;
    const char *file = slash ? slash + 1 : c->cfg->file ? c->cfg->file : "the config";
    const char *op = c->policy && c->policy->file[0] ? c->policy->file : NULL;
    json_t *b;
    size_t i;

    json_array_foreach(list, i, b) {
        const char *script = json_string_value(json_object_get(b, "script_name"));
        const char *name = json_string_value(json_object_get(b, "name"));
        const char *cls = json_string_value(json_object_get(b, "class_name"));
        if (!script || strcmp(script, c->h->name) == 0)
            continue; /* its own class (config.c checked the rest) */
        if (!thaw_worker_name_ok(script)) {
            snprintf(err, errlen, "%s: durable_objects.bindings[%zu] (\"%s\"): `script_name` "
                     "\"%s\" is not a worker name (1 to 63 of a-z, 0-9 and '-'): name the "
                     "worker whose class this is", file, i, name, script);
            return 400;
        }
        if (!c->policy || !granted(c->policy, c->h->name, script)) {
            snprintf(err, errlen, "%s: durable_objects.bindings[%zu] (\"%s\"): `script_name` = "
                     "\"%s\" binds class %s of worker %s, which the operator has not granted "
                     "to worker %s: the operator adds %s = [\"%s\"] to [durable_objects] of "
                     "%s%s (docs/security.md), or the binding goes", file, i, name, script,
                     cls, script, c->h->name, c->h->name, script, op ? op : "a --config file",
                     op ? "" : " (thaw serve --config FILE)");
            return 403;
        }
    }
    return 0;
}
