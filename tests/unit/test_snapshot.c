#include "snapshot.h"

#include "bits.h"
#include "config.h"
#include "match.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
        int n = tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf);
        unsigned bits = 89 + counts[c] * (12 + q.x_bits + q.y_bits);
        assert_int_equal(n, (bits + 7) / 8);

        static struct tw_msg_snapshot d;
        memset(&d, 0xee, sizeof d);
        assert_int_equal(tw_decode_snapshot(&q, NULL, buf, (size_t)n, &d), TW_OK);
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
        unsigned expected = (TW_MAX_PAYLOAD * 8 - 89) / per_entity;
        if (expected > TW_SNAPSHOT_MAX_ENTITIES)
            expected = TW_SNAPSHOT_MAX_ENTITIES;
        assert_int_equal(cap, expected);

        /* The capacity fits the budget; one more entity does not. */
        uint8_t buf[TW_MAX_PAYLOAD];
        struct tw_msg_snapshot m = sample(&q, (uint16_t)cap);
        int n = tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf);
        assert_true(n > 0);
        assert_true(n <= (int)TW_MAX_PAYLOAD);
        if (cap < TW_SNAPSHOT_MAX_ENTITIES) {
            m = sample(&q, (uint16_t)(cap + 1));
            assert_int_equal(tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf),
                             -TW_DROP_OVERSIZED);
        }
    }
    struct tw_quant q = quant(1024.0f, 1024.0f);
    assert_int_equal(tw_snapshot_capacity(&q, TW_MAX_PAYLOAD), 226);
    assert_int_equal(tw_snapshot_capacity(&q, 0), 0);
    assert_int_equal(tw_snapshot_capacity(&q, 11), 0); /* under a header */
    assert_int_equal(tw_snapshot_capacity(&q, 17), 1); /* 136 bits */
}

static void decode_rejects_every_truncation(void **state)
{
    (void)state;
    struct tw_quant q = quant(1024.0f, 1024.0f);
    struct tw_msg_snapshot m = sample(&q, 20);
    uint8_t buf[TW_MAX_PAYLOAD + 1];
    int n = tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf);
    assert_true(n > 0);

    static struct tw_msg_snapshot d;
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, 0, &d), -TW_DROP_EMPTY);
    for (int len = 1; len < n; len++) {
        int rc = tw_decode_snapshot(&q, NULL, buf, (size_t)len, &d);
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
    int n = tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf);
    assert_true(n > 0);

    static struct tw_msg_snapshot d;
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, (size_t)n + 1, &d),
                     -TW_DROP_OVERSIZED);
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, TW_MAX_PAYLOAD + 1, &d),
                     -TW_DROP_OVERSIZED);
}

static void decode_rejects_wrong_id(void **state)
{
    (void)state;
    struct tw_quant q = quant(1024.0f, 1024.0f);
    struct tw_msg_snapshot m = sample(&q, 1);
    uint8_t buf[64];
    int n = tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf);
    assert_true(n > 0);
    buf[0] = TW_MSG_INPUT;
    static struct tw_msg_snapshot d;
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, (size_t)n, &d),
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
    tw_bw_u8(&w, 0); /* no baseline */
    tw_bw_bits(&w, count, TW_SNAPSHOT_COUNT_BITS);
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
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, n, &d), TW_OK);

    n = raw_snapshot(&q, buf, sizeof buf, 2, 16001, 0);
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, n, &d), -TW_DROP_MALFORMED);
    n = raw_snapshot(&q, buf, sizeof buf, 2, 0, 16383);
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, n, &d), -TW_DROP_MALFORMED);

    /* A count over the maximum is rejected before any entity is read. */
    n = raw_snapshot(&q, buf, 12, TW_SNAPSHOT_MAX_ENTITIES + 1, 0, 0);
    assert_int_equal(n, 12);
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, n, &d), -TW_DROP_MALFORMED);
    n = raw_snapshot(&q, buf, 12, (1u << TW_SNAPSHOT_COUNT_BITS) - 1, 0, 0);
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, n, &d), -TW_DROP_MALFORMED);
}

