/* Static assets: the files of a worker's `assets.directory`, served the way
 * Cloudflare's Workers static assets serve them. One resolver is shared by
 * the two ways in: the HTTP front end (server/static.c), which answers a
 * request from the files before any worker runs, and the ASSETS binding
 * (bind/assets.c), through which the worker fetches them itself.
 *
 * Files are read at request time, never cached: an edited file is served
 * (with a new ETag) on the next request, so `thaw dev` needs no rebuild for
 * asset changes. Every path is decoded and normalised first, then opened
 * beneath the directory's fd (util/beneath.h: openat2 RESOLVE_BENEATH), so
 * neither `..` (plain or percent-encoded) nor a symlink can reach a file
 * outside it. */
#ifndef THAW_ASSETS_H
#define THAW_ASSETS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum thaw_assets_html {
    THAW_HTML_AUTO,  /* "auto-trailing-slash" (the default) */
    THAW_HTML_FORCE, /* "force-trailing-slash" */
    THAW_HTML_DROP,  /* "drop-trailing-slash" */
    THAW_HTML_NONE,  /* "none": exact paths only */
};

enum thaw_assets_notfound {
    THAW_NF_NONE, /* "none" (the default): the worker runs; the binding says 404 */
    THAW_NF_PAGE, /* "404-page": the nearest 404.html, status 404 */
    THAW_NF_SPA,  /* "single-page-application": /index.html, status 200 */
};

/* The `assets` table of one worker version; shared (refcounted) by the
 * version's binding set and the responses still streaming from it. */
struct thaw_assets {
    int refs;
    char *root;           /* realpath of the directory */
    int root_fd;          /* the directory (O_PATH): files open beneath it */
    int tenant;           /* thaw serve: no path leaves the worker's bundle */
    char *binding;        /* the env name, NULL without `binding` */
    enum thaw_assets_html html;
    enum thaw_assets_notfound not_found;
    int worker_first;     /* run_worker_first = true */
    char **rules;         /* run_worker_first patterns, "!" ones exclude */
    int n_rules;
};

/* Reads the `assets` table (a JSON object) of the config in `file`; the
 * directory is relative to worker_dir. tenant (thaw serve): the directory
 * must lie inside worker_dir after symlinks, and only symlinks relative
 * and inside the directory are followed; in thaw dev an absolute symlink
 * that points back inside the directory works too. NULL with a message
 * in err naming the file, the key and the fix. */
struct thaw_assets *thaw_assets_open(json_t *table, const char *worker_dir,
                                     const char *file, int tenant, char *err,
                                     size_t errlen);
void thaw_assets_ref(struct thaw_assets *a);
void thaw_assets_unref(struct thaw_assets *a);

/* Whether the worker runs before assets for a request path (decoded and
 * normalised, see thaw_assets_normalize). */
int thaw_assets_worker_first(const struct thaw_assets *a, const char *path);

/* Percent-decodes the path of a request target (origin form "/a/b?q" or
 * absolute form "http://host/a/b?q") and resolves "." and ".." segments
 * and repeated slashes, as a URL parser does: the result starts with "/"
 * and never climbs above it. *query points at the "?..." of target (or its
 * end). Returns 0, or -1 for a target that cannot name a file (a NUL byte,
 * bad percent-encoding, too long). */
int thaw_assets_normalize(const char *target, size_t n, char *out, size_t outlen,
                          const char **query);

/* One request for an asset. */
struct thaw_asset_req {
    const char *method;
    const char *target;         /* "/path?query" or an absolute URL */
    size_t target_len;
    const char *if_none_match;  /* NULL when absent */
    int no_cache_control;       /* Authorization or Range was sent */
    int navigate;               /* Sec-Fetch-Mode: navigate */
    int binding;                /* through env.ASSETS: misses answer too */
};

/* The answer: a file to send (fd >= 0, size bytes), or a bodyless status. */
struct thaw_asset_resp {
    int status;                 /* 200, 304, 307, 404 or 405 */
    int fd;                     /* -1 when there is no body */
    uint64_t size;
    const char *content_type;
    char etag[24];              /* "" when there is no file */
    char length[24];            /* content-length text */
    char *location;             /* 307 */
    int cache_control;
    /* the response head, filled by thaw_asset_resp_head */
    const char *names[6];
    const char *values[6];
    int n_headers;
};

/* Returns 1 with out filled, or 0 when the assets do not answer this
 * request (only for requests from the HTTP side: the worker runs). */
int thaw_assets_resolve(const struct thaw_assets *a, const struct thaw_asset_req *rq,
                        struct thaw_asset_resp *out);
/* Fills out->names/values/n_headers from the answer. */
void thaw_asset_resp_head(struct thaw_asset_resp *out);
/* Closes the file and frees the location. */
void thaw_asset_resp_free(struct thaw_asset_resp *out);

/* The Content-Type for a file name, by extension; text types carry
 * charset=utf-8, unknown ones are application/octet-stream. */
const char *thaw_assets_mime(const char *name);

/* Bytes read from an asset file at a time. */
#define THAW_ASSETS_CHUNK (256u * 1024)

#endif
