#include "snapshot.h"

#include "bits.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static struct tw_quant quant(float width, float height)
{
    struct tw_quant q;
    tw_quant_init(&q, (struct tw_vec2){width, height});
    return q;
}

static void quant_init_sizes_fields(void **state)
{
    (void)state;
    struct tw_quant q = quant(1024.0f, 512.0f);
    assert_int_equal(q.max_qx, 16384);
    assert_int_equal(q.x_bits, 15);
    assert_int_equal(q.max_qy, 8192);
    assert_int_equal(q.y_bits, 14);

    q = quant(100.3f, 1.0f);
    assert_int_equal(q.max_qx, 1605); /* ceil(1604.8) */
    assert_int_equal(q.x_bits, 11);
    assert_int_equal(q.max_qy, 16);
    assert_int_equal(q.y_bits, 5);

    q = quant(65535.0f, 65535.0f);
    assert_int_equal(q.max_qx, 1048560);
    assert_int_equal(q.x_bits, 20);
}

static void quant_init_survives_bad_world(void **state)
{
    (void)state;
    /* These would be undefined float-to-integer conversions unclamped. */
    struct tw_quant q = quant(NAN, -5.0f);
    assert_int_equal(q.max_qx, 0);
    assert_int_equal(q.max_qy, 0);
    assert_int_equal(q.x_bits, 1);

    q = quant(1e30f, INFINITY);
    assert_int_equal(q.max_qx, UINT32_MAX);
    assert_int_equal(q.max_qy, UINT32_MAX);
    assert_int_equal(q.x_bits, 32);
    assert_int_equal(tw_quantize(1e20f, 1e30f, q.max_qx), UINT32_MAX);
    assert_int_equal(tw_quantize(1000.0f, 1e30f, q.max_qx), 16000);
}

static void quantize_clamps_to_bounds(void **state)
{
    (void)state;
    struct tw_quant q = quant(1024.0f, 1024.0f);
    const float w = q.world.x;
    assert_int_equal(tw_quantize(0.0f, w, q.max_qx), 0);
    assert_int_equal(tw_quantize(-0.001f, w, q.max_qx), 0);
    assert_int_equal(tw_quantize(-INFINITY, w, q.max_qx), 0);
    assert_int_equal(tw_quantize(NAN, w, q.max_qx), 0);
    assert_int_equal(tw_quantize(w, w, q.max_qx), q.max_qx);
    assert_int_equal(tw_quantize(w + 1.0f, w, q.max_qx), q.max_qx);
    assert_int_equal(tw_quantize(INFINITY, w, q.max_qx), q.max_qx);
    assert_int_equal(tw_quantize(nextafterf(w, 0.0f), w, q.max_qx),
                     q.max_qx);
    assert_int_equal(tw_quantize(512.0f, w, q.max_qx), 8192);
    assert_true(tw_dequantize(0) == 0.0f);
    assert_true(tw_dequantize(q.max_qx) == w);
}

static void quantize_round_trip_within_half_step(void **state)
{
    (void)state;
    const float worlds[] = {1.0f, 100.3f, 1024.0f, 65535.0f};
    for (size_t i = 0; i < sizeof worlds / sizeof worlds[0]; i++) {
        struct tw_quant q = quant(worlds[i], worlds[i]);
        for (int k = 0; k <= 10000; k++) {
            float v = worlds[i] * (float)k / 10000.0f;
            uint32_t qv = tw_quantize(v, q.world.x, q.max_qx);
            assert_true(qv <= q.max_qx);
            float back = tw_dequantize(qv);
            /* Half a step, plus float rounding at the largest world. */
            float tolerance = 0.5f / TW_POS_SCALE + v * 1e-6f;
            if (fabsf(back - v) > tolerance)
                fail_msg("world %g: %g came back as %g", (double)worlds[i],
                         (double)v, (double)back);
        }
    }
}

static struct tw_msg_snapshot sample(const struct tw_quant *q, uint16_t count)
{
    struct tw_msg_snapshot m;
    memset(&m, 0, sizeof m);
    m.tick = 0xdeadbeefu;
    m.ack_input_seq = 77;
    m.count = count;
    for (unsigned i = 0; i < count; i++) {
        m.entities[i].slot = (uint16_t)((i * 97u) % TW_MAX_SLOTS);
        m.entities[i].qx = (i * 7919u) % (q->max_qx + 1);
        m.entities[i].qy = q->max_qy - (i * 104729u) % (q->max_qy + 1);
    }
    if (count > 0) {
        m.entities[0].slot = TW_MAX_SLOTS - 1;
        m.entities[0].qx = q->max_qx;
        m.entities[0].qy = 0;
    }
    return m;
}