static void encode_rejects_bad_fields(void **state)
{
    (void)state;
    struct tw_quant q = quant(1000.0f, 1000.0f);
    uint8_t buf[TW_MAX_PAYLOAD];
    struct tw_msg_snapshot m = sample(&q, 4);

    m.entities[2].slot = TW_MAX_SLOTS;
    assert_int_equal(tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf),
                     -TW_DROP_MALFORMED);
    m = sample(&q, 4);
    m.entities[3].qx = q.max_qx + 1;
    assert_int_equal(tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf),
                     -TW_DROP_MALFORMED);
    m = sample(&q, 4);
    m.entities[1].qy = q.max_qy + 1;
    assert_int_equal(tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf),
                     -TW_DROP_MALFORMED);
    m = sample(&q, 4);
    m.count = TW_SNAPSHOT_MAX_ENTITIES + 1;
    assert_int_equal(tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf),
                     -TW_DROP_OVERSIZED);

    m = sample(&q, 4);
    int n = tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf);
    assert_true(n > 0);
    for (int cap = 0; cap < n; cap++)
        assert_int_equal(tw_encode_snapshot(&q, NULL, &m, buf, (size_t)cap),
                         -TW_DROP_OVERSIZED);
}

/* Header of a delta: id, tick, ack, age, k; the new-entity count follows. */
#define DELTA_HEADER_BITS (8 + 32 + 32 + 8 + 3 + 9)

static uint64_t rng_state = 12345;

static uint32_t rnd(uint32_t n)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) % n);
}

static struct tw_quant world_quant(void)
{
    struct tw_quant q;
    tw_quant_init(&q, (struct tw_vec2){1024, 1024});
    return q;
}

/* n entities on slots 0, 3, 6, ... at spread positions; slot 0 first. */
static void fill(struct tw_msg_snapshot *m, uint32_t tick, unsigned n)
{
    memset(m, 0, sizeof *m);
    m->tick = tick;
    m->ack_input_seq = tick * 2;
    m->count = (uint16_t)n;
    for (unsigned i = 0; i < n; i++)
        m->entities[i] = (struct tw_snap_entity){
            .slot = (uint16_t)(i * 3), .qx = 1000 + i * 37,
            .qy = 9000 - i * 11};
}

static void assert_same(const struct tw_msg_snapshot *a,
                        const struct tw_msg_snapshot *b)
{
    assert_int_equal(a->tick, b->tick);
    assert_int_equal(a->ack_input_seq, b->ack_input_seq);
    assert_int_equal(a->base_tick, b->base_tick);
    assert_int_equal(a->count, b->count);
    for (unsigned i = 0; i < a->count; i++) {
        assert_int_equal(a->entities[i].slot, b->entities[i].slot);
        assert_int_equal(a->entities[i].qx, b->entities[i].qx);
        assert_int_equal(a->entities[i].qy, b->entities[i].qy);
    }
}

/* ---- Deltas -------------------------------------------------------------- */

static void encoder_rejects_repeated_slot_and_range(void **state)
{
    (void)state;
    struct tw_quant q = world_quant();
    static struct tw_msg_snapshot m;
    uint8_t buf[TW_MAX_PAYLOAD];
    fill(&m, 3, 4);
    m.entities[2].slot = m.entities[1].slot;
    assert_int_equal(tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf),
                     -TW_DROP_MALFORMED);
    fill(&m, 3, 4);
    m.entities[3].qy = q.max_qy + 1;
    assert_int_equal(tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf),
                     -TW_DROP_MALFORMED);
}

