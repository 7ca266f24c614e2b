/* What a worker's SQL may do on its D1 connection. The connection lives in
 * the supervisor, which may run as root, so the SQL is tenant input that
 * must not reach past the worker's own database file: no ATTACH, no
 * VACUUM INTO, no extensions, no PRAGMA that names a file or trades
 * durability or memory, no writing the schema table by hand, and D1's
 * documented size limits. Refusals are SQLite's "not authorized"
 * (SQLITE_AUTH), which is what Cloudflare's D1 answers too.
 *
 * d1-exec.c applies the policy at the start of every call and removes it
 * at the end, so nothing depends on how the connection was opened. */
#ifndef THAW_D1_POLICY_H
#define THAW_D1_POLICY_H

#include <sqlite3.h>
#include <stddef.h>

/* D1's documented limits (developers.cloudflare.com/d1/platform/limits) */
#define THAW_D1_MAX_SQL 100000       /* bytes of one SQL statement */
#define THAW_D1_MAX_VALUE 2000000    /* bytes of a string, BLOB or row */
#define THAW_D1_MAX_COLUMNS 100      /* columns of a table */
#define THAW_D1_MAX_PARAMS 100       /* bound parameters of a query */
#define THAW_D1_MAX_FUNC_ARGS 32     /* arguments of an SQL function */
#define THAW_D1_MAX_LIKE 50          /* bytes of a LIKE or GLOB pattern */
/* thaw's own, where D1 documents none: bounds on the supervisor's stack
 * and memory while it compiles a statement */
#define THAW_D1_MAX_EXPR_DEPTH 200
#define THAW_D1_MAX_COMPOUND 100
#define THAW_D1_MAX_VDBE_OPS 1000000

/* One call's state, as the authorizer sees it. */
struct thaw_d1_policy {
    int no_transactions; /* batch(): BEGIN / COMMIT / ROLLBACK are refused */
    int transaction_denied; /* and one was */
    int stepping;        /* statements prepared now are SQLite's own (VACUUM) */
    char why[200];       /* why the last refusal, for the error message */
};

/* Hardens db (defensive mode, no extension loading or fts3_tokenizer,
 * the limits above) and installs the authorizer with p, which must
 * outlive the call. Returns 0, or -1 with a message in err: then nothing
 * may run. */
int thaw_d1_policy_on(sqlite3 *db, struct thaw_d1_policy *p, char *err, size_t errlen);
/* Removes the authorizer (the hardening stays). */
void thaw_d1_policy_off(sqlite3 *db);

#endif
