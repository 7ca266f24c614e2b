/* Encode and decode the frames of ipc-proto.h. Pure functions over
 * buffers, no I/O: unit-tested and fuzzed on their own. */
#ifndef THAW_IPC_CODEC_H
#define THAW_IPC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "ipc/ipc-proto.h"
#include "util/buf.h"

#define THAW_IPC_E_TOOBIG (-7101)  /* len over THAW_IPC_MAX_PAYLOAD */
#define THAW_IPC_E_BADHDR (-7102)  /* reserved bits set or unknown type */

struct thaw_ipc_frame {
    uint8_t type;
    uint8_t flags;
    uint32_t stream;
    uint32_t len;
    const uint8_t *payload; /* points into the decoded buffer */
};

/* Decodes one frame from p[0..n). Returns the bytes it spans (> 0), 0 when
 * more bytes are needed, or a THAW_IPC_E_* error (the channel is then
 * unusable: the peer is broken or hostile). */
int thaw_ipc_decode(const uint8_t *p, size_t n, struct thaw_ipc_frame *f);

/* Frame building into a thaw_buf: begin reserves the header, fields go in
 * with put_field and put_raw, end patches the length. Returns 0 or a buf
 * error; a frame over THAW_IPC_MAX_PAYLOAD is THAW_IPC_E_TOOBIG. */
int thaw_ipc_begin(struct thaw_buf *b, uint8_t type, uint8_t flags,
                   uint32_t stream, size_t *mark);
int thaw_ipc_put_field(struct thaw_buf *b, const void *p, size_t n);
int thaw_ipc_put_str(struct thaw_buf *b, const char *s);
/* One field, the concatenation of a (an bytes), b2 and c: a URL from its
 * scheme, host and target, with no buffer of its own. */
int thaw_ipc_put_field3(struct thaw_buf *b, const void *a, size_t an, const void *b2,
                        size_t bn, const void *c, size_t cn);
int thaw_ipc_put_raw(struct thaw_buf *b, const void *p, size_t n);
int thaw_ipc_end(struct thaw_buf *b, size_t mark);

/* Walks the fields of a payload. */
struct thaw_ipc_fields {
    const uint8_t *p;
    size_t left;
};

void thaw_ipc_fields_init(struct thaw_ipc_fields *it,
                          const struct thaw_ipc_frame *f);
/* 1 and sets *out and *len for the next field, 0 at the end, -1 when the
 * payload is malformed (a length that overruns it). */
int thaw_ipc_next_field(struct thaw_ipc_fields *it, const uint8_t **out,
                        size_t *len);

#endif
