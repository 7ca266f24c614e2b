/* The egress policy: the default deny list, IPv4 inside IPv6, allow
 * ranges, and the config table's errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "bind/egress.h"

/* 1 allowed, 0 refused; rule gets the denying range */
static int check(const struct thaw_egress *e, const char *addr, int port, char *rule)
{
    unsigned char a[16];
    struct thaw_egress_verdict why;
    int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
    int ok;

    assert_int_equal(inet_pton(family, addr, a), 1);
    ok = thaw_egress_check(e, family, a, port, &why);
    if (rule)
        strcpy(rule, ok ? "" : why.rule);
    if (!ok) {
        assert_string_equal(why.addr, addr);
        assert_int_equal(why.port, port);
        assert_non_null(why.what);
    }
    return ok;
}

static void default_denies_host_and_private_ranges(void **state)
{
    static const struct { const char *addr, *rule; } refused[] = {
        {"127.0.0.1", "127.0.0.0/8"}, {"127.255.255.254", "127.0.0.0/8"},
        {"0.0.0.0", "0.0.0.0/8"}, {"10.200.1.1", "10.0.0.0/8"},
        {"100.64.0.1", "100.64.0.0/10"}, {"100.127.255.255", "100.64.0.0/10"},
        {"169.254.169.254", "169.254.0.0/16"}, {"172.16.0.1", "172.16.0.0/12"},
        {"172.31.255.255", "172.16.0.0/12"}, {"192.168.0.1", "192.168.0.0/16"},
        {"192.0.0.192", "192.0.0.0/24"}, {"198.19.0.1", "198.18.0.0/15"},
        {"224.0.0.1", "224.0.0.0/4"}, {"255.255.255.255", "240.0.0.0/4"},
        {"::1", "::1/128"}, {"::", "::/128"}, {"fd00:ec2::254", "fc00::/7"},
        {"fe80::1", "fe80::/10"}, {"ff02::1", "ff00::/8"},
        /* IPv4 carried in IPv6 */
        {"::ffff:127.0.0.1", "127.0.0.0/8"}, {"::ffff:169.254.169.254", "169.254.0.0/16"},
        {"64:ff9b::a00:1", "10.0.0.0/8"}, {"2002:7f00:1::", "127.0.0.0/8"},
    };
    static const char *const allowed[] = {
        "1.1.1.1", "8.8.8.8", "100.63.255.255", "100.128.0.0", "172.15.255.255",
        "172.32.0.0", "192.167.255.255", "198.20.0.0", "223.255.255.255",
        "2606:4700::1111", "::ffff:1.1.1.1", "64:ff9b::101:101", "2002:101:101::",
    };
    struct thaw_egress *e = thaw_egress_new();
    char rule[64];
    size_t i;

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(check(e, refused[i].addr, 80, rule), 0);
        assert_string_equal(rule, refused[i].rule);
    }
    for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        assert_int_equal(check(e, allowed[i], 443, NULL), 1);
    thaw_egress_free(e);
}

