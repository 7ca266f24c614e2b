/* The binding kinds thaw has: one line per kind in each list below, and
 * one src/bind/<kind>.c defining it. */
#ifndef THAW_BIND_KINDS_H
#define THAW_BIND_KINDS_H

#include "bind/bind.h"

/* THAW_BIND_KINDS is a list of `&thaw_bind_<kind>,` entries. */
extern const struct thaw_bind_kind thaw_bind_fetch;

#define THAW_BIND_KINDS &thaw_bind_fetch,

#endif
