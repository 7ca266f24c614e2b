/* Routing for thaw serve: patterns, most specific wins, Host parsing,
 * worker names, and the set relations the grant rules stand on: a route
 * within a grant, two routes that overlap. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "serve/router.h"

static int A, B, C, D;

static void *match(struct thaw_router *rt, const char *host, const char *target)
{
    return thaw_router_match(rt, host, target, strlen(target));
}

static void most_specific_wins(void **state)
{
    struct thaw_router rt = {0};
    char err[256];

    assert_int_equal(thaw_router_add(&rt, "example.com/*", &A, err, sizeof(err)), 0);
    assert_int_equal(thaw_router_add(&rt, "example.com/api/*", &B, err, sizeof(err)), 0);
    assert_int_equal(thaw_router_add(&rt, "*.example.com/*", &C, err, sizeof(err)), 0);
    assert_int_equal(thaw_router_add(&rt, "api.example.com/v1/*", &D, err, sizeof(err)), 0);
    assert_ptr_equal(match(&rt, "example.com", "/"), &A);
    assert_ptr_equal(match(&rt, "Example.COM:8787", "/x?q=1"), &A);
    assert_ptr_equal(match(&rt, "example.com", "/api/users"), &B);
    assert_ptr_equal(match(&rt, "example.com", "/api"), &A); /* "/api/" prefix only */
    assert_ptr_equal(match(&rt, "api.example.com", "/v1/x"), &D);
    assert_ptr_equal(match(&rt, "api.example.com", "/v2"), &C);
    assert_ptr_equal(match(&rt, "deep.a.example.com", "/"), &C);
    assert_null(match(&rt, "notexample.com", "/"));
    assert_null(match(&rt, "example.org", "/"));
    /* absolute-form target carries the host */
    assert_ptr_equal(match(&rt, "ignored", "http://example.com/api/x"), &B);
    thaw_router_remove(&rt, &B);
    assert_ptr_equal(match(&rt, "example.com", "/api/users"), &A);
    thaw_router_free(&rt);
}

static void exact_paths_and_wildcards(void **state)
{
    struct thaw_router rt = {0};
    char err[256];

    assert_int_equal(thaw_router_add(&rt, "a.com/exact", &A, err, sizeof(err)), 0);
    assert_int_equal(thaw_router_add(&rt, "*a.com/*", &B, err, sizeof(err)), 0);
    assert_ptr_equal(match(&rt, "a.com", "/exact"), &A);
    assert_ptr_equal(match(&rt, "a.com", "/exact/more"), &B);
    assert_ptr_equal(match(&rt, "x.a.com", "/exact"), &B);
    assert_null(match(&rt, "ba.com", "/"));
    thaw_router_free(&rt);
}

static void bad_patterns(void **state)
{
    struct thaw_route r;
    char err[256];

    assert_int_equal(thaw_route_parse("example.com", &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "example.com/*"));
    assert_int_equal(thaw_route_parse("/x/*", &r, err, sizeof(err)), -1);
    assert_int_equal(thaw_route_parse("ex*ample.com/*", &r, err, sizeof(err)), -1);
    assert_int_equal(thaw_route_parse("example.com/*/x", &r, err, sizeof(err)), -1);
    assert_int_equal(thaw_route_parse("https://example.com/*", &r, err, sizeof(err)), 0);
    assert_string_equal(r.host, "example.com");
    thaw_route_free(&r);
}

static void host_names(void **state)
{
    char name[64];

    assert_int_equal(thaw_router_host_name("alpha.localhost", "localhost", name, 64), 1);
    assert_string_equal(name, "alpha");
    assert_int_equal(thaw_router_host_name("Alpha.LocalHost:8787", "localhost", name, 64), 1);
    assert_string_equal(name, "alpha");
    assert_int_equal(thaw_router_host_name("a.b.localhost", "localhost", name, 64), 0);
    assert_int_equal(thaw_router_host_name("localhost", "localhost", name, 64), 0);
    assert_int_equal(thaw_router_host_name("x.example.com", "localhost", name, 64), 0);
    assert_int_equal(thaw_router_host_name("my-api.w.example.com", "w.example.com", name, 64),
                     1);
    assert_string_equal(name, "my-api");
}

static void worker_names(void **state)
{
    assert_true(thaw_worker_name_ok("hello"));
    assert_true(thaw_worker_name_ok("my-worker-2"));
    assert_false(thaw_worker_name_ok(""));
    assert_false(thaw_worker_name_ok("-x"));
    assert_false(thaw_worker_name_ok("x-"));
    assert_false(thaw_worker_name_ok("Upper"));
    assert_false(thaw_worker_name_ok("under_score"));
    assert_false(thaw_worker_name_ok("dot.ted"));
    assert_false(thaw_worker_name_ok("a234567890123456789012345678901234567890123456789012345678901234"));
}

static int within(const char *r, const char *g)
{
    struct thaw_route a, b;
    char err[256];
    int v;

    assert_int_equal(thaw_route_parse(r, &a, err, sizeof(err)), 0);
    assert_int_equal(thaw_route_parse(g, &b, err, sizeof(err)), 0);
    v = thaw_route_within(&a, &b);
    thaw_route_free(&a);
    thaw_route_free(&b);
    return v;
}

static int overlaps(const char *x, const char *y)
{
    struct thaw_route a, b;
    char err[256];
    int v, w;

    assert_int_equal(thaw_route_parse(x, &a, err, sizeof(err)), 0);
    assert_int_equal(thaw_route_parse(y, &b, err, sizeof(err)), 0);
    v = thaw_route_overlaps(&a, &b);
    w = thaw_route_overlaps(&b, &a);
    assert_int_equal(v, w); /* symmetric */
    thaw_route_free(&a);
    thaw_route_free(&b);
    return v;
}

