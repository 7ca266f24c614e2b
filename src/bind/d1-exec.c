#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bind/d1-exec.h"
#include "bind/d1-policy.h"

static const char *const CODE_NAMES[] = {
    "SQLITE_OK", "SQLITE_ERROR", "SQLITE_INTERNAL", "SQLITE_PERM", "SQLITE_ABORT",
    "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_NOMEM", "SQLITE_READONLY",
    "SQLITE_INTERRUPT", "SQLITE_IOERR", "SQLITE_CORRUPT", "SQLITE_NOTFOUND",
    "SQLITE_FULL", "SQLITE_CANTOPEN", "SQLITE_PROTOCOL", "SQLITE_EMPTY",
    "SQLITE_SCHEMA", "SQLITE_TOOBIG", "SQLITE_CONSTRAINT", "SQLITE_MISMATCH",
    "SQLITE_MISUSE", "SQLITE_NOLFS", "SQLITE_AUTH", "SQLITE_FORMAT",
    "SQLITE_RANGE", "SQLITE_NOTADB", "SQLITE_NOTICE", "SQLITE_WARNING",
};

const char *thaw_d1_code_name(int rc)
{
    rc &= 0xff;
    if (rc >= 0 && (size_t)rc < sizeof(CODE_NAMES) / sizeof(CODE_NAMES[0]))
        return CODE_NAMES[rc];
    return "SQLITE_ERROR";
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- stopping a statement ------------------------------------------------ */

struct guard {
    struct thaw_d1_ctl *ctl;
    int timed_out;
    struct thaw_d1_policy pol; /* what the SQL may do (d1-policy.h) */
};

/* SQLite calls this every few thousand VM steps: non-zero interrupts. */
static int on_progress(void *arg)
{
    struct guard *g = arg;

    if (__atomic_load_n(&g->ctl->cancelled, __ATOMIC_RELAXED))
        return 1;
    if (g->ctl->deadline_ms > 0 && now_ms() > g->ctl->deadline_ms) {
        g->timed_out = 1;
        return 1;
    }
    return 0;
}

/* Every call starts here: the worker's SQL runs only under the policy
 * and the time limit. -1 with a message in err when the policy cannot be
 * applied: then nothing runs. */
static int guard_on(sqlite3 *db, struct guard *g, struct thaw_d1_ctl *ctl, char *err,
                    size_t errlen)
{
    g->ctl = ctl;
    g->timed_out = 0;
    if (thaw_d1_policy_on(db, &g->pol, err, errlen) < 0)
        return -1;
    if (ctl->deadline_ms <= 0)
        ctl->deadline_ms = now_ms() + THAW_D1_TIMEOUT_MS;
    sqlite3_progress_handler(db, 4000, on_progress, g);
    return 0;
}

static void guard_off(sqlite3 *db)
{
    sqlite3_progress_handler(db, 0, NULL, NULL);
    thaw_d1_policy_off(db);
}

/* Runs a prepared statement's next step. What SQLite prepares meanwhile is
 * its own SQL (VACUUM's), which the policy tells apart from the worker's. */
static int step(struct guard *g, sqlite3_stmt *st)
{
    int rc;

    g->pol.stepping = 1;
    rc = sqlite3_step(st);
    g->pol.stepping = 0;
    return rc;
}

/* The message for a failed prepare or step, as D1 words it. */
static void sql_error(sqlite3 *db, const struct guard *g, int rc, const char *prefix,
                      char *err, size_t errlen)
{
    if ((rc & 0xff) == SQLITE_INTERRUPT && g->timed_out)
        snprintf(err, errlen, "%sthe query ran over %.0f s (D1's limit) and was "
                 "stopped: SQLITE_INTERRUPT", prefix, THAW_D1_TIMEOUT_MS / 1000);
    else if ((rc & 0xff) == SQLITE_INTERRUPT)
        snprintf(err, errlen, "%sthe request that ran this query went away: "
                 "SQLITE_INTERRUPT", prefix);
    else if (g->pol.why[0] && ((rc & 0xff) == SQLITE_AUTH ||
                               (sqlite3_extended_errcode(db) & 0xff) == SQLITE_AUTH ||
                               strstr(sqlite3_errmsg(db), "not authorized")))
        /* D1's words, then why */
        snprintf(err, errlen, "%snot authorized: SQLITE_AUTH (%s)", prefix, g->pol.why);
    else if ((rc & 0xff) == SQLITE_TOOBIG)
        snprintf(err, errlen, "%s%s: SQLITE_TOOBIG (D1 allows %d bytes of SQL per "
                 "statement and %d bytes per string, BLOB or row)", prefix,
                 sqlite3_errmsg(db), THAW_D1_MAX_SQL, THAW_D1_MAX_VALUE);
    else
        snprintf(err, errlen, "%s%s: %s", prefix, sqlite3_errmsg(db),
                 thaw_d1_code_name(sqlite3_extended_errcode(db)));
}

/* ---- JSON output ---------------------------------------------------------- */

struct out {
    struct thaw_buf *b;
    int rc;
};

static void put(struct out *o, const void *p, size_t n)
{
    if (!o->rc)
        o->rc = thaw_buf_append(o->b, p, n);
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_str(struct out *o, const unsigned char *s, size_t n)
{
    size_t i, run = 0;
    char esc[8];

    put(o, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(o, s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(o, esc, 2);
        } else {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(o, esc, 6);
        }
    }
    put(o, s + run, n - run);
    put(o, "\"", 1);
}

static void put_int(struct out *o, sqlite3_int64 v)
{
    char num[32];

    put(o, num, (size_t)snprintf(num, sizeof(num), "%lld", (long long)v));
}

/* A REAL stays a float in Python: always with a fraction or an exponent. */
static void put_real(struct out *o, double v)
{
    char num[40];
    int n;

    if (!isfinite(v)) {
        puts_(o, "null");
        return;
    }
    n = snprintf(num, sizeof(num), "%.17g", v);
    if (!strpbrk(num, ".e"))
        n += snprintf(num + n, sizeof(num) - (size_t)n, ".0");
    put(o, num, (size_t)n);
}

static void put_cell(struct out *o, sqlite3_stmt *st, int i)
{
    const unsigned char *p;
    int n, k;
    char num[8];

    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        put_int(o, sqlite3_column_int64(st, i));
        break;
    case SQLITE_FLOAT:
        put_real(o, sqlite3_column_double(st, i));
        break;
    case SQLITE_TEXT:
        p = sqlite3_column_text(st, i);
        put_str(o, p ? p : (const unsigned char *)"", (size_t)sqlite3_column_bytes(st, i));
        break;
    case SQLITE_BLOB:
        p = sqlite3_column_blob(st, i);
        n = sqlite3_column_bytes(st, i);
        put(o, "[", 1);
        for (k = 0; k < n; k++)
            put(o, num, (size_t)snprintf(num, sizeof(num), k ? ",%u" : "%u", p[k]));
        put(o, "]", 1);
        break;
    default:
        puts_(o, "null");
    }
}

static int out_error(struct out *o, char *err, size_t errlen)
{
    if (o->rc == THAW_E_TOOBIG)
        snprintf(err, errlen, "D1_ERROR: the result is over %u MiB of JSON: ask for "
                 "fewer rows at a time (LIMIT and OFFSET) or fewer columns",
                 THAW_D1_MAX_RESULT >> 20);
    else
        snprintf(err, errlen, "D1_ERROR: out of memory building the result");
    return -1;
}

/* ---- parameters ------------------------------------------------------------ */

static int bind_blob(sqlite3_stmt *st, int i, json_t *v, char *err, size_t errlen)
{
    size_t n = json_array_size(v), k;
    unsigned char *p;
    int rc;

    if (n == 0)
        return sqlite3_bind_zeroblob(st, i, 0) == SQLITE_OK ? 0 : -1;
    p = malloc(n);
    if (!p)
        return -1;
    for (k = 0; k < n; k++) {
        json_t *b = json_array_get(v, k);
        json_int_t x = json_is_integer(b) ? json_integer_value(b) : -1;
        if (x < 0 || x > 255) {
            free(p);
            snprintf(err, errlen, "D1_TYPE_ERROR: parameter %d is a list that is "
                     "not bytes: pass bytes for a BLOB", i);
            return -2;
        }
        p[k] = (unsigned char)x;
    }
    rc = sqlite3_bind_blob64(st, i, p, n, SQLITE_TRANSIENT);
    free(p);
    return rc == SQLITE_OK ? 0 : -1;
}

static int bind_params(sqlite3 *db, sqlite3_stmt *st, json_t *params, char *err,
                       size_t errlen)
{
    int want = sqlite3_bind_parameter_count(st);
    size_t n = json_is_array(params) ? json_array_size(params) : 0;
    size_t i;

    if ((size_t)want != n) {
        snprintf(err, errlen, "D1_ERROR: Wrong number of parameter bindings for SQL "
                 "query: it takes %d, %zu given", want, n);
        return -1;
    }
    for (i = 0; i < n; i++) {
        json_t *v = json_array_get(params, i);
        int k = (int)i + 1, rc = SQLITE_OK;
        switch (json_typeof(v)) {
        case JSON_NULL: rc = sqlite3_bind_null(st, k); break;
        case JSON_TRUE: rc = sqlite3_bind_int(st, k, 1); break;
        case JSON_FALSE: rc = sqlite3_bind_int(st, k, 0); break;
        case JSON_INTEGER: rc = sqlite3_bind_int64(st, k, json_integer_value(v)); break;
        case JSON_REAL: rc = sqlite3_bind_double(st, k, json_real_value(v)); break;
        case JSON_STRING:
            rc = sqlite3_bind_text64(st, k, json_string_value(v), json_string_length(v),
                                     SQLITE_STATIC, SQLITE_UTF8);
            break;
        case JSON_ARRAY:
            rc = bind_blob(st, k, v, err, errlen);
            if (rc == -2)
                return -1;
            rc = rc ? SQLITE_NOMEM : SQLITE_OK;
            break;
        default:
            snprintf(err, errlen, "D1_TYPE_ERROR: Type 'object' not supported for "
                     "parameter %d", k);
            return -1;
        }
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "D1_ERROR: %s: %s", sqlite3_errmsg(db),
                     thaw_d1_code_name(rc));
            return -1;
        }
    }
    return 0;
}