static void idle_entity_costs_one_bit(void **state)
{
    (void)state;
    struct tw_quant q = world_quant();
    static struct tw_msg_snapshot base, m, out;
    uint8_t buf[TW_MAX_PAYLOAD];
    for (unsigned n = 1; n <= 200; n += 17) {
        fill(&base, 10, n);
        fill(&m, 11, n);
        int len = tw_encode_snapshot(&q, &base, &m, buf, sizeof buf);
        assert_int_equal(len, (DELTA_HEADER_BITS + n + 7) / 8);
        assert_int_equal(tw_decode_snapshot(&q, &base, buf, (size_t)len, &out),
                         TW_OK);
        assert_same(&m, &out);
        assert_int_equal(out.base_tick, 10);
    }
}

static void moving_entity_costs_under_four_bytes(void **state)
{
    (void)state;
    struct tw_quant q = world_quant();
    static struct tw_msg_snapshot base, m, out;
    uint8_t buf[TW_MAX_PAYLOAD];
    /* 8 units/s at 30 Hz over a two-tick-old baseline: up to 9 steps. */
    const unsigned n = 64;
    fill(&base, 20, n);
    fill(&m, 22, n);
    for (unsigned i = 0; i < n; i++) {
        m.entities[i].qx += rnd(19) - 9;
        m.entities[i].qy += rnd(19) - 9;
    }
    int len = tw_encode_snapshot(&q, &base, &m, buf, sizeof buf);
    double per_entity = (double)(len * 8 - DELTA_HEADER_BITS) / n / 8.0;
    assert_true(per_entity <= 4.0);
    assert_true(per_entity <= 1.6);
    assert_int_equal(tw_decode_snapshot(&q, &base, buf, (size_t)len, &out),
                     TW_OK);
    assert_same(&m, &out);
}

static void entities_entering_and_leaving_keep_receiver_first(void **state)
{
    (void)state;
    struct tw_quant q = world_quant();
    static struct tw_msg_snapshot base, m, out;
    uint8_t buf[TW_MAX_PAYLOAD];
    memset(&base, 0, sizeof base);
    base.tick = 40;
    base.count = 4;
    base.entities[0] = (struct tw_snap_entity){9, 500, 500};
    base.entities[1] = (struct tw_snap_entity){1, 100, 100};
    base.entities[2] = (struct tw_snap_entity){2, 200, 200};
    base.entities[3] = (struct tw_snap_entity){3, 300, 300};

    memset(&m, 0, sizeof m);
    m.tick = 41;
    m.count = 5;
    m.entities[0] = (struct tw_snap_entity){9, 501, 500};   /* receiver */
    m.entities[1] = (struct tw_snap_entity){7, 700, 700};   /* enters */
    m.entities[2] = (struct tw_snap_entity){3, 9000, 300};  /* jumps far */
    m.entities[3] = (struct tw_snap_entity){4095, 0, 16384}; /* enters */
    m.entities[4] = (struct tw_snap_entity){1, 100, 100};   /* idle */
    /* slot 2 left */

    int len = tw_encode_snapshot(&q, &base, &m, buf, sizeof buf);
    assert_true(len > 0);
    const uint16_t order[] = {9, 1, 3, 7, 4095};
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(m.entities[i].slot, order[i]);
    assert_int_equal(tw_decode_snapshot(&q, &base, buf, (size_t)len, &out),
                     TW_OK);
    assert_same(&m, &out);

    /* Everyone leaves but the receiver. */
    m.tick = 42;
    m.count = 1;
    len = tw_encode_snapshot(&q, &out, &m, buf, sizeof buf);
    static struct tw_msg_snapshot out2;
    assert_int_equal(tw_decode_snapshot(&q, &out, buf, (size_t)len, &out2),
                     TW_OK);
    assert_same(&m, &out2);
}

