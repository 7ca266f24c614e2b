/* The IPC frame codec: what one side encodes, the other decodes; partial
 * input waits; oversized or malformed headers are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ipc/codec.h"

static void roundtrip_fields(void **state)
{
    struct thaw_buf b;
    struct thaw_ipc_frame f;
    struct thaw_ipc_fields it;
    const uint8_t *p;
    size_t mark, n;
    int used;

    thaw_buf_init(&b, 1 << 20);
    assert_int_equal(thaw_ipc_begin(&b, THAW_IPC_REQ_HEAD, 0, 77, &mark), 0);
    assert_int_equal(thaw_ipc_put_str(&b, "GET"), 0);
    assert_int_equal(thaw_ipc_put_str(&b, ""), 0);
    assert_int_equal(thaw_ipc_put_field(&b, "a\0b", 3), 0);
    assert_int_equal(thaw_ipc_end(&b, mark), 0);

    used = thaw_ipc_decode((uint8_t *)b.data, b.len, &f);
    assert_int_equal(used, (int)b.len);
    assert_int_equal(f.type, THAW_IPC_REQ_HEAD);
    assert_int_equal(f.stream, 77);
    assert_int_equal(f.len, b.len - THAW_IPC_HEADER_SIZE);

    thaw_ipc_fields_init(&it, &f);
    assert_int_equal(thaw_ipc_next_field(&it, &p, &n), 1);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "GET", 3);
    assert_int_equal(thaw_ipc_next_field(&it, &p, &n), 1);
    assert_int_equal(n, 0);
    assert_int_equal(thaw_ipc_next_field(&it, &p, &n), 1);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "a\0b", 3);
    assert_int_equal(thaw_ipc_next_field(&it, &p, &n), 0);
    thaw_buf_free(&b);
}

/* a field made of three pieces (the supervisor's URL: scheme, host,
 * target) reads back as one; over the maximum it is refused whole */
static void field_from_three_pieces(void **state)
{
    struct thaw_buf b;
    struct thaw_ipc_frame f;
    struct thaw_ipc_fields it;
    const uint8_t *p;
    size_t mark, n;

    thaw_buf_init(&b, 1 << 20);
    assert_int_equal(thaw_ipc_begin(&b, THAW_IPC_REQ_HEAD, 0, 5, &mark), 0);
    assert_int_equal(thaw_ipc_put_field3(&b, "http://", 7, "h:1", 3, "/a?b", 4), 0);
    assert_int_equal(thaw_ipc_put_field3(&b, "", 0, "", 0, "", 0), 0);
    assert_int_equal(thaw_ipc_end(&b, mark), 0);
    assert_int_equal(thaw_ipc_decode((uint8_t *)b.data, b.len, &f), (int)b.len);
    thaw_ipc_fields_init(&it, &f);
    assert_int_equal(thaw_ipc_next_field(&it, &p, &n), 1);
    assert_int_equal(n, 14);
    assert_memory_equal(p, "http://h:1/a?b", 14);
    assert_int_equal(thaw_ipc_next_field(&it, &p, &n), 1);
    assert_int_equal(n, 0);
    assert_int_equal(thaw_ipc_next_field(&it, &p, &n), 0);
    n = b.len;
    assert_int_equal(thaw_ipc_put_field3(&b, "x", 1, "y", 1, "z", THAW_IPC_MAX_PAYLOAD),
                     THAW_IPC_E_TOOBIG);
    assert_int_equal(b.len, n);
    thaw_buf_free(&b);
}

static void wire_layout_is_little_endian(void **state)
{
    /* pinned: python/thaw_runtime/ipc.py packs the same bytes */
    static const uint8_t want[] = {3, 0, 0, 0, THAW_IPC_RESP_BODY, 0, 0, 0,
                                   0x04, 0x03, 0x02, 0x01, 'a', 'b', 'c'};
    struct thaw_buf b;
    size_t mark;

    thaw_buf_init(&b, 1024);
    thaw_ipc_begin(&b, THAW_IPC_RESP_BODY, 0, 0x01020304, &mark);
    thaw_ipc_put_raw(&b, "abc", 3);
    thaw_ipc_end(&b, mark);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    thaw_buf_free(&b);
}

static void partial_input_needs_more(void **state)
{
    struct thaw_buf b;
    struct thaw_ipc_frame f;
    size_t mark, i;

    thaw_buf_init(&b, 1024);
    thaw_ipc_begin(&b, THAW_IPC_RESP_BODY, 0, 1, &mark);
    thaw_ipc_put_raw(&b, "hello", 5);
    thaw_ipc_end(&b, mark);
    for (i = 0; i < b.len; i++)
        assert_int_equal(thaw_ipc_decode((uint8_t *)b.data, i, &f), 0);
    assert_int_equal(thaw_ipc_decode((uint8_t *)b.data, b.len, &f), (int)b.len);
    thaw_buf_free(&b);
}

