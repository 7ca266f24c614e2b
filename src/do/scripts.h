/* Bindings to another worker's Durable Object class (`script_name`).
 * Only thaw serve runs more than one worker: it sets the resolver when it
 * starts, and without one (thaw dev, the unit tests) such a binding is a
 * config error (config.c). Which worker may bind which is operator policy
 * ([durable_objects] of serve's --config, src/serve/do-scripts.c), never
 * the tenant's config alone. */
#ifndef THAW_DO_SCRIPTS_H
#define THAW_DO_SCRIPTS_H

#include <stddef.h>

struct thaw_worker;

/* Where a call to class `cls` of worker `script` goes, for a binding of
 * worker `from`: the target's worker and the class's namespace key. */
struct thaw_do_target {
    struct thaw_worker *w;
    char key[65];
    int sqlite;
};

/* 0 with *out filled, or -1 with err saying why not (not granted, not
 * deployed, no such class): the caller's error at call time. */
typedef int (*thaw_do_resolve_fn)(void *data, const char *from, const char *script,
                                  const char *cls, struct thaw_do_target *out, char *err,
                                  size_t errlen);

/* thaw serve, once, before any worker's config loads. */
void thaw_do_set_resolver(thaw_do_resolve_fn fn, void *data);
/* Whether another worker's class can be bound at all (a resolver is set). */
int thaw__do_scripts_on(void);
/* The resolver's answer; -1 and a message when there is none. */
int thaw__do_resolve(const char *from, const char *script, const char *cls,
                     struct thaw_do_target *out, char *err, size_t errlen);

#endif
