/* thaw serve: every path in a deployed worker's config stays inside its
 * bundle. The supervisor runs as root outside the sandbox and acts on
 * these paths (serves the assets folder, hands the CA file to curl and to
 * the sandbox's read list), so a path out of the bundle would read the
 * host's files, the admin token or a neighbour's data on the tenant's
 * behalf. Keys thaw ignores today are checked too: a later thaw that
 * reads them must not find a path out already deployed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "serve/tenant.h"
#include "util/beneath.h"

/* The config keys that hold paths (relative to the worker's directory),
 * one row each. "[]" after a name: every item of that array; "*": every
 * value of that table. The value is a string or a list of strings. */
static const struct path_key {
    const char *key;
    int pattern; /* a glob: judged by its text, it names no one file */
} PATH_KEYS[] = {
    {"main", 0},
    {"assets.directory", 0},
    {"site.bucket", 0},                    /* wrangler's Workers Sites */
    {"site.include", 1},
    {"site.exclude", 1},
    {"thaw.egress.ca_file", 0},
    {"d1_databases[].migrations_dir", 0},
    {"build.cwd", 0},
    {"build.watch_dir", 0},
    {"tsconfig", 0},
    {"base_dir", 0},
    {"rules[].globs", 1},
    {"wasm_modules.*", 0},                 /* service-worker format: name -> file */
    {"text_blobs.*", 0},
    {"data_blobs.*", 0},
};

struct walk {
    const struct thaw_tenant_ctx *c;
    const struct path_key *k;
    char *err;
    size_t errlen;
};

/* A glob's text: relative, and no `..` part. */
static int pattern_inside(const char *s)
{
    const char *p = s;

    if (*s == '/')
        return 0;
    while ((p = strstr(p, ".."))) {
        if ((p == s || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
            return 0;
        p += 2;
    }
    return 1;
}

static int refuse(struct walk *w, const char *name, const char *value, const char *why)
{
    snprintf(w->err, w->errlen,
             "%s: %s \"%.200s\" %s: paths in a deployed worker's config are relative to "
             "its directory and stay inside it (no absolute path, no `..` above it, no "
             "symlink out)", w->c->cfg->file, name, value, why);
    return 400;
}

static int check_value(struct walk *w, const char *name, json_t *v)
{
    const char *s = json_string_value(v);
    int r;

    if (!s)
        return 0; /* not a path: the part that reads the key says so */
    if (strlen(s) != json_string_length(v))
        return refuse(w, name, s, "holds a NUL byte");
    if (w->k->pattern)
        return pattern_inside(s) ? 0 : refuse(w, name, s, "reaches outside the worker's "
                                              "bundle");
    if (!*s)
        return 0;
    r = thaw_path_beneath(w->c->cfg->dir, s);
    if (r == 1)
        return 0;
    if (r == 0)
        return refuse(w, name, s, "is outside the worker's bundle");
    snprintf(w->err, w->errlen, "%s: %s \"%.200s\" cannot be checked: %s",
             w->c->cfg->file, name, s, strerror(errno));
    return 400;
}

/* Follows spec (the rest of a PATH_KEYS key) from v; name is the key so
 * far, as messages show it ("d1_databases[0].migrations_dir"). */
static int visit(struct walk *w, json_t *v, const char *spec, char *name, size_t n)
{
    char part[64];
    size_t len = strcspn(spec, "."), at = strlen(name), i;
    const char *rest = spec[len] ? spec + len + 1 : NULL;
    const char *key;
    json_t *item;
    int status;

    if (!spec[0]) {
        if (!json_is_array(v))
            return check_value(w, name, v);
        json_array_foreach(v, i, item) {
            snprintf(name + at, n - at, "[%zu]", i);
            if ((status = check_value(w, name, item)))
                return status;
        }
        return 0;
    }
    snprintf(part, sizeof(part), "%.*s", (int)len, spec);
    if (strcmp(part, "*") == 0) {
        json_object_foreach(v, key, item) {
            snprintf(name + at, n - at, "%s%.100s", at ? "." : "", key);
            if ((status = visit(w, item, rest ? rest : "", name, n)))
                return status;
        }
        return 0;
    }
    if (len > 2 && strcmp(part + len - 2, "[]") == 0) {
        part[len - 2] = '\0';
        json_array_foreach(json_object_get(v, part), i, item) {
            snprintf(name + at, n - at, "%s%s[%zu]", at ? "." : "", part, i);
            if ((status = visit(w, item, rest ? rest : "", name, n)))
                return status;
        }
        return 0;
    }
    if (!(item = json_object_get(v, part)))
        return 0;
    snprintf(name + at, n - at, "%s%s", at ? "." : "", part);
    return visit(w, item, rest ? rest : "", name, n);
}

int thaw_tenant_check_paths(const struct thaw_tenant_ctx *c, char *err, size_t errlen)
{
    struct walk w = {c, NULL, err, errlen};
    char name[256];
    size_t i;
    int status;

    for (i = 0; i < sizeof(PATH_KEYS) / sizeof(PATH_KEYS[0]); i++) {
        w.k = &PATH_KEYS[i];
        name[0] = '\0';
        if ((status = visit(&w, c->config, w.k->key, name, sizeof(name))))
            return status;
    }
    return 0;
}
