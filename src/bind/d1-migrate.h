/* D1 migrations, the SQL side (docs/bindings/d1.md, Migrations): what a
 * database has applied, and applying the rest, as wrangler keeps them.
 * The migrations table is wrangler's (id, name, applied_at); each file
 * runs with its row in that table in one transaction, so a file that
 * fails leaves nothing, and the run stops there.
 *
 * Runs on a pool thread with the database's connection (bind/d1.h's
 * thaw_d1_run), every statement under the D1 policy (d1-policy.h) and
 * D1's 30 s limit per file: under `thaw serve` the files are a tenant's
 * SQL. */
#ifndef THAW_BIND_D1_MIGRATE_H
#define THAW_BIND_D1_MIGRATE_H

#include <sqlite3.h>
#include <stddef.h>

#include "bind/d1-exec.h"

struct thaw_d1_migration {
    char *name;    /* the file's name: what the table records */
    char *sql;     /* its text, NUL-terminated (apply only; NULL for a list) */
    int applied;   /* out: 1 applied before, 2 applied by this call */
};

struct thaw_d1_migrate {
    /* in */
    const char *table;                 /* migrations_table */
    struct thaw_d1_migration *files;   /* every file, in the order they apply */
    size_t n;
    int apply;                         /* 0: only mark what is applied */
    struct thaw_d1_ctl ctl;            /* cancelled: stop after this statement */
    /* out */
    int rc;                            /* 0, or -1 with err */
    long failed;                       /* the file that failed, -1: none (or the table) */
    int line;                          /* its failing statement's line; 0: not one */
    char err[4096];
};

void thaw_d1_migrate(sqlite3 *db, struct thaw_d1_migrate *m);

/* The statements of a script, for the line numbers of errors: calls
 * each(start, len, line) for every statement (comments before it
 * skipped; its line is that of its first word). sqlite3_complete decides
 * where one ends, so semicolons in strings, comments and trigger bodies
 * do not. Returns what the last call returned if not 0, else 0. */
int thaw_d1_split(const char *sql, int (*each)(const char *s, size_t n, int line, void *arg),
                  void *arg);

#endif
