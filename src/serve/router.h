/* Which deployed worker a request is for (thaw serve): `routes` patterns
 * from the workers' configs, most specific first, then a Host of the form
 * <name>.<domain>. Pure functions on strings; unit-tested. */
#ifndef THAW_SERVE_ROUTER_H
#define THAW_SERVE_ROUTER_H

#include <stddef.h>

/* A parsed pattern, like "example.com/<star>" or "<star>.example.com/api/<star>". */
struct thaw_route {
    char *pattern;    /* as written (for messages and listings) */
    char *host;       /* lower case; without the leading '*' or "*." */
    int host_wild;    /* 1: "*.host" (subdomains), 2: "*host" (host and subdomains) */
    char *path;       /* without the trailing '*' */
    int path_prefix;  /* the pattern ended in '*' */
    void *target;
};

struct thaw_router {
    struct thaw_route *routes;
    size_t n, cap;
};

/* Worker names as Cloudflare allows them: 1..63 of [a-z0-9-], not
 * starting or ending with '-'. */
int thaw_worker_name_ok(const char *name);

/* Parses one pattern: an optional http:// or https:// (any case) is
 * dropped, the host is lowered and loses a trailing dot. Refused, so
 * that a pattern means one set of requests: a port (routes match every
 * port), an empty label, a path not starting with '/', '%', '?', '#',
 * spaces or control characters (the path is compared as sent, never
 * decoded), and "." or ".." segments. 0, or -1 with a message naming the
 * pattern. */
int thaw_route_parse(const char *pattern, struct thaw_route *out, char *err,
                     size_t errlen);
void thaw_route_free(struct thaw_route *r);

/* 1 when every request r matches, g matches too (r lies within g):
 *   host: g "h" wants r "h"; g "*.h" wants r's host a subdomain of h, or
 *         r "*.h"; g "*h" wants r's host h or a subdomain of h (either
 *         wildcard). Hosts are compared label by label: "*localhost"
 *         never covers "evillocalhost".
 *   path: g exact wants r the same exact path; g prefix p wants r's path
 *         (exact or prefix) to begin with p. */
int thaw_route_within(const struct thaw_route *r, const struct thaw_route *g);
/* 1 when some request matches both a and b (symmetric). */
int thaw_route_overlaps(const struct thaw_route *a, const struct thaw_route *b);
/* 1 when r's host part matches host (lower case, no port, no final dot). */
int thaw_route_host_matches(const struct thaw_route *r, const char *host);

int thaw_router_add(struct thaw_router *rt, const char *pattern, void *target,
                    char *err, size_t errlen);
/* Drops every pattern of target. */
void thaw_router_remove(struct thaw_router *rt, void *target);
void thaw_router_free(struct thaw_router *rt);

/* The target of the most specific pattern matching host (a Host header:
 * port and case are ignored) and target (origin-form "/path?q" or
 * absolute-form "http://host/path", which then gives the host), or NULL.
 * Most specific: an exact host beats a wildcard, a longer host beats a
 * shorter one, then a longer path, then an exact path over a prefix. */
void *thaw_router_match(const struct thaw_router *rt, const char *host,
                        const char *target, size_t n);

/* When host (port and case ignored) is "<name>.<domain>" with a valid
 * name, writes the name into out and returns 1; else 0. */
int thaw_router_host_name(const char *host, const char *domain, char *out, size_t n);

/* Splits an absolute-form target or takes the Host header: the host in
 * lower case without port or trailing dot, and the path without query. */
void thaw_router_split(const char *host, const char *target, size_t n, char *h,
                       size_t hn, char *path, size_t pn);

#endif
