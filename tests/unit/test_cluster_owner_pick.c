/* Rendezvous hashing of new objects over the live nodes
 * (src/cluster/owner.c, thaw_owner_pick): the same answer on every node
 * whatever order it lists the nodes in, a spread over all of them, and
 * only the objects of a node that leaves change their pick. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/owner.h"

static void none_is_minus_one(void **state)
{
    assert_int_equal(thaw_owner_pick(NULL, 0, "d1\nw\nx"), -1);
}

static void order_does_not_matter(void **state)
{
    const char *a[] = {"n1", "n2", "n3"}, *b[] = {"n3", "n1", "n2"};
    char key[64];
    int i;

    for (i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "d1\nshop\ndb-%d", i);
        assert_string_equal(a[thaw_owner_pick(a, 3, key)], b[thaw_owner_pick(b, 3, key)]);
    }
}

static void spreads_and_moves_only_what_it_must(void **state)
{
    const char *three[] = {"n1", "n2", "n3"}, *two[] = {"n1", "n3"};
    int count[3] = {0, 0, 0}, i;
    char key[64];

    for (i = 0; i < 3000; i++) {
        const char *with, *without;
        snprintf(key, sizeof(key), "d1\nshop\ndb-%d", i);
        with = three[thaw_owner_pick(three, 3, key)];
        without = two[thaw_owner_pick(two, 2, key)];
        count[with[1] - '1']++;
        /* n2 gone: what n1 and n3 had stays theirs */
        if (strcmp(with, "n2") != 0)
            assert_string_equal(with, without);
    }
    for (i = 0; i < 3; i++)
        if (count[i] < 800 || count[i] > 1200)
            fail_msg("node n%d got %d of 3000 keys", i + 1, count[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(none_is_minus_one),
        cmocka_unit_test(order_does_not_matter),
        cmocka_unit_test(spreads_and_moves_only_what_it_must),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
