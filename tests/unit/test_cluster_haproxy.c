/* `thaw cluster haproxy-config` (src/cluster/haproxy.c): the nodes it
 * accepts, the message of each mistake, and the lines it writes. Whether
 * HAProxy itself accepts the file: tests/integration/test_cluster_front.py
 * (scripts/cluster-up runs it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/haproxy.h"

static char *config_of(const char *nodes, struct thaw_buf *b)
{
    static struct thaw_haproxy_opts o;
    char err[512];

    thaw_haproxy_defaults(&o);
    assert_int_equal(thaw_haproxy_parse_nodes(&o, nodes, err, sizeof(err)), 0);
    thaw_buf_init(b, 1 << 20);
    assert_int_equal(thaw_haproxy_config(&o, b), 0);
    assert_int_equal(thaw_buf_append(b, "", 1), 0);
    return b->data;
}

static void nodes_with_names_and_admin_ports(void **state)
{
    static struct thaw_haproxy_opts o;
    char err[512];

    assert_int_equal(thaw_haproxy_parse_nodes(&o, "10.0.0.1:8787,east=10.0.0.2:9000/9100,"
                                                  "[::1]:80", err, sizeof(err)), 0);
    assert_int_equal(o.n, 3);
    assert_string_equal(o.nodes[0].name, "n1");
    assert_string_equal(o.nodes[0].host, "10.0.0.1");
    assert_int_equal(o.nodes[0].port, 8787);
    assert_int_equal(o.nodes[0].admin_port, 8788); /* thaw's default --admin */
    assert_string_equal(o.nodes[1].name, "east");
    assert_int_equal(o.nodes[1].admin_port, 9100);
    assert_string_equal(o.nodes[2].host, "[::1]");
    assert_int_equal(o.nodes[2].port, 80);
}

static void bad_nodes_are_named(void **state)
{
    static struct thaw_haproxy_opts o;
    char err[512];

    assert_int_equal(thaw_haproxy_parse_nodes(&o, "10.0.0.1:8787,10.0.0.2", err,
                                              sizeof(err)), -1);
    assert_non_null(strstr(err, "item 2 \"10.0.0.2\""));
    assert_non_null(strstr(err, "[NAME=]HOST:PORT[/ADMINPORT]"));
    assert_int_equal(thaw_haproxy_parse_nodes(&o, "h:0", err, sizeof(err)), -1);
    assert_int_equal(thaw_haproxy_parse_nodes(&o, "h:80/x", err, sizeof(err)), -1);
    assert_int_equal(thaw_haproxy_parse_nodes(&o, "bad name=h:80", err, sizeof(err)), -1);
    assert_int_equal(thaw_haproxy_parse_nodes(&o, "", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "at least one node"));
    assert_int_equal(thaw_haproxy_parse_nodes(&o, "a=h:80,a=h:81", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "two nodes are named a"));
}

static void the_lines_that_matter(void **state)
{
    struct thaw_buf b;
    char *c = config_of("n1=127.0.0.1:8001/8002,n2=127.0.0.1:8003/8004", &b);

    assert_non_null(strstr(c, "    balance hdr(host)\n"));
    assert_non_null(strstr(c, "    hash-type consistent\n"));
    assert_non_null(strstr(c, "    hash-balance-factor 200\n"));
    assert_non_null(strstr(c, "    http-check send meth GET uri /readyz\n"));
    assert_non_null(strstr(c, "    default-server check inter 1000 fall 2 rise 2\n"));
    assert_non_null(strstr(c, "    retry-on conn-failure empty-response\n"));
    assert_non_null(strstr(c, "    option redispatch 1\n"));
    /* a POST that may have reached a worker is never sent twice */
    assert_non_null(strstr(c, "disable-l7-retry unless METH_GET || METH_HEAD\n"));
    /* a 503 may be the worker's own answer: never retried */
    assert_null(strstr(c, "retry-on conn-failure empty-response 503"));
    assert_non_null(strstr(c, "    server n1 127.0.0.1:8001 port 8002\n"));
    assert_non_null(strstr(c, "    server n2 127.0.0.1:8003 port 8004\n"));
    assert_non_null(strstr(c, "    bind *:80\n"));
    assert_null(strstr(c, "stats enable"));
    thaw_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nodes_with_names_and_admin_ports),
        cmocka_unit_test(bad_nodes_are_named),
        cmocka_unit_test(the_lines_that_matter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
