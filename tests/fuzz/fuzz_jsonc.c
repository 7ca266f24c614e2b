/* libFuzzer target: JSONC to JSON and config validation on arbitrary text
 * (a user's wrangler.jsonc). Must never crash; the output has the input's
 * length, so error positions stay true. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = NULL, err[256];
    struct thaw_config cfg;

    if (thaw_jsonc_to_json((const char *)data, size, &out, err, sizeof(err)) == 0) {
        if (strlen(out) > size)
            abort();
        if (thaw_config_from_json(out, "wrangler.jsonc", "/nonexistent", &cfg, err,
                                  sizeof(err)) == 0)
            thaw_config_free(&cfg);
        free(out);
    }
    return 0;
}
