/* libFuzzer target for the cron parser: any input is refused with a
 * message or parsed into an expression whose next fire time matches it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct thaw_cron c;
    char expr[300], err[256];
    int64_t t, from[] = {0, 951782400 /* 2000-02-29 */, 4102444799 /* 2099-12-31 */};
    size_t i;

    if (size >= sizeof(expr))
        return 0;
    memcpy(expr, data, size);
    expr[size] = '\0';
    err[0] = '\0';
    if (thaw_cron_parse(expr, &c, err, sizeof(err))) {
        if (!err[0])
            abort(); /* every refusal says why */
        return 0;
    }
    for (i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
        t = thaw_cron_next(&c, from[i]);
        if (t < 0 || t <= from[i] || t % 60 || !thaw_cron_matches(&c, t))
            abort();
    }
    return 0;
}
