/* libFuzzer target for the deploy bundle parser: any input is either
 * walked to its end or refused with a message, never read past. */
#include <stddef.h>
#include <stdint.h>

#include "serve/bundle.h"

static int count(void *data, const struct thaw_bundle_entry *e)
{
    /* every entry the walk hands out is inside the input and safe */
    if (thaw_bundle_path_ok(e->path, e->path_len))
        __builtin_trap();
    (*(size_t *)data) += e->size;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    size_t total = 0;

    thaw_bundle_walk(data, size, count, &total, err, sizeof(err));
    if (total > size)
        __builtin_trap();
    return 0;
}
