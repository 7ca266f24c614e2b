/* A build's end, and its deadline. The worker's top level may run for
 * build_timeout_ms of wall clock and cpu_ms of CPU (config/limits.h; at
 * least 1000 ms of CPU);
 * past either, thaw sends the template THAW_BUILD_STOP_SIGNAL, which the
 * template (python/thaw_runtime/template.py) answers with a BUILD_ERR of
 * kind "stopped" naming the line its top level was at, and exits. A
 * template that does not answer within a grace period is killed, and the
 * error says no line is known. Either way the build fails as
 * THAW_FAULT_TIMEOUT, the template is killed, and what the worker served
 * before keeps serving (thaw serve).
 *
 * A deadline's states: ARMED (its timer runs to the next wall or CPU
 * limit) -> STOPPING (signal sent, grace timer runs) -> ENDED (the build
 * ended: the timer is stopped) -> closed. The building version owns it:
 * the timer holds a reference on the version from the build's start until
 * its uv_close completes, and is closed in the version's one teardown,
 * version_release (src/pool/version.c). */
#ifndef THAW_POOL_BUILD_DEADLINE_H
#define THAW_POOL_BUILD_DEADLINE_H

#include <signal.h>

#include "ipc/chan.h"
#include "pool/pool.h"

#define THAW_BUILD_STOP_SIGNAL SIGUSR2

/* The build of v was asked for: its deadline starts now. */
void thaw__build_deadline_start(struct thaw_version *v);
/* The build ended (thaw__version_built): the timer stops (no-op without one). */
void thaw__build_deadline_stop(struct thaw_version *v);
/* v is released: the timer is closed; its reference on v goes when it is. */
void thaw__build_deadline_close(struct thaw_version *v);
/* The template built or went away while v was building: 0 when the
 * deadline had not fired (go on as usual), 1 when it had, and the build
 * was failed with the deadline's message. */
int thaw__build_deadline_end(struct thaw_version *v);
/* The template's BUILD_ERR while v is building: fields message, kind
 * ("worker", "config", "internal", "stopped") and, for "stopped", where
 * the top level was. Fails the build with the fault its kind names. */
void thaw__build_err(struct thaw_version *v, const struct thaw_ipc_frame *f);

#endif
