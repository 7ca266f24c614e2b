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
#include "do/config.h"
#include "util/editdist.h"
#include "util/log.h"

/* Every top-level key of a wrangler config, in one table (STYLE.md habit
 * 10). USE: thaw reads it. QUIET: it configures Cloudflare's build, deploy
 * or dashboard, which have no counterpart here: accepted without a word.
 * LATER: a binding or feature thaw does not run: accepted with one line
 * naming what the worker will not get, so a config written for wrangler
 * still loads. docs/compat.md lists them. */
enum key_use { USE, QUIET, LATER };

struct key_spec {
    const char *key;
    json_type type;    /* checked for USE keys only */
    enum key_use use;
    const char *what;  /* LATER: what is missing */
};

static const struct key_spec KEYS[] = {
    {"name", JSON_STRING, USE, NULL},
    {"main", JSON_STRING, USE, NULL},
    {"compatibility_date", JSON_STRING, USE, NULL},
    {"compatibility_flags", JSON_ARRAY, USE, NULL},
    {"vars", JSON_OBJECT, USE, NULL},
    {"kv_namespaces", JSON_ARRAY, USE, NULL},
    {"d1_databases", JSON_ARRAY, USE, NULL},
    {"triggers", JSON_OBJECT, USE, NULL},
    {"assets", JSON_OBJECT, USE, NULL},
    {"routes", JSON_ARRAY, USE, NULL},    /* thaw serve (src/serve/router.c) */
    {"durable_objects", JSON_OBJECT, USE, NULL}, /* src/do/config.c */
    {"migrations", JSON_ARRAY, USE, NULL},
    {"limits", JSON_OBJECT, USE, NULL},
    {"thaw", JSON_OBJECT, USE, NULL},
    /* Cloudflare's build, upload, account and dashboard settings */
    {"$schema", 0, QUIET, NULL},
    {"account_id", 0, QUIET, NULL},
    {"workers_dev", 0, QUIET, NULL},
    {"preview_urls", 0, QUIET, NULL},
    {"route", 0, QUIET, NULL},
    {"zone_id", 0, QUIET, NULL},
    {"observability", 0, QUIET, NULL},
    {"logpush", 0, QUIET, NULL},
    {"placement", 0, QUIET, NULL},
    {"upload_source_maps", 0, QUIET, NULL},
    {"minify", 0, QUIET, NULL},
    {"keep_names", 0, QUIET, NULL},
    {"build", 0, QUIET, NULL},
    {"dev", 0, QUIET, NULL},
    {"rules", 0, QUIET, NULL},
    {"no_bundle", 0, QUIET, NULL},
    {"find_additional_modules", 0, QUIET, NULL},
    {"base_dir", 0, QUIET, NULL},
    {"preserve_file_names", 0, QUIET, NULL},
    {"tsconfig", 0, QUIET, NULL},
    {"jsx_factory", 0, QUIET, NULL},
    {"jsx_fragment", 0, QUIET, NULL},
    {"define", 0, QUIET, NULL},
    {"alias", 0, QUIET, NULL},
    {"send_metrics", 0, QUIET, NULL},
    {"keep_vars", 0, QUIET, NULL},
    {"legacy_env", 0, QUIET, NULL},
    {"compliance_region", 0, QUIET, NULL},
    {"first_party_worker", 0, QUIET, NULL},
    {"python_modules", 0, QUIET, NULL}, /* pywrangler's upload excludes */
    {"secrets", 0, QUIET, NULL},        /* names of required secrets */
    {"version_metadata", 0, QUIET, NULL},
    /* bindings and features thaw does not run */
    {"env", 0, LATER, "wrangler environments (thaw reads the top-level keys only)"},
    {"r2_buckets", 0, LATER, "R2 bucket bindings"},
    {"queues", 0, LATER, "Queue producers and consumers"},
    {"services", 0, LATER, "service bindings"},
    {"ai", 0, LATER, "the Workers AI binding"},
    {"vectorize", 0, LATER, "Vectorize bindings"},
    {"hyperdrive", 0, LATER, "Hyperdrive bindings"},
    {"analytics_engine_datasets", 0, LATER, "Analytics Engine bindings"},
    {"browser", 0, LATER, "the Browser Rendering binding"},
    {"images", 0, LATER, "the Images binding"},
    {"workflows", 0, LATER, "Workflow bindings"},
    {"send_email", 0, LATER, "send_email bindings"},
    {"mtls_certificates", 0, LATER, "mTLS certificate bindings"},
    {"dispatch_namespaces", 0, LATER, "dispatch namespace bindings"},
    {"tail_consumers", 0, LATER, "tail consumers"},
    {"pipelines", 0, LATER, "Pipeline bindings"},
    {"secrets_store_secrets", 0, LATER, "Secrets Store bindings"},
    {"ratelimits", 0, LATER, "rate limiting bindings"},
    {"containers", 0, LATER, "Containers"},
    {"worker_loaders", 0, LATER, "Worker Loader bindings"},
    {"vpc_services", 0, LATER, "VPC service bindings"},
    {"logfwdr", 0, LATER, "logfwdr bindings"},
    {"unsafe", 0, LATER, "unsafe bindings"},
    {"wasm_modules", 0, LATER, "wasm_modules (a JavaScript feature)"},
    {"text_blobs", 0, LATER, "text_blobs (a service-worker feature)"},
    {"data_blobs", 0, LATER, "data_blobs (a service-worker feature)"},
    {"site", 0, LATER, "Workers Sites (use `assets`)"},
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
            const char *near = NULL;
            size_t best = 3; /* a typo: at most two edits away */
            for (i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++) {
                size_t d = thaw_edit_distance(key, KEYS[i].key);
                if (d < best) {
                    best = d;
                    near = KEYS[i].key;
                }
            }
            if (near)
                thaw_log("%s: unknown key `%s` ignored: did you mean `%s`?", file, key, near);
            else
                thaw_log("%s: unknown key `%s` ignored (not a wrangler key thaw knows; "
                         "docs/compat.md)", file, key);
            continue;
        }
        if (k->use == LATER) {
            thaw_log("%s: `%s` is accepted but not run by thaw: the worker gets no %s",
                     file, key, k->what);
            continue;
        }
        if (k->use == USE && !type_ok(v, k->type)) {
            snprintf(err, errlen, "%s: `%s` must be %s", file, key,
                     type_name(k->type));
            goto fail;
        }
    }
    v = json_object_get(json_object_get(root, "thaw"), "strict_python");
    if (v && !json_is_boolean(v)) {
        snprintf(err, errlen, "%s: `thaw.strict_python` must be true or false", file);
        goto fail;
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
        char today[16], flags[2048];
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
        /* a flag that asks for a feature thaw does not run says so once */
        for (i = 0; i < (size_t)cfg->n_compat_flags; i++) {
            int j;
            for (j = 0; j < thaw_n_compat_flags; j++)
                if (strcmp(cfg->compat_flags[i], thaw_compat_flags[j].name) == 0 &&
                    strncmp(thaw_compat_flags[j].what, "no effect: thaw does not run",
                            28) == 0)
                    thaw_log("%s: compatibility flag %s: %s", file,
                             thaw_compat_flags[j].name, thaw_compat_flags[j].what);
        }
    }
    if (thaw_do_config(root, file, cfg->name, err, errlen))
        goto fail;
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