static void delta_needs_its_own_baseline(void **state)
{
    (void)state;
    struct tw_quant q = world_quant();
    static struct tw_msg_snapshot base, other, m, out;
    uint8_t buf[TW_MAX_PAYLOAD];
    fill(&base, 50, 10);
    fill(&m, 53, 10);
    int len = tw_encode_snapshot(&q, &base, &m, buf, sizeof buf);
    struct tw_snap_header h;
    assert_int_equal(tw_snapshot_peek(buf, (size_t)len, &h), TW_OK);
    assert_int_equal(h.tick, 53);
    assert_int_equal(h.base_tick, 50);
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, (size_t)len, &out),
                     -TW_DROP_WRONG_STATE);
    fill(&other, 51, 10);
    assert_int_equal(tw_decode_snapshot(&q, &other, buf, (size_t)len, &out),
                     -TW_DROP_WRONG_STATE);
    assert_int_equal(tw_decode_snapshot(&q, &base, buf, (size_t)len, &base),
                     -TW_DROP_WRONG_STATE);
}

static void delta_too_large_falls_back_to_full(void **state)
{
    (void)state;
    struct tw_quant q = world_quant();
    static struct tw_msg_snapshot base, m, out;
    uint8_t buf[TW_MAX_PAYLOAD];
    unsigned cap = tw_snapshot_capacity(&q, TW_MAX_PAYLOAD);
    /* A baseline of 256 others that all left, plus a full load entering. */
    memset(&base, 0, sizeof base);
    base.tick = 5;
    base.count = TW_SNAPSHOT_MAX_ENTITIES;
    for (unsigned i = 0; i < base.count; i++)
        base.entities[i] = (struct tw_snap_entity){(uint16_t)(3000 + i), 1, 1};
    fill(&m, 6, cap);
    int len = tw_encode_snapshot(&q, &base, &m, buf, sizeof buf);
    assert_true(len > 0 && len <= (int)TW_MAX_PAYLOAD);
    assert_int_equal(m.base_tick, 0);
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, (size_t)len, &out),
                     TW_OK);
    assert_same(&m, &out);
}

/* Every strict prefix fails, and so does one extra byte. */
static void check_truncations(const struct tw_quant *q,
                              const struct tw_msg_snapshot *base,
                              const uint8_t *buf, int len)
{
    static struct tw_msg_snapshot out;
    uint8_t longer[TW_MAX_PAYLOAD + 1];
    for (int cut = 0; cut < len; cut++)
        assert_true(tw_decode_snapshot(q, base, buf, (size_t)cut, &out) < 0);
    memcpy(longer, buf, (size_t)len);
    longer[len] = 0;
    assert_int_equal(tw_decode_snapshot(q, base, longer, (size_t)len + 1, &out),
                     -TW_DROP_OVERSIZED);
    assert_int_equal(tw_decode_snapshot(q, base, buf, (size_t)len, &out), TW_OK);
}

static void truncation_at_every_length_is_rejected(void **state)
{
    (void)state;
    struct tw_quant q = world_quant();
    static struct tw_msg_snapshot base, m;
    uint8_t buf[TW_MAX_PAYLOAD];
    fill(&m, 9, 100);
    int len = tw_encode_snapshot(&q, NULL, &m, buf, sizeof buf);
    check_truncations(&q, NULL, buf, len);

    fill(&base, 8, 100);
    fill(&m, 9, 120);
    for (unsigned i = 0; i < 120; i += 3)
        m.entities[i].qx += i;
    m.entities[5].qy = 5; /* far */
    len = tw_encode_snapshot(&q, &base, &m, buf, sizeof buf);
    assert_int_equal(m.base_tick, 8);
    check_truncations(&q, &base, buf, len);
}

