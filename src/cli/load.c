/* Reading a worker's config file in whichever of the three formats. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "zygote/client.h"

struct load {
    char dir[4096];
    char path[4096];
    thaw_load_cb cb;
    void *data;
};

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < 16 * 1024 * 1024 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
        *len = fread(buf, 1, (size_t)n, f);
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}

static void finish_json(struct load *l, const char *json)
{
    struct thaw_config cfg;
    char err[1024];
    const char *file = strrchr(l->path, '/') ? strrchr(l->path, '/') + 1 : l->path;

    if (thaw_config_from_json(json, file, l->dir, &cfg, err, sizeof(err)))
        l->cb(l->data, -1, NULL, err);
    else
        l->cb(l->data, 0, &cfg, NULL);
    free(l);
}

static void on_toml(void *data, int ok, const char *text, size_t len)
{
    struct load *l = data;
    char *s = strndup(text, len);

    if (ok > 0) {
        finish_json(l, s);
    } else {
        l->cb(l->data, ok < 0 || !s ? THAW_LOAD_E_INTERNAL : THAW_LOAD_E_CONFIG, NULL,
              s ? s : "out of memory");
        free(l);
    }
    free(s);
}

void thaw_load_config(struct thaw_zygote *z, const char *dir, thaw_load_cb cb,
                      void *data)
{
    struct load *l = calloc(1, sizeof(*l));
    enum thaw_config_kind kind;
    char err[8192], *text, *json;
    size_t len = 0;

    if (!l) {
        cb(data, THAW_LOAD_E_INTERNAL, NULL, "out of memory");
        return;
    }
    snprintf(l->dir, sizeof(l->dir), "%s", dir);
    l->cb = cb;
    l->data = data;
    kind = thaw_config_find(dir, l->path, sizeof(l->path));
    if (kind == THAW_CFG_NONE) {
        snprintf(err, sizeof(err),
                 "%s has no wrangler.toml, wrangler.jsonc or wrangler.json: "
                 "create one with at least main = \"src/entry.py\"", dir);
        cb(data, -1, NULL, err);
        free(l);
        return;
    }
    if (kind == THAW_CFG_TOML) {
        if (thaw_zygote_toml(z, l->path, on_toml, l)) {
            cb(data, THAW_LOAD_E_INTERNAL, NULL,
               "the zygote is not running to read wrangler.toml");
            free(l);
        }
        return;
    }
    if (!(text = read_file(l->path, &len))) {
        snprintf(err, sizeof(err), "cannot read %s: %s", l->path, strerror(errno));
        /* it was just found: not being able to read it is thaw's trouble */
        cb(data, THAW_LOAD_E_INTERNAL, NULL, err);
        free(l);
        return;
    }
    if (thaw_jsonc_to_json(text, len, &json, err, sizeof(err))) {
        char msg[8400];
        snprintf(msg, sizeof(msg), "%s: %s", strrchr(l->path, '/') + 1, err);
        cb(data, -1, NULL, msg);
        free(text);
        free(l);
        return;
    }
    free(text);
    finish_json(l, json);
    free(json);
}
