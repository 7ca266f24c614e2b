/* zygote/backoff.h: the delays of a zygote's restarts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zygote/backoff.h"

/* A crash loop: at once, then 100 ms doubling, and never over 10 s. */
static void test_doubles_up_to_the_cap(void **state)
{
    unsigned next = 0, want[] = {0, 100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(thaw_backoff_take(&next, 0), want[i]);
}

/* One that stayed ready for 30 s crashed once: it starts over at once;
 * one ready for less goes on doubling. */
static void test_a_long_ready_spell_starts_over(void **state)
{
    unsigned next = 0;

    (void)state;
    thaw_backoff_take(&next, 0);
    thaw_backoff_take(&next, 0);
    assert_int_equal(thaw_backoff_take(&next, THAW_BACKOFF_RESET_MS - 1), 200);
    assert_int_equal(thaw_backoff_take(&next, THAW_BACKOFF_RESET_MS), 0);
    assert_int_equal(thaw_backoff_take(&next, 5), 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubles_up_to_the_cap),
        cmocka_unit_test(test_a_long_ready_spell_starts_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
