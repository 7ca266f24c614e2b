#include <string.h>

#include "ipc/codec.h"

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static int known_type(uint8_t t)
{
    return (t >= THAW_IPC_REQ_HEAD && t <= THAW_IPC_CANCEL) ||
           (t >= THAW_IPC_RESP_HEAD && t <= THAW_IPC_WS_CLOSE) ||
           (t >= THAW_IPC_BIND_CALL && t <= THAW_IPC_BIND_WS_CLOSE) ||
           (t >= THAW_IPC_TOML && t <= THAW_IPC_WARM);
}

int thaw_ipc_decode(const uint8_t *p, size_t n, struct thaw_ipc_frame *f)
{
    uint32_t len;

    if (n < THAW_IPC_HEADER_SIZE)
        return 0;
    len = get_u32(p);
    if (len > THAW_IPC_MAX_PAYLOAD)
        return THAW_IPC_E_TOOBIG;
    if (p[6] != 0 || p[7] != 0 || !known_type(p[4]) ||
        (p[5] & ~(THAW_IPC_F_FD | THAW_IPC_F_MORE)) != 0)
        return THAW_IPC_E_BADHDR;
    if (n - THAW_IPC_HEADER_SIZE < len)
        return 0;
    f->type = p[4];
    f->flags = p[5];
    f->stream = get_u32(p + 8);
    f->len = len;
    f->payload = p + THAW_IPC_HEADER_SIZE;
    return (int)(THAW_IPC_HEADER_SIZE + len);
}

int thaw_ipc_begin(struct thaw_buf *b, uint8_t type, uint8_t flags,
                   uint32_t stream, size_t *mark)
{
    uint8_t h[THAW_IPC_HEADER_SIZE] = {0};
    int rc;

    h[4] = type;
    h[5] = flags;
    put_u32(h + 8, stream);
    *mark = b->len;
    rc = thaw_buf_append(b, h, sizeof(h));
    return rc;
}

int thaw_ipc_put_raw(struct thaw_buf *b, const void *p, size_t n)
{
    return thaw_buf_append(b, p, n);
}

int thaw_ipc_put_field(struct thaw_buf *b, const void *p, size_t n)
{
    uint8_t l[4];
    int rc;

    if (n > THAW_IPC_MAX_PAYLOAD)
        return THAW_IPC_E_TOOBIG;
    put_u32(l, (uint32_t)n);
    if ((rc = thaw_buf_append(b, l, 4)))
        return rc;
    return thaw_buf_append(b, p, n);
}

int thaw_ipc_put_field3(struct thaw_buf *b, const void *a, size_t an, const void *b2,
                        size_t bn, const void *c, size_t cn)
{
    uint8_t l[4];
    size_t n = an + bn + cn;
    int rc;

    if (n > THAW_IPC_MAX_PAYLOAD)
        return THAW_IPC_E_TOOBIG;
    put_u32(l, (uint32_t)n);
    if ((rc = thaw_buf_reserve(b, 4 + n)))
        return rc;
    memcpy(b->data + b->len, l, 4);
    memcpy(b->data + b->len + 4, a, an);
    memcpy(b->data + b->len + 4 + an, b2, bn);
    memcpy(b->data + b->len + 4 + an + bn, c, cn);
    b->len += 4 + n;
    return 0;
}

int thaw_ipc_put_str(struct thaw_buf *b, const char *s)
{
    return thaw_ipc_put_field(b, s, s ? strlen(s) : 0);
}

int thaw_ipc_end(struct thaw_buf *b, size_t mark)
{
    size_t len = b->len - mark - THAW_IPC_HEADER_SIZE;

    if (len > THAW_IPC_MAX_PAYLOAD) {
        b->len = mark; /* drop the partial frame */
        return THAW_IPC_E_TOOBIG;
    }
    put_u32((uint8_t *)b->data + mark, (uint32_t)len);
    return 0;
}

void thaw_ipc_fields_init(struct thaw_ipc_fields *it,
                          const struct thaw_ipc_frame *f)
{
    it->p = f->payload;
    it->left = f->len;
}

int thaw_ipc_next_field(struct thaw_ipc_fields *it, const uint8_t **out,
                        size_t *len)
{
    uint32_t n;

    if (it->left == 0)
        return 0;
    if (it->left < 4)
        return -1;
    n = get_u32(it->p);
    if (n > it->left - 4)
        return -1;
    *out = it->p + 4;
    *len = n;
    it->p += 4 + n;
    it->left -= 4 + n;
    return 1;
}
