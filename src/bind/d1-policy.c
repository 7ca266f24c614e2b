#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "bind/d1-policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the connection ------------------------------------------------------- */

static const struct {
    int op, on;
} CONFIG[] = {
    /* no writes to sqlite_schema, shadow tables or the file header, even
     * with writable_schema; no journal_mode=OFF */
    {SQLITE_DBCONFIG_DEFENSIVE, 1},
    /* trusted_schema stays on (SQLite's default): off, it refuses FTS5 in
     * triggers (this SQLite does not mark FTS5 innocuous), which D1 apps
     * use to keep a full-text index in sync. What off would stop, a
     * function with side effects run from a view or trigger, the
     * authorizer refuses everywhere: the schema is written by the same
     * tenant as the statements. */
    {SQLITE_DBCONFIG_TRUSTED_SCHEMA, 1},
    {SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0},
    /* fts3_tokenizer(name, pointer) installs a C function pointer: Debian
     * builds SQLite with it on */
    {SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0},
    {SQLITE_DBCONFIG_WRITABLE_SCHEMA, 0},
    /* D1 has triggers and views */
    {SQLITE_DBCONFIG_ENABLE_TRIGGER, 1},
    {SQLITE_DBCONFIG_ENABLE_VIEW, 1},
};

static const struct {
    int id, value;
} LIMITS[] = {
    {SQLITE_LIMIT_LENGTH, THAW_D1_MAX_VALUE},
    {SQLITE_LIMIT_SQL_LENGTH, THAW_D1_MAX_SQL},
    {SQLITE_LIMIT_COLUMN, THAW_D1_MAX_COLUMNS},
    {SQLITE_LIMIT_VARIABLE_NUMBER, THAW_D1_MAX_PARAMS},
    {SQLITE_LIMIT_FUNCTION_ARG, THAW_D1_MAX_FUNC_ARGS},
    {SQLITE_LIMIT_LIKE_PATTERN_LENGTH, THAW_D1_MAX_LIKE},
    {SQLITE_LIMIT_EXPR_DEPTH, THAW_D1_MAX_EXPR_DEPTH},
    {SQLITE_LIMIT_COMPOUND_SELECT, THAW_D1_MAX_COMPOUND},
    {SQLITE_LIMIT_VDBE_OP, THAW_D1_MAX_VDBE_OPS},
    /* VACUUM's own temporary database; the authorizer refuses every other
     * ATTACH */
    {SQLITE_LIMIT_ATTACHED, 1},
    /* sorting helpers would be threads of the supervisor */
    {SQLITE_LIMIT_WORKER_THREADS, 0},
};

static int harden(sqlite3 *db, char *err, size_t errlen)
{
    size_t i;
    int now;

    for (i = 0; i < N(CONFIG); i++) {
        now = -1;
        if (sqlite3_db_config(db, CONFIG[i].op, CONFIG[i].on, &now) != SQLITE_OK ||
            now != CONFIG[i].on) {
            snprintf(err, errlen, "D1_ERROR: this SQLite (%s) cannot be configured to "
                     "run a worker's SQL safely (sqlite3_db_config %d)",
                     sqlite3_libversion(), CONFIG[i].op);
            return -1;
        }
    }
    for (i = 0; i < N(LIMITS); i++) {
        sqlite3_limit(db, LIMITS[i].id, LIMITS[i].value);
        if (sqlite3_limit(db, LIMITS[i].id, -1) != LIMITS[i].value) {
            snprintf(err, errlen, "D1_ERROR: this SQLite (%s) cannot take thaw's "
                     "limits (sqlite3_limit %d)", sqlite3_libversion(), LIMITS[i].id);
            return -1;
        }
    }
    return 0;
}

/* ---- the authorizer ------------------------------------------------------- */

enum { BARE = 1, WITH_VALUE = 2 }; /* PRAGMA x / PRAGMA x = v or x(v) */

/* An allow-list: an unknown PRAGMA is refused, so a new SQLite's new
 * pragmas stay off until someone looks at them. */
