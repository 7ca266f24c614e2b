/* util/idname: any id from a config becomes a file name that stays in its
 * directory, ids that were always valid keep their names, and the Python
 * twin (python/thaw_tools/idname.py, tests/python/test_idname.py) gives
 * the same names for the same examples. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util/idname.h"

static const char *name_of(const char *id)
{
    static char out[THAW_IDNAME_SIZE];

    assert_true(thaw_id_filename(id, strlen(id), out) > 0);
    return out;
}

static void valid_ids_keep_their_names(void **state)
{
    assert_string_equal(name_of("my-kv"), "my-kv");
    assert_string_equal(name_of("a1b2c3d4e5f60718293a4b5c6d7e8f90"),
                        "a1b2c3d4e5f60718293a4b5c6d7e8f90");
    assert_string_equal(name_of("a.b"), "a.b");
}

static void other_bytes_are_escaped(void **state)
{
    char out[THAW_IDNAME_SIZE];

    assert_string_equal(name_of("<YOUR_KV_NAMESPACE_ID>"), "%3CYOUR_KV_NAMESPACE_ID%3E");
    assert_string_equal(name_of("../../etc/passwd"), "%2E.%2F..%2Fetc%2Fpasswd");
    assert_string_equal(name_of(".hidden"), "%2Ehidden");
    assert_string_equal(name_of("\xc3\xa9"), "%C3%A9");
    assert_string_equal(name_of("%41"), "%2541"); /* '%' itself: no two ids meet */
    assert_int_equal(thaw_id_filename("a\0b", 3, out), 5);
    assert_string_equal(out, "a%00b");
    assert_int_equal(thaw_id_filename("", 0, out), -1);
}

static void long_ids_are_cut_and_hashed(void **state)
{
    char id[201];
    const char *n;
    int i;

    memset(id, 'x', 200);
    id[200] = '\0';
    n = name_of(id);
    assert_int_equal(strlen(n), 100 + 1 + 32);
    assert_string_equal(n + 100, "~6ee14c8caecd5c4540d0fffa82ab9664");
    for (i = 0; i < 60; i++)
        memcpy(id + 2 * i, "a/", 2);
    id[120] = '\0';
    assert_string_equal(name_of(id),
        "a%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2Fa%2F"
        "a%2Fa%2Fa%2Fa%2Fa%2F~1348a6621411f665d99ba2575e9e9864");
    assert_null(strchr(n, '/'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_ids_keep_their_names),
        cmocka_unit_test(other_bytes_are_escaped),
        cmocka_unit_test(long_ids_are_cut_and_hashed),
    };
    return cmocka_run_group_tests_name("idname", tests, NULL, NULL);
}
