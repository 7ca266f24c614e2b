/* The D1 binding's files and connections, for callers other than a
 * worker's binding: the admin API's migrations (serve/migrations.c). */
#ifndef THAW_BIND_D1_H
#define THAW_BIND_D1_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <uv.h>

#include "bind/sqlq.h"
#include "util/buf.h"

struct thaw_d1_ctl;

/* STATE/d1/<id escaped>.sqlite, the file of a d1_databases entry whose
 * database_id (else database_name) is id, of n bytes (util/idname.h). */
void thaw_d1_file(const char *state_dir, const char *id, size_t n, char *out,
                  size_t outlen);

/* Runs work with the connection of the database file at path: the one the
 * worker's bindings share when they have it open, else one opened for
 * the call; in the worker's turn (d1-lane.h), so it is ordered with the
 * worker's own queries. done runs on the loop after it. -1 with err
 * when the file cannot be opened: then neither runs. */
int thaw_d1_run(uv_loop_t *loop, const char *worker, const char *path,
                thaw_sqlq_work_cb work, thaw_sqlq_done_cb done, void *arg, char *err,
                size_t errlen);

/* A D1 call of a worker's binding (op "query", "batch" or "exec" and its
 * JSON args), checked on the loop: 0, or -1 with the exception's class
 * and message. */
int thaw_d1_check(const char *op, json_t *args, const char **errclass, char *why,
                  size_t n);
/* Runs a checked call on a pool thread with the database's connection:
 * 0 with the answer's JSON in out, or -1 with D1's message in err. How
 * the binding runs it, and the owner node for a call forwarded to it
 * (cluster/internal.c). */
int thaw_d1_work(sqlite3 *db, struct thaw_d1_ctl *ctl, const char *op, json_t *args,
                 struct thaw_buf *out, char *err, size_t errlen);

#endif