static void assert_same_snapshot(const struct tw_msg_snapshot *a,
                                 const struct tw_msg_snapshot *b)
{
    assert_int_equal(a->tick, b->tick);
    assert_int_equal(a->ack_input_seq, b->ack_input_seq);
    assert_int_equal(a->count, b->count);
    for (unsigned i = 0; i < a->count; i++) {
        assert_int_equal(a->entities[i].slot, b->entities[i].slot);
        assert_int_equal(a->entities[i].qx, b->entities[i].qx);
        assert_int_equal(a->entities[i].qy, b->entities[i].qy);
    }
}

static void snapshot_round_trips(void **state)
{
    (void)state;
    struct tw_quant q = quant(1024.0f, 300.0f);
    const uint16_t counts[] = {0, 1, 2, 50, 200};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        struct tw_msg_snapshot m = sample(&q, counts[c]);
        uint8_t buf[TW_MAX_PAYLOAD];
        int n = tw_encode_snapshot(&q, &m, buf, sizeof buf);
        unsigned bits = 88 + counts[c] * (12 + q.x_bits + q.y_bits);
        assert_int_equal(n, (bits + 7) / 8);

        static struct tw_msg_snapshot d;
        memset(&d, 0xee, sizeof d);
        assert_int_equal(tw_decode_snapshot(&q, buf, (size_t)n, &d), TW_OK);
        assert_same_snapshot(&d, &m);
    }
}

static void capacity_fills_1200_byte_budget(void **state)
{
    (void)state;
    const float worlds[] = {1.0f, 100.0f, 1024.0f, 4096.0f, 65535.0f};
    for (size_t i = 0; i < sizeof worlds / sizeof worlds[0]; i++) {
        struct tw_quant q = quant(worlds[i], worlds[i]);
        unsigned cap = tw_snapshot_capacity(&q, TW_MAX_PAYLOAD);
        unsigned per_entity = 12 + q.x_bits + q.y_bits;
        unsigned expected = (TW_MAX_PAYLOAD * 8 - 88) / per_entity;
        if (expected > TW_SNAPSHOT_MAX_ENTITIES)
            expected = TW_SNAPSHOT_MAX_ENTITIES;
        assert_int_equal(cap, expected);

        /* The capacity fits the budget; one more entity does not. */
        uint8_t buf[TW_MAX_PAYLOAD];
        struct tw_msg_snapshot m = sample(&q, (uint16_t)cap);
        int n = tw_encode_snapshot(&q, &m, buf, sizeof buf);
        assert_true(n > 0);
        assert_true(n <= (int)TW_MAX_PAYLOAD);
        if (cap < TW_SNAPSHOT_MAX_ENTITIES) {
            m = sample(&q, (uint16_t)(cap + 1));
            assert_int_equal(tw_encode_snapshot(&q, &m, buf, sizeof buf),
                             -TW_DROP_OVERSIZED);
        }
    }
    struct tw_quant q = quant(1024.0f, 1024.0f);
    assert_int_equal(tw_snapshot_capacity(&q, TW_MAX_PAYLOAD), 226);
    assert_int_equal(tw_snapshot_capacity(&q, 0), 0);
    assert_int_equal(tw_snapshot_capacity(&q, 11), 0); /* header only */
    assert_int_equal(tw_snapshot_capacity(&q, 17), 1); /* 136 bits */
}

static void decode_rejects_every_truncation(void **state)
{
    (void)state;
    struct tw_quant q = quant(1024.0f, 1024.0f);
    struct tw_msg_snapshot m = sample(&q, 20);
    uint8_t buf[TW_MAX_PAYLOAD + 1];
    int n = tw_encode_snapshot(&q, &m, buf, sizeof buf);
    assert_true(n > 0);

    static struct tw_msg_snapshot d;
    assert_int_equal(tw_decode_snapshot(&q, buf, 0, &d), -TW_DROP_EMPTY);
    for (int len = 1; len < n; len++) {
        int rc = tw_decode_snapshot(&q, buf, (size_t)len, &d);
        if (rc != -TW_DROP_TRUNCATED)
            fail_msg("length %d of %d: got %d, expected truncated", len, n,
                     rc);
    }
}

static void decode_rejects_oversized(void **state)
{
    (void)state;
    struct tw_quant q = quant(1024.0f, 1024.0f);
    struct tw_msg_snapshot m = sample(&q, 3);
    uint8_t buf[TW_MAX_PAYLOAD + 1];
    memset(buf, 0, sizeof buf);
    int n = tw_encode_snapshot(&q, &m, buf, sizeof buf);
    assert_true(n > 0);

    static struct tw_msg_snapshot d;
    assert_int_equal(tw_decode_snapshot(&q, buf, (size_t)n + 1, &d),
                     -TW_DROP_OVERSIZED);
    assert_int_equal(tw_decode_snapshot(&q, buf, TW_MAX_PAYLOAD + 1, &d),
                     -TW_DROP_OVERSIZED);
}