static void decoder_rejects_hostile_fields(void **state)
{
    (void)state;
    struct tw_quant q = world_quant();
    static struct tw_msg_snapshot base, m, out;
    uint8_t buf[TW_MAX_PAYLOAD];
    struct tw_bitwriter w;

    /* Repeated slot in a full snapshot. */
    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_u8(&w, TW_MSG_SNAPSHOT);
    tw_bw_u32(&w, 5);
    tw_bw_u32(&w, 0);
    tw_bw_u8(&w, 0);
    tw_bw_bits(&w, 2, TW_SNAPSHOT_COUNT_BITS);
    for (int i = 0; i < 2; i++) {
        tw_bw_bits(&w, 17, TW_SLOT_BITS);
        tw_bw_bits(&w, 1, q.x_bits);
        tw_bw_bits(&w, 1, q.y_bits);
    }
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, tw_bw_size(&w), &out),
                     -TW_DROP_MALFORMED);

    /* Count above the maximum. */
    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_u8(&w, TW_MSG_SNAPSHOT);
    tw_bw_u32(&w, 5);
    tw_bw_u32(&w, 0);
    tw_bw_u8(&w, 0);
    tw_bw_bits(&w, 511, TW_SNAPSHOT_COUNT_BITS);
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, tw_bw_size(&w), &out),
                     -TW_DROP_MALFORMED);

    /* Position past the world. */
    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_u8(&w, TW_MSG_SNAPSHOT);
    tw_bw_u32(&w, 5);
    tw_bw_u32(&w, 0);
    tw_bw_u8(&w, 0);
    tw_bw_bits(&w, 1, TW_SNAPSHOT_COUNT_BITS);
    tw_bw_bits(&w, 1, TW_SLOT_BITS);
    tw_bw_bits(&w, q.max_qx + 1, q.x_bits);
    tw_bw_bits(&w, 0, q.y_bits);
    assert_int_equal(tw_decode_snapshot(&q, NULL, buf, tw_bw_size(&w), &out),
                     -TW_DROP_MALFORMED);

    /* Age past the tick, and wrong id. */
    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_u8(&w, TW_MSG_SNAPSHOT);
    tw_bw_u32(&w, 3);
    tw_bw_u32(&w, 0);
    tw_bw_u8(&w, 3);
    struct tw_snap_header h;
    assert_int_equal(tw_snapshot_peek(buf, tw_bw_size(&w), &h),
                     -TW_DROP_MALFORMED);
    buf[0] = TW_MSG_EVENT;
    assert_int_equal(tw_snapshot_peek(buf, tw_bw_size(&w), &h),
                     -TW_DROP_MALFORMED);

    /* A delta moving an entity below zero, and a new one repeating a slot. */
    memset(&base, 0, sizeof base);
    base.tick = 10;
    base.count = 1;
    base.entities[0] = (struct tw_snap_entity){4, 2, 2};
    for (int variant = 0; variant < 2; variant++) {
        tw_bw_init(&w, buf, sizeof buf);
        tw_bw_u8(&w, TW_MSG_SNAPSHOT);
        tw_bw_u32(&w, 11);
        tw_bw_u32(&w, 0);
        tw_bw_u8(&w, 1);
        tw_bw_bits(&w, 3, 3); /* k = 4 */
        if (variant == 0) {
            tw_bw_bits(&w, 1, 2);
            tw_bw_bits(&w, 7, 4); /* zigzag 7: -4 */
            tw_bw_bits(&w, 0, 4);
            tw_bw_bits(&w, 0, TW_SNAPSHOT_COUNT_BITS);
        } else {
            tw_bw_bits(&w, 0, 1);
            tw_bw_bits(&w, 1, TW_SNAPSHOT_COUNT_BITS);
            tw_bw_bits(&w, 4, TW_SLOT_BITS);
            tw_bw_bits(&w, 1, q.x_bits);
            tw_bw_bits(&w, 1, q.y_bits);
        }
        assert_int_equal(
            tw_decode_snapshot(&q, &base, buf, tw_bw_size(&w), &out),
            -TW_DROP_MALFORMED);
    }

    /* Random bytes never crash and never decode past the checks. */
    for (int i = 0; i < 20000; i++) {
        size_t len = 1 + rnd(60);
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)rnd(256);
        buf[0] = TW_MSG_SNAPSHOT;
        if (tw_decode_snapshot(&q, &base, buf, len, &out) == TW_OK)
            assert_true(out.count <= TW_SNAPSHOT_MAX_ENTITIES);
    }
    (void)m;
}

/* ---- Match: area of interest and baselines -------------------------------- */

