/* D1 migrations' SQL side (bind/d1-migrate.c) on an in-memory database:
 * statements split where SQLite ends them (strings, comments, trigger
 * bodies), each with the line of its first word; files applied in order,
 * each with its row, a failing one rolled back with its line, and what
 * is applied found again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bind/d1-migrate.h"

static sqlite3 *db;

static int setup(void **state)
{
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    return 0;
}

static int teardown(void **state)
{
    sqlite3_close(db);
    return 0;
}

struct seen {
    char text[8][200];
    int line[8];
    int n;
};

static int collect(const char *s, size_t n, int line, void *arg)
{
    struct seen *v = arg;

    snprintf(v->text[v->n], sizeof(v->text[0]), "%.*s", (int)n, s);
    v->line[v->n++] = line;
    return 0;
}

static void splits_where_sqlite_ends_a_statement(void **state)
{
    struct seen v = {0};

    assert_int_equal(thaw_d1_split("-- head; with a semicolon\n"
                                   "CREATE TABLE t (a TEXT);\n"
                                   "/* block; */ INSERT INTO t VALUES ('x;y');\n"
                                   "\n"
                                   "CREATE TRIGGER g AFTER INSERT ON t BEGIN\n"
                                   "  UPDATE t SET a = 'z';\n"
                                   "END;\n"
                                   ";;  -- trailing\n"
                                   "SELECT 1", collect, &v), 0);
    assert_int_equal(v.n, 4);
    assert_string_equal(v.text[0], "CREATE TABLE t (a TEXT);");
    assert_int_equal(v.line[0], 2);
    assert_string_equal(v.text[1], "INSERT INTO t VALUES ('x;y');");
    assert_int_equal(v.line[1], 3);
    assert_non_null(strstr(v.text[2], "END;"));
    assert_int_equal(v.line[2], 5);
    assert_string_equal(v.text[3], "SELECT 1");
    assert_int_equal(v.line[3], 9);
    memset(&v, 0, sizeof(v));
    assert_int_equal(thaw_d1_split("  -- only comments;\n/* ; */\n", collect, &v), 0);
    assert_int_equal(v.n, 0);
}

static struct thaw_d1_migration files[3];

static void set_files(const char *a, const char *b, const char *c)
{
    const char *sql[3] = {a, b, c};
    int k;

    for (k = 0; k < 3; k++) {
        free(files[k].name);
        free(files[k].sql);
        files[k].name = malloc(32);
        snprintf(files[k].name, 32, "000%d_m.sql", k + 1);
        files[k].sql = strdup(sql[k]);
        files[k].applied = 0;
    }
}

static long count(const char *sql)
{
    sqlite3_stmt *st;
    long v = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void applies_in_order_and_stops_at_a_failure(void **state)
{
    struct thaw_d1_migrate m = {.table = "d1_migrations", .files = files, .n = 3};

    set_files("CREATE TABLE a (x);\nINSERT INTO a VALUES (1);",
              "CREATE TABLE b (x);\n\n  INSERT INTO nope VALUES (1);",
              "CREATE TABLE c (x);");
    /* a list before anything: no table made, nothing applied */
    thaw_d1_migrate(db, &m);
    assert_int_equal(m.rc, 0);
    assert_int_equal(files[0].applied + files[1].applied + files[2].applied, 0);
    assert_int_equal(count("SELECT count(*) FROM sqlite_master"), 0);
    m.apply = 1;
    thaw_d1_migrate(db, &m);
    assert_int_equal(m.rc, -1);
    assert_int_equal(m.failed, 1);
    assert_int_equal(m.line, 3);
    assert_non_null(strstr(m.err, "no such table: nope"));
    assert_int_equal(files[0].applied, 2);
    assert_int_equal(files[1].applied, 0);
    assert_int_equal(count("SELECT count(*) FROM sqlite_master WHERE name IN ('b', 'c')"), 0);
    assert_int_equal(count("SELECT count(*) FROM d1_migrations"), 1);
    /* fixed: the rest applies; the first is known as applied */
    free(files[1].sql);
    files[1].sql = strdup("CREATE TABLE b (x);");
    files[0].applied = 0;
    thaw_d1_migrate(db, &m);
    assert_int_equal(m.rc, 0);
    assert_int_equal(files[0].applied, 1);
    assert_int_equal(files[1].applied, 2);
    assert_int_equal(files[2].applied, 2);
    assert_int_equal(count("SELECT count(*) FROM d1_migrations"), 3);
    assert_int_equal(count("SELECT id FROM d1_migrations WHERE name = '0003_m.sql'"), 3);
}

static void the_policy_and_transactions_hold(void **state)
{
    struct thaw_d1_migrate m = {.table = "log \"x\"", .files = files, .n = 3, .apply = 1};

    set_files("CREATE TABLE a (x);", "ATTACH DATABASE ':memory:' AS other;",
              "CREATE TABLE c (x);");
    thaw_d1_migrate(db, &m);
    assert_int_equal(m.rc, -1);
    assert_int_equal(m.failed, 1);
    assert_int_equal(m.line, 1);
    assert_non_null(strstr(m.err, "not authorized"));
    assert_int_equal(count("SELECT count(*) FROM \"log \"\"x\"\"\""), 1);
    set_files("CREATE TABLE a (x);", "BEGIN;\nCREATE TABLE b (x);\nCOMMIT;", "SELECT 1");
    files[0].applied = 0;
    thaw_d1_migrate(db, &m);
    assert_int_equal(m.failed, 1);
    assert_non_null(strstr(m.err, "each migration already runs in a transaction"));
    assert_int_equal(count("SELECT count(*) FROM sqlite_master WHERE name = 'b'"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(splits_where_sqlite_ends_a_statement),
        cmocka_unit_test_setup_teardown(applies_in_order_and_stops_at_a_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_policy_and_transactions_hold, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("d1_migrate", tests, NULL, NULL), k;

    for (k = 0; k < 3; k++) {
        free(files[k].name);
        free(files[k].sql);
    }
    return rc;
}
