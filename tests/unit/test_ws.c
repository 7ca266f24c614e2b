/* src/ws/: the upgrade request's checks and the session's frames. The
 * client's frames come from wslay's own client side (masked, fragmented
 * as asked), so no frame is built by hand here; what the session writes
 * is read back by the same client. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <wslay/wslay.h>

#include "ipc/ipc-proto.h"
#include "ws/ws.h"

/* ---- offer.c ------------------------------------------------------------ */

static void hdr(struct thaw_ws_offer *o, const char *name, const char *value)
{
    thaw_ws_offer_header(o, name, strlen(name), value, strlen(value));
}

static void offer_checks(void **state)
{
    struct thaw_ws_offer o;
    const char *why = NULL;
    char accept[29];

    thaw_ws_offer_reset(&o);
    hdr(&o, "host", "x");
    assert_int_equal(thaw_ws_offer_check(&o, 1, 1, &why), 0); /* not an upgrade */

    thaw_ws_offer_reset(&o);
    hdr(&o, "upgrade", "WebSocket");
    hdr(&o, "connection", "keep-alive, Upgrade");
    hdr(&o, "sec-websocket-version", "13");
    assert_int_equal(thaw_ws_offer_check(&o, 1, 1, &why), 400);
    assert_non_null(strstr(why, "Sec-WebSocket-Key"));

    hdr(&o, "sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    assert_int_equal(thaw_ws_offer_check(&o, 1, 1, &why), 1);
    assert_int_equal(thaw_ws_offer_check(&o, 0, 1, &why), 400);    /* POST */
    assert_int_equal(thaw_ws_offer_check(&o, 1, 0, &why), 400);    /* HTTP/1.0 */
    /* RFC 6455 section 1.3's example */
    assert_int_equal(thaw_ws_offer_check(&o, 1, 1, &why), 1);
    thaw_ws_accept_value(&o, accept);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    hdr(&o, "sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="); /* twice */
    assert_int_equal(thaw_ws_offer_check(&o, 1, 1, &why), 400);

    thaw_ws_offer_reset(&o);
    hdr(&o, "upgrade", "websocket");
    hdr(&o, "connection", "upgrade");
    hdr(&o, "sec-websocket-key", "not base64 at all!!!!!==");
    hdr(&o, "sec-websocket-version", "13");
    assert_int_equal(thaw_ws_offer_check(&o, 1, 1, &why), 400);

    thaw_ws_offer_reset(&o);
    hdr(&o, "upgrade", "websocket");
    hdr(&o, "connection", "Upgrade");
    hdr(&o, "sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    hdr(&o, "sec-websocket-version", "8");
    assert_int_equal(thaw_ws_offer_check(&o, 1, 1, &why), 426);

    thaw_ws_offer_reset(&o);
    hdr(&o, "upgrade", "h2c");
    hdr(&o, "connection", "Upgrade");
    assert_int_equal(thaw_ws_offer_check(&o, 1, 1, &why), 0); /* another protocol */
}

/* ---- session.c, against wslay's client --------------------------------- */

struct peer {
    /* what the session wrote (frames for the client) */
    char out[1 << 17];
    size_t out_len, out_read;
    /* what the session told its owner */
    int messages, last_type;
    char last[256];
    size_t last_len;
    int closed, close_code, clean, done;
    char reason[128];
    /* the client: frames it writes land in `wire` */
    wslay_event_context_ptr client;
    char wire[1 << 17];
    size_t wire_len;
    int client_got_close;
    uint16_t client_close_code;
};

static void own_write(void *o, const void *p, size_t n)
{
    struct peer *t = o;
    assert_true(t->out_len + n <= sizeof(t->out));
    memcpy(t->out + t->out_len, p, n);
    t->out_len += n;
}

static void own_message(void *o, int type, const void *p, size_t n)
{
    struct peer *t = o;
    t->messages++;
    t->last_type = type;
    t->last_len = n < sizeof(t->last) ? n : sizeof(t->last);
    memcpy(t->last, p, t->last_len);
}

static void own_closed(void *o, int code, const char *reason, size_t n, int clean)
{
    struct peer *t = o;
    t->closed++;
    t->close_code = code;
    t->clean = clean;
    memcpy(t->reason, reason, n < 127 ? n : 127);
    t->reason[n < 127 ? n : 127] = '\0';
}

static void own_done(void *o)
{
    ((struct peer *)o)->done++;
}

static const struct thaw_ws_ops ops = {own_write, own_message, own_closed, own_done};

/* the client's side of wslay: reads what the session wrote */
static ssize_t c_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *u)
{
    struct peer *t = u;
    size_t k = t->out_len - t->out_read;

    if (!k) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (k > len)
        k = len;
    memcpy(buf, t->out + t->out_read, k);
    t->out_read += k;
    return (ssize_t)k;
}

static ssize_t c_send(wslay_event_context_ptr ctx, const uint8_t *d, size_t len, int flags, void *u)
{
    struct peer *t = u;
    memcpy(t->wire + t->wire_len, d, len);
    t->wire_len += len;
    return (ssize_t)len;
}

static int c_mask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *u)
{
    memset(buf, 0x5a, len);
    return 0;
}

