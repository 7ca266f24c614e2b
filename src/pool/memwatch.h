/* A version's memory cgroup, watched (sandbox/cgroup.h): the kernel says
 * when the group's OOM killer ran, and the log says so at once, though
 * nothing of the worker is running and no timer of its is armed (a child
 * process of an instance killed in the background, say). Without a watch
 * (no cgroup, or the kernel refused the registration) the count is read at
 * the worker's wakeups instead (pool/tick.c).
 *
 * States: none -> WATCHING (a uv_poll_t on the kernel's fd) -> CLOSING
 * (uv_close; the fd is closed in its callback) -> freed. The version owns
 * it: the poll holds a reference on the version until its uv_close
 * completes, and it is closed in the version's one teardown,
 * version_release (src/pool/version.c). */
#ifndef THAW_POOL_MEMWATCH_H
#define THAW_POOL_MEMWATCH_H

#include "pool/pool.h"

/* v's memory cgroup exists: watch it (no-op without one). */
void thaw__memwatch_start(struct thaw_version *v);
/* v is released: the watch closes; its reference on v goes when it has. */
void thaw__memwatch_close(struct thaw_version *v);

#endif
