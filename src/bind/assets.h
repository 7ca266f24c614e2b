/* The ASSETS binding kind (assets.c), and how the HTTP side finds the
 * static assets of a version. */
#ifndef THAW_BIND_ASSETS_H
#define THAW_BIND_ASSETS_H

#include "bind/bind.h"

struct thaw_assets;

/* The assets a version's binding set opened, or NULL when its config has
 * no `assets` table. Borrowed: take a reference to keep them. */
struct thaw_assets *thaw_bind_assets_of(struct thaw_bindings *set);

#endif
