/* From a request to a file: path normalisation, HTML handling (trailing
 * slashes and index.html), not-found handling, ETag and If-None-Match. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "assets/assets.h"
#include "util/beneath.h"
#include "util/log.h"

/* ---- the path ------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int thaw_assets_normalize(const char *target, size_t n, char *out, size_t outlen,
                          const char **query)
{
    const char *p = target, *end = target + n, *q;
    char dec[PATH_MAX];
    size_t k = 0, o = 0, seg;
    int trailing;

    /* absolute form: skip the scheme and authority */
    if (n > 7 && (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0)) {
        p = memchr(p, ':', n) + 3;
        while (p < end && *p != '/' && *p != '?' && *p != '#')
            p++;
    }
    for (q = p; q < end && *q != '?' && *q != '#'; q++)
        ;
    *query = q;
    if (q < end && *q == '#')
        *query = end; /* a fragment is not sent on; nothing to keep */
    if (p == q) {
        p = "/"; /* "http://host" or "?q": the root */
        q = p + 1;
    }
    if (*p != '/')
        return -1;
    for (; p < q; p++) {
        char c = *p;
        if (c == '%') {
            int hi, lo;
            if (q - p < 3 || (hi = hexval(p[1])) < 0 || (lo = hexval(p[2])) < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            p += 2;
        }
        if (c == '\0' || k + 1 >= sizeof(dec))
            return -1;
        dec[k++] = c;
    }
    dec[k] = '\0';
    trailing = k > 0 && dec[k - 1] == '/';

    /* segments: "." is dropped, ".." pops (never above the root), empty
     * segments (repeated slashes) are dropped */
    out[o++] = '/';
    for (p = dec; *p;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        for (seg = 0; p[seg] && p[seg] != '/'; seg++)
            ;
        if (seg == 1 && p[0] == '.') {
            /* nothing */
        } else if (seg == 2 && p[0] == '.' && p[1] == '.') {
            if (o > 1) {
                o--; /* the slash after the last segment */
                while (o > 1 && out[o - 1] != '/')
                    o--;
            }
        } else {
            if (o + seg + 2 >= outlen)
                return -1;
            memcpy(out + o, p, seg);
            o += seg;
            out[o++] = '/';
        }
        p += seg;
    }
    /* out ends with '/' here; keep it only when the request had one */
    if (o > 1 && !trailing)
        o--;
    out[o] = '\0';
    return 0;
}

