/* libFuzzer target: the IPC decoder and field walker on arbitrary bytes,
 * as a broken or hostile instance could send them. Every frame decoded
 * must lie inside the input; every field inside its frame. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ipc/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;

    while (off < size) {
        struct thaw_ipc_frame f;
        struct thaw_ipc_fields it;
        const uint8_t *p;
        size_t n;
        int used = thaw_ipc_decode(data + off, size - off, &f);

        if (used <= 0)
            break;
        if ((size_t)used > size - off || f.payload + f.len > data + size)
            abort();
        thaw_ipc_fields_init(&it, &f);
        while (thaw_ipc_next_field(&it, &p, &n) == 1)
            if (p < f.payload || p + n > f.payload + f.len)
                abort();
        off += (size_t)used;
    }
    return 0;
}
