/* One SQLite database behind a queue: jobs run one at a time, in order, on
 * the libuv threadpool, so a commit's fsync never stalls the event loop
 * and one connection is never used by two threads at once. KV's SQLite
 * backend and D1 both sit on it.
 *
 * The database is opened in WAL mode with synchronous=FULL: when a job's
 * transaction committed, its data is on disk (a put that returned survives
 * a SIGKILL of the supervisor or a power cut). */
#ifndef THAW_SQLQ_H
#define THAW_SQLQ_H

#include <sqlite3.h>
#include <stddef.h>
#include <uv.h>

struct thaw_sqlq;

/* Runs on a pool thread with the connection. */
typedef void (*thaw_sqlq_work_cb)(sqlite3 *db, void *arg);
/* Runs on the loop afterwards. */
typedef void (*thaw_sqlq_done_cb)(void *arg);

/* Opens (creating it and its directory) the database at path. Returns
 * NULL with a message in err. */
struct thaw_sqlq *thaw_sqlq_open(uv_loop_t *loop, const char *path, char *err,
                                 size_t errlen);
void thaw_sqlq_submit(struct thaw_sqlq *q, thaw_sqlq_work_cb work,
                      thaw_sqlq_done_cb done, void *arg);
/* Closes once the queued jobs ran (their done callbacks included). */
void thaw_sqlq_close(struct thaw_sqlq *q);
const char *thaw_sqlq_path(const struct thaw_sqlq *q);

#endif
