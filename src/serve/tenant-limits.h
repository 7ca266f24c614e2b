/* thaw serve: a worker's limits held to the operator's ceilings
 * (config/limits.h, ceilings.c). */
#ifndef THAW_SERVE_TENANT_LIMITS_H
#define THAW_SERVE_TENANT_LIMITS_H

#include <stddef.h>

#include "config/config.h"
#include "config/limits.h"
#include "serve/tenant.h"

struct thaw_fleet;

/* The tenant check (tenant.c CHECKS[]): 400 when the config sets a limit
 * over this server's ceiling (or out of range), naming the file, the key
 * and both numbers. */
int thaw_tenant_limits(const struct thaw_tenant_ctx *c, char *err, size_t errlen);

/* A worker's limits under serve: the server's defaults, lowered by its
 * config; the server's own limits (header and body size, header and
 * keep-alive timeouts) stay the server's. -1 with a message when the
 * config goes over a ceiling. */
int thaw_serve_worker_limits(struct thaw_fleet *f, const struct thaw_config *cfg,
                             struct thaw_limits *lim, char *err, size_t errlen);

/* At start: the operator's `[limits]` table is valid (known keys, values
 * in range). -1 with a message naming the file and key. */
int thaw_serve_limits_validate(struct thaw_fleet *f, char *err, size_t errlen);

#endif