/* ---- statements ------------------------------------------------------------ */

const char *thaw_d1_skip_blank(const char *p)
{
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' ||
               *p == '\v' || *p == ';')
            p++;
        if (p[0] == '-' && p[1] == '-') {
            p += strcspn(p, "\n");
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            p = end ? end + 2 : p + strlen(p);
        } else {
            return p;
        }
    }
}

static sqlite3_int64 db_size(sqlite3 *db)
{
    sqlite3_stmt *st;
    sqlite3_int64 v = 0;

    if (sqlite3_prepare_v2(db, "SELECT page_count * page_size FROM pragma_page_count, "
                           "pragma_page_size", -1, &st, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Whether a writing statement changes the schema rather than rows (so
 * changed_db holds though no row changed). */
static int is_ddl(sqlite3_stmt *st)
{
    const char *p = thaw_d1_skip_blank(sqlite3_sql(st));

    return !strncasecmp(p, "CREATE", 6) || !strncasecmp(p, "DROP", 4) ||
           !strncasecmp(p, "ALTER", 5);
}

/* Runs a prepared statement, writing its result object to o. */
static int run_stmt(sqlite3 *db, struct guard *g, sqlite3_stmt *st, long max_rows,
                    struct out *o, char *err, size_t errlen)
{
    int cols = sqlite3_column_count(st), i, rc;
    sqlite3_int64 total0 = sqlite3_total_changes64(db), changes = 0;
    long rows = 0;
    int readonly = sqlite3_stmt_readonly(st);
    double t0 = now_ms();
    char meta[512];

    puts_(o, "{\"columns\":[");
    for (i = 0; i < cols; i++) {
        const char *name = sqlite3_column_name(st, i);
        if (i)
            put(o, ",", 1);
        put_str(o, (const unsigned char *)(name ? name : ""), name ? strlen(name) : 0);
    }
    puts_(o, "],\"rows\":[");
    while ((rc = step(g, st)) == SQLITE_ROW) {
        put(o, rows ? ",[" : "[", rows ? 2 : 1);
        for (i = 0; i < cols; i++) {
            if (i)
                put(o, ",", 1);
            put_cell(o, st, i);
        }
        put(o, "]", 1);
        rows++;
        if (o->rc || (max_rows > 0 && rows >= max_rows)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) {
        sql_error(db, g, rc, "D1_ERROR: ", err, errlen);
        return -1;
    }
    if (o->rc)
        return out_error(o, err, errlen);
    if (!readonly)
        changes = sqlite3_changes64(db);
    snprintf(meta, sizeof(meta),
             "],\"meta\":{\"served_by\":\"thaw\",\"duration\":%.3f,\"changes\":%lld,"
             "\"last_row_id\":%lld,\"changed_db\":%s,\"size_after\":%lld,"
             "\"rows_read\":%lld,\"rows_written\":%lld}}",
             now_ms() - t0, (long long)changes,
             (long long)sqlite3_last_insert_rowid(db),
             sqlite3_total_changes64(db) > total0 || (!readonly && is_ddl(st)) ?
                 "true" : "false",
             (long long)db_size(db),
             (long long)rows + sqlite3_stmt_status(st, SQLITE_STMTSTATUS_FULLSCAN_STEP, 0),
             (long long)changes);
    puts_(o, meta);
    return o->rc ? out_error(o, err, errlen) : 0;
}

/* One query: every statement of sql in turn, the last one's result in o.
 * Parameters are only allowed with a single statement. */
static int query(sqlite3 *db, struct guard *g, const char *sql, json_t *params,
                 long max_rows, struct out *o, char *err, size_t errlen)
{
    const char *p = thaw_d1_skip_blank(sql);
    size_t mark = o->b->len;
    int n = 0;

    if (!*p) {
        snprintf(err, errlen, "D1_ERROR: No SQL statements detected.");
        return -1;
    }
    while (*p) {
        sqlite3_stmt *st = NULL;
        const char *tail = NULL;
        int rc = sqlite3_prepare_v2(db, p, -1, &st, &tail);

        if (rc != SQLITE_OK) {
            sql_error(db, g, rc, "D1_ERROR: ", err, errlen);
            return -1;
        }
        if (!st) /* only a comment was left */
            break;
        if (n == 0 && *thaw_d1_skip_blank(tail) && json_array_size(params) > 0) {
            sqlite3_finalize(st);
            snprintf(err, errlen, "D1_ERROR: a statement with bound parameters must be "
                     "a single SQL statement: prepare() each one (DB.batch() runs "
                     "several in one transaction)");
            return -1;
        }
        o->b->len = mark; /* the last statement's result is the answer */
        rc = bind_params(db, st, n == 0 ? params : NULL, err, errlen);
        if (rc == 0)
            rc = run_stmt(db, g, st, max_rows, o, err, errlen);
        sqlite3_finalize(st);
        if (rc < 0)
            return -1;
        n++;
        p = thaw_d1_skip_blank(tail);
    }
    return 0;
}

/* A BEGIN without COMMIT would hold every other request's statements in
 * its transaction: undo it. 1 when there was one. */
static int rollback_open(sqlite3 *db)
{
    if (sqlite3_get_autocommit(db))
        return 0;
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return 1;
}

static int left_open(char *err, size_t errlen)
{
    snprintf(err, errlen, "D1_ERROR: the SQL left a transaction open (BEGIN without "
             "COMMIT), so thaw rolled it back: use DB.batch() to run statements in "
             "one transaction");
    return -1;
}

int thaw_d1_query(sqlite3 *db, struct thaw_d1_ctl *ctl, const char *sql,
                  json_t *params, long max_rows, struct thaw_buf *out,
                  char *err, size_t errlen)
{
    struct out o = {out, 0};
    struct guard g;
    int rc;

    if (guard_on(db, &g, ctl, err, errlen) < 0)
        return -1;
    rc = query(db, &g, sql, params, max_rows, &o, err, errlen);
    guard_off(db);
    if (!ctl->keep_open && rollback_open(db) && rc == 0)
        return left_open(err, errlen);
    return rc;
}

int thaw_d1_batch(sqlite3 *db, struct thaw_d1_ctl *ctl, json_t *stmts,
                  struct thaw_buf *out, char *err, size_t errlen)
{
    return thaw_d1_batch_at(db, ctl, stmts, out, NULL, err, errlen);
}

int thaw_d1_batch_at(sqlite3 *db, struct thaw_d1_ctl *ctl, json_t *stmts,
                     struct thaw_buf *out, long *failed, char *err, size_t errlen)
{
    struct out o = {out, 0};
    struct guard g;
    size_t i;
    int rc = 0;

    if (failed)
        *failed = -1; /* BEGIN or COMMIT, when none of the statements */
    rollback_open(db); /* never: every job ends its transaction */
    if (guard_on(db, &g, ctl, err, errlen) < 0)
        return -1;
    rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sql_error(db, &g, rc, "D1_ERROR: ", err, errlen);
        guard_off(db);
        return -1;
    }
    /* BEGIN / COMMIT / ROLLBACK in the batch would end batch()'s own
     * transaction and commit half of it: the policy refuses them when they
     * are prepared, before anything ran. */
    g.pol.no_transactions = 1;
    put(&o, "[", 1);
    for (i = 0; i < json_array_size(stmts) && rc == 0; i++) {
        json_t *s = json_array_get(stmts, i);
        const char *sql = json_string_value(json_object_get(s, "sql"));
        if (i)
            put(&o, ",", 1);
        rc = query(db, &g, sql ? sql : "", json_object_get(s, "params"), 0, &o, err,
                   errlen);
        if (rc && failed)
            *failed = (long)i;
        if (rc && g.pol.transaction_denied)
            snprintf(err, errlen, "D1_ERROR: statement %zu of the batch is a BEGIN, "
                     "COMMIT or ROLLBACK: batch() already runs its statements in one "
                     "transaction, leave those out", i + 1);
    }
    g.pol.no_transactions = 0;
    put(&o, "]", 1);
    if (rc == 0 && o.rc)
        rc = out_error(&o, err, errlen);
    if (rc == 0 && (rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
        sql_error(db, &g, rc, "D1_ERROR: ", err, errlen);
        rc = -1;
    }
    if (rc != 0)
        rollback_open(db);
    guard_off(db);
    return rc ? -1 : 0;
}

/* "Error in line 3: INSERT INTO t VALUES (1): " for exec()'s messages. */
static void line_of(const char *sql, const char *at, char *buf, size_t n)
{
    const char *start = at, *end;
    int line = 1;
    const char *p;

    for (p = sql; p < at; p++)
        if (*p == '\n')
            line++;
    while (start > sql && start[-1] != '\n')
        start--;
    end = start + strcspn(start, "\n");
    if (end > start && end[-1] == '\r')
        end--;
    snprintf(buf, n, "Error in line %d: %.*s: ", line,
             (int)(end - start > 200 ? 200 : end - start), start);
}

int thaw_d1_exec(sqlite3 *db, struct thaw_d1_ctl *ctl, const char *sql,
                 struct thaw_buf *out, char *err, size_t errlen)
{
    const char *p = thaw_d1_skip_blank(sql);
    struct guard g;
    double t0 = now_ms();
    char where[300];
    int count = 0, rc = SQLITE_OK;

    if (!*p) {
        snprintf(err, errlen, "D1_EXEC_ERROR: No SQL statements detected.");
        return -1;
    }
    if (guard_on(db, &g, ctl, err, errlen) < 0)
        return -1;
    while (*p) {
        sqlite3_stmt *st = NULL;
        const char *tail = NULL;

        rc = sqlite3_prepare_v2(db, p, -1, &st, &tail);
        if (rc == SQLITE_OK && !st)
            break;
        if (rc == SQLITE_OK) {
            while ((rc = step(&g, st)) == SQLITE_ROW)
                ;
            if (rc == SQLITE_DONE)
                rc = SQLITE_OK;
        }
        if (rc != SQLITE_OK) {
            char prefix[340];
            line_of(sql, p, where, sizeof(where));
            snprintf(prefix, sizeof(prefix), "D1_EXEC_ERROR: %s", where);
            sql_error(db, &g, rc, prefix, err, errlen);
            sqlite3_finalize(st);
            break;
        }
        sqlite3_finalize(st);
        count++;
        p = thaw_d1_skip_blank(tail);
    }
    guard_off(db);
    if (rollback_open(db) && rc == SQLITE_OK)
        return left_open(err, errlen);
    if (rc != SQLITE_OK)
        return -1;
    if (thaw_buf_printf(out, "{\"count\":%d,\"duration\":%.3f}", count,
                        now_ms() - t0) != 0) {
        snprintf(err, errlen, "D1_ERROR: out of memory");
        return -1;
    }
    return 0;
}
