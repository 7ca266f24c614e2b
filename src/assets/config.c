/* The `assets` table of a worker config: checked once per version, with
 * messages that name the key and the fix. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "assets/assets.h"
#include "util/beneath.h"
#include "util/log.h"

static const char *const HTML_MODES[] = {
    [THAW_HTML_AUTO] = "auto-trailing-slash",
    [THAW_HTML_FORCE] = "force-trailing-slash",
    [THAW_HTML_DROP] = "drop-trailing-slash",
    [THAW_HTML_NONE] = "none",
};

static const char *const NOT_FOUND_MODES[] = {
    [THAW_NF_NONE] = "none",
    [THAW_NF_PAGE] = "404-page",
    [THAW_NF_SPA] = "single-page-application",
};

/* The keys of the table; others are Cloudflare's and ignored with a line
 * in the log. */
static const char *const KNOWN[] = {
    "directory", "binding", "html_handling", "not_found_handling", "run_worker_first",
};

void thaw_assets_ref(struct thaw_assets *a)
{
    a->refs++;
}

void thaw_assets_unref(struct thaw_assets *a)
{
    int i;

    if (!a || --a->refs > 0)
        return;
    for (i = 0; i < a->n_rules; i++)
        free(a->rules[i]);
    free(a->rules);
    if (a->root_fd >= 0)
        close(a->root_fd);
    free(a->root);
    free(a->binding);
    free(a);
}

