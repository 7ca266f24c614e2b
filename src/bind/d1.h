/* The D1 binding's files and connections, for callers other than a
 * worker's binding: the admin API's migrations (serve/migrations.c). */
#ifndef THAW_BIND_D1_H
#define THAW_BIND_D1_H

#include <stddef.h>
#include <uv.h>

#include "bind/sqlq.h"

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

#endif
