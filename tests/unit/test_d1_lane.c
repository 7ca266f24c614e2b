/* bind/d1-lane.c: a worker's D1 jobs take turns on libuv's pool, so a
 * worker holding long queries on four databases leaves threads for the
 * others. Real queues (bind/sqlq.c) on database files, on a real loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "bind/d1-lane.h"

static int release;      /* the long jobs may end (atomic) */
static int running;      /* long jobs on the pool now (atomic) */
static int most_running; /* the most at once (atomic) */
static int long_done, short_done;
static int order[8], n_order;

struct job {
    int id;
};

/* Runs until released (or 10 s: without lanes, this test must fail, not
 * hang). */
static void long_work(sqlite3 *db, void *arg)
{
    struct job *j = arg;
    int now = __atomic_add_fetch(&running, 1, __ATOMIC_SEQ_CST), most, i;

    while ((most = __atomic_load_n(&most_running, __ATOMIC_SEQ_CST)) < now &&
           !__atomic_compare_exchange_n(&most_running, &most, now, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
        ;
    for (i = 0; i < 10000 && !__atomic_load_n(&release, __ATOMIC_SEQ_CST); i++)
        usleep(1000);
    assert_true(j->id >= 0 && j->id < 4); /* its own argument */
    sqlite3_exec(db, "SELECT 1", NULL, NULL, NULL);
    __atomic_sub_fetch(&running, 1, __ATOMIC_SEQ_CST);
}

static void long_finished(void *arg)
{
    order[n_order++] = ((struct job *)arg)->id;
    long_done++;
}

static void short_work(sqlite3 *db, void *arg)
{
    sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS t (a)", NULL, NULL, NULL);
}

static void short_finished(void *arg)
{
    short_done++;
}

static void a_worker_holds_one_thread_at_a_time(void **state)
{
    char dir[] = "/tmp/thaw-d1-lane-XXXXXX", path[128], err[256], cmd[128];
    struct thaw_sqlq *q[5];
    struct job jobs[4];
    struct thaw_d1_lane *evil, *evil2, *innocent;
    uv_loop_t loop;
    int i;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(uv_loop_init(&loop), 0);
    for (i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/db%d.sqlite", dir, i);
        q[i] = thaw_sqlq_open(&loop, path, err, sizeof(err));
        assert_non_null(q[i]);
    }
    evil = thaw_d1_lane_get("evil");
    evil2 = thaw_d1_lane_get("evil"); /* another version: the same lane */
    innocent = thaw_d1_lane_get("innocent");
    assert_ptr_equal(evil, evil2);
    assert_ptr_not_equal(evil, innocent);
    for (i = 0; i < 4; i++) {
        jobs[i].id = i;
        thaw_d1_lane_submit(i % 2 ? evil2 : evil, q[i], long_work, long_finished, &jobs[i]);
    }
    thaw_d1_lane_submit(innocent, q[4], short_work, short_finished, NULL);
    while (!short_done && !long_done)
        uv_run(&loop, UV_RUN_ONCE);
    /* the innocent ran while the first long job still held its thread */
    assert_int_equal(short_done, 1);
    assert_int_equal(long_done, 0);
    __atomic_store_n(&release, 1, __ATOMIC_SEQ_CST);
    while (long_done < 4)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(most_running, 1);
    for (i = 0; i < 4; i++)
        assert_int_equal(order[i], i);
    thaw_d1_lane_put(evil);
    thaw_d1_lane_put(evil2);
    thaw_d1_lane_put(innocent);
    for (i = 0; i < 5; i++)
        thaw_sqlq_close(q[i]);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_worker_holds_one_thread_at_a_time),
    };
    return cmocka_run_group_tests_name("d1_lane", tests, NULL, NULL);
}