/* Picks one of `names` for a string key; 0 or -1 with err. */
static int pick_mode(json_t *table, const char *key, const char *const *names, int n,
                     int *out, const char *file, char *err, size_t errlen)
{
    json_t *v = json_object_get(table, key);
    const char *s;
    int i;

    if (!v)
        return 0;
    s = json_string_value(v);
    for (i = 0; s && i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    {
        char list[256] = "";
        size_t k = 0;
        for (i = 0; i < n; i++)
            k += (size_t)snprintf(list + k, sizeof(list) - k, "%s\"%s\"",
                                  i ? ", " : "", names[i]);
        snprintf(err, errlen, "%s: `assets.%s` must be one of %s%s%s%s", file, key, list,
                 s ? " (not \"" : "", s ? s : "", s ? "\")" : "");
    }
    return -1;
}

static int valid_binding_name(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

static int read_worker_first(struct thaw_assets *a, json_t *v, const char *file,
                             char *err, size_t errlen)
{
    size_t i;
    json_t *item;

    if (!v || json_is_boolean(v)) {
        a->worker_first = v && json_is_true(v);
        return 0;
    }
    if (!json_is_array(v))
        goto bad;
    a->rules = calloc(json_array_size(v) + 1, sizeof(*a->rules));
    if (!a->rules) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_array_foreach(v, i, item) {
        const char *s = json_string_value(item);
        if (!s || !(s[0] == '/' || (s[0] == '!' && s[1] == '/'))) {
            snprintf(err, errlen,
                     "%s: `assets.run_worker_first` entry %zu (%s) must be a path "
                     "pattern starting with \"/\" (or \"!/\" to exclude), such as "
                     "\"/api/*\"", file, i + 1, s ? s : "not a string");
            return -1;
        }
        a->rules[a->n_rules++] = strdup(s);
    }
    return 0;
bad:
    snprintf(err, errlen,
             "%s: `assets.run_worker_first` must be true, false or a list of path "
             "patterns such as [\"/api/*\", \"!/api/docs/*\"]", file);
    return -1;
}

static int read_directory(struct thaw_assets *a, json_t *table, const char *worker_dir,
                          const char *file, int tenant, char *err, size_t errlen)
{
    const char *dir = json_string_value(json_object_get(table, "directory"));
    char path[PATH_MAX + 1], real[PATH_MAX];
    struct stat st;

    if (!dir || !*dir) {
        snprintf(err, errlen,
                 "%s: `assets.directory` is missing: name the folder of files to "
                 "serve, e.g. directory = \"./public\"", file);
        return -1;
    }
    /* thaw serve checked this at deploy (serve/tenant-paths.c); checked
     * again here so the root supervisor never serves a folder out of the
     * bundle, whichever way the config came */
    if (tenant && thaw_path_beneath(worker_dir, dir) != 1) {
        snprintf(err, errlen,
                 "%s: `assets.directory` \"%s\" is outside the worker's bundle: paths in "
                 "a deployed worker's config are relative to its directory and stay "
                 "inside it", file, dir);
        return -1;
    }
    if (dir[0] == '/')
        snprintf(path, sizeof(path), "%s", dir);
    else
        snprintf(path, sizeof(path), "%s/%s", worker_dir, dir);
    if (!realpath(path, real) || stat(real, &st) < 0) {
        snprintf(err, errlen,
                 "%s: `assets.directory` \"%s\" (%s) cannot be used: %s; create the "
                 "folder or fix the path (it is relative to the worker's directory)",
                 file, dir, path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: `assets.directory` \"%s\" (%s) is not a folder",
                 file, dir, real);
        return -1;
    }
    a->root_fd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (a->root_fd < 0) {
        snprintf(err, errlen, "%s: `assets.directory` \"%s\" (%s) cannot be opened: %s",
                 file, dir, real, strerror(errno));
        return -1;
    }
    a->root = strdup(real);
    return a->root ? 0 : -1;
}

struct thaw_assets *thaw_assets_open(json_t *table, const char *worker_dir,
                                     const char *file, int tenant, char *err,
                                     size_t errlen)
{
    struct thaw_assets *a = calloc(1, sizeof(*a));
    const char *key;
    json_t *v;
    int mode;
    size_t i;

    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->refs = 1;
    a->root_fd = -1;
    a->tenant = tenant;
    json_object_foreach(table, key, v) {
        for (i = 0; i < sizeof(KNOWN) / sizeof(KNOWN[0]); i++)
            if (strcmp(key, KNOWN[i]) == 0)
                break;
        if (i == sizeof(KNOWN) / sizeof(KNOWN[0]))
            thaw_log("%s: `assets.%s` is not supported by this thaw; ignored", file, key);
    }
    if (read_directory(a, table, worker_dir, file, tenant, err, errlen) < 0)
        goto fail;
    v = json_object_get(table, "binding");
    if (v) {
        if (!valid_binding_name(json_string_value(v))) {
            snprintf(err, errlen,
                     "%s: `assets.binding` must be a name usable in Python, such as "
                     "\"ASSETS\"", file);
            goto fail;
        }
        a->binding = strdup(json_string_value(v));
    }
    mode = THAW_HTML_AUTO;
    if (pick_mode(table, "html_handling", HTML_MODES, 4, &mode, file, err, errlen) < 0)
        goto fail;
    a->html = (enum thaw_assets_html)mode;
    mode = THAW_NF_NONE;
    if (pick_mode(table, "not_found_handling", NOT_FOUND_MODES, 3, &mode, file, err,
                  errlen) < 0)
        goto fail;
    a->not_found = (enum thaw_assets_notfound)mode;
    if (read_worker_first(a, json_object_get(table, "run_worker_first"), file, err,
                          errlen) < 0)
        goto fail;
    return a;
fail:
    thaw_assets_unref(a);
    return NULL;
}

/* "*" matches any run of characters, "/" included (Cloudflare's rule
 * syntax); everything else matches itself. */
static int glob(const char *p, const char *s)
{
    const char *star = NULL, *resume = NULL;

    while (*s) {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

int thaw_assets_worker_first(const struct thaw_assets *a, const char *path)
{
    int i, hit = 0;

    if (a->worker_first)
        return 1;
    /* an exclusion wins over any inclusion */
    for (i = 0; i < a->n_rules; i++) {
        if (a->rules[i][0] == '!') {
            if (glob(a->rules[i] + 1, path))
                return 0;
        } else if (glob(a->rules[i], path)) {
            hit = 1;
        }
    }
    return hit;
}
