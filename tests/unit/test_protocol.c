#include "protocol.h"

#include "bits.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* Adapts every decoder to one signature, so one helper checks them all. */
typedef int (*decode_fn)(const uint8_t *p, size_t len, void *out);

static int decode_login(const uint8_t *p, size_t len, void *out)
{
    return tw_decode_login(p, len, out);
}

static int decode_login_ok(const uint8_t *p, size_t len, void *out)
{
    return tw_decode_login_ok(p, len, out);
}

static int decode_error(const uint8_t *p, size_t len, void *out)
{
    return tw_decode_error(p, len, out);
}

static int decode_event(const uint8_t *p, size_t len, void *out)
{
    return tw_decode_event(p, len, out);
}

static int decode_ping(const uint8_t *p, size_t len, void *out)
{
    return tw_decode_ping(TW_MSG_PING, p, len, out);
}

static int decode_pong(const uint8_t *p, size_t len, void *out)
{
    return tw_decode_ping(TW_MSG_PONG, p, len, out);
}

static int decode_match_end(const uint8_t *p, size_t len, void *out)
{
    return tw_decode_match_end(p, len, out);
}

static int decode_input(const uint8_t *p, size_t len, void *out)
{
    return tw_decode_input(p, len, out);
}

/*
 * Checks the framing of a valid n-byte encoding in buf: every shorter
 * length is rejected, one extra byte is oversized, a changed id byte is
 * malformed and anything over TW_MAX_PAYLOAD is oversized.
 */
static void check_framing(decode_fn decode, const uint8_t *buf, size_t n)
{
    uint8_t copy[TW_MAX_PAYLOAD + 2];
    uint8_t out[sizeof(struct tw_msg_login) + sizeof(struct tw_msg_login_ok) +
                sizeof(struct tw_msg_input)];
    assert_true(n + 1 <= sizeof copy);

    memcpy(copy, buf, n);
    assert_int_equal(decode(copy, n, out), TW_OK);
    assert_int_equal(decode(copy, 0, out), -TW_DROP_EMPTY);
    for (size_t len = 1; len < n; len++) {
        int rc = decode(copy, len, out);
        if (rc != -TW_DROP_TRUNCATED)
            fail_msg("length %zu of %zu: got %d (%s), expected truncated",
                     len, n, rc, tw_drop_name(rc));
    }

    copy[n] = 0;
    assert_int_equal(decode(copy, n + 1, out), -TW_DROP_OVERSIZED);
    memset(copy + n, 0, sizeof copy - n);
    assert_int_equal(decode(copy, TW_MAX_PAYLOAD + 1, out),
                     -TW_DROP_OVERSIZED);

    copy[0] = (uint8_t)(buf[0] ^ 0x80);
    assert_int_equal(decode(copy, n, out), -TW_DROP_MALFORMED);
    copy[0] = 0;
    assert_int_equal(decode(copy, n, out), -TW_DROP_MALFORMED);
}

/* Checks that every capacity below n is rejected by the encoder. */
#define CHECK_SMALL_CAPS(encode_call_with_cap, n)                              \
    do {                                                                       \
        for (size_t cap = 0; cap < (n); cap++) {                               \
            size_t c_ = cap;                                                   \
            int rc_ = (encode_call_with_cap);                                  \
            if (rc_ != -TW_DROP_OVERSIZED)                                     \
                fail_msg("cap %zu: got %d, expected oversized", c_, rc_);     \
        }                                                                      \
    } while (0)

