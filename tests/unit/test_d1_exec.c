/* D1's SQL work (bind/d1-exec.c) on an in-memory database: the JSON it
 * writes (escaping, REALs, BLOBs, big integers), parameter checks, batch
 * rollback, exec()'s line numbers, cancellation and the result cap. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bind/d1-exec.h"

static sqlite3 *db;
static struct thaw_buf out;
static char err[4096];

static int setup(void **state)
{
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    thaw_buf_init(&out, THAW_D1_MAX_RESULT);
    err[0] = 0;
    return 0;
}

static int teardown(void **state)
{
    thaw_buf_free(&out);
    sqlite3_close(db);
    return 0;
}

/* Runs sql with params (JSON text) and returns the result's JSON text, or
 * NULL with err set. */
static const char *q(const char *sql, const char *params, long max_rows)
{
    struct thaw_d1_ctl ctl = {0};
    json_t *p = params ? json_loads(params, 0, NULL) : NULL;
    int rc;

    out.len = 0;
    rc = thaw_d1_query(db, &ctl, sql, p, max_rows, &out, err, sizeof(err));
    json_decref(p);
    if (rc < 0)
        return NULL;
    thaw_buf_append(&out, "", 1);
    return out.data;
}

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The "rows" part of a result. */
static const char *rows_of(const char *res)
{
    const char *r = strstr(res, "\"rows\":");
    assert_non_null(r);
    return r + 7;
}

static void cells_are_json(void **state)
{
    const char *r = q("SELECT 'a\"b\\c\n\x01' AS s, 1.0 AS r, 0.1 AS f, 9007199254740993 AS i,"
                      " x'00ff' AS b, NULL AS n, 1e308 * 10 AS inf", NULL, 0);

    assert_non_null(r);
    assert_non_null(strstr(r, "{\"columns\":[\"s\",\"r\",\"f\",\"i\",\"b\",\"n\",\"inf\"]"));
    assert_true(starts(rows_of(r), "[[\"a\\\"b\\\\c\\u000a\\u0001\",1.0,"
                       "0.10000000000000001,9007199254740993,[0,255],null,null]],"));
    assert_non_null(json_loads(r, 0, NULL)); /* and it parses */
}

static void params_bind_by_type_and_count(void **state)
{
    const char *r = q("SELECT typeof(?1), typeof(?2), typeof(?3), typeof(?4), typeof(?5),"
                      " typeof(?6), length(?6)", "[1, 2.5, \"x\", null, true, [1,2,3]]", 0);

    assert_non_null(r);
    assert_true(starts(rows_of(r),
        "[[\"integer\",\"real\",\"text\",\"null\",\"integer\",\"blob\",3]],"));
    assert_null(q("SELECT ?, ?", "[1]", 0));
    assert_non_null(strstr(err, "Wrong number of parameter bindings for SQL query: "
                                "it takes 2, 1 given"));
    assert_null(q("SELECT ?", "[[1, 256]]", 0));
    assert_non_null(strstr(err, "D1_TYPE_ERROR"));
    assert_null(q("SELECT ?", "[{\"a\": 1}]", 0));
    assert_non_null(strstr(err, "D1_TYPE_ERROR: Type 'object'"));
}

static void errors_name_sqlites_code(void **state)
{
    assert_null(q("SELEC 1", NULL, 0));
    assert_string_equal(err, "D1_ERROR: near \"SELEC\": syntax error: SQLITE_ERROR");
    assert_non_null(q("CREATE TABLE t (a UNIQUE)", NULL, 0));
    assert_non_null(q("INSERT INTO t VALUES (1)", NULL, 0));
    assert_null(q("INSERT INTO t VALUES (1)", NULL, 0));
    assert_string_equal(err, "D1_ERROR: UNIQUE constraint failed: t.a: SQLITE_CONSTRAINT");
    assert_null(q(" -- c\n ; ", NULL, 0));
    assert_string_equal(err, "D1_ERROR: No SQL statements detected.");
}