static void make_match(struct tw_match *m, uint32_t players, float radius,
                       uint32_t max_visible)
{
    struct tw_config cfg;
    tw_config_defaults(&cfg);
    cfg.match.view_radius = radius;
    cfg.match.max_visible = max_visible;
    assert_int_equal(tw_match_init(m, &cfg, players), TW_OK);
}

static void spread(struct tw_match *m, float area)
{
    for (uint32_t i = 0; i < m->capacity; i++)
        if (m->players[i].active)
            m->players[i].pos = (struct tw_vec2){
                (float)rnd((uint32_t)(area * 16)) / 16.0f,
                (float)rnd((uint32_t)(area * 16)) / 16.0f};
}

static void view_holds_the_nearest_within_radius(void **state)
{
    (void)state;
    static struct tw_match m;
    static struct tw_msg_snapshot s;
    make_match(&m, 1000, 40.0f, 32);
    for (uint32_t i = 0; i < 1000; i++)
        assert_int_equal(tw_match_add(&m, 100 + i, "p"), (int)i);
    spread(&m, 400.0f);
    tw_match_step(&m);

    for (int viewer = 0; viewer < 1000; viewer += 37) {
        unsigned cut = tw_match_build_snapshot(&m, viewer, &s, 200);
        assert_true(s.count >= 1 && s.count <= 32);
        assert_int_equal(s.entities[0].slot, viewer);
        struct tw_vec2 at = m.players[viewer].pos;

        /* Brute force: who is in range, and the farthest one kept. */
        float kept_max = 0.0f;
        bool in_snap[1000] = {false};
        for (unsigned i = 1; i < s.count; i++) {
            struct tw_vec2 p = m.players[s.entities[i].slot].pos;
            float d2 = (p.x - at.x) * (p.x - at.x) + (p.y - at.y) * (p.y - at.y);
            assert_true(d2 <= 40.0f * 40.0f);
            kept_max = d2 > kept_max ? d2 : kept_max;
            assert_false(in_snap[s.entities[i].slot]);
            in_snap[s.entities[i].slot] = true;
            assert_int_equal(s.entities[i].qx,
                             tw_quantize(p.x, 1024, m.quant.max_qx));
        }
        unsigned in_range = 0;
        for (int j = 0; j < 1000; j++) {
            if (j == viewer)
                continue;
            struct tw_vec2 p = m.players[j].pos;
            float d2 = (p.x - at.x) * (p.x - at.x) + (p.y - at.y) * (p.y - at.y);
            if (d2 > 40.0f * 40.0f)
                continue;
            in_range++;
            if (!in_snap[j])
                assert_true(d2 >= kept_max);
        }
        assert_int_equal(in_range, s.count - 1 + cut);
    }
    tw_match_free(&m);
}

static void baseline_older_than_ring_gives_full(void **state)
{
    (void)state;
    static struct tw_match m;
    static struct tw_msg_snapshot s, base;
    make_match(&m, 8, 64.0f, 64);
    int slot = tw_match_add(&m, 1, "a");
    tw_match_add(&m, 2, "b");
    m.players[slot].session = 3;
    uint8_t buf[TW_MAX_PAYLOAD];
    uint32_t first = 0;
    for (unsigned t = 0; t < TW_SNAPSHOT_RING + 2; t++) {
        tw_match_step(&m);
        tw_match_build_snapshot(&m, slot, &s, 64);
        if (!first)
            first = s.tick;
        assert_true(tw_encode_snapshot(&m.quant, NULL, &s, buf, sizeof buf) > 0);
        tw_match_record_sent(&m, slot, &s);
    }
    tw_match_step(&m); /* the tick about to be sent */
    m.players[slot].ack_snapshot = m.tick - TW_SNAPSHOT_RING;
    assert_null(tw_match_baseline(&m, slot, &base));
    m.players[slot].ack_snapshot = m.tick - TW_SNAPSHOT_RING + 1;
    assert_non_null(tw_match_baseline(&m, slot, &base));
    assert_int_equal(base.tick, m.tick - TW_SNAPSHOT_RING + 1);
    assert_int_equal(base.count, 2);
    m.players[slot].ack_snapshot = m.tick; /* never sent */
    assert_null(tw_match_baseline(&m, slot, &base));
    m.players[slot].ack_snapshot = 0;
    assert_null(tw_match_baseline(&m, slot, &base));

    /* A new session must not inherit the old one's baselines. */
    m.players[slot].ack_snapshot = m.tick - 1;
    assert_non_null(tw_match_baseline(&m, slot, &base));
    m.players[slot].session = 4;
    assert_null(tw_match_baseline(&m, slot, &base));
    tw_match_free(&m);
}