static void login_round_trips(void **state)
{
    (void)state;
    struct tw_msg_login m = {.protocol = TW_PROTOCOL_VERSION,
                             .match_id = 0xfeedf00du,
                             .expires_at = 0x1122334455667788ull};
    for (size_t i = 0; i < sizeof m.nonce; i++)
        m.nonce[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof m.sealed; i++)
        m.sealed[i] = (uint8_t)(255 - i);

    uint8_t buf[TW_MAX_PAYLOAD];
    int n = tw_encode_login(&m, buf, sizeof buf);
    assert_int_equal(n, 1 + 2 + 4 + 8 + TW_TOKEN_NONCE_BYTES +
                            TW_TOKEN_SEALED_BYTES);
    assert_int_equal(buf[0], TW_MSG_LOGIN);

    struct tw_msg_login d;
    memset(&d, 0, sizeof d);
    assert_int_equal(tw_decode_login(buf, (size_t)n, &d), TW_OK);
    assert_int_equal(d.protocol, m.protocol);
    assert_int_equal(d.match_id, m.match_id);
    assert_int_equal(d.expires_at, m.expires_at);
    assert_memory_equal(d.nonce, m.nonce, sizeof m.nonce);
    assert_memory_equal(d.sealed, m.sealed, sizeof m.sealed);

    check_framing(decode_login, buf, (size_t)n);
    CHECK_SMALL_CAPS(tw_encode_login(&m, buf, c_), (size_t)n);
}

static struct tw_msg_login_ok valid_login_ok(void)
{
    struct tw_msg_login_ok m = {.slot = TW_MAX_SLOTS - 1,
                                .player_id = 0x0102030405060708ull,
                                .tick_hz = 60,
                                .server_tick = 123456,
                                .spawn = {12.5f, 0.0f},
                                .world = {1024.0f, 512.0f},
                                .max_speed = 8.0f};
    return m;
}

static void login_ok_round_trips(void **state)
{
    (void)state;
    struct tw_msg_login_ok m = valid_login_ok();
    uint8_t buf[TW_MAX_PAYLOAD];
    int n = tw_encode_login_ok(&m, buf, sizeof buf);
    assert_int_equal(n, 1 + 2 + 8 + 2 + 4 + 5 * 4);

    struct tw_msg_login_ok d;
    assert_int_equal(tw_decode_login_ok(buf, (size_t)n, &d), TW_OK);
    assert_int_equal(d.slot, m.slot);
    assert_int_equal(d.player_id, m.player_id);
    assert_int_equal(d.tick_hz, m.tick_hz);
    assert_int_equal(d.server_tick, m.server_tick);
    assert_true(d.spawn.x == m.spawn.x);
    assert_true(d.spawn.y == m.spawn.y);
    assert_true(d.world.x == m.world.x);
    assert_true(d.world.y == m.world.y);
    assert_true(d.max_speed == m.max_speed);

    check_framing(decode_login_ok, buf, (size_t)n);
    CHECK_SMALL_CAPS(tw_encode_login_ok(&m, buf, c_), (size_t)n);
}

static void expect_login_ok_malformed(struct tw_msg_login_ok m,
                                      const char *what)
{
    uint8_t buf[TW_MAX_PAYLOAD];
    int n = tw_encode_login_ok(&m, buf, sizeof buf);
    assert_true(n > 0);
    struct tw_msg_login_ok d;
    int rc = tw_decode_login_ok(buf, (size_t)n, &d);
    if (rc != -TW_DROP_MALFORMED)
        fail_msg("%s: got %d, expected malformed", what, rc);
}

static void login_ok_rejects_bad_ranges(void **state)
{
    (void)state;
    struct tw_msg_login_ok m = valid_login_ok();
    m.slot = TW_MAX_SLOTS;
    expect_login_ok_malformed(m, "slot 4096");

    m = valid_login_ok();
    m.tick_hz = 0;
    expect_login_ok_malformed(m, "tick_hz 0");

    m = valid_login_ok();
    m.spawn.x = NAN;
    expect_login_ok_malformed(m, "spawn NaN");

    m = valid_login_ok();
    m.spawn.y = INFINITY;
    expect_login_ok_malformed(m, "spawn infinite");

    m = valid_login_ok();
    m.world.x = 0.0f;
    expect_login_ok_malformed(m, "world width 0");

    m = valid_login_ok();
    m.world.y = -5.0f;
    expect_login_ok_malformed(m, "world height negative");

    m = valid_login_ok();
    m.world.x = INFINITY;
    expect_login_ok_malformed(m, "world infinite");

    m = valid_login_ok();
    m.max_speed = NAN;
    expect_login_ok_malformed(m, "max_speed NaN");

    m = valid_login_ok();
    m.max_speed = -1.0f;
    expect_login_ok_malformed(m, "max_speed negative");
}

