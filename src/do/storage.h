/* An object's storage (`ctx.storage`): one SQLite file per object,
 * STATE/do/<namespace key>/<id>.sqlite, reached through the internal
 * binding ":do" (the sandbox gives instances no filesystem). The KV API is
 * a table `_cf_KV` the SDK reads and writes with SQL
 * (python/workers/_durable_storage.py), so two ops do everything:
 *
 *   sql   {ns, id, sql, params}     -> {columns, rows, meta}  (d1-exec.h)
 *   batch {ns, id, statements}      -> [result, ...] in one transaction
 *
 * each committed (WAL, synchronous=FULL) before the answer leaves.
 * Internal to src/do/ (bind.c). */
#ifndef THAW_DO_STORAGE_H
#define THAW_DO_STORAGE_H

#include "bind/bind.h"

struct thaw_do_store {
    uv_loop_t *loop;
    char *state_dir;
    char *worker;
};

void thaw__do_storage_call(struct thaw_do_store *s, struct thaw_bind_call *call);

#endif