static bool has_slot(const struct tw_msg_snapshot *s, unsigned slot)
{
    for (unsigned i = 0; i < s->count; i++)
        if (s->entities[i].slot == slot)
            return true;
    return false;
}

static void view_is_reused_between_searches_without_leavers(void **state)
{
    (void)state;
    static struct tw_match m;
    static struct tw_msg_snapshot s;
    uint8_t buf[TW_MAX_PAYLOAD];
    make_match(&m, 8, 64.0f, 64);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(tw_match_add(&m, 10 + i, "p"), i);
        m.players[i].pos = (struct tw_vec2){500.0f + i, 500.0f};
    }
    m.players[0].session = 1;
    /* Run up to a search, so the next tick reuses its view. */
    do {
        tw_match_step(&m);
        tw_match_build_snapshot(&m, 0, &s, 64);
        assert_true(tw_encode_snapshot(&m.quant, NULL, &s, buf, sizeof buf) > 0);
        tw_match_record_sent(&m, 0, &s);
    } while (m.tick % TW_VIEW_REFRESH_TICKS != 0);
    assert_int_equal(s.count, 4);

    m.players[3].pos.x = 900.0f; /* walks out of view */
    tw_match_remove(&m, 2);      /* leaves the match */
    tw_match_step(&m);
    tw_match_build_snapshot(&m, 0, &s, 64);
    assert_int_equal(s.entities[0].slot, 0);
    assert_false(has_slot(&s, 2));
    assert_true(has_slot(&s, 3)); /* still in the kept view, fresh position */
    for (unsigned i = 0; i < s.count; i++)
        if (s.entities[i].slot == 3)
            assert_int_equal(s.entities[i].qx, 900 * 16);
    assert_true(tw_encode_snapshot(&m.quant, NULL, &s, buf, sizeof buf) > 0);
    tw_match_record_sent(&m, 0, &s);

    while (m.tick % TW_VIEW_REFRESH_TICKS != 0) {
        tw_match_step(&m);
        tw_match_build_snapshot(&m, 0, &s, 64);
        assert_true(tw_encode_snapshot(&m.quant, NULL, &s, buf, sizeof buf) > 0);
        tw_match_record_sent(&m, 0, &s);
    }
    assert_false(has_slot(&s, 3)); /* gone at the search */
    assert_int_equal(s.count, 2);
    tw_match_free(&m);
}

/*
 * Plays a crowd through the match for many ticks, losing a quarter of the
 * snapshots and of the acknowledgements and delaying the rest, with
 * players moving, jumping, leaving and joining. The client's ring must
 * decode every snapshot it gets to exactly what the server sent.
 */