static void decode_rejects_wrong_id(void **state)
{
    (void)state;
    struct tw_quant q = quant(1024.0f, 1024.0f);
    struct tw_msg_snapshot m = sample(&q, 1);
    uint8_t buf[64];
    int n = tw_encode_snapshot(&q, &m, buf, sizeof buf);
    assert_true(n > 0);
    buf[0] = TW_MSG_INPUT;
    static struct tw_msg_snapshot d;
    assert_int_equal(tw_decode_snapshot(&q, buf, (size_t)n, &d),
                     -TW_DROP_MALFORMED);
}

/* Writes a snapshot bit by bit, bypassing the encoder's checks. */
static size_t raw_snapshot(const struct tw_quant *q, uint8_t *buf, size_t cap,
                           uint16_t count, uint32_t qx, uint32_t qy)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, buf, cap);
    tw_bw_u8(&w, TW_MSG_SNAPSHOT);
    tw_bw_u32(&w, 1);
    tw_bw_u32(&w, 2);
    tw_bw_u16(&w, count);
    for (unsigned i = 0; i < count && !w.error; i++) {
        tw_bw_bits(&w, i, TW_SLOT_BITS);
        tw_bw_bits(&w, qx, q->x_bits);
        tw_bw_bits(&w, qy, q->y_bits);
    }
    return tw_bw_size(&w);
}

static void decode_rejects_out_of_range(void **state)
{
    (void)state;
    /* 1000 units: max_q 16000 in 14 bits, so 16001..16383 are encodable. */
    struct tw_quant q = quant(1000.0f, 1000.0f);
    assert_int_equal(q.x_bits, 14);
    uint8_t buf[TW_MAX_PAYLOAD];
    static struct tw_msg_snapshot d;

    size_t n = raw_snapshot(&q, buf, sizeof buf, 2, 16000, 16000);
    assert_int_equal(tw_decode_snapshot(&q, buf, n, &d), TW_OK);

    n = raw_snapshot(&q, buf, sizeof buf, 2, 16001, 0);
    assert_int_equal(tw_decode_snapshot(&q, buf, n, &d), -TW_DROP_MALFORMED);
    n = raw_snapshot(&q, buf, sizeof buf, 2, 0, 16383);
    assert_int_equal(tw_decode_snapshot(&q, buf, n, &d), -TW_DROP_MALFORMED);

    /* A count over the maximum is rejected before any entity is read. */
    n = raw_snapshot(&q, buf, 11, TW_SNAPSHOT_MAX_ENTITIES + 1, 0, 0);
    assert_int_equal(n, 11);
    assert_int_equal(tw_decode_snapshot(&q, buf, n, &d), -TW_DROP_MALFORMED);
    n = raw_snapshot(&q, buf, 11, UINT16_MAX, 0, 0);
    assert_int_equal(tw_decode_snapshot(&q, buf, n, &d), -TW_DROP_MALFORMED);
}

static void encode_rejects_bad_fields(void **state)
{
    (void)state;
    struct tw_quant q = quant(1000.0f, 1000.0f);
    uint8_t buf[TW_MAX_PAYLOAD];
    struct tw_msg_snapshot m = sample(&q, 4);

    m.entities[2].slot = TW_MAX_SLOTS;
    assert_int_equal(tw_encode_snapshot(&q, &m, buf, sizeof buf),
                     -TW_DROP_MALFORMED);
    m = sample(&q, 4);
    m.entities[3].qx = q.max_qx + 1;
    assert_int_equal(tw_encode_snapshot(&q, &m, buf, sizeof buf),
                     -TW_DROP_MALFORMED);
    m = sample(&q, 4);
    m.entities[1].qy = q.max_qy + 1;
    assert_int_equal(tw_encode_snapshot(&q, &m, buf, sizeof buf),
                     -TW_DROP_MALFORMED);
    m = sample(&q, 4);
    m.count = TW_SNAPSHOT_MAX_ENTITIES + 1;
    assert_int_equal(tw_encode_snapshot(&q, &m, buf, sizeof buf),
                     -TW_DROP_OVERSIZED);

    m = sample(&q, 4);
    int n = tw_encode_snapshot(&q, &m, buf, sizeof buf);
    assert_true(n > 0);
    for (int cap = 0; cap < n; cap++)
        assert_int_equal(tw_encode_snapshot(&q, &m, buf, (size_t)cap),
                         -TW_DROP_OVERSIZED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quant_init_sizes_fields),
        cmocka_unit_test(quant_init_survives_bad_world),
        cmocka_unit_test(quantize_clamps_to_bounds),
        cmocka_unit_test(quantize_round_trip_within_half_step),
        cmocka_unit_test(snapshot_round_trips),
        cmocka_unit_test(capacity_fills_1200_byte_budget),
        cmocka_unit_test(decode_rejects_every_truncation),
        cmocka_unit_test(decode_rejects_oversized),
        cmocka_unit_test(decode_rejects_wrong_id),
        cmocka_unit_test(decode_rejects_out_of_range),
        cmocka_unit_test(encode_rejects_bad_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
