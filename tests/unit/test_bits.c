#include "bits.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static uint32_t mask(unsigned bits)
{
    return bits == 32 ? UINT32_MAX : (1u << bits) - 1u;
}

static void every_width_round_trips(void **state)
{
    (void)state;
    const uint32_t patterns[] = {0u, UINT32_MAX, 0xa5a5a5a5u, 0x5a5a5a5au,
                                 0x80000001u, 0x12345678u};
    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        uint8_t buf[160];
        struct tw_bitwriter w;
        tw_bw_init(&w, buf, sizeof buf);
        for (unsigned bits = 1; bits <= 32; bits++)
            tw_bw_bits(&w, patterns[p] ^ bits, bits);
        assert_false(w.error);
        /* 1 + 2 + ... + 32 bits = 528 bits = 66 bytes. */
        assert_int_equal(tw_bw_size(&w), 66);

        struct tw_bitreader r;
        tw_br_init(&r, buf, tw_bw_size(&w));
        for (unsigned bits = 1; bits <= 32; bits++)
            assert_int_equal(tw_br_bits(&r, bits),
                             (patterns[p] ^ bits) & mask(bits));
        assert_false(r.error);
        assert_true(tw_br_at_end(&r));
    }
}

static void typed_fields_round_trip(void **state)
{
    (void)state;
    uint8_t buf[32];
    struct tw_bitwriter w;
    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_bool(&w, true);
    tw_bw_u8(&w, 0xfe);
    tw_bw_u16(&w, 0xbeef);
    tw_bw_bool(&w, false);
    tw_bw_u32(&w, 0xdeadbeefu);
    tw_bw_u64(&w, 0x0123456789abcdefull);
    tw_bw_u64(&w, UINT64_MAX);
    assert_false(w.error);
    /* 1 + 8 + 16 + 1 + 32 + 64 + 64 = 186 bits. */
    assert_int_equal(tw_bw_size(&w), 24);

    struct tw_bitreader r;
    tw_br_init(&r, buf, tw_bw_size(&w));
    assert_true(tw_br_bool(&r));
    assert_int_equal(tw_br_u8(&r), 0xfe);
    assert_int_equal(tw_br_u16(&r), 0xbeef);
    assert_false(tw_br_bool(&r));
    assert_int_equal(tw_br_u32(&r), 0xdeadbeefu);
    assert_int_equal(tw_br_u64(&r), 0x0123456789abcdefull);
    assert_int_equal(tw_br_u64(&r), UINT64_MAX);
    assert_false(r.error);
    assert_true(tw_br_at_end(&r));
}

static void bits_pack_least_significant_first(void **state)
{
    (void)state;
    uint8_t buf[2];
    memset(buf, 0xff, sizeof buf); /* stale bytes must not leak through */
    struct tw_bitwriter w;
    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_bits(&w, 1, 1);
    tw_bw_bits(&w, 2, 2);
    tw_bw_bits(&w, 0x1f, 5);
    tw_bw_bits(&w, 0x3, 3);
    assert_false(w.error);
    assert_int_equal(buf[0], 0xfd); /* 11111 10 1 */
    assert_int_equal(buf[1], 0x03);
    assert_int_equal(tw_bw_size(&w), 2);
}

static void high_value_bits_are_masked(void **state)
{
    (void)state;
    uint8_t buf[1];
    struct tw_bitwriter w;
    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_bits(&w, 0xffffff05u, 4);
    tw_bw_bits(&w, 0, 4);
    assert_int_equal(buf[0], 0x05);
}

static void writer_overflow_is_sticky(void **state)
{
    (void)state;
    uint8_t buf[2];
    struct tw_bitwriter w;
    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_bits(&w, 0x7f, 7);
    tw_bw_bits(&w, 0x3ff, 10);
    assert_true(w.error);
    assert_int_equal(w.bitpos, 7);

    /* A write that would fit is still ignored after the error. */
    tw_bw_bits(&w, 1, 1);
    assert_true(w.error);
    assert_int_equal(w.bitpos, 7);
    assert_int_equal(tw_bw_size(&w), 1);
}

