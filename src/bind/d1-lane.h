/* A worker's D1 jobs take turns on the thread pool. Every worker's D1 and
 * KV work shares libuv's pool (4 threads); a worker that ran a 30-second
 * query on each of four databases would hold all of them, and every other
 * worker's storage would wait. So each worker has a lane, shared by its
 * versions: at most one job of a lane is on the pool at a time, the others
 * wait in order. Jobs of one database still run in order (bind/sqlq.h). */
#ifndef THAW_D1_LANE_H
#define THAW_D1_LANE_H

#include "bind/sqlq.h"

struct thaw_d1_lane;

/* The lane of worker `name` (made on first use, shared, counted). NULL
 * when out of memory. */
struct thaw_d1_lane *thaw_d1_lane_get(const char *name);
void thaw_d1_lane_put(struct thaw_d1_lane *l);
/* Runs work on q's connection when it is the lane's turn; done runs on the
 * loop after it, as with thaw_sqlq_submit. */
void thaw_d1_lane_submit(struct thaw_d1_lane *l, struct thaw_sqlq *q,
                         thaw_sqlq_work_cb work, thaw_sqlq_done_cb done, void *arg);

#endif