static void error_round_trips(void **state)
{
    (void)state;
    struct tw_msg_error m = {.request_id = 0xabcdef01u, .code = 0xfe};
    uint8_t buf[16];
    int n = tw_encode_error(&m, buf, sizeof buf);
    assert_int_equal(n, 6);
    struct tw_msg_error d;
    assert_int_equal(tw_decode_error(buf, (size_t)n, &d), TW_OK);
    assert_int_equal(d.request_id, m.request_id);
    assert_int_equal(d.code, m.code);
    check_framing(decode_error, buf, (size_t)n);
    CHECK_SMALL_CAPS(tw_encode_error(&m, buf, c_), (size_t)n);
}

static void event_round_trips(void **state)
{
    (void)state;
    struct tw_msg_event m = {.seq = UINT32_MAX, .server_ms = UINT64_MAX - 1};
    uint8_t buf[16];
    int n = tw_encode_event(&m, buf, sizeof buf);
    assert_int_equal(n, 13);
    struct tw_msg_event d;
    assert_int_equal(tw_decode_event(buf, (size_t)n, &d), TW_OK);
    assert_int_equal(d.seq, m.seq);
    assert_int_equal(d.server_ms, m.server_ms);
    check_framing(decode_event, buf, (size_t)n);
    CHECK_SMALL_CAPS(tw_encode_event(&m, buf, c_), (size_t)n);
}

static void ping_and_pong_round_trip(void **state)
{
    (void)state;
    struct tw_msg_ping m = {.id = 77, .client_ns = 0x8000000000000001ull};
    uint8_t buf[16];
    struct tw_msg_ping d;

    int n = tw_encode_ping(TW_MSG_PING, &m, buf, sizeof buf);
    assert_int_equal(n, 13);
    assert_int_equal(buf[0], TW_MSG_PING);
    assert_int_equal(tw_decode_ping(TW_MSG_PING, buf, (size_t)n, &d), TW_OK);
    assert_int_equal(d.id, m.id);
    assert_int_equal(d.client_ns, m.client_ns);
    /* A ping is not a pong. */
    assert_int_equal(tw_decode_ping(TW_MSG_PONG, buf, (size_t)n, &d),
                     -TW_DROP_MALFORMED);
    check_framing(decode_ping, buf, (size_t)n);
    CHECK_SMALL_CAPS(tw_encode_ping(TW_MSG_PING, &m, buf, c_), (size_t)n);

    n = tw_encode_ping(TW_MSG_PONG, &m, buf, sizeof buf);
    assert_int_equal(n, 13);
    assert_int_equal(buf[0], TW_MSG_PONG);
    assert_int_equal(tw_decode_ping(TW_MSG_PONG, buf, (size_t)n, &d), TW_OK);
    assert_int_equal(d.client_ns, m.client_ns);
    check_framing(decode_pong, buf, (size_t)n);
}

static void match_end_round_trips(void **state)
{
    (void)state;
    uint8_t buf[4];
    struct tw_msg_match_end d;
    for (uint8_t reason = 0; reason < TW_REASON_COUNT; reason++) {
        struct tw_msg_match_end m = {.reason = reason};
        int n = tw_encode_match_end(&m, buf, sizeof buf);
        assert_int_equal(n, 2);
        assert_int_equal(tw_decode_match_end(buf, (size_t)n, &d), TW_OK);
        assert_int_equal(d.reason, reason);
    }
    struct tw_msg_match_end m = {.reason = TW_REASON_MATCH_ENDED};
    int n = tw_encode_match_end(&m, buf, sizeof buf);
    check_framing(decode_match_end, buf, (size_t)n);
    CHECK_SMALL_CAPS(tw_encode_match_end(&m, buf, c_), (size_t)n);
}

