/* D1's SQL work, run on a pool thread with the database's connection
 * (bind/sqlq.h): one prepared statement with its parameters, a batch in
 * one transaction, or exec() of a script. Each writes its answer as JSON
 * text into a bounded buffer, or fails with the message Cloudflare's D1
 * would throw ("D1_ERROR: no such table: x: SQLITE_ERROR").
 *
 * The result of a statement is
 *   {"columns":[...],"rows":[[...],...],"meta":{...}}
 * (rows as arrays: compact, and duplicate column names survive for raw());
 * Python (workers/_d1.py) turns rows into dicts. Cells: NULL -> null,
 * INTEGER -> an exact integer, REAL -> a number with a fraction or exponent
 * (non-finite -> null), TEXT -> a string, BLOB -> an array of byte values
 * (as D1's JavaScript API returns them). */
#ifndef THAW_D1_EXEC_H
#define THAW_D1_EXEC_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>

#include "util/buf.h"

/* Stops a running statement: set `cancelled` (from any thread) when the
 * caller is gone; `deadline_ms` (CLOCK_MONOTONIC) bounds its run time. */
struct thaw_d1_ctl {
    int cancelled;       /* read and written with __atomic builtins */
    double deadline_ms;  /* 0: none */
    /* the caller holds a transaction open across queries (a Durable
     * Object's transactionSync, src/do/storage.c): not rolled back */
    int keep_open;
    /* in a cluster, the owner node's lease on the database (uv_now() ms,
     * CLOCK_MONOTONIC; 0: none): work that has not started by then does
     * not start (cluster/owner.h) */
    double lease_until_ms;
};

/* The longest a statement (or a whole batch / exec) may run, as D1's own
 * 30 s query limit. */
#define THAW_D1_TIMEOUT_MS 30000.0
/* The largest answer, in bytes of JSON. */
#define THAW_D1_MAX_RESULT (32u * 1024 * 1024)

/* Each returns 0 with JSON text appended to out, or -1 with a message in
 * err. */

/* params: a JSON array (null, booleans as 0/1, integers, reals, strings,
 * arrays of byte values as BLOBs). max_rows > 0 stops reading rows after
 * that many (first()). */
int thaw_d1_query(sqlite3 *db, struct thaw_d1_ctl *ctl, const char *sql,
                  json_t *params, long max_rows, struct thaw_buf *out,
                  char *err, size_t errlen);
/* stmts: an array of {"sql": ..., "params": [...]}; all in one transaction,
 * rolled back when one fails. Output: [result, ...]. */
int thaw_d1_batch(sqlite3 *db, struct thaw_d1_ctl *ctl, json_t *stmts,
                  struct thaw_buf *out, char *err, size_t errlen);
/* The same; when it fails, *failed is the index of the statement that
 * did (-1: the transaction's BEGIN or COMMIT). */
int thaw_d1_batch_at(sqlite3 *db, struct thaw_d1_ctl *ctl, json_t *stmts,
                     struct thaw_buf *out, long *failed, char *err, size_t errlen);
/* One or more statements without parameters, each committed on its own;
 * stops at the first error. Output: {"count": n, "duration": ms}. */
int thaw_d1_exec(sqlite3 *db, struct thaw_d1_ctl *ctl, const char *sql,
                 struct thaw_buf *out, char *err, size_t errlen);

/* "SQLITE_CONSTRAINT" for a result code (its primary code's name). */
const char *thaw_d1_code_name(int rc);
/* Past blanks, semicolons and comments (an unclosed one runs to the end):
 * where the next statement of p starts. */
const char *thaw_d1_skip_blank(const char *p);

#endif
