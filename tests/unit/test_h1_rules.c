/* The HTTP/1 rules every port shares (src/server/h1-rules.c): heads
 * parsed by http-parser and judged, absolute-form authorities, declared
 * sizes, and the body clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "server/h1.h"

static int judged;
static int hosts;

static int on_field(http_parser *p, const char *at, size_t n)
{
    if (n == 4 && strncasecmp(at, "host", 4) == 0)
        hosts++;
    return 0;
}

static int on_head(http_parser *p)
{
    const char *why = NULL;

    judged = thaw_h1_check_head(p, hosts, &why);
    if (judged)
        assert_non_null(why);
    return 1; /* no body */
}

static int judge(const char *raw)
{
    http_parser p;
    http_parser_settings s = {.on_header_field = on_field, .on_headers_complete = on_head};

    judged = -1;
    hosts = 0;
    http_parser_init(&p, HTTP_REQUEST);
    http_parser_execute(&p, &s, raw, strlen(raw));
    return judged;
}

static void heads(void **state)
{
    assert_int_equal(judge("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(judge("GET / HTTP/1.0\r\n\r\n"), 0);
    assert_int_equal(judge("GET / HTTP/1.1\r\n\r\n"), 400);
    assert_int_equal(judge("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
    assert_int_equal(judge("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), 501);
    assert_int_equal(judge("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n"), 501);
    assert_int_equal(judge("GET / HTTP/9.9\r\nHost: a\r\n\r\n"), 505);
    assert_int_equal(judge("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505);
    assert_int_equal(judge("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), 505);
}

static void absolute_form(void **state)
{
    char host[64];
    const char *u;

    u = "http://a.example/p?q";
    assert_int_equal(thaw_h1_absolute(u, strlen(u), host, sizeof(host)), 16);
    assert_string_equal(host, "a.example");
    u = "HTTPS://B.example:8443";
    assert_int_equal(thaw_h1_absolute(u, strlen(u), host, sizeof(host)), (long)strlen(u));
    assert_string_equal(host, "B.example:8443");
    u = "http://c.example?x";
    assert_int_equal(thaw_h1_absolute(u, strlen(u), host, sizeof(host)), 16);
    assert_string_equal(host, "c.example");
    u = "/http://a.example/";
    assert_int_equal(thaw_h1_absolute(u, strlen(u), host, sizeof(host)), -1);
}

static void declared_sizes(void **state)
{
    http_parser p;

    memset(&p, 0, sizeof(p));
    p.content_length = UINT64_MAX; /* none declared */
    assert_int_equal(thaw_h1_declared_over(&p, 0, 1000), 0);
    p.content_length = 1000;
    assert_int_equal(thaw_h1_declared_over(&p, 0, 1000), 0);
    assert_int_equal(thaw_h1_declared_over(&p, 1, 1000), 413);
    p.content_length = 8000000000000000ULL;
    assert_int_equal(thaw_h1_declared_over(&p, 0, 1000), 413);
    p.content_length = UINT64_MAX - 1; /* no wrap-around with what came */
    assert_int_equal(thaw_h1_declared_over(&p, 10, 1000), 413);
}

static void body_clock(void **state)
{
    struct thaw_h1_body_clock k;

    thaw_h1_body_start(&k, 1000);
    assert_int_equal(thaw_h1_body_late(&k, 3000, 100, 2000), 0);
    assert_int_equal(thaw_h1_body_late(&k, 3000, 100, 4000), 1); /* a 3 s gap */
    k.last_ms = 5500;
    k.bytes = 10;   /* 10 bytes in 5 s: under 100 B/s, still in the grace */
    assert_int_equal(thaw_h1_body_late(&k, 3000, 100, 5900), 0);
    assert_int_equal(thaw_h1_body_late(&k, 3000, 100, 6000), 1);
    assert_int_equal(thaw_h1_body_late(&k, 3000, 0, 6000), 0); /* no minimum */
    k.bytes = 1000; /* 200 B/s */
    assert_int_equal(thaw_h1_body_late(&k, 3000, 100, 6000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(heads),
        cmocka_unit_test(absolute_form),
        cmocka_unit_test(declared_sizes),
        cmocka_unit_test(body_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