static void c_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a, void *u)
{
    struct peer *t = u;
    if (a->opcode == WSLAY_CONNECTION_CLOSE) {
        t->client_got_close = 1;
        t->client_close_code = a->status_code;
    }
}

static const struct wslay_event_callbacks client_cbs = {
    c_recv, c_send, c_mask, NULL, NULL, NULL, c_msg,
};

static struct peer *peer_new(void)
{
    struct peer *t = calloc(1, sizeof(*t));
    assert_int_equal(wslay_event_context_client_init(&t->client, &client_cbs, t), 0);
    return t;
}

static void peer_free(struct peer *t)
{
    wslay_event_context_free(t->client);
    free(t);
}

/* the client sends what it queued; the session reads it; the client
 * reads what the session answered */
static void exchange(struct peer *t, struct thaw_ws *ws)
{
    t->wire_len = 0;
    wslay_event_send(t->client);
    thaw_ws_feed(ws, t->wire, t->wire_len);
    wslay_event_recv(t->client);
}

static void client_text(struct peer *t, const char *s)
{
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)s, strlen(s)};
    assert_int_equal(wslay_event_queue_msg(t->client, &m), 0);
}

static void messages_and_client_close(void **state)
{
    struct peer *t = peer_new();
    struct thaw_ws *ws = thaw_ws_new(&ops, t, 1024);

    client_text(t, "hello");
    exchange(t, ws);
    assert_int_equal(t->messages, 1);
    assert_int_equal(t->last_type, THAW_IPC_WS_TEXT);
    assert_memory_equal(t->last, "hello", 5);

    /* ping: wslay answers it; the owner sees nothing */
    {
        struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"p", 1};
        wslay_event_queue_msg(t->client, &ping);
        exchange(t, ws);
        assert_int_equal(t->messages, 1);
        assert_true(t->out_len > 0); /* the pong */
    }

    /* the worker answers */
    thaw_ws_send(ws, THAW_IPC_WS_BINARY, "\x00\x01", 2);
    assert_int_equal(t->done, 0);

    /* the client closes: the owner hears it once, clean; the session
     * answers the close frame and is over */
    wslay_event_queue_close(t->client, 4000, (const uint8_t *)"bye", 3);
    exchange(t, ws);
    assert_int_equal(t->closed, 1);
    assert_int_equal(t->close_code, 4000);
    assert_string_equal(t->reason, "bye");
    assert_int_equal(t->clean, 1);
    assert_int_equal(t->done, 1);
    assert_true(t->client_got_close);
    assert_int_equal(t->client_close_code, 4000);
    /* nothing after the end */
    thaw_ws_send(ws, THAW_IPC_WS_TEXT, "late", 4);
    assert_int_equal(t->done, 1);
    thaw_ws_free(ws);
    peer_free(t);
}

static void worker_closes_first(void **state)
{
    struct peer *t = peer_new();
    struct thaw_ws *ws = thaw_ws_new(&ops, t, 1024);

    thaw_ws_close(ws, 4001, "asked", 5);
    assert_true(thaw_ws_close_sent(ws));
    assert_int_equal(t->done, 0); /* waits for the client's answer */
    wslay_event_recv(t->client);
    assert_true(t->client_got_close);
    assert_int_equal(t->client_close_code, 4001);
    /* wslay's client answers the close by itself */
    exchange(t, ws);
    assert_int_equal(t->closed, 1);
    assert_int_equal(t->close_code, 4001);
    assert_int_equal(t->done, 1);
    thaw_ws_free(ws);
    peer_free(t);
}

static void over_the_limit_is_1009(void **state)
{
    struct peer *t = peer_new();
    struct thaw_ws *ws = thaw_ws_new(&ops, t, 16);

    client_text(t, "this message is longer than sixteen bytes");
    exchange(t, ws);
    assert_int_equal(t->messages, 0);
    assert_int_equal(t->closed, 1);
    assert_int_equal(t->close_code, 1009);
    assert_int_equal(t->clean, 0);
    assert_true(t->client_got_close);
    assert_int_equal(t->client_close_code, 1009);
    thaw_ws_free(ws);
    peer_free(t);
}