static void writer_fills_exactly_to_capacity(void **state)
{
    (void)state;
    uint8_t buf[4];
    struct tw_bitwriter w;
    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_u32(&w, 0x01020304u);
    assert_false(w.error);
    tw_bw_bool(&w, true);
    assert_true(w.error);
    assert_int_equal(tw_bw_size(&w), 4);
}

static void writer_rejects_width_over_32(void **state)
{
    (void)state;
    uint8_t buf[16];
    struct tw_bitwriter w;
    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_bits(&w, 0, 0); /* zero bits is a no-op, not an error */
    assert_false(w.error);
    assert_int_equal(w.bitpos, 0);
    tw_bw_bits(&w, 1, 33);
    assert_true(w.error);
    assert_int_equal(w.bitpos, 0);
}

static void writer_bytes_overflow_sets_error(void **state)
{
    (void)state;
    uint8_t buf[4];
    const uint8_t data[4] = {1, 2, 3, 4};
    struct tw_bitwriter w;
    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_bool(&w, true);
    tw_bw_bytes(&w, data, sizeof data); /* aligned to byte 1: 3 bytes left */
    assert_true(w.error);

    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_bytes(&w, data, sizeof data);
    assert_false(w.error);
    assert_memory_equal(buf, data, sizeof data);
}

static void reader_past_end_sets_error(void **state)
{
    (void)state;
    const uint8_t buf[2] = {0xff, 0xff};
    struct tw_bitreader r;
    tw_br_init(&r, buf, sizeof buf);
    assert_int_equal(tw_br_bits(&r, 12), 0xfff);
    assert_false(r.error);
    assert_int_equal(tw_br_bits(&r, 5), 0);
    assert_true(r.error);
    assert_int_equal(r.bitpos, 12);

    tw_br_init(&r, buf, 0);
    assert_true(tw_br_at_end(&r));
    assert_int_equal(tw_br_u8(&r), 0);
    assert_true(r.error);
}

static void reader_error_is_sticky(void **state)
{
    (void)state;
    const uint8_t buf[4] = {0x11, 0x22, 0x33, 0x44};
    struct tw_bitreader r;
    tw_br_init(&r, buf, sizeof buf);
    assert_int_equal(tw_br_u64(&r), 0);
    assert_true(r.error);
    /* Data is still there, but every read after the error returns 0. */
    assert_int_equal(tw_br_u8(&r), 0);
    assert_int_equal(tw_br_u16(&r), 0);
    assert_false(tw_br_bool(&r));
    assert_true(r.error);
}

static void reader_rejects_width_over_32(void **state)
{
    (void)state;
    const uint8_t buf[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    struct tw_bitreader r;
    tw_br_init(&r, buf, sizeof buf);
    assert_int_equal(tw_br_bits(&r, 0), 0);
    assert_false(r.error);
    assert_int_equal(tw_br_bits(&r, 33), 0);
    assert_true(r.error);
    assert_int_equal(tw_br_bits(&r, 8), 0);
}

static void reader_bytes_past_end_zero_fill(void **state)
{
    (void)state;
    const uint8_t buf[3] = {0x01, 0xaa, 0xbb};
    uint8_t out[4];
    memset(out, 0xcc, sizeof out);
    struct tw_bitreader r;
    tw_br_init(&r, buf, sizeof buf);
    assert_int_equal(tw_br_bits(&r, 1), 1);
    tw_br_bytes(&r, out, sizeof out); /* aligned to byte 1: 2 bytes left */
    assert_true(r.error);
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(out[i], 0);

    /* After an earlier error, a read that would fit also zero-fills. */
    memset(out, 0xcc, sizeof out);
    tw_br_bytes(&r, out, 1);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 0xcc);
}