static const struct {
    const char *name;
    int forms;
} PRAGMAS[] = {
    /* the ones D1 documents (developers.cloudflare.com/d1/sql-api/sql-statements) */
    {"table_list", BARE | WITH_VALUE},
    {"table_info", WITH_VALUE},
    {"table_xinfo", WITH_VALUE},
    {"index_list", WITH_VALUE},
    {"index_info", WITH_VALUE},
    {"index_xinfo", WITH_VALUE},
    {"quick_check", BARE | WITH_VALUE},
    {"foreign_key_check", BARE | WITH_VALUE},
    {"foreign_key_list", WITH_VALUE},
    {"case_sensitive_like", WITH_VALUE},
    {"ignore_check_constraints", BARE | WITH_VALUE},
    {"legacy_alter_table", BARE | WITH_VALUE},
    {"recursive_triggers", BARE | WITH_VALUE},
    {"reverse_unordered_selects", BARE | WITH_VALUE},
    {"foreign_keys", BARE | WITH_VALUE},
    {"defer_foreign_keys", BARE | WITH_VALUE},
    {"optimize", BARE | WITH_VALUE},
    /* reads about this database only (thaw's meta.size_after reads the
     * first two; FTS and R-Tree read page_size) */
    {"page_count", BARE},
    {"page_size", BARE},
    {"freelist_count", BARE},
    {"integrity_check", BARE | WITH_VALUE},
    {"user_version", BARE},
    {"schema_version", BARE},
    {"data_version", BARE},
    {"application_id", BARE},
    {"encoding", BARE},
    {"collation_list", BARE},
    {"function_list", BARE},
    {"module_list", BARE},
    {"pragma_list", BARE},
};

/* Functions no SQL of a worker may call, in a statement, view or trigger. */
static const char *const FUNCTIONS_REFUSED[] = {
    "load_extension", /* loads a shared library into the supervisor */
    "fts3_tokenizer", /* with a bound BLOB, sets a C function pointer */
};

/* Virtual table modules a CREATE VIRTUAL TABLE may use: D1's FTS5 and
 * the other full-text and R-Tree modules, none of which reads files. */
static const char *const MODULES[] = {
    "fts5", "fts5vocab", "fts4", "fts3", "fts4aux", "fts3tokenize",
    "rtree", "rtree_i32", "geopoly",
};

static int listed(const char *const *list, size_t n, const char *s)
{
    size_t i;

    for (i = 0; s && i < n; i++)
        if (strcasecmp(list[i], s) == 0)
            return 1;
    return 0;
}

static int pragma_allowed(const char *name, const char *value)
{
    size_t i;

    for (i = 0; name && i < N(PRAGMAS); i++)
        if (strcasecmp(PRAGMAS[i].name, name) == 0)
            return (PRAGMAS[i].forms & (value ? WITH_VALUE : BARE)) != 0;
    return 0;
}

static int deny(struct thaw_d1_policy *p, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->why, sizeof(p->why), fmt, ap);
    va_end(ap);
    return SQLITE_DENY;
}

/* SQLite calls this while it compiles each statement, including the ones
 * it prepares itself while another runs (VACUUM, pragma functions, FTS). */
static int authorize(void *arg, int action, const char *a1, const char *a2,
                     const char *schema, const char *inner)
{
    struct thaw_d1_policy *p = arg;

    switch (action) {
    case SQLITE_ATTACH:
        /* Plain VACUUM, while it runs, attaches a temporary database (file
         * name "") to rebuild this one into. VACUUM INTO attaches its
         * target the same way, by name; a worker's own ATTACH is compiled
         * before anything runs. */
        if (p->stepping && a1 && !*a1)
            return SQLITE_OK;
        if (p->stepping)
            return deny(p, "VACUUM INTO writes another file; D1 allows VACUUM "
                        "only on the database itself");
        return deny(p, "ATTACH opens another database file; a D1 database is one "
                    "file, so D1 has no ATTACH");
    case SQLITE_DETACH:
        return deny(p, "D1 has no ATTACH or DETACH");
    case SQLITE_PRAGMA:
        if (pragma_allowed(a1, a2))
            return SQLITE_OK;
        return deny(p, "PRAGMA %s%s is not one D1 allows (table_info, table_list, "
                    "index_list, foreign_keys, defer_foreign_keys, optimize, ...)",
                    a1 ? a1 : "?", a2 ? " with a value" : "");
    case SQLITE_FUNCTION:
        if (listed(FUNCTIONS_REFUSED, N(FUNCTIONS_REFUSED), a2))
            return deny(p, "the SQL function %s() is not available on D1", a2);
        return SQLITE_OK;
    case SQLITE_CREATE_VTABLE:
        if (listed(MODULES, N(MODULES), a2))
            return SQLITE_OK;
        return deny(p, "virtual table module \"%s\" is not available on D1 (fts5, "
                    "fts4, rtree are)", a2 ? a2 : "?");
    case SQLITE_TRANSACTION:
        if (!p->no_transactions)
            return SQLITE_OK;
        p->transaction_denied = 1;
        return deny(p, "batch() runs in one transaction already");
    }
    return SQLITE_OK;
}

int thaw_d1_policy_on(sqlite3 *db, struct thaw_d1_policy *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    if (harden(db, err, errlen) < 0)
        return -1;
    sqlite3_set_authorizer(db, authorize, p);
    return 0;
}

void thaw_d1_policy_off(sqlite3 *db)
{
    sqlite3_set_authorizer(db, NULL, NULL);
}
