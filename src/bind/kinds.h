/* The binding kinds thaw has: one line per kind in each list below, and
 * one src/bind/<kind>.c defining it. */
#ifndef THAW_BIND_KINDS_H
#define THAW_BIND_KINDS_H

#include "bind/bind.h"

extern const struct thaw_bind_kind thaw_bind_kv;
extern const struct thaw_bind_kind thaw_bind_d1;
extern const struct thaw_bind_kind thaw_bind_assets;
extern const struct thaw_bind_kind thaw_bind_fetch;
extern const struct thaw_bind_kind thaw_bind_connect;
extern const struct thaw_bind_kind thaw_bind_do; /* src/do/bind.c */
extern const struct thaw_bind_kind thaw_bind_websocket;

/* THAW_BIND_KINDS is a list of `&thaw_bind_<kind>,` entries. */
#define THAW_BIND_KINDS \
    &thaw_bind_kv, \
    &thaw_bind_d1, \
    &thaw_bind_assets, \
    &thaw_bind_fetch, \
    &thaw_bind_connect, \
    &thaw_bind_do, \
    &thaw_bind_websocket,

#endif
