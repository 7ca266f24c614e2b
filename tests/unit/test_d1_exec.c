/* D1's SQL work (bind/d1-exec.c) on an in-memory database: the JSON it
 * writes (escaping, REALs, BLOBs, big integers), parameter checks, batch
 * rollback, exec()'s line numbers, cancellation and the result cap. Then,
 * on a database file beside another one, the policy a worker's SQL runs
 * under (bind/d1-policy.c): what it may not reach, and what still works. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "bind/d1-exec.h"
#include "bind/d1-policy.h"

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
    json_t *parsed = json_loads(r, 0, NULL);

    assert_non_null(parsed); /* and it parses */
    json_decref(parsed);
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


/* ---- the policy, on a file next to a neighbour's --------------------------- */

static char dir[64], main_path[128], other_path[128];

static int setup_file(void **state)
{
    sqlite3 *other;

    snprintf(dir, sizeof(dir), "/tmp/thaw-d1-unit-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(main_path, sizeof(main_path), "%s/mine.sqlite", dir);
    snprintf(other_path, sizeof(other_path), "%s/neighbour.sqlite", dir);
    /* the neighbour's database, with something worth stealing */
    assert_int_equal(sqlite3_open(other_path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "CREATE TABLE secrets (v); INSERT INTO secrets "
                                  "VALUES ('hunter2')", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(sqlite3_open(main_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL),
                     SQLITE_OK);
    thaw_buf_init(&out, THAW_D1_MAX_RESULT);
    err[0] = 0;
    return 0;
}

static int teardown_file(void **state)
{
    char cmd[128];

    teardown(state);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* A call that must be refused by the policy, with its reason in err. */
static void refused(const char *sql, const char *params, const char *why)
{
    const char *r = q(sql, params, 0);

    if (r)
        fail_msg("%s: ran, and gave %s", sql, r);
    if (!strstr(err, "D1_ERROR: not authorized: SQLITE_AUTH") || !strstr(err, why))
        fail_msg("%s: %s (wanted not authorized ... %s)", sql, err, why);
}

/* A call that must fail, with msg in its message. */
static void fails(const char *sql, const char *params, const char *msg)
{
    const char *r = q(sql, params, 0);

    if (r)
        fail_msg("%.80s...: ran, and gave %.200s", sql, r);
    if (!strstr(err, msg))
        fail_msg("%.80s...: %s (wanted %s)", sql, err, msg);
}

static void attach_is_refused(void **state)
{
    struct thaw_d1_ctl ctl = {0};
    char sql[300];

    snprintf(sql, sizeof(sql), "ATTACH DATABASE '%s' AS x", other_path);
    refused(sql, NULL, "ATTACH opens another database file");
    /* the name as an expression, a URI, a bound parameter, memory, temp */
    snprintf(sql, sizeof(sql), "ATTACH '%.*s' || '%s' AS x", 5, other_path,
             other_path + 5);
    refused(sql, NULL, "ATTACH");
    snprintf(sql, sizeof(sql), "ATTACH 'file:%s?mode=ro' AS x", other_path);
    refused(sql, NULL, "ATTACH");
    refused("ATTACH ? AS x", "[\"/tmp/x.sqlite\"]", "ATTACH");
    refused("ATTACH ':memory:' AS m", NULL, "ATTACH");
    refused("ATTACH '' AS t", NULL, "ATTACH");
    refused("DETACH x", NULL, "DETACH");
    /* exec() and batch() run under the same policy */
    snprintf(sql, sizeof(sql), "SELECT 1;\nATTACH '%s' AS x;", other_path);
    assert_int_equal(thaw_d1_exec(db, &ctl, sql, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "D1_EXEC_ERROR: Error in line 2: "));
    assert_non_null(strstr(err, "not authorized: SQLITE_AUTH"));
    assert_int_equal(sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, -1), 1);
    /* and the neighbour is still only the neighbour's */
    assert_null(q("SELECT * FROM x.secrets", NULL, 0));
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static void vacuum_into_is_refused_vacuum_runs(void **state)
{
    struct thaw_d1_ctl ctl = {0};
    json_t *stmts;
    char sql[300], into[128];

    assert_non_null(q("CREATE TABLE t (a); INSERT INTO t VALUES (1), (2)", NULL, 0));
    snprintf(into, sizeof(into), "%s/copy.sqlite", dir);
    snprintf(sql, sizeof(sql), "VACUUM INTO '%s'", into);
    refused(sql, NULL, "VACUUM INTO writes another file");
    assert_false(exists(into));
    refused("VACUUM INTO ?", "[\"/tmp/thaw-d1-unit-vacuum-into.sqlite\"]", "VACUUM INTO");
    assert_false(exists("/tmp/thaw-d1-unit-vacuum-into.sqlite"));
    refused("VACUUM INTO ':memory:'", NULL, "VACUUM INTO");
    assert_int_equal(thaw_d1_exec(db, &ctl, sql, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not authorized: SQLITE_AUTH"));
    stmts = json_pack("[{s:s}]", "sql", sql);
    assert_int_equal(thaw_d1_batch(db, &ctl, stmts, &out, err, sizeof(err)), -1);
    json_decref(stmts);
    assert_false(exists(into));
    /* VACUUM of the database itself (through SQLite's own temporary copy) */
    assert_non_null(q("VACUUM", NULL, 0));
    assert_non_null(q("VACUUM main", NULL, 0));
    assert_non_null(strstr(rows_of(q("SELECT count(*) FROM t", NULL, 0)), "[[2]]"));
}

static void extensions_are_refused(void **state)
{
    int on = -1;

    refused("SELECT load_extension('/usr/lib/x86_64-linux-gnu/libsqlite3.so.0')", NULL,
            "load_extension() is not available");
    /* in a view or trigger: refused where it would run */
    assert_non_null(q("CREATE TABLE t (a); CREATE VIEW v AS SELECT load_extension('x');"
                      "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT "
                      "load_extension('x'); END", NULL, 0));
    fails("SELECT * FROM v", NULL, "load_extension");
    refused("INSERT INTO t VALUES (1)", NULL, "load_extension");
    /* fts3_tokenizer with a bound BLOB writes a C function pointer */
    refused("SELECT fts3_tokenizer('simple', ?)", "[[65,65,65,65,65,65,65,65]]",
            "fts3_tokenizer() is not available");
    refused("CREATE VIRTUAL TABLE s USING dbstat", NULL, "module \"dbstat\"");
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, -1, &on);
    assert_int_equal(on, 0);
}

static void pragmas_are_an_allow_list(void **state)
{
    static const char *const REFUSED[] = {
        "PRAGMA journal_mode=DELETE", "PRAGMA journal_mode=OFF", "PRAGMA journal_mode",
        "PRAGMA writable_schema=1", "PRAGMA writable_schema",
        "PRAGMA temp_store_directory='/tmp'", "PRAGMA data_store_directory='/tmp'",
        "PRAGMA database_list", "SELECT * FROM pragma_database_list",
        "PRAGMA synchronous=OFF", "PRAGMA cache_size=-100000000", "PRAGMA mmap_size=1e12",
        "PRAGMA locking_mode=EXCLUSIVE", "PRAGMA temp_store=MEMORY",
        "PRAGMA hard_heap_limit=1", "PRAGMA soft_heap_limit=1", "PRAGMA threads=8",
        "PRAGMA wal_checkpoint(TRUNCATE)", "PRAGMA user_version=7",
        "PRAGMA main.page_size=512", "PRAGMA no_such_pragma",
    };
    size_t i;

    for (i = 0; i < sizeof(REFUSED) / sizeof(REFUSED[0]); i++)
        refused(REFUSED[i], NULL, "is not one D1 allows");
    assert_non_null(q("CREATE TABLE t (a INTEGER PRIMARY KEY, b REFERENCES t(a))", NULL,
                      0));
    assert_non_null(strstr(q("PRAGMA table_info(t)", NULL, 0), "\"rows\":[[0,\"a\""));
    assert_non_null(strstr(q("SELECT name FROM pragma_table_info('t')", NULL, 0),
                           "[[\"a\"],[\"b\"]]"));
    assert_non_null(q("PRAGMA table_list", NULL, 0));
    assert_non_null(q("PRAGMA index_list(t)", NULL, 0));
    assert_non_null(q("PRAGMA foreign_key_list(t)", NULL, 0));
    assert_non_null(q("PRAGMA foreign_key_check", NULL, 0));
    assert_non_null(q("PRAGMA foreign_keys=ON", NULL, 0));
    assert_non_null(q("PRAGMA defer_foreign_keys=ON", NULL, 0));
    assert_non_null(q("PRAGMA case_sensitive_like=ON", NULL, 0));
    assert_non_null(q("PRAGMA quick_check", NULL, 0));
    assert_non_null(q("PRAGMA optimize", NULL, 0));
    assert_non_null(q("PRAGMA user_version", NULL, 0));
}

static void the_schema_table_stays_read_only(void **state)
{
    const char *r;

    assert_non_null(q("CREATE TABLE t (a); INSERT INTO t VALUES (1)", NULL, 0));
    refused("PRAGMA writable_schema=ON", NULL, "writable_schema");
    /* defensive mode refuses it even if writable_schema were on */
    assert_int_equal(sqlite3_exec(db, "PRAGMA writable_schema=ON", NULL, NULL, NULL),
                     SQLITE_OK);
    fails("UPDATE sqlite_master SET sql = 'CREATE TABLE t (a, b, c)' WHERE name = 't'",
            NULL, "may not be modified");
    fails("DELETE FROM sqlite_schema", NULL, "may not be modified");
    r = q("SELECT sql FROM sqlite_master WHERE name = 't'", NULL, 0);
    assert_non_null(strstr(r, "CREATE TABLE t (a)"));
    assert_non_null(strstr(rows_of(q("PRAGMA quick_check", NULL, 0)), "[[\"ok\"]]"));
}

/* "SELECT 1+1+...": an expression nested n deep */
static char *deep(int n)
{
    char *s = malloc((size_t)n * 2 + 16);
    int i;

    strcpy(s, "SELECT 1");
    for (i = 0; i < n; i++)
        strcat(s, "+1");
    return s;
}

static void d1_limits_hold(void **state)
{
    char *s, *p;
    int i;

    /* 100 KB of SQL in one statement */
    s = malloc(THAW_D1_MAX_SQL + 64);
    p = s + sprintf(s, "SELECT '");
    memset(p, 'x', THAW_D1_MAX_SQL);
    strcpy(p + THAW_D1_MAX_SQL, "'");
    fails(s, NULL, "SQLITE_TOOBIG (D1 allows 100000 bytes of SQL");
    free(s);
    /* 101 columns */
    s = malloc(2000);
    p = s + sprintf(s, "CREATE TABLE wide (c1");
    for (i = 2; i <= THAW_D1_MAX_COLUMNS; i++)
        p += sprintf(p, ", c%d", i);
    strcpy(p, ", c101)");
    fails(s, NULL, "too many columns on wide");
    strcpy(p, ")"); /* 100 is fine */
    assert_non_null(q(s, NULL, 0));
    free(s);
    /* expressions nested too deep */
    s = deep(THAW_D1_MAX_EXPR_DEPTH + 10);
    fails(s, NULL, "Expression tree is too large");
    free(s);
    s = deep(THAW_D1_MAX_EXPR_DEPTH / 2);
    assert_non_null(q(s, NULL, 0));
    free(s);
    /* 101 bound parameters */
    fails("SELECT ?101", NULL, "variable number must be between ?1 and ?100");
    /* values past 2 MB, made in the supervisor's memory */
    fails("SELECT zeroblob(3000000)", NULL, "string or blob too big");
    fails("SELECT randomblob(3000000)", NULL, "string or blob too big");
    fails("SELECT max(1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,"
            "26,27,28,29,30,31,32,33)", NULL, "too many arguments on function max");
    fails("SELECT 'a' LIKE '%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%'",
            NULL, "LIKE or GLOB pattern too complex");
}

static void ordinary_sql_still_works(void **state)
{
    struct thaw_d1_ctl ctl = {0};
    const char *r;

    if (thaw_d1_exec(db, &ctl,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id),"
        " title TEXT, n INTEGER DEFAULT 0);\n"
        "CREATE INDEX posts_user ON posts(user_id);\n"
        "CREATE TABLE log (msg TEXT);\n"
        "CREATE TRIGGER posts_log AFTER INSERT ON posts BEGIN INSERT INTO log VALUES "
        "('post ' || new.title); END;\n"
        "CREATE VIEW titles AS SELECT u.name, p.title FROM users u JOIN posts p ON "
        "p.user_id = u.id;\n"
        "CREATE VIRTUAL TABLE posts_fts USING fts5(title, content='posts', "
        "content_rowid='id');\n"
        "CREATE TRIGGER posts_ai AFTER INSERT ON posts BEGIN INSERT INTO posts_fts(rowid,"
        " title) VALUES (new.id, new.title); END;\n"
        "CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1);\n"
        "INSERT INTO users (name) VALUES ('ada'), ('bob');\n"
        "INSERT INTO posts (user_id, title) VALUES (1, 'hello world'), (2, 'bye');\n",
        &out, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    r = q("SELECT name, title FROM titles ORDER BY title", NULL, 0);
    assert_non_null(strstr(r, "[[\"bob\",\"bye\"],[\"ada\",\"hello world\"]]"));
    r = q("SELECT msg FROM log ORDER BY rowid", NULL, 0);
    assert_non_null(strstr(r, "[[\"post hello world\"],[\"post bye\"]]"));
    r = q("SELECT rowid FROM posts_fts WHERE posts_fts MATCH 'hello'", NULL, 0);
    assert_non_null(strstr(r, "\"rows\":[[1]]"));
    r = q("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
          "SELECT json_group_array(i), (SELECT sum(i) OVER () FROM n LIMIT 1) FROM n",
          NULL, 0);
    assert_non_null(strstr(r, "[[\"[1,2,3,4,5]\",15]]"));
    r = q("SELECT value FROM json_each(?) WHERE value > 1", "[\"[1,2,3]\"]", 0);
    assert_non_null(strstr(r, "[[2],[3]]"));
    assert_non_null(q("INSERT INTO boxes VALUES (1, 0, 10)", NULL, 0));
    assert_non_null(q("ALTER TABLE posts ADD COLUMN body TEXT", NULL, 0));
    assert_non_null(q("BEGIN; SAVEPOINT a; INSERT INTO log VALUES ('x'); RELEASE a; "
                      "COMMIT", NULL, 0));
    assert_non_null(q("PRAGMA foreign_keys=ON", NULL, 0)); /* as bind/sqlq.c opens it */
    assert_null(q("INSERT INTO posts (user_id, title) VALUES (99, 'orphan')", NULL, 0));
    assert_non_null(strstr(err, "FOREIGN KEY constraint failed"));
    assert_non_null(q("DROP VIEW titles; DROP TRIGGER posts_log; DROP TABLE posts_fts",
                      NULL, 0));
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
        cmocka_unit_test_setup_teardown(attach_is_refused, setup_file, teardown_file),
        cmocka_unit_test_setup_teardown(vacuum_into_is_refused_vacuum_runs, setup_file,
                                        teardown_file),
        cmocka_unit_test_setup_teardown(extensions_are_refused, setup_file, teardown_file),
        cmocka_unit_test_setup_teardown(pragmas_are_an_allow_list, setup_file,
                                        teardown_file),
        cmocka_unit_test_setup_teardown(the_schema_table_stays_read_only, setup_file,
                                        teardown_file),
        cmocka_unit_test_setup_teardown(d1_limits_hold, setup_file, teardown_file),
        cmocka_unit_test_setup_teardown(ordinary_sql_still_works, setup_file,
                                        teardown_file),
    };
    return cmocka_run_group_tests_name("d1_exec", tests, NULL, NULL);
}