static void two_frames_in_one_buffer(void **state)
{
    struct thaw_buf b;
    struct thaw_ipc_frame f;
    size_t mark;
    int a, c;

    thaw_buf_init(&b, 1024);
    thaw_ipc_begin(&b, THAW_IPC_RESP_BODY, 0, 1, &mark);
    thaw_ipc_put_raw(&b, "x", 1);
    thaw_ipc_end(&b, mark);
    thaw_ipc_begin(&b, THAW_IPC_RESP_END, 0, 1, &mark);
    thaw_ipc_end(&b, mark);
    a = thaw_ipc_decode((uint8_t *)b.data, b.len, &f);
    assert_int_equal(f.type, THAW_IPC_RESP_BODY);
    c = thaw_ipc_decode((uint8_t *)b.data + a, b.len - (size_t)a, &f);
    assert_int_equal(f.type, THAW_IPC_RESP_END);
    assert_int_equal(a + c, (int)b.len);
    thaw_buf_free(&b);
}

static void oversized_length_refused(void **state)
{
    uint8_t h[THAW_IPC_HEADER_SIZE] = {0};
    struct thaw_ipc_frame f;
    uint32_t big = THAW_IPC_MAX_PAYLOAD + 1;

    memcpy(h, &big, 4); /* little-endian host */
    h[4] = THAW_IPC_RESP_BODY;
    assert_int_equal(thaw_ipc_decode(h, sizeof(h), &f), THAW_IPC_E_TOOBIG);
}

static void bad_header_refused(void **state)
{
    uint8_t h[THAW_IPC_HEADER_SIZE] = {0};
    struct thaw_ipc_frame f;

    h[4] = 200; /* unknown type */
    assert_int_equal(thaw_ipc_decode(h, sizeof(h), &f), THAW_IPC_E_BADHDR);
    h[4] = THAW_IPC_RESP_END;
    h[6] = 1; /* reserved bits */
    assert_int_equal(thaw_ipc_decode(h, sizeof(h), &f), THAW_IPC_E_BADHDR);
    h[6] = 0;
    h[5] = 0x80; /* unknown flag */
    assert_int_equal(thaw_ipc_decode(h, sizeof(h), &f), THAW_IPC_E_BADHDR);
}

static void field_overrun_is_malformed(void **state)
{
    uint8_t payload[6] = {10, 0, 0, 0, 'a', 'b'}; /* claims 10, has 2 */
    struct thaw_ipc_frame f = {.payload = payload, .len = sizeof(payload)};
    struct thaw_ipc_fields it;
    const uint8_t *p;
    size_t n;

    thaw_ipc_fields_init(&it, &f);
    assert_int_equal(thaw_ipc_next_field(&it, &p, &n), -1);
    f.len = 3; /* not even a length */
    thaw_ipc_fields_init(&it, &f);
    assert_int_equal(thaw_ipc_next_field(&it, &p, &n), -1);
}

static void frame_over_max_dropped(void **state)
{
    struct thaw_buf b;
    size_t mark;
    static char big[THAW_IPC_MAX_PAYLOAD];

    thaw_buf_init(&b, 4u << 20);
    thaw_ipc_begin(&b, THAW_IPC_RESP_BODY, 0, 1, &mark);
    thaw_ipc_put_raw(&b, big, sizeof(big));
    thaw_ipc_put_raw(&b, "x", 1);
    assert_int_equal(thaw_ipc_end(&b, mark), THAW_IPC_E_TOOBIG);
    assert_int_equal(b.len, 0); /* the partial frame is gone */
    thaw_buf_free(&b);
}

static void buf_has_a_maximum(void **state)
{
    struct thaw_buf b;

    thaw_buf_init(&b, 8);
    assert_int_equal(thaw_buf_append(&b, "12345678", 8), 0);
    assert_int_equal(thaw_buf_append(&b, "9", 1), THAW_E_TOOBIG);
    assert_int_equal(b.len, 8);
    thaw_buf_consume(&b, 3);
    assert_memory_equal(b.data, "45678", 5);
    thaw_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_fields),
        cmocka_unit_test(field_from_three_pieces),
        cmocka_unit_test(wire_layout_is_little_endian),
        cmocka_unit_test(partial_input_needs_more),
        cmocka_unit_test(two_frames_in_one_buffer),
        cmocka_unit_test(oversized_length_refused),
        cmocka_unit_test(bad_header_refused),
        cmocka_unit_test(field_overrun_is_malformed),
        cmocka_unit_test(frame_over_max_dropped),
        cmocka_unit_test(buf_has_a_maximum),
    };
    return cmocka_run_group_tests_name("ipc codec", tests, NULL, NULL);
}