static void bytes_start_on_byte_boundary(void **state)
{
    (void)state;
    uint8_t buf[8];
    memset(buf, 0xff, sizeof buf);
    const uint8_t data[3] = {0xa1, 0xb2, 0xc3};
    struct tw_bitwriter w;
    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_bits(&w, 0x5, 3);
    tw_bw_bytes(&w, data, sizeof data);
    tw_bw_bits(&w, 1, 1);
    assert_false(w.error);
    assert_int_equal(buf[0], 0x05); /* padding bits are zero */
    assert_memory_equal(buf + 1, data, sizeof data);
    assert_int_equal(tw_bw_size(&w), 5);

    struct tw_bitreader r;
    uint8_t out[3];
    tw_br_init(&r, buf, tw_bw_size(&w));
    assert_int_equal(tw_br_bits(&r, 3), 0x5);
    tw_br_bytes(&r, out, sizeof out);
    assert_memory_equal(out, data, sizeof data);
    assert_true(tw_br_bool(&r));
    assert_false(r.error);
    assert_true(tw_br_at_end(&r));
}

static void align_pads_to_next_byte(void **state)
{
    (void)state;
    uint8_t buf[2];
    struct tw_bitwriter w;
    tw_bw_init(&w, buf, sizeof buf);
    tw_bw_align(&w);
    assert_int_equal(w.bitpos, 0);
    tw_bw_bits(&w, 1, 1);
    tw_bw_align(&w);
    assert_int_equal(w.bitpos, 8);
    tw_bw_align(&w);
    assert_int_equal(w.bitpos, 8);

    struct tw_bitreader r;
    tw_br_init(&r, buf, sizeof buf);
    tw_br_bits(&r, 3);
    tw_br_align(&r);
    assert_int_equal(r.bitpos, 8);
    assert_false(r.error);
    tw_br_bits(&r, 8);
    tw_br_align(&r);
    assert_int_equal(r.bitpos, 16);
    assert_false(r.error);
}

static void remaining_and_end_round_up(void **state)
{
    (void)state;
    const uint8_t buf[3] = {0};
    struct tw_bitreader r;
    tw_br_init(&r, buf, sizeof buf);
    assert_int_equal(tw_br_remaining_bytes(&r), 3);
    assert_false(tw_br_at_end(&r));
    tw_br_bits(&r, 1);
    assert_int_equal(tw_br_remaining_bytes(&r), 2);
    tw_br_bits(&r, 15);
    assert_int_equal(tw_br_remaining_bytes(&r), 1);
    tw_br_bits(&r, 1);
    /* A partly read last byte counts as consumed. */
    assert_int_equal(tw_br_remaining_bytes(&r), 0);
    assert_true(tw_br_at_end(&r));
}

static void bits_for_covers_range(void **state)
{
    (void)state;
    assert_int_equal(tw_bits_for(0), 1);
    assert_int_equal(tw_bits_for(1), 1);
    assert_int_equal(tw_bits_for(2), 2);
    assert_int_equal(tw_bits_for(3), 2);
    assert_int_equal(tw_bits_for(4), 3);
    assert_int_equal(tw_bits_for(255), 8);
    assert_int_equal(tw_bits_for(256), 9);
    assert_int_equal(tw_bits_for(16384), 15);
    assert_int_equal(tw_bits_for(UINT32_MAX >> 1), 31);
    assert_int_equal(tw_bits_for(UINT32_MAX), 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_width_round_trips),
        cmocka_unit_test(typed_fields_round_trip),
        cmocka_unit_test(bits_pack_least_significant_first),
        cmocka_unit_test(high_value_bits_are_masked),
        cmocka_unit_test(writer_overflow_is_sticky),
        cmocka_unit_test(writer_fills_exactly_to_capacity),
        cmocka_unit_test(writer_rejects_width_over_32),
        cmocka_unit_test(writer_bytes_overflow_sets_error),
        cmocka_unit_test(reader_past_end_sets_error),
        cmocka_unit_test(reader_error_is_sticky),
        cmocka_unit_test(reader_rejects_width_over_32),
        cmocka_unit_test(reader_bytes_past_end_zero_fill),
        cmocka_unit_test(bytes_start_on_byte_boundary),
        cmocka_unit_test(align_pads_to_next_byte),
        cmocka_unit_test(remaining_and_end_round_up),
        cmocka_unit_test(bits_for_covers_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
