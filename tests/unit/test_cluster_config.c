/* The operator's [cluster] table (src/cluster/config.c): what it accepts,
 * and the message of each mistake. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/config.h"
#include "policy/policy.h"

static int load(const char *json, struct thaw_cluster_config *c, char *err)
{
    struct thaw_policy p;
    int rc;

    thaw_policy_init(&p);
    assert_int_equal(thaw_policy_load_json(&p, json, "/etc/thaw/serve.json", err, 512), 0);
    rc = thaw_cluster_config_load(c, &p, err, 512);
    thaw_policy_free(&p);
    return rc;
}

static void no_table_is_one_machine(void **state)
{
    struct thaw_cluster_config c;
    char err[512];

    assert_int_equal(load("{}", &c, err), 0);
    assert_int_equal(c.on, 0);
}

static void every_key(void **state)
{
    struct thaw_cluster_config c;
    char err[512];

    assert_int_equal(load("{\"cluster\": {\"node\": \"n1\", \"control\": "
                          "\"postgresql:///thaw?host=/tmp/pg\", \"redis\": "
                          "\"redis://127.0.0.1:7000/2\", \"internal\": \"127.0.0.1:9101\"}}",
                          &c, err), 0);
    assert_int_equal(c.on, 1);
    assert_string_equal(c.node, "n1");
    assert_string_equal(c.control, "postgresql:///thaw?host=/tmp/pg");
    assert_string_equal(c.redis, "redis://127.0.0.1:7000/2");
    assert_string_equal(c.internal, "127.0.0.1:9101");
    assert_int_equal(load("{\"cluster\": {\"internal\": \"[::1]:9101\"}}", &c, err), 0);
    assert_string_equal(c.internal, "[::1]:9101");
}

static void node_defaults_to_the_host_name(void **state)
{
    struct thaw_cluster_config c;
    char err[512];

    assert_int_equal(load("{\"cluster\": {}}", &c, err), 0);
    assert_int_equal(c.on, 1);
    assert_true(strlen(c.node) > 0);
}

static void mistakes_name_file_and_key(void **state)
{
    static const struct { const char *json, *want; } bad[] = {
        {"{\"cluster\": {\"node\": \"../n1\"}}", "`cluster.node` must be"},
        {"{\"cluster\": {\"node\": 7}}", "`cluster.node` must be"},
        {"{\"cluster\": {\"control\": \"mysql://x/y\"}}", "`cluster.control` must be a PostgreSQL URL"},
        {"{\"cluster\": {\"control\": \"postgresql://h/db?nosuch=1\"}}",
         "`cluster.control` is not a URL libpq takes: invalid URI query parameter: \"nosuch\""},
        {"{\"cluster\": {\"redis\": \"http://x\"}}", "`cluster.redis` must be redis://"},
        {"{\"cluster\": {\"internal\": \"127.0.0.1\"}}", "`cluster.internal` must be IP:PORT"},
        {"{\"cluster\": {\"internal\": \"127.0.0.1:70000\"}}", "`cluster.internal` must be IP:PORT"},
        {"{\"cluster\": {\"internal\": \"thaw-0.thaw.svc:9101\"}}", "`cluster.internal` must be IP:PORT"},
        {"{\"cluster\": {\"nodes\": \"n1\"}}", "unknown key `cluster.nodes`"},
    };
    struct thaw_cluster_config c;
    char err[512];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(load(bad[i].json, &c, err), -1);
        assert_non_null(strstr(err, "/etc/thaw/serve.json: "));
        if (!strstr(err, bad[i].want))
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].json, err, bad[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_table_is_one_machine),
        cmocka_unit_test(every_key),
        cmocka_unit_test(node_defaults_to_the_host_name),
        cmocka_unit_test(mistakes_name_file_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