static void match_end_rejects_unknown_reason(void **state)
{
    (void)state;
    const uint8_t bad[] = {TW_MSG_MATCH_END, TW_REASON_COUNT};
    const uint8_t worst[] = {TW_MSG_MATCH_END, 0xff};
    struct tw_msg_match_end d;
    assert_int_equal(tw_decode_match_end(bad, sizeof bad, &d),
                     -TW_DROP_MALFORMED);
    assert_int_equal(tw_decode_match_end(worst, sizeof worst, &d),
                     -TW_DROP_MALFORMED);
}

static void input_round_trips_every_count(void **state)
{
    (void)state;
    for (uint8_t count = 1; count <= TW_INPUT_REDUNDANCY; count++) {
        struct tw_msg_input m = {.newest_seq = 1000 + count,
                                 .ack_snapshot = 0xfffffff0u,
                                 .count = count};
        for (unsigned i = 0; i < count; i++) {
            m.inputs[i].dx = (int8_t)(i % 2 ? -127 : 127);
            m.inputs[i].dy = (int8_t)(i * 30 - 40);
        }
        uint8_t buf[32];
        int n = tw_encode_input(&m, buf, sizeof buf);
        /* 8 + 32 + 32 + 2 bits, then 16 bits per input, rounded up. */
        assert_int_equal(n, (74 + 16 * count + 7) / 8);

        struct tw_msg_input d;
        memset(&d, 0, sizeof d);
        assert_int_equal(tw_decode_input(buf, (size_t)n, &d), TW_OK);
        assert_int_equal(d.newest_seq, m.newest_seq);
        assert_int_equal(d.ack_snapshot, m.ack_snapshot);
        assert_int_equal(d.count, count);
        for (unsigned i = 0; i < count; i++) {
            assert_int_equal(d.inputs[i].dx, m.inputs[i].dx);
            assert_int_equal(d.inputs[i].dy, m.inputs[i].dy);
        }
        check_framing(decode_input, buf, (size_t)n);
        CHECK_SMALL_CAPS(tw_encode_input(&m, buf, c_), (size_t)n);
    }
}

static void input_encoder_rejects_bad_fields(void **state)
{
    (void)state;
    uint8_t buf[32];
    struct tw_msg_input m = {.newest_seq = 10, .count = 0};
    assert_int_equal(tw_encode_input(&m, buf, sizeof buf), -TW_DROP_MALFORMED);
    m.count = TW_INPUT_REDUNDANCY + 1;
    assert_int_equal(tw_encode_input(&m, buf, sizeof buf), -TW_DROP_MALFORMED);

    /* Anything the decoder rejects must not be encoded either. */
    m.count = 1;
    m.inputs[0].dx = INT8_MIN;
    assert_int_equal(tw_encode_input(&m, buf, sizeof buf), -TW_DROP_MALFORMED);
    m.inputs[0].dx = 0;
    m.inputs[0].dy = INT8_MIN;
    assert_int_equal(tw_encode_input(&m, buf, sizeof buf), -TW_DROP_MALFORMED);
    m.inputs[0].dy = 0;
    m.count = 3;
    m.newest_seq = 1;
    assert_int_equal(tw_encode_input(&m, buf, sizeof buf), -TW_DROP_MALFORMED);
}

/* Writes an input message bit by bit, bypassing the encoder's checks. */
static size_t raw_input(uint8_t *buf, size_t cap, uint32_t seq,
                        unsigned count, int8_t axis)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, buf, cap);
    tw_bw_u8(&w, TW_MSG_INPUT);
    tw_bw_u32(&w, seq);
    tw_bw_u32(&w, 0);
    tw_bw_bits(&w, count - 1, 2);
    for (unsigned i = 0; i < count; i++) {
        tw_bw_u8(&w, (uint8_t)axis);
        tw_bw_u8(&w, 0);
    }
    assert_false(w.error);
    return tw_bw_size(&w);
}

