/* src/config/ceilings.c and the limit helpers of limits.c: where each of
 * thaw serve's ceilings comes from, and how values read in messages. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config/limits.h"

static const struct thaw_limit_spec *spec(const char *key)
{
    int i;

    for (i = 0; i < thaw_n_limit_specs; i++)
        if (strcmp(thaw_limit_specs[i].key, key) == 0)
            return &thaw_limit_specs[i];
    fail_msg("no limit %s", key);
    return NULL;
}

static int index_of(const char *key) { return (int)(spec(key) - thaw_limit_specs); }

static void builtin_ceilings_are_cloudflares(void **state)
{
    struct thaw_limit_bounds b;
    struct thaw_limits cli;
    int set[64] = {0};
    char err[256];

    thaw_limits_defaults(&cli);
    assert_int_equal(thaw_limit_bounds(&b, NULL, "x", &cli, set, err, sizeof(err)), 0);
    assert_int_equal(b.ceil.memory_mb, 128);
    assert_int_equal(b.ceil.cpu_ms, 300000);
    assert_int_equal(b.def.cpu_ms, 30000);
    assert_int_equal(b.ceil.tmp_size, 64LL << 20);
    assert_int_equal(b.from[index_of("cpu_ms")], THAW_CEIL_BUILTIN);
}

static void a_flag_is_default_and_ceiling_the_operator_beats_it(void **state)
{
    struct thaw_limit_bounds b;
    struct thaw_limits cli;
    int set[64] = {0};
    char err[256];
    json_t *ops = json_pack("{s:s, s:i}", "cpu_ms", "5s", "memory_mb", 64);

    thaw_limits_defaults(&cli);
    cli.cpu_ms = 1000;
    set[index_of("cpu_ms")] = 1;
    cli.max_instances = 2;
    set[index_of("max_instances")] = 1;
    assert_int_equal(thaw_limit_bounds(&b, ops, "serve.toml", &cli, set, err, sizeof(err)), 0);
    assert_int_equal(b.def.cpu_ms, 1000);
    assert_int_equal(b.ceil.cpu_ms, 5000);
    assert_int_equal(b.from[index_of("cpu_ms")], THAW_CEIL_OPERATOR);
    assert_int_equal(b.ceil.max_instances, 2);
    assert_int_equal(b.from[index_of("max_instances")], THAW_CEIL_FLAG);
    /* a ceiling under thaw's default lowers the default too */
    assert_int_equal(b.ceil.memory_mb, 64);
    assert_int_equal(b.def.memory_mb, 64);
    json_decref(ops);
}

static void bad_operator_tables(void **state)
{
    struct thaw_limit_bounds b;
    struct thaw_limits cli;
    int set[64] = {0};
    char err[256];
    json_t *ops;

    thaw_limits_defaults(&cli);
    ops = json_pack("{s:i}", "memory_mbs", 1);
    assert_int_equal(thaw_limit_bounds(&b, ops, "serve.toml", &cli, set, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "serve.toml: unknown key `limits.memory_mbs`"));
    json_decref(ops);
    ops = json_pack("{s:s}", "tmp_size", "lots");
    assert_int_equal(thaw_limit_bounds(&b, ops, "serve.toml", &cli, set, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "`limits.tmp_size` must be"));
    json_decref(ops);
    ops = json_pack("{s:i}", "header_timeout_ms", 5);
    assert_int_equal(thaw_limit_bounds(&b, ops, "serve.toml", &cli, set, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--header-timeout"));
    json_decref(ops);
}

static void never_is_over_any_ceiling_but_none(void **state)
{
    const struct thaw_limit_spec *s = spec("template_idle_timeout_ms");

    assert_false(thaw_limit_over(s, 0, 0));
    assert_false(thaw_limit_over(s, 5000, 0));
    assert_true(thaw_limit_over(s, 0, 60000));
    assert_true(thaw_limit_over(s, 90000, 60000));
    assert_false(thaw_limit_over(s, 30000, 60000));
    assert_true(thaw_limit_over(spec("memory_mb"), 129, 128));
}

static void values_read_as_written(void **state)
{
    char buf[48];

    thaw_limit_format(spec("tmp_size"), 64LL << 30, buf, sizeof(buf));
    assert_string_equal(buf, "64G");
    thaw_limit_format(spec("tmp_size"), 1536LL << 10, buf, sizeof(buf));
    assert_string_equal(buf, "1536K");
    thaw_limit_format(spec("cpu_ms"), 300000, buf, sizeof(buf));
    assert_string_equal(buf, "300000 ms");
    thaw_limit_format(spec("isolation"), THAW_ISOLATION_PER_WORKER, buf, sizeof(buf));
    assert_string_equal(buf, "\"per-worker\"");
    thaw_limit_format(spec("requests_per_instance"), 0, buf, sizeof(buf));
    assert_string_equal(buf, "0 (never)");
}

static void version_memory_has_a_share_for_the_template(void **state)
{
    struct thaw_limits l;

    thaw_limits_defaults(&l);
    assert_int_equal(thaw_limits_version_memory(&l), (128LL * 9) << 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builtin_ceilings_are_cloudflares),
        cmocka_unit_test(a_flag_is_default_and_ceiling_the_operator_beats_it),
        cmocka_unit_test(bad_operator_tables),
        cmocka_unit_test(never_is_over_any_ceiling_but_none),
        cmocka_unit_test(values_read_as_written),
        cmocka_unit_test(version_memory_has_a_share_for_the_template),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