static void allow_opens_ranges(void **state)
{
    struct thaw_egress *e = thaw_egress_new();
    char err[256];

    assert_int_equal(thaw_egress_allow(e, "127.0.0.0/8", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_allow(e, "10.1.2.3", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_allow(e, "::1", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_allow(e, "fd00::/8", err, sizeof(err)), 0);
    assert_int_equal(check(e, "127.0.0.1", 80, NULL), 1);
    assert_int_equal(check(e, "::ffff:127.0.0.1", 80, NULL), 1); /* same address */
    assert_int_equal(check(e, "10.1.2.3", 80, NULL), 1);
    assert_int_equal(check(e, "10.1.2.4", 80, NULL), 0);
    assert_int_equal(check(e, "::1", 80, NULL), 1);
    assert_int_equal(check(e, "fd12::1", 80, NULL), 1);
    assert_int_equal(check(e, "fc00::1", 80, NULL), 0);
    assert_int_equal(check(e, "169.254.169.254", 80, NULL), 0);
    thaw_egress_free(e);

    e = thaw_egress_new();
    assert_int_equal(thaw_egress_allow(e, "0.0.0.0/0", err, sizeof(err)), 0);
    assert_int_equal(check(e, "169.254.169.254", 80, NULL), 1);
    assert_int_equal(check(e, "::1", 80, NULL), 0); /* IPv4 only */
    thaw_egress_free(e);
}

static void bad_ranges_say_why(void **state)
{
    static const struct { const char *in, *needle; } bad[] = {
        {"127.0.0.1/8", "write \"127.0.0.0/8\" for the whole range, or \"127.0.0.1\""},
        {"fd00::1/8", "\"fd00::/8\""},
        {"localhost", "hostnames are not accepted"},
        {"10.0.0.0/33", "from 0 to 32"},
        {"::/129", "from 0 to 128"},
        {"10.0.0.0/", "prefix length"},
        {"10.0.0.0/8x", "prefix length"},
        {"", "not an address range"},
        {"/8", "not an address range"},
    };
    struct thaw_egress *e = thaw_egress_new();
    char err[256];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(thaw_egress_allow(e, bad[i].in, err, sizeof(err)), -1);
        if (!strstr(err, bad[i].needle))
            fail_msg("%s: %s", bad[i].in, err);
    }
    thaw_egress_free(e);
}

static void sockaddr_carries_the_port(void **state)
{
    struct thaw_egress *e = thaw_egress_new();
    struct thaw_egress_verdict why;
    struct sockaddr_in6 in6;

    memset(&in6, 0, sizeof(in6));
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(8080);
    inet_pton(AF_INET6, "::1", &in6.sin6_addr);
    assert_int_equal(thaw_egress_check_sockaddr(e, (struct sockaddr *)&in6, &why), 0);
    assert_int_equal(why.port, 8080);
    assert_string_equal(why.rule, "::1/128");
    thaw_egress_free(e);
}

static void port_25_needs_allow_ports(void **state)
{
    struct thaw_egress *e = thaw_egress_new();
    struct thaw_egress_verdict why;
    unsigned char a[4];
    char err[128], fix[400];

    inet_pton(AF_INET, "1.1.1.1", a);
    assert_int_equal(thaw_egress_check(e, AF_INET, a, 25, &why), 0);
    assert_string_equal(why.rule, "port 25");
    assert_string_equal(why.key, "allow_ports");
    thaw_egress_fix(&why, "wrangler.toml", fix, sizeof(fix));
    assert_non_null(strstr(fix, "add 25 to `allow_ports` in the [thaw.egress] table of "
                                "wrangler.toml"));
    assert_int_equal(thaw_egress_check(e, AF_INET, a, 587, &why), 1);
    /* allowing the range does not open the port */
    assert_int_equal(thaw_egress_allow(e, "1.1.1.0/24", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_check(e, AF_INET, a, 25, &why), 0);
    assert_int_equal(thaw_egress_allow_port(e, 25, err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_check(e, AF_INET, a, 25, &why), 1);
    /* an open port does not open a denied range */
    inet_pton(AF_INET, "127.0.0.1", a);
    assert_int_equal(thaw_egress_check(e, AF_INET, a, 25, &why), 0);
    assert_string_equal(why.key, "allow");
    assert_int_equal(thaw_egress_allow_port(e, 0, err, sizeof(err)), -1);
    assert_int_equal(thaw_egress_allow_port(e, 65536, err, sizeof(err)), -1);
    thaw_egress_free(e);
}

static void config_table(void **state)
{
    struct thaw_egress_config c;
    char err[512];
    json_t *cfg;

    cfg = json_loads("{}", 0, NULL);
    assert_int_equal(thaw_egress_config_load(&c, cfg, "wrangler.toml", "/w", err, sizeof(err)), 0);
    assert_int_equal(c.timeout_ms, 30000);
    assert_int_equal(c.connect_timeout_ms, 10000);
    assert_int_equal(c.max_response_bytes, 100LL << 20);
    assert_null(c.ca_file);
    assert_int_equal(c.max_connections, 100);
    thaw_egress_config_free(&c);
    json_decref(cfg);

    cfg = json_loads("{\"thaw\":{\"egress\":{\"allow\":[\"127.0.0.0/8\"],\"timeout_ms\":5,"
                     "\"ca_file\":\"ca.pem\"}}}", 0, NULL);
    assert_int_equal(thaw_egress_config_load(&c, cfg, "wrangler.toml", "/w", err, sizeof(err)), 0);
    assert_int_equal(c.timeout_ms, 5);
    assert_string_equal(c.ca_file, "/w/ca.pem");
    thaw_egress_config_free(&c);
    json_decref(cfg);

    cfg = json_loads("{\"thaw\":{\"egress\":{\"allow\":[\"1.2.3.4/40\"]}}}", 0, NULL);
    assert_int_equal(thaw_egress_config_load(&c, cfg, "wrangler.toml", "/w", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "wrangler.toml: `thaw.egress.allow`: \"1.2.3.4/40\""));
    json_decref(cfg);

    cfg = json_loads("{\"thaw\":{\"egress\":{\"allow_ports\":[25, 99999]}}}", 0, NULL);
    assert_int_equal(thaw_egress_config_load(&c, cfg, "wrangler.toml", "/w", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "`thaw.egress.allow_ports` item 2 is not a port number"));
    json_decref(cfg);

    cfg = json_loads("{\"thaw\":{\"egress\":{\"timeout\":5}}}", 0, NULL);
    assert_int_equal(thaw_egress_config_load(&c, cfg, "wrangler.json", "/w", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown key `thaw.egress.timeout`"));
    json_decref(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_denies_host_and_private_ranges),
        cmocka_unit_test(allow_opens_ranges),
        cmocka_unit_test(bad_ranges_say_why),
        cmocka_unit_test(sockaddr_carries_the_port),
        cmocka_unit_test(port_25_needs_allow_ports),
        cmocka_unit_test(config_table),
    };
    return cmocka_run_group_tests_name("egress", tests, NULL, NULL);
}
