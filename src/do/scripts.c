/* The resolver of bindings to another worker's class (scripts.h). */
#include <stdio.h>

#include "do/scripts.h"

static thaw_do_resolve_fn resolver;
static void *resolver_data;

void thaw_do_set_resolver(thaw_do_resolve_fn fn, void *data)
{
    resolver = fn;
    resolver_data = data;
}

int thaw__do_scripts_on(void)
{
    return resolver != NULL;
}

int thaw__do_resolve(const char *from, const char *script, const char *cls,
                     struct thaw_do_target *out, char *err, size_t errlen)
{
    if (!resolver) {
        snprintf(err, errlen, "a class of another worker (%s) is run only by thaw serve",
                 script);
        return -1;
    }
    return resolver(resolver_data, from, script, cls, out, err, errlen);
}