static void within_hosts(void **state)
{
    /* an exact host grants that host only */
    assert_true(within("shop.example.com/*", "shop.example.com/*"));
    assert_true(within("SHOP.Example.COM./*", "shop.example.com/*"));
    assert_true(within("http://shop.example.com/*", "https://shop.example.com/*"));
    assert_false(within("*.shop.example.com/*", "shop.example.com/*"));
    assert_false(within("*shop.example.com/*", "shop.example.com/*"));
    assert_false(within("example.com/*", "shop.example.com/*"));
    /* "*.h": subdomains of h, never h */
    assert_true(within("a.example.com/*", "*.example.com/*"));
    assert_true(within("a.b.example.com/*", "*.example.com/*"));
    assert_true(within("*.a.example.com/*", "*.example.com/*"));
    assert_true(within("*a.example.com/*", "*.example.com/*"));
    assert_true(within("*.example.com/*", "*.example.com/*"));
    assert_false(within("example.com/*", "*.example.com/*"));
    assert_false(within("*example.com/*", "*.example.com/*"));
    /* "*h": h and its subdomains, label by label */
    assert_true(within("example.com/*", "*example.com/*"));
    assert_true(within("*.example.com/*", "*example.com/*"));
    assert_true(within("*example.com/*", "*example.com/*"));
    assert_false(within("badexample.com/*", "*example.com/*"));
    assert_false(within("*badexample.com/*", "*example.com/*"));
    assert_false(within("*localhost/*", "*.localhost/*"));
    assert_false(within("*localhost/*", "localhost/*"));
    assert_false(within("innocent.localhost/*", "localhost/*"));
    assert_false(within("*.com/*", "*example.com/*"));
}

static void within_paths(void **state)
{
    assert_true(within("example.com/shop/*", "example.com/shop/*"));
    assert_true(within("example.com/shop/cart", "example.com/shop/*"));
    assert_true(within("example.com/shop/a/*", "example.com/shop/*"));
    assert_true(within("example.com/shop/*", "example.com/*"));
    assert_false(within("example.com/*", "example.com/shop/*"));
    assert_false(within("example.com/sho*", "example.com/shop/*"));
    assert_false(within("example.com/shop", "example.com/shop/*")); /* "/shop/" prefix */
    /* an exact grant is that path only */
    assert_true(within("example.com/about", "example.com/about"));
    assert_false(within("example.com/about*", "example.com/about"));
    assert_false(within("example.com/about/x", "example.com/about"));
}

static void overlapping(void **state)
{
    assert_true(overlaps("example.com/*", "example.com/*"));
    assert_true(overlaps("example.com/*", "example.com/api/*"));
    assert_true(overlaps("example.com/api", "example.com/a*"));
    assert_true(overlaps("example.com/*", "*example.com/x"));
    assert_true(overlaps("a.example.com/*", "*.example.com/*"));
    assert_true(overlaps("*.a.example.com/*", "*example.com/*"));
    assert_true(overlaps("*.example.com/*", "*example.com/*"));
    assert_true(overlaps("*localhost/*", "*.localhost/*"));
    assert_true(overlaps("innocent.localhost/*", "*.localhost/*"));
    assert_false(overlaps("localhost/*", "*.localhost/*"));
    assert_false(overlaps("example.com/*", "*.example.com/*"));
    assert_false(overlaps("example.com/api/*", "example.com/blog/*"));
    assert_false(overlaps("example.com/api", "example.com/api/*"));
    assert_false(overlaps("example.com/*", "example.org/*"));
    assert_false(overlaps("*a.com/*", "*ba.com/*"));
    assert_false(overlaps("*.a.example.com/*", "*.b.example.com/*"));
}

static void normalized_or_refused(void **state)
{
    struct thaw_route r;
    char err[256];
    const char *bad[] = {"innocent.localhost:8787/*", "example.com/%73hop/*",
                         "example.com/a?b", "example.com/a#b", "example.com/a b",
                         "example.com/shop/../admin/*", "example.com/./*", "a..b/*",
                         ".example.com/*", "*./*", "**.localhost/*", "ex*ample.com/*",
                         "example.com/x\x01", NULL};
    int i;

    for (i = 0; bad[i]; i++)
        assert_int_equal(thaw_route_parse(bad[i], &r, err, sizeof(err)), -1);
    assert_int_equal(thaw_route_parse("HTTP://Innocent.LocalHost./*", &r, err, sizeof(err)),
                     0);
    assert_string_equal(r.host, "innocent.localhost");
    assert_string_equal(r.path, "/");
    assert_string_equal(r.pattern, "HTTP://Innocent.LocalHost./*");
    assert_true(thaw_route_host_matches(&r, "innocent.localhost"));
    thaw_route_free(&r);
    assert_int_equal(thaw_route_parse("example.com/.well-known/*", &r, err, sizeof(err)), 0);
    thaw_route_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(most_specific_wins),
        cmocka_unit_test(exact_paths_and_wildcards),
        cmocka_unit_test(bad_patterns),
        cmocka_unit_test(host_names),
        cmocka_unit_test(worker_names),
        cmocka_unit_test(within_hosts),
        cmocka_unit_test(within_paths),
        cmocka_unit_test(overlapping),
        cmocka_unit_test(normalized_or_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
