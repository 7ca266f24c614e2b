/* Routing for thaw serve: patterns, most specific wins, Host parsing,
 * worker names. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(most_specific_wins),
        cmocka_unit_test(exact_paths_and_wildcards),
        cmocka_unit_test(bad_patterns),
        cmocka_unit_test(host_names),
        cmocka_unit_test(worker_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