static void sequence_with_loss_decodes_exactly(void **state)
{
    (void)state;
    static struct tw_match m;
    static struct tw_msg_snapshot s, base;
    static struct tw_snap_ring ring;
    memset(&ring, 0, sizeof ring);
    make_match(&m, 300, 50.0f, 48);
    for (uint32_t i = 0; i < 300; i++)
        tw_match_add(&m, 1000 + i, "p");
    spread(&m, 200.0f);
    const int viewer = 0;
    m.players[viewer].session = 1;

    uint32_t acks_in_flight[4] = {0};
    uint32_t newest = 0;
    unsigned received = 0, deltas = 0, fulls = 0, drops = 0;
    uint8_t buf[TW_MAX_PAYLOAD];
    for (unsigned t = 0; t < 1500; t++) {
        for (uint32_t i = 0; i < m.capacity; i++) {
            struct tw_player *p = &m.players[i];
            if (!p->active) {
                if (rnd(50) == 0)
                    tw_match_add(&m, 5000 + t, "late");
                continue;
            }
            uint32_t what = rnd(100);
            if (what < 20)
                continue; /* idle */
            if (what < 21 && (int)i != viewer) {
                tw_match_remove(&m, (int)i);
                continue;
            }
            if (what < 23) {
                p->pos.x = (float)rnd(200);
                continue;
            }
            p->pos.x += (float)((int)rnd(9) - 4) / 16.0f;
            p->pos.y += (float)((int)rnd(9) - 4) / 16.0f;
            p->pos.x = p->pos.x < 0 ? 0 : p->pos.x;
            p->pos.y = p->pos.y < 0 ? 0 : p->pos.y;
        }
        tw_match_step(&m);

        /* Acks arrive with 0..3 ticks of delay; a blackout now and then. */
        bool blackout = (t / 100) % 5 == 4 && t % 100 < 25;
        uint32_t arriving = acks_in_flight[0];
        memmove(acks_in_flight, acks_in_flight + 1, 3 * sizeof(uint32_t));
        acks_in_flight[3] = 0;
        if (arriving && !blackout)
            m.players[viewer].ack_snapshot = arriving;
        if (newest && rnd(4) != 0)
            acks_in_flight[rnd(4)] = newest;

        tw_match_build_snapshot(&m, viewer, &s, 64);
        const struct tw_msg_snapshot *b = tw_match_baseline(&m, viewer, &base);
        int len = tw_encode_snapshot(&m.quant, b, &s, buf, sizeof buf);
        assert_true(len > 0);
        tw_match_record_sent(&m, viewer, &s);
        assert_int_equal(s.entities[0].slot, viewer);
        if (rnd(4) == 0 || blackout) {
            drops++;
            continue;
        }

        struct tw_snap_header h;
        assert_int_equal(tw_snapshot_peek(buf, (size_t)len, &h), TW_OK);
        const struct tw_msg_snapshot *kept =
            h.base_tick ? tw_snap_ring_find(&ring, h.base_tick) : NULL;
        assert_true(h.base_tick == 0 || kept != NULL);
        struct tw_msg_snapshot *into = tw_snap_ring_claim(&ring, h.tick, kept);
        assert_non_null(into);
        assert_int_equal(tw_decode_snapshot(&m.quant, kept, buf, (size_t)len,
                                            into),
                         TW_OK);
        tw_snap_ring_commit(&ring, h.tick);
        assert_same(&s, into);
        newest = h.tick;
        received++;
        if (h.base_tick)
            deltas++;
        else
            fulls++;
    }
    assert_true(received > 900);
    assert_true(deltas > received * 3 / 4);
    assert_true(fulls >= 3); /* the first one and after each blackout */
    assert_true(drops > 0);
    tw_match_free(&m);
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
        cmocka_unit_test(encoder_rejects_repeated_slot_and_range),
        cmocka_unit_test(idle_entity_costs_one_bit),
        cmocka_unit_test(moving_entity_costs_under_four_bytes),
        cmocka_unit_test(entities_entering_and_leaving_keep_receiver_first),
        cmocka_unit_test(delta_needs_its_own_baseline),
        cmocka_unit_test(delta_too_large_falls_back_to_full),
        cmocka_unit_test(truncation_at_every_length_is_rejected),
        cmocka_unit_test(decoder_rejects_hostile_fields),
        cmocka_unit_test(view_holds_the_nearest_within_radius),
        cmocka_unit_test(baseline_older_than_ring_gives_full),
        cmocka_unit_test(view_is_reused_between_searches_without_leavers),
        cmocka_unit_test(sequence_with_loss_decodes_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
