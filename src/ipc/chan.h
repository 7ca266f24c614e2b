/* A framed IPC channel over one end of a Unix socketpair, on the libuv
 * loop. Frames queued with thaw_chan_send() during one loop iteration go
 * out together, written at the end of that iteration (no wait for the
 * socket to be reported writable unless it was full); every complete frame
 * of one read is delivered before the next read. Frames may carry one fd. */
#ifndef THAW_IPC_CHAN_H
#define THAW_IPC_CHAN_H

#include <uv.h>

#include "ipc/codec.h"

struct thaw_chan;

/* fd is -1, or a descriptor that the callback takes ownership of. */
typedef void (*thaw_chan_frame_cb)(struct thaw_chan *c,
                                   const struct thaw_ipc_frame *f, int fd,
                                   void *data);
/* The peer closed (err 0) or the channel failed (negative errno or a
 * THAW_IPC_E_*). Called once; the channel is closed afterwards. */
typedef void (*thaw_chan_close_cb)(struct thaw_chan *c, int err, void *data);

/* Takes ownership of fd (made non-blocking here). */
int thaw_chan_open(uv_loop_t *loop, int fd, thaw_chan_frame_cb on_frame,
                   thaw_chan_close_cb on_close, void *data,
                   struct thaw_chan **out);
/* Queues a whole encoded frame (copied). fd_to_pass is -1 or an fd the
 * channel takes ownership of and closes once sent. Returns 0 or -EPIPE
 * (channel closed) / -ENOBUFS (queue over its maximum). */
int thaw_chan_send(struct thaw_chan *c, const void *frame, size_t len,
                   int fd_to_pass);
/* Encodes and queues a frame whose payload is `payload` (raw bytes),
 * straight into the queue: no buffer of its own. */
int thaw_chan_send_frame(struct thaw_chan *c, uint8_t type, uint32_t stream,
                         const void *payload, size_t n);
/* Encodes and queues a frame whose payload is the given fields. */
int thaw_chan_send_fields(struct thaw_chan *c, uint8_t type, uint32_t stream,
                          int fd_to_pass, int nfields, const char **fields);
/* Bytes queued and not yet written: the caller's backpressure signal. */
size_t thaw_chan_queued(const struct thaw_chan *c);
/* 1 when what is queued leaves at the end of this loop iteration (frames
 * queued during it, the socket not full): the peer has not been woken for
 * them yet. */
int thaw_chan_flush_pending(const struct thaw_chan *c);
void thaw_chan_read_stop(struct thaw_chan *c);
void thaw_chan_read_start(struct thaw_chan *c);
/* Called once the queue, after passing THAW_CHAN_HIGH, is back under
 * THAW_CHAN_LOW: the caller may produce again. */
#define THAW_CHAN_HIGH (1024 * 1024)
#define THAW_CHAN_LOW (256 * 1024)
typedef void (*thaw_chan_drain_cb)(struct thaw_chan *c, void *data);
void thaw_chan_on_drain(struct thaw_chan *c, thaw_chan_drain_cb cb);
/* Closes without calling on_close; frees the channel later. */
void thaw_chan_close(struct thaw_chan *c);
int thaw_chan_fd(const struct thaw_chan *c);

#endif
