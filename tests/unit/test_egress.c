/* The egress policy: the default deny list, IPv4 inside IPv6, allow and
 * deny ranges, ports, the config table's errors, and thaw serve's
 * operator policy (the intersection, and the deploy check's "within"). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "bind/egress.h"
#include "policy/policy.h"

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
    assert_int_equal(thaw_egress_config_load(&c, cfg, "wrangler.toml", "/w", NULL, err, sizeof(err)), 0);
    assert_int_equal(c.timeout_ms, 30000);
    assert_int_equal(c.connect_timeout_ms, 10000);
    assert_int_equal(c.max_response_bytes, 100LL << 20);
    assert_null(c.ca_file);
    assert_int_equal(c.max_connections, 100);
    thaw_egress_config_free(&c);
    json_decref(cfg);

    cfg = json_loads("{\"thaw\":{\"egress\":{\"allow\":[\"127.0.0.0/8\"],\"timeout_ms\":5,"
                     "\"ca_file\":\"ca.pem\"}}}", 0, NULL);
    assert_int_equal(thaw_egress_config_load(&c, cfg, "wrangler.toml", "/w", NULL, err, sizeof(err)), 0);
    assert_int_equal(c.timeout_ms, 5);
    assert_string_equal(c.ca_file, "/w/ca.pem");
    thaw_egress_config_free(&c);
    json_decref(cfg);

    cfg = json_loads("{\"thaw\":{\"egress\":{\"allow\":[\"1.2.3.4/40\"]}}}", 0, NULL);
    assert_int_equal(thaw_egress_config_load(&c, cfg, "wrangler.toml", "/w", NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "wrangler.toml: `thaw.egress.allow`: \"1.2.3.4/40\""));
    json_decref(cfg);

    cfg = json_loads("{\"thaw\":{\"egress\":{\"allow_ports\":[25, 99999]}}}", 0, NULL);
    assert_int_equal(thaw_egress_config_load(&c, cfg, "wrangler.toml", "/w", NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "`thaw.egress.allow_ports` item 2 is not a port number"));
    json_decref(cfg);

    cfg = json_loads("{\"thaw\":{\"egress\":{\"timeout\":5}}}", 0, NULL);
    assert_int_equal(thaw_egress_config_load(&c, cfg, "wrangler.json", "/w", NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown key `thaw.egress.timeout`"));
    json_decref(cfg);
}

static void ranges_with_a_port(void **state)
{
    struct thaw_egress *e = thaw_egress_new();
    char err[256];

    assert_int_equal(thaw_egress_allow(e, "127.0.0.1:6379", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_allow(e, "10.0.0.0/8:443", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_allow(e, "[::1]:8080", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_allow(e, "[fd00::]/8:443", err, sizeof(err)), 0);
    assert_int_equal(check(e, "127.0.0.1", 6379, NULL), 1);
    assert_int_equal(check(e, "127.0.0.1", 6380, NULL), 0);
    assert_int_equal(check(e, "10.9.9.9", 443, NULL), 1);
    assert_int_equal(check(e, "10.9.9.9", 80, NULL), 0);
    assert_int_equal(check(e, "::1", 8080, NULL), 1);
    assert_int_equal(check(e, "::1", 8081, NULL), 0);
    assert_int_equal(check(e, "fd00::5", 443, NULL), 1);
    assert_int_equal(thaw_egress_allow(e, "127.0.0.1:0", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "from 1 to 65535"));
    assert_int_equal(thaw_egress_allow(e, "127.0.0.1:x", err, sizeof(err)), -1);
    assert_int_equal(thaw_egress_allow(e, "[::1]", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "must end in a port"));
    thaw_egress_free(e);
}

static void deny_closes_even_allowed_ranges(void **state)
{
    struct thaw_egress *e = thaw_egress_new();
    struct thaw_egress_verdict why;
    unsigned char a[4];
    char err[256], fix[400];

    assert_int_equal(thaw_egress_allow(e, "10.0.0.0/8", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_deny(e, "10.0.0.5", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_deny(e, "1.1.1.0/24", err, sizeof(err)), 0);
    assert_int_equal(check(e, "10.0.0.4", 80, NULL), 1);
    inet_pton(AF_INET, "10.0.0.5", a);
    assert_int_equal(thaw_egress_check(e, AF_INET, a, 80, &why), 0);
    assert_string_equal(why.key, "deny");
    assert_string_equal(why.rule, "10.0.0.5/32");
    thaw_egress_fix(&why, "wrangler.toml", fix, sizeof(fix));
    assert_non_null(strstr(fix, "remove \"10.0.0.5/32\" from `deny`"));
    assert_int_equal(check(e, "1.1.1.1", 443, NULL), 0);
    assert_int_equal(check(e, "::ffff:1.1.1.1", 443, NULL), 0);
    assert_int_equal(check(e, "1.1.2.1", 443, NULL), 1);
    thaw_egress_free(e);
}

/* thaw serve: the operator's policy as the outer one */
static void outer_policy_bounds_the_worker(void **state)
{
    struct thaw_egress *op = thaw_egress_new(), *w = thaw_egress_new();
    struct thaw_egress_verdict why;
    unsigned char a[4];
    char err[256], fix[400];

    assert_int_equal(thaw_egress_allow(op, "127.0.0.1:8080", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_deny(op, "8.8.8.8", err, sizeof(err)), 0);
    /* the worker asks for all of loopback and port 25 */
    assert_int_equal(thaw_egress_allow(w, "127.0.0.0/8", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_allow_port(w, 25, err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_set_outer(w, op, "/etc/thaw/serve.toml"), 0);
    assert_int_equal(check(w, "127.0.0.1", 8080, NULL), 1);
    inet_pton(AF_INET, "127.0.0.1", a);
    assert_int_equal(thaw_egress_check(w, AF_INET, a, 9000, &why), 0); /* the admin API */
    assert_string_equal(why.operator_file, "/etc/thaw/serve.toml");
    thaw_egress_fix(&why, "wrangler.toml", fix, sizeof(fix));
    assert_non_null(strstr(fix, "only the operator of this server can open it"));
    assert_non_null(strstr(fix, "/etc/thaw/serve.toml"));
    inet_pton(AF_INET, "1.1.1.1", a);
    assert_int_equal(thaw_egress_check(w, AF_INET, a, 25, &why), 0);
    assert_string_equal(why.key, "allow_ports");
    assert_non_null(why.operator_file);
    assert_int_equal(thaw_egress_port_allowed(w, 25), 0);
    assert_int_equal(check(w, "8.8.8.8", 53, NULL), 0);
    assert_int_equal(check(w, "169.254.169.254", 80, NULL), 0);
    assert_int_equal(check(w, "1.1.1.1", 443, NULL), 1);
    thaw_egress_free(w); /* frees op */

    /* a worker that opens nothing gets nothing the default denies, even
     * where the operator would let it */
    op = thaw_egress_new();
    w = thaw_egress_new();
    assert_int_equal(thaw_egress_allow(op, "127.0.0.0/8", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_set_outer(w, op, ""), 0);
    inet_pton(AF_INET, "127.0.0.1", a);
    assert_int_equal(thaw_egress_check(w, AF_INET, a, 80, &why), 0);
    assert_null(why.operator_file);
    thaw_egress_fix(&why, "wrangler.toml", fix, sizeof(fix));
    assert_non_null(strstr(fix, "add \"127.0.0.1:80\" to `allow` in the [thaw.egress] "
                                "table of wrangler.toml (this server's operator allows it)"));
    thaw_egress_free(w);
}

static void covers_judges_a_range_against_a_policy(void **state)
{
    static const struct { const char *spec; int ok; const char *needle; } cases[] = {
        {"127.0.0.1:8080", 1, NULL},
        {"127.0.0.1/32:8080", 1, NULL},
        {"127.0.0.1", 0, "127.0.0.1/32 (loopback) is not allowed (on every port)"},
        {"127.0.0.1:8081", 0, "127.0.0.1/32 on port 8081"},
        {"127.0.0.0/8", 0, "127.0.0.0/8 (loopback)"},
        {"169.254.0.0/16", 0, "169.254.0.0/16 (link-local"},
        {"10.1.0.0/16", 1, NULL},
        {"10.1.2.3:5432", 1, NULL},
        {"10.0.0.0/8", 0, "10.0.0.0/8"},
        {"0.0.0.0/0", 0, NULL},
        {"1.1.1.0/24", 1, NULL},          /* open already */
        {"203.0.113.0/24", 0, "denied by the operator"},
        {"203.0.113.7", 0, "denied by the operator"},
        {"::1", 0, "::1/128 (loopback)"},
        {"::ffff:127.0.0.1:8080", -1, NULL},
    };
    struct thaw_egress *op = thaw_egress_new();
    char err[256], what[300];
    size_t i;

    assert_int_equal(thaw_egress_allow(op, "127.0.0.1:8080", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_allow(op, "10.1.0.0/16", err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_deny(op, "203.0.113.0/24", err, sizeof(err)), 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = thaw_egress_covers(op, cases[i].spec, what, sizeof(what));
        if (cases[i].ok == -1)
            continue; /* parses or not: either way no widening */
        if (rc != cases[i].ok)
            fail_msg("%s: %d (%s)", cases[i].spec, rc, rc ? "" : what);
        if (cases[i].needle && !strstr(what, cases[i].needle))
            fail_msg("%s: %s", cases[i].spec, what);
    }
    thaw_egress_free(op);
}

static struct thaw_policy operator_policy(const char *json)
{
    struct thaw_policy p;
    char err[256];

    thaw_policy_init(&p);
    assert_int_equal(thaw_policy_load_json(&p, json, "/etc/thaw/serve.json", err, sizeof(err)),
                     0);
    return p;
}

static void serve_intersects_with_the_operator(void **state)
{
    struct thaw_policy p = operator_policy(
        "{\"egress\":{\"allow\":[\"127.0.0.1:8080\"],\"timeout_ms\":5000,"
        "\"max_connections\":500}}");
    struct thaw_egress_config c, op;
    char err[512];
    json_t *cfg;

    /* nothing set: the operator's numbers, and the default deny list */
    cfg = json_loads("{}", 0, NULL);
    assert_int_equal(thaw_egress_config_load(&c, cfg, "wrangler.toml", "/w", &p, err,
                                             sizeof(err)), 0);
    assert_int_equal(c.timeout_ms, 5000);
    assert_int_equal(c.max_connections, 500);
    assert_int_equal(check(c.policy, "127.0.0.1", 8080, NULL), 0);
    thaw_egress_config_free(&c);
    json_decref(cfg);

    /* wider than the operator: clamped at use time, refused by within() */
    cfg = json_loads("{\"thaw\":{\"egress\":{\"allow\":[\"127.0.0.0/8\"],\"timeout_ms\":60000,"
                     "\"max_connections\":7,\"allow_ports\":[25]}}}", 0, NULL);
    assert_int_equal(thaw_egress_config_load(&c, cfg, "wrangler.toml", "/w", &p, err,
                                             sizeof(err)), 0);
    assert_int_equal(c.timeout_ms, 5000);
    assert_int_equal(c.max_connections, 7);
    assert_int_equal(check(c.policy, "127.0.0.1", 8080, NULL), 1);
    assert_int_equal(check(c.policy, "127.0.0.1", 9000, NULL), 0);
    assert_int_equal(check(c.policy, "127.0.0.2", 8080, NULL), 0);
    assert_int_equal(check(c.policy, "1.1.1.1", 25, NULL), 0);
    thaw_egress_config_free(&c);
    assert_int_equal(thaw_egress_operator_load(&op, &p, err, sizeof(err)), 0);
    assert_int_equal(thaw_egress_config_within(&op, cfg, "wrangler.toml", p.file, err,
                                               sizeof(err)), -1);
    assert_non_null(strstr(err, "wrangler.toml: thaw.egress.allow \"127.0.0.0/8\" is outside "
                                "this server's egress policy"));
    assert_non_null(strstr(err, "/etc/thaw/serve.json"));
    json_decref(cfg);

    cfg = json_loads("{\"thaw\":{\"egress\":{\"allow_ports\":[25]}}}", 0, NULL);
    assert_int_equal(thaw_egress_config_within(&op, cfg, "wrangler.toml", p.file, err,
                                               sizeof(err)), -1);
    assert_non_null(strstr(err, "thaw.egress.allow_ports 25 is outside"));
    json_decref(cfg);

    cfg = json_loads("{\"thaw\":{\"egress\":{\"timeout_ms\":60000}}}", 0, NULL);
    assert_int_equal(thaw_egress_config_within(&op, cfg, "wrangler.toml", p.file, err,
                                               sizeof(err)), -1);
    assert_non_null(strstr(err, "thaw.egress.timeout_ms = 60000 is over this server's "
                                "ceiling of 5000 milliseconds"));
    json_decref(cfg);

    /* narrowing is fine */
    cfg = json_loads("{\"thaw\":{\"egress\":{\"allow\":[\"127.0.0.1:8080\"],\"deny\":"
                     "[\"1.0.0.0/8\"],\"timeout_ms\":100,\"max_connections\":500}}}", 0, NULL);
    assert_int_equal(thaw_egress_config_within(&op, cfg, "wrangler.toml", p.file, err,
                                               sizeof(err)), 0);
    assert_int_equal(thaw_egress_config_load(&c, cfg, "wrangler.toml", "/w", &p, err,
                                             sizeof(err)), 0);
    assert_int_equal(check(c.policy, "1.1.1.1", 443, NULL), 0);
    assert_int_equal(check(c.policy, "2.2.2.2", 443, NULL), 1);
    thaw_egress_config_free(&c);
    json_decref(cfg);
    thaw_egress_config_free(&op);
    thaw_policy_free(&p);

    /* the operator's table is checked like a worker's, and has no ca_file */
    p = operator_policy("{\"egress\":{\"ca_file\":\"/etc/ssl/x.pem\"}}");
    assert_int_equal(thaw_egress_operator_load(&op, &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/etc/thaw/serve.json: `egress.ca_file` is not an operator "
                                "setting"));
    thaw_policy_free(&p);
    p = operator_policy("{\"egress\":{\"allow\":[\"localhost\"]}}");
    assert_int_equal(thaw_egress_operator_load(&op, &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/etc/thaw/serve.json: `egress.allow`"));
    thaw_policy_free(&p);
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
        cmocka_unit_test(ranges_with_a_port),
        cmocka_unit_test(deny_closes_even_allowed_ranges),
        cmocka_unit_test(outer_policy_bounds_the_worker),
        cmocka_unit_test(covers_judges_a_range_against_a_policy),
        cmocka_unit_test(serve_intersects_with_the_operator),
    };
    return cmocka_run_group_tests_name("egress", tests, NULL, NULL);
}