/* a message wslay's client reads from its source 5 bytes at a time: one
 * frame per part (text, then continuations) */
static const char parts_text[] = "one message in parts";
static size_t parts_off;

static ssize_t read_part(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                         const union wslay_event_msg_source *src, int *eof, void *u)
{
    size_t k = sizeof(parts_text) - 1 - parts_off;

    if (k > 5)
        k = 5;
    memcpy(buf, parts_text + parts_off, k);
    parts_off += k;
    *eof = parts_off == sizeof(parts_text) - 1;
    return (ssize_t)k;
}

static void fragments_make_one_message(void **state)
{
    struct peer *t = peer_new();
    struct thaw_ws *ws = thaw_ws_new(&ops, t, 1024);
    struct wslay_event_fragmented_msg m = {WSLAY_TEXT_FRAME, {.data = NULL}, read_part};

    parts_off = 0;
    assert_int_equal(wslay_event_queue_fragmented_msg(t->client, &m), 0);
    exchange(t, ws);
    /* four frames of 5 bytes, each with a 2-byte header and a 4-byte mask */
    assert_int_equal(t->wire_len, sizeof(parts_text) - 1 + 4 * 6);
    assert_int_equal(t->messages, 1);
    assert_int_equal(t->last_len, sizeof(parts_text) - 1);
    assert_memory_equal(t->last, parts_text, sizeof(parts_text) - 1);
    thaw_ws_free(ws);
    peer_free(t);
}

static void instance_lost_is_1011_without_waiting(void **state)
{
    struct peer *t = peer_new();
    struct thaw_ws *ws = thaw_ws_new(&ops, t, 1024);

    thaw_ws_fail(ws, 1011, "gone");
    assert_int_equal(t->done, 1);
    assert_int_equal(t->closed, 0); /* the worker's side is what went */
    wslay_event_recv(t->client);
    assert_int_equal(t->client_close_code, 1011);
    thaw_ws_free(ws);
    peer_free(t);
}

/* ---- session.c as the client (outbound sockets, bind/wsclient.c) ------- */

/* thaw's frames are masked (a server refuses unmasked ones); a masked
 * frame from the server is a protocol error (1002); unmasked ones, as
 * wslay's server side writes them, arrive as messages. */
static void client_session_masks_and_wants_unmasked(void **state)
{
    struct peer *t = peer_new(); /* its wslay client writes masked frames */
    struct thaw_ws *ws = thaw_ws_new_client(&ops, t, 1024);
    struct thaw_ws *server = thaw_ws_new(&ops, t, 1024);
    struct peer *u = peer_new();
    struct thaw_ws *ws2 = thaw_ws_new_client(&ops, u, 1024);

    thaw_ws_send(ws, THAW_IPC_WS_TEXT, "hi", 2);
    assert_true(t->out_len >= 8);
    assert_true((unsigned char)t->out[1] & 0x80); /* the MASK bit */
    /* a server session reads it: masked, as it must be */
    thaw_ws_feed(server, t->out, t->out_len);
    assert_int_equal(t->messages, 1);
    assert_memory_equal(t->last, "hi", 2);

    /* the server session's frames (unmasked) reach the client session */
    t->out_len = t->out_read = 0;
    thaw_ws_send(server, THAW_IPC_WS_BINARY, "\x01\x02\x03", 3);
    thaw_ws_feed(ws2, t->out, t->out_len);
    assert_int_equal(u->messages, 1);
    assert_int_equal(u->last_type, THAW_IPC_WS_BINARY);
    assert_int_equal(u->closed, 0);

    /* a masked frame (wslay's client) to the client session: 1002 */
    client_text(u, "masked");
    u->wire_len = 0;
    wslay_event_send(u->client);
    thaw_ws_feed(ws2, u->wire, u->wire_len);
    assert_int_equal(u->closed, 1);
    assert_int_equal(u->close_code, 1002);
    assert_int_equal(u->clean, 0);
    thaw_ws_free(ws);
    thaw_ws_free(server);
    thaw_ws_free(ws2);
    peer_free(t);
    peer_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(offer_checks),
        cmocka_unit_test(messages_and_client_close),
        cmocka_unit_test(worker_closes_first),
        cmocka_unit_test(over_the_limit_is_1009),
        cmocka_unit_test(fragments_make_one_message),
        cmocka_unit_test(instance_lost_is_1011_without_waiting),
        cmocka_unit_test(client_session_masks_and_wants_unmasked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
