/* Host and route pattern matching for thaw serve. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve/router.h"

int thaw_worker_name_ok(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n > 63 || name[0] == '-' || name[n - 1] == '-')
        return 0;
    for (i = 0; i < n; i++)
        if (!(islower((unsigned char)name[i]) || isdigit((unsigned char)name[i]) ||
              name[i] == '-'))
            return 0;
    return 1;
}

static int host_char_ok(char ch)
{
    return isalnum((unsigned char)ch) || ch == '-' || ch == '.' || ch == '_';
}

/* What a path may hold: printable ASCII but '%', '?', '#' and space. */
static int path_char_ok(char ch)
{
    return ch > 0x20 && ch < 0x7f && ch != '%' && ch != '?' && ch != '#';
}

static int route_fail(char *err, size_t errlen, const char *pattern, const char *why)
{
    snprintf(err, errlen, "route \"%s\" %s", pattern, why);
    return -1;
}

/* "." or ".." as a segment of path (up to its end or a final '*') */
static int has_dot_segment(const char *path)
{
    const char *p;

    for (p = path; (p = strstr(p, "/.")); p++) {
        size_t dots = p[2] == '.' ? 2 : 1;
        char after = p[1 + dots];
        if (after == '\0' || after == '/' || after == '*')
            return 1;
    }
    return 0;
}

int thaw_route_parse(const char *pattern, struct thaw_route *out, char *err,
                     size_t errlen)
{
    const char *p = pattern, *slash;
    size_t i, hn, pl;

    memset(out, 0, sizeof(*out));
    if (strncasecmp(p, "https://", 8) == 0)
        p += 8;
    else if (strncasecmp(p, "http://", 7) == 0)
        p += 7;
    if (strncmp(p, "*.", 2) == 0) {
        out->host_wild = 1;
        p += 2;
    } else if (p[0] == '*') {
        out->host_wild = 2;
        p += 1;
    }
    slash = strchr(p, '/');
    if (!slash) {
        snprintf(err, errlen, "route \"%s\" has no path: write it as \"%s/*\" to match "
                 "every path of the host", pattern, pattern);
        return -1;
    }
    hn = (size_t)(slash - p);
    if (hn > 0 && p[hn - 1] == '.')
        hn--; /* "example.com." is "example.com", as in a Host header */
    if (hn == 0)
        return route_fail(err, errlen, pattern, "has no host (like \"example.com/*\")");
    if (memchr(p, ':', hn))
        return route_fail(err, errlen, pattern, "has a port: a route matches its host on "
                          "every port thaw serve listens on, so write it without one");
    for (i = 0; i < hn; i++)
        if (!host_char_ok(p[i]))
            return route_fail(err, errlen, pattern, ": the host may hold only letters, "
                              "digits, '-' and '.', and '*' only at its start "
                              "(\"*.example.com/*\")");
    if (p[0] == '.' || memmem(p, hn, "..", 2))
        return route_fail(err, errlen, pattern, "has an empty label in its host");
    pl = strlen(slash);
    if (strchr(slash, '*') && strchr(slash, '*') != slash + pl - 1)
        return route_fail(err, errlen, pattern, ": '*' may only end the path "
                          "(\"example.com/api/*\")");
    for (i = 0; i < pl; i++)
        if (!path_char_ok(slash[i]))
            return route_fail(err, errlen, pattern, ": the path may not hold '%', '?', "
                              "'#', spaces or control characters (it is compared with the "
                              "request path as sent, never decoded)");
    if (has_dot_segment(slash))
        return route_fail(err, errlen, pattern, ": \".\" and \"..\" are not allowed as "
                          "path segments");
    out->pattern = strdup(pattern);
    out->host = strndup(p, hn);
    for (i = 0; out->host[i]; i++)
        out->host[i] = (char)tolower((unsigned char)out->host[i]);
    out->path_prefix = slash[pl - 1] == '*';
    out->path = strndup(slash, pl - (size_t)out->path_prefix);
    return 0;
}

void thaw_route_free(struct thaw_route *r)
{
    free(r->pattern);
    free(r->host);
    free(r->path);
    memset(r, 0, sizeof(*r));
}

/* 1 when h is a proper subdomain of d: "<label(s)>.d" */
static int is_subdomain(const char *h, const char *d)
{
    size_t hl = strlen(h), dl = strlen(d);

    return hl > dl + 1 && h[hl - dl - 1] == '.' && strcmp(h + hl - dl, d) == 0;
}

int thaw_route_host_matches(const struct thaw_route *r, const char *h)
{
    if (strcmp(h, r->host) == 0)
        return r->host_wild != 1; /* "*.h" is only h's subdomains */
    return r->host_wild && is_subdomain(h, r->host);
}

static int host_within(const struct thaw_route *r, const struct thaw_route *g)
{
    int same = strcmp(r->host, g->host) == 0, sub = is_subdomain(r->host, g->host);

    switch (g->host_wild) {
    case 0: return !r->host_wild && same;
    case 1: return sub || (same && r->host_wild == 1);
    default: return same || sub;
    }
}

static int path_within(const struct thaw_route *r, const struct thaw_route *g)
{
    if (!g->path_prefix)
        return !r->path_prefix && strcmp(r->path, g->path) == 0;
    return strncmp(r->path, g->path, strlen(g->path)) == 0;
}

int thaw_route_within(const struct thaw_route *r, const struct thaw_route *g)
{
    return host_within(r, g) && path_within(r, g);
}

