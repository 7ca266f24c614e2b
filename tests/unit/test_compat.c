/* Compatibility dates and flags: dates switch flags on, names add and
 * disable them, unknown flags and future dates are errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "config/compat.h"

#define TODAY "2026-11-25"

static int resolve(const char *date, char *const *flags, int n, char *out, char *err)
{
    return thaw_compat_resolve("wrangler.toml", date, flags, n, TODAY, out, 512, err, 512);
}

static void dates_switch_flags_on(void **state)
{
    char out[512], err[512];

    assert_int_equal(resolve("2024-03-18", NULL, 0, out, err), 0);
    assert_string_equal(out, "[]");
    assert_int_equal(resolve("2025-08-14", NULL, 0, out, err), 0);
    assert_string_equal(out, "[\"python_no_global_handlers\"]");
    assert_int_equal(resolve("2026-06-01", NULL, 0, out, err), 0);
    assert_string_equal(out,
        "[\"python_no_global_handlers\",\"python_request_headers_preserve_commas\","
        "\"python_process_pth_files\"]");
    /* Cloudflare's date for the header commas: 2026-02-17 */
    assert_int_equal(resolve("2026-02-16", NULL, 0, out, err), 0);
    assert_string_equal(out, "[\"python_no_global_handlers\"]");
}

static void names_enable_and_disable(void **state)
{
    char out[512], err[512];
    char *on[] = {"python_workers", "python_request_headers_preserve_commas"};
    char *off[] = {"disable_python_no_global_handlers"};

    assert_int_equal(resolve("2024-03-18", on, 2, out, err), 0);
    assert_string_equal(out, "[\"python_workers\",\"python_request_headers_preserve_commas\"]");
    assert_int_equal(resolve("2026-01-01", off, 1, out, err), 0);
    assert_string_equal(out, "[]");
}

static void unknown_flag_is_an_error(void **state)
{
    char out[512], err[512];
    char *bad[] = {"python_workerz"};

    assert_int_equal(resolve("2024-03-18", bad, 1, out, err), -1);
    assert_non_null(strstr(err, "unknown compatibility flag \"python_workerz\""));
    assert_non_null(strstr(err, "did you mean \"python_workers\"?"));
}

static void every_cloudflare_flag_is_accepted(void **state)
{
    char out[512], err[512];
    char *flags[] = {"python_workers", "python_dedicated_snapshot", "python_workflows",
                     "python_workers_force_new_vendor_path", "python_workers_20250116",
                     "nodejs_compat", "streams_enable_constructors", "no_nodejs_compat_v2",
                     "enable_nodejs_fs_module", "url_standard"};
    int i;

    assert_int_equal(resolve("2024-03-18", flags, 10, out, err), 0);
    /* inert flags change nothing: only those of the behaviour table are in effect */
    assert_null(strstr(out, "streams_enable_constructors"));
    for (i = 0; i < thaw_n_compat_inert; i++)
        assert_true(thaw_compat_known(thaw_compat_inert[i]));
    assert_false(thaw_compat_known("python_dedicated_snapshots"));
}

static void closest_flag_is_named(void **state)
{
    assert_string_equal(thaw_compat_closest("python_dedicated_snapshots"),
                        "python_dedicated_snapshot");
    assert_string_equal(thaw_compat_closest("nodejs_compt"), "nodejs_compat");
    assert_string_equal(thaw_compat_closest("url_standart"), "url_standard");
    assert_non_null(thaw_compat_closest(""));
}

static void future_date_is_an_error(void **state)
{
    char out[512], err[512];

    assert_int_equal(resolve("2026-11-26", NULL, 0, out, err), -1);
    assert_non_null(strstr(err, "in the future"));
    assert_int_equal(resolve(TODAY, NULL, 0, out, err), 0);
    assert_int_equal(resolve("26-1-1", NULL, 0, out, err), -1);
}

static void flag_with_its_disable_is_an_error(void **state)
{
    char out[512], err[512];
    char *both[] = {"python_no_global_handlers", "disable_python_no_global_handlers"};

    assert_int_equal(resolve("2024-03-18", both, 2, out, err), -1);
    assert_non_null(strstr(err, "both"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dates_switch_flags_on),
        cmocka_unit_test(names_enable_and_disable),
        cmocka_unit_test(unknown_flag_is_an_error),
        cmocka_unit_test(every_cloudflare_flag_is_accepted),
        cmocka_unit_test(closest_flag_is_named),
        cmocka_unit_test(future_date_is_an_error),
        cmocka_unit_test(flag_with_its_disable_is_an_error),
    };
    return cmocka_run_group_tests_name("compat", tests, NULL, NULL);
}
