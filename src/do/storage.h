/* An object's storage (`ctx.storage`): one SQLite file per object,
 * STATE/do/<namespace key>/<id>.sqlite, reached through the internal
 * binding ":do" (the sandbox gives instances no filesystem). The KV API is
 * a table `_cf_KV` the SDK reads and writes with SQL
 * (python/workers/_durable_storage.py), so two ops do everything:
 *
 *   sql   {ns, id, sql, params}     -> {columns, rows, meta}  (d1-exec.h)
 *   batch {ns, id, statements}      -> [result, ...] in one transaction
 *   alarm {ns, id, at, if_at}       -> null: the object's alarm (table
 *         `_cf_ALARM`) set to `at` (ms since the epoch), or deleted (at
 *         null; only if it is `if_at`, when given); alarms.h learns it
 *
 * each committed (WAL, synchronous=FULL) before the answer leaves.
 * Internal to src/do/ (bind.c). */
#ifndef THAW_DO_STORAGE_H
#define THAW_DO_STORAGE_H

#include "bind/bind.h"

struct thaw_do_file;

/* One version's storage binding. It keeps the files it opened for the
 * next call (at most THAW_DO_MAX_OPEN), and closes them with the version's
 * bindings: a deleted worker's files are not held open for the next worker
 * of that name. */
struct thaw_do_store {
    uv_loop_t *loop;
    char *state_dir;
    char *worker;
    struct thaw_worker *w;  /* whose alarms (alarms.h) */
    struct thaw_do_file *files;
    int n_files;
    uint64_t use_clock;
};

#define THAW_DO_MAX_OPEN 64

void thaw__do_storage_call(struct thaw_do_store *s, struct thaw_bind_call *call);
/* Closes the files (the set is released: no call is in flight). */
void thaw__do_storage_close(struct thaw_do_store *s);

#endif