static void meta_counts_changes(void **state)
{
    const char *r;

    assert_non_null(q("CREATE TABLE t (a)", NULL, 0));
    assert_non_null(strstr(out.data, "\"changed_db\":true"));
    r = q("INSERT INTO t VALUES (1), (2)", NULL, 0);
    assert_non_null(strstr(r, "\"changes\":2,\"last_row_id\":2,\"changed_db\":true"));
    r = q("SELECT * FROM t", NULL, 1); /* first(): one row is enough */
    assert_non_null(strstr(r, "\"rows\":[[1]]"));
    assert_non_null(strstr(r, "\"changes\":0"));
}

static void batch_rolls_back_on_failure(void **state)
{
    struct thaw_d1_ctl ctl = {0};
    json_t *ok = json_loads("[{\"sql\": \"CREATE TABLE t (a UNIQUE)\"},"
                            " {\"sql\": \"INSERT INTO t VALUES (?)\", \"params\": [1]}]", 0, NULL);
    json_t *bad = json_loads("[{\"sql\": \"INSERT INTO t VALUES (2)\"},"
                             " {\"sql\": \"INSERT INTO t VALUES (1)\"}]", 0, NULL);
    json_t *commit = json_loads("[{\"sql\": \"INSERT INTO t VALUES (3)\"},"
                                " {\"sql\": \"COMMIT\"}]", 0, NULL);

    assert_int_equal(thaw_d1_batch(db, &ctl, ok, &out, err, sizeof(err)), 0);
    assert_true(out.data[0] == '[' && out.data[out.len - 1] == ']');
    assert_int_equal(thaw_d1_batch(db, &ctl, bad, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "UNIQUE constraint failed"));
    assert_int_equal(thaw_d1_batch(db, &ctl, commit, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "statement 2 of the batch is a BEGIN, COMMIT or ROLLBACK"));
    assert_non_null(strstr(rows_of(q("SELECT count(*) FROM t", NULL, 0)), "[[1]]"));
    json_decref(ok);
    json_decref(bad);
    json_decref(commit);
}

static void exec_reports_the_line(void **state)
{
    struct thaw_d1_ctl ctl = {0};

    assert_int_equal(thaw_d1_exec(db, &ctl, "CREATE TABLE t (a);\n\n  INSERT INTO t VALUES (1);"
                                  "\nINSERT INTO nope VALUES (1);", &out, err, sizeof(err)), -1);
    assert_string_equal(err, "D1_EXEC_ERROR: Error in line 4: INSERT INTO nope VALUES (1);: "
                        "no such table: nope: SQLITE_ERROR");
    out.len = 0;
    assert_int_equal(thaw_d1_exec(db, &ctl, "INSERT INTO t VALUES (2); SELECT 1", &out, err,
                                  sizeof(err)), 0);
    assert_true(starts(out.data, "{\"count\":2,"));
    assert_null(q("BEGIN; INSERT INTO t VALUES (3)", NULL, 0));
    assert_non_null(strstr(err, "left a transaction open"));
    assert_true(sqlite3_get_autocommit(db));
}

static void a_cancelled_query_stops(void **state)
{
    struct thaw_d1_ctl ctl = {0};

    ctl.cancelled = 1;
    assert_int_equal(thaw_d1_query(db, &ctl, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
                                   "SELECT i + 1 FROM n) SELECT count(*) FROM n", NULL, 0,
                                   &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "went away: SQLITE_INTERRUPT"));
}

static void results_are_capped(void **state)
{
    struct thaw_buf small;
    struct thaw_d1_ctl ctl = {0};

    thaw_buf_init(&small, 1000);
    assert_int_equal(thaw_d1_query(db, &ctl, "SELECT printf('%.*c', 2000, 'x')", NULL, 0,
                                   &small, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "the result is over"));
    thaw_buf_free(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(cells_are_json, setup, teardown),
        cmocka_unit_test_setup_teardown(params_bind_by_type_and_count, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_name_sqlites_code, setup, teardown),
        cmocka_unit_test_setup_teardown(meta_counts_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(batch_rolls_back_on_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(exec_reports_the_line, setup, teardown),
        cmocka_unit_test_setup_teardown(a_cancelled_query_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(results_are_capped, setup, teardown),
    };
    return cmocka_run_group_tests_name("d1_exec", tests, NULL, NULL);
}
