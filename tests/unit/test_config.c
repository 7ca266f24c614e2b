/* Config parsing: JSONC to JSON, and the checks on each key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"

static char dir[] = "/tmp/thaw-config-test-XXXXXX";

static int setup(void **state)
{
    char path[256];
    FILE *f;

    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/src", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/src/entry.py", dir);
    f = fopen(path, "w");
    fputs("x = 1\n", f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *jsonc(const char *in)
{
    char *out = NULL, err[256];
    assert_int_equal(thaw_jsonc_to_json(in, strlen(in), &out, err, sizeof(err)), 0);
    return out;
}

static void jsonc_strips_comments_and_trailing_commas(void **state)
{
    struct thaw_config cfg;
    char err[512];
    char *j = jsonc("{\n  // a comment\n  \"main\": \"src/entry.py\", /* inline */\n"
                    "  \"vars\": {\"A\": \"x // not a comment\", \"B\": [1, 2,],},\n}\n");

    assert_int_equal(thaw_config_from_json(j, "wrangler.jsonc", dir, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.main, "src/entry.py");
    assert_non_null(strstr(cfg.json, "x // not a comment"));
    assert_non_null(strstr(cfg.json, "[1,2]"));
    thaw_config_free(&cfg);
    free(j);
}

static void jsonc_keeps_lines_for_errors(void **state)
{
    struct thaw_config cfg;
    char err[512];
    char *j = jsonc("{\n/* one\ntwo */\n\"main\": oops\n}");

    assert_int_equal(thaw_config_from_json(j, "wrangler.jsonc", dir, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "wrangler.jsonc:4:")); /* the line of `oops` */
    free(j);
}

static void jsonc_unclosed_comment(void **state)
{
    char *out = NULL, err[256];
    const char *in = "{ /* never closed";

    assert_int_equal(thaw_jsonc_to_json(in, strlen(in), &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "never closed"));
}

static void jsonc_escaped_quote_in_string(void **state)
{
    char *j = jsonc("{\"a\": \"q\\\"/*x*/\", }");
    assert_string_equal(j, "{\"a\": \"q\\\"/*x*/\"  }");
    free(j);
}

static void expect_error(const char *json, const char *needle)
{
    struct thaw_config cfg;
    char err[512];

    assert_int_equal(thaw_config_from_json(json, "wrangler.toml", dir, &cfg, err, sizeof(err)), -1);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    assert_non_null(strstr(err, "wrangler.toml"));
}

static void main_is_checked(void **state)
{
    expect_error("{}", "`main` is missing");
    expect_error("{\"main\": \"src/index.js\"}", "ending in .py");
    expect_error("{\"main\": \"../x.py\"}", "inside the worker directory");
    expect_error("{\"main\": \"/etc/x.py\"}", "inside the worker directory");
    expect_error("{\"main\": \"src/nope.py\"}", "does not exist");
    expect_error("{\"main\": 3}", "`main` must be a string");
}

static void other_keys_are_checked(void **state)
{
    expect_error("{\"main\": \"src/entry.py\", \"vars\": []}", "`vars` must be a table");
    expect_error("{\"main\": \"src/entry.py\", \"compatibility_date\": \"yesterday\"}",
                 "compatibility_date");
    expect_error("{\"main\": \"src/entry.py\", \"compatibility_flags\": [1]}",
                 "compatibility_flags");
    expect_error("[1]", "object of keys");
}

static void defaults_and_values(void **state)
{
    struct thaw_config cfg;
    char err[512];
    const char *base = strrchr(dir, '/') + 1;

    assert_int_equal(thaw_config_from_json(
        "{\"main\": \"src/entry.py\", \"compatibility_date\": \"2024-03-18\","
        " \"compatibility_flags\": [\"python_workers\"], \"unknown\": 1}",
        "wrangler.toml", dir, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.name, base); /* no name: the directory's */
    assert_string_equal(cfg.compat_date, "2024-03-18");
    assert_int_equal(cfg.n_compat_flags, 1);
    assert_string_equal(cfg.compat_flags[0], "python_workers");
    thaw_config_free(&cfg);
}

static void find_prefers_json(void **state)
{
    char path[512], f[512];
    FILE *fp;

    assert_int_equal(thaw_config_find(dir, path, sizeof(path)), THAW_CFG_NONE);
    snprintf(f, sizeof(f), "%s/wrangler.toml", dir);
    fp = fopen(f, "w");
    fclose(fp);
    assert_int_equal(thaw_config_find(dir, path, sizeof(path)), THAW_CFG_TOML);
    snprintf(f, sizeof(f), "%s/wrangler.jsonc", dir);
    fp = fopen(f, "w");
    fclose(fp);
    assert_int_equal(thaw_config_find(dir, path, sizeof(path)), THAW_CFG_JSONC);
    snprintf(f, sizeof(f), "%s/wrangler.json", dir);
    fp = fopen(f, "w");
    fclose(fp);
    assert_int_equal(thaw_config_find(dir, path, sizeof(path)), THAW_CFG_JSON);
    assert_non_null(strstr(path, "wrangler.json"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jsonc_strips_comments_and_trailing_commas),
        cmocka_unit_test(jsonc_keeps_lines_for_errors),
        cmocka_unit_test(jsonc_unclosed_comment),
        cmocka_unit_test(jsonc_escaped_quote_in_string),
        cmocka_unit_test(main_is_checked),
        cmocka_unit_test(other_keys_are_checked),
        cmocka_unit_test(defaults_and_values),
        cmocka_unit_test(find_prefers_json),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
