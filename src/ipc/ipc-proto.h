/* The IPC frame format between the supervisor and its Python processes
 * (zygote, templates, instances). This header is the single definition;
 * python/thaw_runtime/ipc.py mirrors it and tests/unit/test_ipc.c pins it.
 *
 * Every frame is a fixed 12-byte header followed by `len` payload bytes:
 *
 *   u32 len      payload length, little-endian, at most THAW_IPC_MAX_PAYLOAD
 *   u8  type     enum thaw_ipc_type
 *   u8  flags    THAW_IPC_F_*
 *   u16 reserved must be 0 (room for a version bump)
 *   u32 stream   request id (0 for process-level messages)
 *
 * A payload that carries structured data is a sequence of fields, each a u32
 * little-endian length followed by that many bytes. Frames with
 * THAW_IPC_F_FD carry exactly one file descriptor as SCM_RIGHTS on their
 * first byte; the receiver queues fds in arrival order and hands the oldest
 * to each such frame.
 */
#ifndef THAW_IPC_PROTO_H
#define THAW_IPC_PROTO_H

#include <stdint.h>

#define THAW_IPC_HEADER_SIZE 12
/* Large enough for a request head with 64 KiB of headers and a config;
 * body chunks are cut to THAW_IPC_CHUNK so one stream cannot hog a channel. */
#define THAW_IPC_MAX_PAYLOAD (1024 * 1024)
#define THAW_IPC_CHUNK (64 * 1024)

enum thaw_ipc_type {
    /* supervisor -> instance, per stream */
    THAW_IPC_REQ_HEAD = 1,  /* fields: method, url, then name, value pairs;
                               names starting with ':' are thaw's, not the
                               client's: :client-ip, :client-port,
                               :http-version; :event "scheduled" with
                               :cron and :scheduled-time (ms) makes it a
                               cron trigger instead of a fetch */
    THAW_IPC_REQ_BODY = 2,  /* raw body bytes */
    THAW_IPC_REQ_END = 3,   /* request body complete */
    THAW_IPC_CANCEL = 4,    /* client went away, or thaw ended the request:
                               stop and forget the stream; answered with
                               RESP_ABORT (pool/tick.c: unanswered = stuck) */
    THAW_IPC_DO_WS = 5,     /* a Durable Object's WebSocket event, whole
                               (src/do/ws.c): fields kind ("text",
                               "binary", "close"), socket id, hib ("1" /
                               "0"), class, object id, the message, and
                               the object's name when it has one; answered
                               as a request (RESP_HEAD, RESP_END) */

    /* instance -> supervisor, per stream */
    THAW_IPC_RESP_HEAD = 16, /* fields: status (ascii), reason, name, value... */
    THAW_IPC_RESP_BODY = 17, /* raw body bytes */
    THAW_IPC_RESP_END = 18,  /* response complete */
    THAW_IPC_RESP_ABORT = 19, /* body failed after the head was sent; or
                                 the answer to a CANCEL */

    /* A WebSocket (src/ws/ws.h), after a RESP_HEAD of 101 on the same
     * stream: whole messages both ways (a message is at most the
     * ws_max_message limit, itself at most one frame). The stream ends
     * only by the supervisor's CANCEL (the client's connection is gone
     * or the close handshake is over), answered with RESP_ABORT as for
     * any stream. */
    THAW_IPC_WS_TEXT = 20,   /* either way: a text message, UTF-8 (the
                                supervisor validated the client's) */
    THAW_IPC_WS_BINARY = 21, /* either way: a binary message */
    THAW_IPC_WS_CLOSE = 22,  /* fields code (ascii), reason. sup ->
                                instance: the client closed (its close
                                frame; thaw answered it) or the socket
                                failed (1006, 1007, 1009, 1002...);
                                instance -> sup: the worker's close() */

    /* Binding calls (KV, D1, fetch, assets; src/bind/bind.h). stream is a
     * call id the instance picks, unrelated to request streams. A frame
     * with THAW_IPC_F_MORE is followed by BIND_DATA frames of the same
     * call and one BIND_END: that is how bodies over one frame travel. */
    THAW_IPC_BIND_CALL = 32,  /* instance -> sup: fields binding, op, args
                                 (JSON text) */
    THAW_IPC_BIND_REPLY = 33, /* sup -> instance: fields outcome ("ok" or
                                 an error class such as "TypeError"), then
                                 the result as JSON text (ok) or a message;
                                 with F_FD, the fd is the answer's too (a
                                 connected socket: bind/connect.c) */
    THAW_IPC_BIND_DATA = 34,  /* either way: raw body bytes of the call */
    THAW_IPC_BIND_END = 35,   /* either way: body complete; sup -> instance
                                 may carry one field, an error message */
    THAW_IPC_BIND_CANCEL = 36, /* instance -> sup: drop the call */
    THAW_IPC_BUSY = 37,       /* instance -> sup, stream 0: fields the count
                                 (ascii) of ctx.wait_until() tasks still
                                 running; while > 0 it is not idle */
    /* An outbound WebSocket (src/ws/client.c) is a binding call that stays
     * open: after its BIND_REPLY head (status 101, F_MORE), whole messages
     * travel both ways on the call id with the payloads of WS_TEXT,
     * WS_BINARY and WS_CLOSE; the supervisor ends the call with BIND_END
     * once the socket is over, and a BIND_CANCEL drops it (1001). */
    THAW_IPC_BIND_WS_TEXT = 38,
    THAW_IPC_BIND_WS_BINARY = 39,
    THAW_IPC_BIND_WS_CLOSE = 40,

    /* process control, stream 0 unless stated */
    THAW_IPC_TOML = 48,     /* sup -> zygote, stream=cookie: fields path */
    THAW_IPC_TOML_OK = 49,  /* zygote -> sup: fields json text */
    THAW_IPC_TOML_ERR = 50, /* zygote -> sup: fields message */
    THAW_IPC_BUILD = 51,    /* sup -> zygote, F_FD = template channel;
                               fields: version, name, dir, main, config json */
    THAW_IPC_BUILT = 52,    /* template -> sup on its channel: fields module */
    THAW_IPC_BUILD_ERR = 53, /* template -> sup: fields message (traceback) */
    THAW_IPC_SPAWN = 54,    /* sup -> template, F_FD = instance channel,
                               stream = instance id */
    THAW_IPC_SPAWNED = 55,  /* forker -> sup, F_FD = pidfd of the child,
                               stream = instance id (0 for a template);
                               fields: pid (ascii) */
    THAW_IPC_SPAWN_ERR = 56, /* forker -> sup: fields message */
    THAW_IPC_HELLO = 57,    /* zygote -> sup, once ready: fields the top-level
                               modules its preload added (none when plain) */
    THAW_IPC_PREFAULT = 58, /* sup -> template: raw payload, (start, length)
                               pairs of little-endian uint64: pages its
                               instances write early (src/pool/prefault.h);
                               each later instance populates them first */
    THAW_IPC_WARM = 59,     /* instance -> sup, then sup -> template, once
                               per version: fields "asgi", the name of the
                               worker module's global that asgi.fetch
                               served; later instances run that app's
                               lifespan startup before their first request */
    THAW_IPC_STDIO = 60,    /* sup -> zygote, F_FD = the write end of the
                               version's output pipe (src/pool/output.h),
                               stream = the cookie of the BUILD that follows:
                               the template's fd 1 and 2 */
};

#define THAW_IPC_F_FD 0x01   /* one fd rides on this frame */
#define THAW_IPC_F_MORE 0x02 /* BIND_CALL/BIND_REPLY: a body follows */

#endif
