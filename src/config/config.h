/* A worker's configuration: wrangler.toml / wrangler.jsonc / wrangler.json.
 * JSON and JSONC are parsed here; TOML is turned into JSON by the zygote
 * (CPython's tomllib: no C TOML library is packaged), then comes through
 * thaw_config_from_json like the others. */
#ifndef THAW_CONFIG_H
#define THAW_CONFIG_H

#include <stddef.h>

enum thaw_config_kind { THAW_CFG_NONE, THAW_CFG_JSON, THAW_CFG_JSONC, THAW_CFG_TOML };

struct thaw_config {
    char *file;        /* the config file read, for messages */
    char *dir;         /* absolute worker directory */
    char *name;
    char *main;        /* relative to dir, e.g. "src/entry.py" */
    char *compat_date; /* may be NULL */
    char **compat_flags;
    int n_compat_flags;
    char *json;        /* the whole config as compact JSON, for the template */
};

/* Finds the config file of dir: wrangler.json, then wrangler.jsonc, then
 * wrangler.toml (wrangler's own order). Writes its path; returns the kind,
 * THAW_CFG_NONE when there is none. */
enum thaw_config_kind thaw_config_find(const char *dir, char *path, size_t n);

/* JSON with comments and trailing commas -> plain JSON. Comments become
 * spaces so line and column numbers of later errors still match the file.
 * Returns 0, or -1 with a message in err. *out is malloc'd. */
int thaw_jsonc_to_json(const char *in, size_t len, char **out, char *err,
                       size_t errlen);

/* Validates and loads. `file` names the source in messages. Returns 0, or
 * -1 with a message in err naming the file, the key and the fix. */
int thaw_config_from_json(const char *json, const char *file, const char *dir,
                          struct thaw_config *cfg, char *err, size_t errlen);

void thaw_config_free(struct thaw_config *cfg);

#endif
