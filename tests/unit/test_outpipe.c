/* thaw serve's worker output: the `[NAME req=N] text` tag that
 * python/thaw_runtime/output.py writes, parsed for tail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "pool/output.h"

static int parse(const char *line, char *name, long long *req, const char **msg)
{
    size_t off;
    int rc = thaw_outpipe_parse(line, strlen(line), name, 64, req, &off);

    *msg = line + off;
    return rc;
}

static void tagged_lines(void **state)
{
    char name[64];
    long long req;
    const char *msg;

    assert_int_equal(parse("[hello req=17] hi there", name, &req, &msg), 0);
    assert_string_equal(name, "hello");
    assert_int_equal(req, 17);
    assert_string_equal(msg, "hi there");
    assert_int_equal(parse("[my-worker] top level", name, &req, &msg), 0);
    assert_string_equal(name, "my-worker");
    assert_int_equal(req, -1);
    assert_string_equal(msg, "top level");
    assert_int_equal(parse("[w req=3]", name, &req, &msg), 0);
    assert_string_equal(msg, "");
}

static void untagged_lines(void **state)
{
    char name[64];
    long long req;
    const char *msg;

    assert_int_equal(parse("Traceback (most recent call last):", name, &req, &msg), -1);
    assert_int_equal(parse("[] x", name, &req, &msg), -1);
    assert_int_equal(parse("[w req=] x", name, &req, &msg), -1);
    assert_int_equal(parse("[w req=1x] x", name, &req, &msg), -1);
    assert_int_equal(parse("[w other] x", name, &req, &msg), -1);
    assert_int_equal(parse("[no closing bracket", name, &req, &msg), -1);
    /* a name longer than the buffer is not a worker's */
    assert_int_equal(parse("[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa] x",
                           name, &req, &msg), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tagged_lines),
        cmocka_unit_test(untagged_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