/* Percent-encodes a decoded path for a Location header. */
static void encode_path(const char *path, char *out, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *path && o + 4 < n; path++) {
        unsigned char c = (unsigned char)*path;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("/-._~!$&'()*+,;=:@", c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

/* ---- files ---------------------------------------------------------------- */

/* thaw dev only: today's check for a symlink the kernel walk refused (an
 * absolute one pointing back inside the folder), resolved with realpath()
 * and kept when it lies inside root. */
static int open_resolved(const struct thaw_assets *a, const char *rel)
{
    char path[PATH_MAX + 1], real[PATH_MAX];
    size_t rn = strlen(a->root);

    if ((size_t)snprintf(path, sizeof(path), "%s%s", a->root, rel) >= sizeof(path))
        return -1;
    if (!realpath(path, real))
        return -1;
    if (strncmp(real, a->root, rn) != 0 || real[rn] != '/') {
        errno = EXDEV; /* a symlink out of the directory (or the directory itself) */
        return -1;
    }
    /* O_NOFOLLOW: real has no symlinks left; one that appears now is refused */
    return open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
}

/* Opens root + rel (rel starts with "/") when it is a regular file inside
 * root once every symlink is resolved: the kernel resolves it beneath the
 * folder's fd, so no symlink in it (or swapped in meanwhile) leads out.
 * -1 otherwise (missing, a folder, outside). */
static int open_file(const struct thaw_assets *a, const char *rel, struct stat *st)
{
    int fd;

    fd = thaw_open_beneath(a->root_fd, rel + 1, O_RDONLY | O_NONBLOCK);
    if (fd < 0 && (errno == EXDEV || errno == ELOOP) && !a->tenant)
        fd = open_resolved(a, rel);
    if (fd < 0) {
        if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP && errno != EXDEV)
            thaw_log("assets: cannot open %s%s: %s", a->root, rel, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int open_rel(const struct thaw_assets *a, const char *prefix, const char *suffix,
                    struct stat *st)
{
    char rel[PATH_MAX];

    if ((size_t)snprintf(rel, sizeof(rel), "%s%s", prefix, suffix) >= sizeof(rel))
        return -1;
    return open_file(a, rel, st);
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* A strong validator from the file's identity and version: inode, size
 * and mtime to the nanosecond, mixed (splitmix64) so inode numbers do not
 * leak. Hashing the content would cost a full read of every changed file;
 * these change whenever the file is rewritten or replaced. */
static void make_etag(const struct stat *st, char *out, size_t n)
{
    uint64_t parts[5] = {(uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size,
                         (uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec};
    uint64_t h = 0x9e3779b97f4a7c15ull;
    int i;

    for (i = 0; i < 5; i++) {
        uint64_t z = h ^ parts[i];
        z += 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        h = z ^ (z >> 31);
    }
    snprintf(out, n, "\"%016llx\"", (unsigned long long)h);
}

/* If-None-Match: "*", or a list of entity tags; W/ tags compare equal to
 * their strong form (RFC 9110 weak comparison). */
static int etag_matches(const char *header, const char *etag)
{
    const char *p = header;
    size_t elen = strlen(etag);

    while (*p) {
        const char *start;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        start = p;
        if (*p == '"') {
            p++;
            while (*p && *p != '"')
                p++;
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',')
                p++;
        }
        if ((size_t)(p - start) == elen && memcmp(start, etag, elen) == 0)
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

/* ---- HTML handling ------------------------------------------------------- */

enum { MISS, FOUND, REDIRECT };

/* Finds the file for a normalised path under the html_handling mode:
 * FOUND with *fd, REDIRECT with canonical (decoded), or MISS. */
static int lookup(const struct thaw_assets *a, const char *path, int *fd, struct stat *st,
                  char *canonical, size_t clen, const char **ctype)
{
    char base[PATH_MAX];
    size_t n = strlen(path);
    int slash, file_fd = -1, dir_fd = -1, is_dir;
    struct stat fst, dst;

    if (a->html == THAW_HTML_NONE) {
        if (path[n - 1] == '/')
            return MISS;
        *fd = open_file(a, path, st);
        *ctype = thaw_assets_mime(path);
        return *fd >= 0 ? FOUND : MISS;
    }
    /* a file that is not HTML is served at its exact path */
    if (path[n - 1] != '/' && !ends_with(path, n, ".html")) {
        *fd = open_file(a, path, st);
        *ctype = thaw_assets_mime(path);
        if (*fd >= 0)
            return FOUND;
    }
    /* HTML: /x, /x/, /x.html, /x/index and /x/index.html all name the page
     * x, which is x.html or x/index.html */
    if (n >= sizeof(base))
        return MISS;
    memcpy(base, path, n + 1);
    slash = path[n - 1] == '/';
    if (ends_with(base, n, "/index.html")) {
        n -= strlen("index.html");
        slash = 1;
    } else if (ends_with(base, n, ".html")) {
        n -= strlen(".html");
        slash = 0;
    } else if (ends_with(base, n, "/index")) {
        n -= strlen("index");
        slash = 1;
    }
    while (n > 0 && base[n - 1] == '/')
        n--;
    base[n] = '\0'; /* "" for the root */
    if (n > 0)
        file_fd = open_rel(a, base, ".html", &fst);
    if (file_fd < 0 || (a->html == THAW_HTML_AUTO && slash))
        dir_fd = open_rel(a, base, "/index.html", &dst);
    if (file_fd >= 0 && dir_fd >= 0) {
        /* both exist: a request with a slash asks for the folder's page */
        if (slash) {
            close(file_fd);
            file_fd = -1;
        } else {
            close(dir_fd);
            dir_fd = -1;
        }
    }
    if (file_fd < 0 && dir_fd < 0)
        return MISS;
    is_dir = dir_fd >= 0;
    *ctype = thaw_assets_mime(".html");
    *fd = is_dir ? dir_fd : file_fd;
    *st = is_dir ? dst : fst;
    switch (a->html) {
    case THAW_HTML_FORCE:
        snprintf(canonical, clen, "%s/", base);
        break;
    case THAW_HTML_DROP:
        snprintf(canonical, clen, "%s", n ? base : "/");
        break;
    default:
        snprintf(canonical, clen, "%s%s", base, is_dir ? "/" : "");
        break;
    }
    if (strcmp(canonical, path) == 0)
        return FOUND;
    close(*fd);
    *fd = -1;
    return REDIRECT;
}

/* 404-page: the 404.html nearest to the path, walking up to the root. */
static int nearest_404(const struct thaw_assets *a, const char *path, struct stat *st)
{
    char dir[PATH_MAX];
    size_t n = strlen(path);
    int fd;

    if (n >= sizeof(dir))
        return -1;
    memcpy(dir, path, n + 1);
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            return -1;
        slash[1] = '\0';
        fd = open_rel(a, dir, "404.html", st);
        if (fd >= 0 || slash == dir)
            return fd;
        *slash = '\0';
    }
}

/* ---- the answer ---------------------------------------------------------- */

int thaw_assets_resolve(const struct thaw_assets *a, const struct thaw_asset_req *rq,
                        struct thaw_asset_resp *out)
{
    char path[PATH_MAX], canonical[PATH_MAX];
    const char *query, *ctype = NULL;
    struct stat st;
    int fd = -1, r = MISS, get = strcmp(rq->method, "GET") == 0,
        head = strcmp(rq->method, "HEAD") == 0;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if (!get && !head) {
        if (!rq->binding)
            return 0;
        out->status = 405; /* assets are read-only */
        return 1;
    }
    if (thaw_assets_normalize(rq->target, rq->target_len, path, sizeof(path), &query) == 0)
        r = lookup(a, path, &fd, &st, canonical, sizeof(canonical), &ctype);
    else if (!rq->binding)
        return 0;
    else
        snprintf(path, sizeof(path), "/");
    if (r == REDIRECT) {
        char enc[PATH_MAX * 3];
        size_t qn = (size_t)(rq->target + rq->target_len - query);
        encode_path(canonical, enc, sizeof(enc));
        out->location = malloc(strlen(enc) + qn + 1);
        if (!out->location)
            return 0;
        memcpy(out->location, enc, strlen(enc));
        memcpy(out->location + strlen(enc), query, qn);
        out->location[strlen(enc) + qn] = '\0';
        out->status = 307;
        snprintf(out->length, sizeof(out->length), "0");
        return 1;
    }
    if (r == FOUND) {
        out->status = 200;
    } else if (a->not_found == THAW_NF_SPA && (rq->binding || rq->navigate)) {
        fd = open_file(a, "/index.html", &st);
        out->status = 200;
        if (fd < 0 && !rq->binding)
            return 0;
    } else if (a->not_found == THAW_NF_PAGE && rq->binding) {
        fd = nearest_404(a, path, &st);
        out->status = 404;
    } else if (rq->binding) {
        out->status = 404;
    } else {
        return 0;
    }
    if (fd < 0) {
        out->status = 404;
        snprintf(out->length, sizeof(out->length), "0");
        return 1;
    }
    out->fd = fd;
    out->size = (uint64_t)st.st_size;
    /* a 404 page or the single-page app's index.html otherwise */
    out->content_type = r == FOUND ? ctype : thaw_assets_mime(".html");
    make_etag(&st, out->etag, sizeof(out->etag));
    out->cache_control = !rq->no_cache_control;
    snprintf(out->length, sizeof(out->length), "%llu", (unsigned long long)out->size);
    if (out->status == 200 && rq->if_none_match && etag_matches(rq->if_none_match, out->etag)) {
        out->status = 304;
        close(out->fd);
        out->fd = -1;
    }
    return 1;
}

void thaw_asset_resp_head(struct thaw_asset_resp *out)
{
    int n = 0;

#define ADD(k, v) (out->names[n] = (k), out->values[n] = (v), n++)
    if (out->content_type && out->status != 304)
        ADD("content-type", out->content_type);
    if (out->status != 304)
        ADD("content-length", out->length[0] ? out->length : "0");
    if (out->etag[0])
        ADD("etag", out->etag);
    if (out->cache_control)
        ADD("cache-control", "public, max-age=0, must-revalidate");
    if (out->location)
        ADD("location", out->location);
    if (out->status == 405)
        ADD("allow", "GET, HEAD");
#undef ADD
    out->n_headers = n;
}

void thaw_asset_resp_free(struct thaw_asset_resp *out)
{
    if (out->fd >= 0)
        close(out->fd);
    out->fd = -1;
    free(out->location);
    out->location = NULL;
}
