/* thaw serve: bindings to another worker's Durable Object class
 * (`script_name`). A tenant's config naming a worker is not enough: the
 * operator grants it in [durable_objects] of serve's --config,
 *
 *   [durable_objects]
 *   lobby = ["chat"]    # worker lobby may bind the classes of worker chat
 *
 * checked at deploy (403 without it) and again at every call (a grant
 * taken away and serve restarted refuses the worker's version then). */
#ifndef THAW_SERVE_DO_SCRIPTS_H
#define THAW_SERVE_DO_SCRIPTS_H

#include <stddef.h>

#include "serve/tenant.h"

struct thaw_fleet;

/* Checks the operator's [durable_objects] table and lets src/do resolve
 * such bindings through the fleet (do/scripts.h). Before any config
 * loads. 0, or -1 with a message naming the file and the key. */
int thaw_do_scripts_open(struct thaw_fleet *f, char *err, size_t errlen);

/* The deploy's check (tenant.c): 400 for a script_name that is not a
 * worker name, 403 for one not granted. */
int thaw_tenant_do_scripts(const struct thaw_tenant_ctx *c, char *err, size_t errlen);

#endif
