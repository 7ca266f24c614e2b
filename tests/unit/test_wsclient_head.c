/* src/bind/wsclient-head.c: an outbound WebSocket's URL, the worker's
 * headers, and the server's 101 checked against the key thaw sent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bind/wsclient-head.h"

static void url_parts(void **state)
{
    struct thaw_wsc_url u;
    char err[256];

    memset(&u, 0, sizeof(u));
    assert_null(thaw_wsc_parse_url(&u, "wss://[::1]:8443/chat?room=a", err, sizeof(err)));
    assert_string_equal(u.host, "::1");          /* for DNS and TLS */
    assert_string_equal(u.hosthdr, "[::1]:8443"); /* for Host */
    assert_string_equal(u.target, "/chat?room=a");
    assert_int_equal(u.port, 8443);
    assert_int_equal(u.secure, 1);
    free(u.url);
    free(u.target);

    memset(&u, 0, sizeof(u));
    assert_null(thaw_wsc_parse_url(&u, "http://example.com", err, sizeof(err)));
    assert_string_equal(u.hosthdr, "example.com"); /* the default port is not written */
    assert_string_equal(u.target, "/");
    assert_int_equal(u.port, 80);
    assert_int_equal(u.secure, 0);
    free(u.url);
    free(u.target);

    memset(&u, 0, sizeof(u));
    assert_non_null(strstr(thaw_wsc_parse_url(&u, "ftp://example.com/", err, sizeof(err)),
                           "must be ws://"));
    assert_non_null(strstr(thaw_wsc_parse_url(&u, "not a url", err, sizeof(err)),
                           "not a valid URL"));
}

static void headers(void **state)
{
    char err[256];
    json_t *ok = json_pack("[[s,s]]", "X-Token", "abc");
    json_t *crlf = json_pack("[[s,s]]", "X-Token", "a\r\nHost: evil");
    json_t *name = json_pack("[[s,s]]", "X Token", "a");

    assert_null(thaw_wsc_check_headers(ok, err, sizeof(err)));
    assert_non_null(strstr(thaw_wsc_check_headers(crlf, err, sizeof(err)), "line break"));
    assert_non_null(strstr(thaw_wsc_check_headers(name, err, sizeof(err)), "header name"));
    assert_true(thaw_wsc_own_header("Sec-WebSocket-Key"));
    assert_true(thaw_wsc_own_header("host"));
    assert_false(thaw_wsc_own_header("x-token"));
    json_decref(ok);
    json_decref(crlf);
    json_decref(name);
}

static void head(struct thaw_http_head *h, const char *accept, const char *ext)
{
    char line[128];

    assert_int_equal(thaw_http_head_init(h, 65536), 0);
    thaw_http_head_line(h, "HTTP/1.1 101 Switching Protocols\r\n", 34);
    thaw_http_head_line(h, "Upgrade: websocket\r\n", 20);
    thaw_http_head_line(h, "Connection: keep-alive, Upgrade\r\n", 33);
    snprintf(line, sizeof(line), "Sec-WebSocket-Accept: %s\r\n", accept);
    thaw_http_head_line(h, line, strlen(line));
    if (ext) {
        snprintf(line, sizeof(line), "Sec-WebSocket-Extensions: %s\r\n", ext);
        thaw_http_head_line(h, line, strlen(line));
    }
    thaw_http_head_line(h, "\r\n", 2);
}

static void the_101(void **state)
{
    /* RFC 6455 section 1.3's example key and its answer */
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    struct thaw_http_head h;

    head(&h, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", NULL);
    assert_null(thaw_wsc_bad_101(&h, key));
    thaw_http_head_free(&h);
    head(&h, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL);
    assert_non_null(strstr(thaw_wsc_bad_101(&h, key), "Sec-WebSocket-Accept"));
    thaw_http_head_free(&h);
    head(&h, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "permessage-deflate");
    assert_non_null(strstr(thaw_wsc_bad_101(&h, key), "extension"));
    thaw_http_head_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_parts),
        cmocka_unit_test(headers),
        cmocka_unit_test(the_101),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
