/* The payload of a WS_CLOSE (and BIND_WS_CLOSE) frame between the
 * supervisor and an instance: fields code (ASCII), reason, and from the
 * supervisor whether the close was clean ("1"/"0"); ipc-proto.h. Both the
 * public port's sockets (server/ws-conn.c) and outbound ones
 * (bind/wsclient.c) speak it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/codec.h"
#include "ws/ws.h"

int thaw_ws_close_payload(struct thaw_buf *b, int code, const char *reason, size_t n,
                          int clean)
{
    char num[8];

    snprintf(num, sizeof(num), "%d", code);
    if (thaw_ipc_put_str(b, num) || thaw_ipc_put_field(b, reason, n) ||
        thaw_ipc_put_str(b, clean ? "1" : "0"))
        return -1;
    return 0;
}

void thaw_ws_close_parse(const void *p, size_t n, int *code, const char **reason,
                         size_t *rlen)
{
    struct thaw_ipc_fields it = {p, n};
    const uint8_t *f;
    size_t fl;
    char num[8];

    *code = 1000;
    if (thaw_ipc_next_field(&it, &f, &fl) == 1 && fl < sizeof(num)) {
        memcpy(num, f, fl);
        num[fl] = '\0';
        *code = atoi(num);
    }
    if (thaw_ipc_next_field(&it, &f, &fl) != 1)
        f = (const uint8_t *)"", fl = 0;
    *reason = (const char *)f;
    *rlen = fl;
}
