#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/compat.h"
#include "config/config.h"
#include "config/devvars.h"
#include "cron/triggers.h"
#include "util/log.h"

/* Every top-level key thaw knows, in one table (STYLE.md habit 10).
 * `later` keys are valid Cloudflare config that a later part of thaw
 * implements: accepted with a warning, so a config written for wrangler
 * still loads. */
struct key_spec {
    const char *key;
    json_type type;
    int later;
};

static const struct key_spec KEYS[] = {
    {"name", JSON_STRING, 0},
    {"main", JSON_STRING, 0},
    {"compatibility_date", JSON_STRING, 0},
    {"compatibility_flags", JSON_ARRAY, 0},
    {"vars", JSON_OBJECT, 0},
    {"$schema", JSON_STRING, 0},
    {"kv_namespaces", JSON_ARRAY, 0},
    {"d1_databases", JSON_ARRAY, 0},
    {"triggers", JSON_OBJECT, 0},
    {"durable_objects", JSON_OBJECT, 1},
    {"assets", JSON_OBJECT, 0},
    {"routes", JSON_ARRAY, 0},    /* thaw serve (src/serve/router.c) */
    {"limits", JSON_OBJECT, 0},
    {"thaw", JSON_OBJECT, 0},
    {"workers_dev", JSON_TRUE, 1},
    {"account_id", JSON_STRING, 1},
    {"observability", JSON_OBJECT, 1},
};

static const char *type_name(json_type t)
{
    switch (t) {
    case JSON_OBJECT: return "a table/object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "a number";
    }
}

static int type_ok(json_t *v, json_type want)
{
    if (want == JSON_TRUE)
        return json_is_boolean(v);
    return json_typeof(v) == want;
}

enum thaw_config_kind thaw_config_find(const char *dir, char *path, size_t n)
{
    static const struct { const char *file; enum thaw_config_kind kind; } order[] = {
        {"wrangler.json", THAW_CFG_JSON},
        {"wrangler.jsonc", THAW_CFG_JSONC},
        {"wrangler.toml", THAW_CFG_TOML},
    };
    size_t i;

    for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        snprintf(path, n, "%s/%s", dir, order[i].file);
        if (access(path, R_OK) == 0)
            return order[i].kind;
    }
    return THAW_CFG_NONE;
}

static int valid_date(const char *s)
{
    int i;

    if (strlen(s) != 10)
        return 0;
    for (i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (s[i] != '-')
                return 0;
        } else if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return 1;
}

static int check_main(const char *file, const char *dir, const char *main,
                      char *err, size_t errlen)
{
    size_t n = strlen(main);
    char path[PATH_MAX];
    struct stat st;

    if (n < 4 || strcmp(main + n - 3, ".py") != 0) {
        snprintf(err, errlen,
                 "%s: `main` must name a Python file ending in .py, got \"%s\"",
                 file, main);
        return -1;
    }
    if (main[0] == '/' || strstr(main, "..")) {
        snprintf(err, errlen,
                 "%s: `main` must be a path inside the worker directory, "
                 "relative to it (like \"src/entry.py\"), got \"%s\"",
                 file, main);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, main);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: `main` is \"%s\" but %s does not exist",
                 file, main, path);
        return -1;
    }
    return 0;
}

static char *basename_of(const char *dir)
{
    const char *slash = strrchr(dir, '/');
    return strdup(slash && slash[1] ? slash + 1 : dir);
}

int thaw_config_from_json(const char *json, const char *file, const char *dir,
                          struct thaw_config *cfg, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root, *v;
    const char *key;
    size_t i;

    memset(cfg, 0, sizeof(*cfg));
    root = json_loads(json, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s", file, jerr.line, jerr.column,
                 jerr.text);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: the config must be an object of keys", file);
        goto fail;
    }
    json_object_foreach(root, key, v) {
        const struct key_spec *k = NULL;
        for (i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++)
            if (strcmp(KEYS[i].key, key) == 0)
                k = &KEYS[i];
        if (!k) {
            thaw_log("%s: unknown key `%s` ignored", file, key);
            continue;
        }
        if (!type_ok(v, k->type)) {
            snprintf(err, errlen, "%s: `%s` must be %s", file, key,
                     type_name(k->type));
            goto fail;
        }
        if (k->later)
            thaw_log("%s: `%s` is not supported by this thaw yet; ignored",
                     file, key);
    }

    v = json_object_get(root, "main");
    if (!v) {
        snprintf(err, errlen,
                 "%s: `main` is missing: add main = \"src/entry.py\" (the "
                 "Python file that defines your handler)", file);
        goto fail;
    }
    if (check_main(file, dir, json_string_value(v), err, errlen))
        goto fail;
    cfg->main = strdup(json_string_value(v));

    v = json_object_get(root, "name");
    cfg->name = v ? strdup(json_string_value(v)) : basename_of(dir);

    v = json_object_get(root, "compatibility_date");
    if (v) {
        if (!valid_date(json_string_value(v))) {
            snprintf(err, errlen,
                     "%s: `compatibility_date` must be a date like "
                     "\"2024-03-18\", got \"%s\"", file, json_string_value(v));
            goto fail;
        }
        cfg->compat_date = strdup(json_string_value(v));
    }

    v = json_object_get(root, "compatibility_flags");
    if (v) {
        cfg->compat_flags = calloc(json_array_size(v) + 1, sizeof(char *));
        for (i = 0; i < json_array_size(v); i++) {
            json_t *f = json_array_get(v, i);
            if (!json_is_string(f)) {
                snprintf(err, errlen,
                         "%s: `compatibility_flags` must hold only strings "
                         "(item %zu is not)", file, i);
                goto fail;
            }
            cfg->compat_flags[cfg->n_compat_flags++] =
                strdup(json_string_value(f));
        }
    }

    {
        char today[16], flags[1024];
        time_t now = time(NULL);
        struct tm tm;

        gmtime_r(&now, &tm);
        strftime(today, sizeof(today), "%Y-%m-%d", &tm);
        if (!cfg->compat_date) {
            thaw_log("%s: no `compatibility_date`; using today's, %s (set one so the "
                     "worker's behaviour does not change under it)", file, today);
            cfg->compat_date = strdup(today);
        }
        if (thaw_compat_resolve(file, cfg->compat_date, cfg->compat_flags,
                                cfg->n_compat_flags, today, flags, sizeof(flags), err,
                                errlen))
            goto fail;
        /* the flags in effect, for the runtime in the template */
        json_object_set_new(root, "_thaw_flags", json_loads(flags, 0, NULL));
    }
    {
        struct thaw_cron_list crons; /* checked here; the scheduler reads them again */
        if (thaw_cron_list_from_config(root, file, &crons, err, errlen))
            goto fail;
        thaw_cron_list_free(&crons);
    }
    /* secrets of `thaw dev`: into env as strings, never into the log */
    {
        json_t *secrets = thaw_devvars_load(dir, err, errlen);
        if (!secrets)
            goto fail;
        json_object_set_new(root, "_thaw_secrets", secrets);
    }
    cfg->file = strdup(file);
    cfg->dir = strdup(dir);
    cfg->json = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    thaw_config_free(cfg);
    return -1;
}

void thaw_config_free(struct thaw_config *cfg)
{
    int i;

    free(cfg->file);
    free(cfg->dir);
    free(cfg->name);
    free(cfg->main);
    free(cfg->compat_date);
    for (i = 0; i < cfg->n_compat_flags; i++)
        free(cfg->compat_flags[i]);
    free(cfg->compat_flags);
    free(cfg->json);
    memset(cfg, 0, sizeof(*cfg));
}