static int hosts_overlap(const struct thaw_route *a, const struct thaw_route *b)
{
    if (!a->host_wild)
        return thaw_route_host_matches(b, a->host);
    if (!b->host_wild)
        return thaw_route_host_matches(a, b->host);
    /* two wildcards share the subdomains of the longer host when one host
     * is the other or under it */
    return strcmp(a->host, b->host) == 0 || is_subdomain(a->host, b->host) ||
           is_subdomain(b->host, a->host);
}

static int paths_overlap(const struct thaw_route *a, const struct thaw_route *b)
{
    size_t al = strlen(a->path), bl = strlen(b->path);

    if (!a->path_prefix && !b->path_prefix)
        return strcmp(a->path, b->path) == 0;
    if (!a->path_prefix)
        return strncmp(a->path, b->path, bl) == 0;
    if (!b->path_prefix)
        return strncmp(b->path, a->path, al) == 0;
    return strncmp(a->path, b->path, al < bl ? al : bl) == 0;
}

int thaw_route_overlaps(const struct thaw_route *a, const struct thaw_route *b)
{
    return hosts_overlap(a, b) && paths_overlap(a, b);
}

int thaw_router_add(struct thaw_router *rt, const char *pattern, void *target,
                    char *err, size_t errlen)
{
    struct thaw_route r;

    if (thaw_route_parse(pattern, &r, err, errlen))
        return -1;
    if (rt->n == rt->cap) {
        size_t cap = rt->cap ? rt->cap * 2 : 16;
        struct thaw_route *nr = realloc(rt->routes, cap * sizeof(*nr));
        if (!nr) {
            thaw_route_free(&r);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        rt->routes = nr;
        rt->cap = cap;
    }
    r.target = target;
    rt->routes[rt->n++] = r;
    return 0;
}

void thaw_router_remove(struct thaw_router *rt, void *target)
{
    size_t i, k = 0;

    for (i = 0; i < rt->n; i++) {
        if (rt->routes[i].target == target)
            thaw_route_free(&rt->routes[i]);
        else
            rt->routes[k++] = rt->routes[i];
    }
    rt->n = k;
}

void thaw_router_free(struct thaw_router *rt)
{
    size_t i;

    for (i = 0; i < rt->n; i++)
        thaw_route_free(&rt->routes[i]);
    free(rt->routes);
    memset(rt, 0, sizeof(*rt));
}

void thaw_router_split(const char *host, const char *target, size_t n, char *h,
                       size_t hn, char *path, size_t pn)
{
    const char *t = target, *end = target + n, *q;
    size_t i, k;

    if (n > 7 && (strncmp(t, "http://", 7) == 0 || strncmp(t, "https://", 8) == 0)) {
        const char *auth = t + (t[4] == 's' ? 8 : 7), *slash;
        slash = memchr(auth, '/', (size_t)(end - auth));
        snprintf(h, hn, "%.*s", (int)((slash ? slash : end) - auth), auth);
        t = slash ? slash : end;
    } else {
        snprintf(h, hn, "%s", host ? host : "");
    }
    /* [v6]:port, host:port, trailing dot, case */
    if (h[0] == '[') {
        char *close = strchr(h, ']');
        if (close)
            close[1] = '\0';
    } else if (strchr(h, ':')) {
        *strchr(h, ':') = '\0';
    }
    k = strlen(h);
    if (k && h[k - 1] == '.')
        h[--k] = '\0';
    for (i = 0; i < k; i++)
        h[i] = (char)tolower((unsigned char)h[i]);
    q = memchr(t, '?', (size_t)(end - t));
    if (!q)
        q = end;
    if (q == t)
        snprintf(path, pn, "/");
    else
        snprintf(path, pn, "%.*s", (int)(q - t), t);
}

static int path_matches(const struct thaw_route *r, const char *path)
{
    if (r->path_prefix)
        return strncmp(path, r->path, strlen(r->path)) == 0;
    return strcmp(path, r->path) == 0;
}

/* > 0 when a is more specific than b */
static int more_specific(const struct thaw_route *a, const struct thaw_route *b)
{
    size_t al = strlen(a->host), bl = strlen(b->host);

    if ((a->host_wild == 0) != (b->host_wild == 0))
        return a->host_wild == 0;
    if (al != bl)
        return al > bl;
    if (a->host_wild != b->host_wild)
        return a->host_wild < b->host_wild; /* "*.x" is narrower than "*x" */
    al = strlen(a->path);
    bl = strlen(b->path);
    if (al != bl)
        return al > bl;
    return !a->path_prefix && b->path_prefix;
}

void *thaw_router_match(const struct thaw_router *rt, const char *host,
                        const char *target, size_t n)
{
    char h[256], path[2048];
    const struct thaw_route *best = NULL;
    size_t i;

    thaw_router_split(host, target, n, h, sizeof(h), path, sizeof(path));
    for (i = 0; i < rt->n; i++) {
        const struct thaw_route *r = &rt->routes[i];
        if (thaw_route_host_matches(r, h) && path_matches(r, path) && (!best || more_specific(r, best)))
            best = r;
    }
    return best ? best->target : NULL;
}

int thaw_router_host_name(const char *host, const char *domain, char *out, size_t n)
{
    char h[256], path[8];
    size_t hl, dl = strlen(domain);

    thaw_router_split(host, "/", 1, h, sizeof(h), path, sizeof(path));
    hl = strlen(h);
    if (hl <= dl + 1 || h[hl - dl - 1] != '.' || strcasecmp(h + hl - dl, domain) != 0)
        return 0;
    h[hl - dl - 1] = '\0';
    if (!thaw_worker_name_ok(h) || strlen(h) >= n)
        return 0;
    snprintf(out, n, "%s", h);
    return 1;
}