static void input_decoder_rejects_bad_ranges(void **state)
{
    (void)state;
    uint8_t buf[32];
    struct tw_msg_input d;

    size_t n = raw_input(buf, sizeof buf, 100, 1, 5);
    assert_int_equal(tw_decode_input(buf, n, &d), TW_OK);
    assert_int_equal(d.inputs[0].dx, 5);

    n = raw_input(buf, sizeof buf, 100, 1, INT8_MIN);
    assert_int_equal(tw_decode_input(buf, n, &d), -TW_DROP_MALFORMED);
    n = raw_input(buf, sizeof buf, 100, 4, INT8_MIN);
    assert_int_equal(tw_decode_input(buf, n, &d), -TW_DROP_MALFORMED);

    /* Two inputs ending at sequence 0 would name input -1. */
    n = raw_input(buf, sizeof buf, 0, 2, 5);
    assert_int_equal(tw_decode_input(buf, n, &d), -TW_DROP_MALFORMED);
    n = raw_input(buf, sizeof buf, 1, 2, 5);
    assert_int_equal(tw_decode_input(buf, n, &d), TW_OK);
    assert_int_equal(d.count, 2);
}

static void names_cover_every_value(void **state)
{
    (void)state;
    for (int i = 0; i < TW_DROP_COUNT; i++) {
        assert_non_null(tw_drop_name(i));
        assert_string_not_equal(tw_drop_name(i), "unknown");
        assert_string_equal(tw_drop_name(-i), tw_drop_name(i));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(tw_drop_name(i), tw_drop_name(j));
    }
    assert_string_equal(tw_drop_name(-TW_DROP_TRUNCATED), "truncated");
    assert_string_equal(tw_drop_name(TW_DROP_COUNT), "unknown");
    assert_string_equal(tw_drop_name(-TW_DROP_COUNT), "unknown");

    for (uint32_t i = 0; i < TW_REASON_COUNT; i++) {
        assert_non_null(tw_reason_name(i));
        assert_string_not_equal(tw_reason_name(i), "unknown");
        for (uint32_t j = 0; j < i; j++)
            assert_string_not_equal(tw_reason_name(i), tw_reason_name(j));
    }
    assert_string_equal(tw_reason_name(TW_REASON_COUNT), "unknown");
    assert_string_equal(tw_reason_name(UINT32_MAX), "unknown");
}

static void float_bits_are_ieee754(void **state)
{
    (void)state;
    assert_int_equal(tw_float_bits(1.0f), 0x3f800000u);
    assert_int_equal(tw_float_bits(-2.5f), 0xc0200000u);
    assert_true(tw_bits_float(0x3f800000u) == 1.0f);
    assert_true(isnan(tw_bits_float(0x7fc00000u)));
    assert_int_equal(tw_float_bits(tw_bits_float(0x7f800001u)), 0x7f800001u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(login_round_trips),
        cmocka_unit_test(login_ok_round_trips),
        cmocka_unit_test(login_ok_rejects_bad_ranges),
        cmocka_unit_test(error_round_trips),
        cmocka_unit_test(event_round_trips),
        cmocka_unit_test(ping_and_pong_round_trip),
        cmocka_unit_test(match_end_round_trips),
        cmocka_unit_test(match_end_rejects_unknown_reason),
        cmocka_unit_test(input_round_trips_every_count),
        cmocka_unit_test(input_encoder_rejects_bad_fields),
        cmocka_unit_test(input_decoder_rejects_bad_ranges),
        cmocka_unit_test(names_cover_every_value),
        cmocka_unit_test(float_bits_are_ieee754),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
