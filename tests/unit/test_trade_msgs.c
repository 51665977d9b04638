#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "trade_msgs.h"

#include <string.h>

typedef int (*decode_fn)(const uint8_t *p, size_t len, void *out);

/* Adapters so one helper can drive every decoder. */
#define ADAPT(name, type)                                                      \
    static int name##_any(const uint8_t *p, size_t len, void *out)             \
    {                                                                          \
        return tw_decode_##name(p, len, (type *)out);                          \
    }
ADAPT(trade_request, struct tw_msg_trade_request)
ADAPT(trade_respond, struct tw_msg_trade_respond)
ADAPT(trade_offer, struct tw_msg_trade_offer)
ADAPT(trade_confirm, struct tw_msg_trade_confirm)
ADAPT(trade_cancel, struct tw_msg_trade_cancel)
ADAPT(trade_update, struct tw_msg_trade_update)
ADAPT(trade_result, struct tw_msg_trade_result)
ADAPT(inventory, struct tw_inventory)

/*
 * Checks that every proper prefix is rejected as empty or truncated, one
 * extra byte as oversized, and a changed id byte as malformed.
 */
static void assert_framing(const uint8_t *buf, int len, decode_fn decode)
{
    union {
        struct tw_msg_trade_update u;
        struct tw_inventory inv;
        struct tw_msg_trade_offer o;
    } scratch;
    assert_true(len > 0);
    assert_int_equal(decode(buf, 0, &scratch), -TW_DROP_EMPTY);
    for (int cut = 1; cut < len; cut++)
        assert_int_equal(decode(buf, (size_t)cut, &scratch),
                         -TW_DROP_TRUNCATED);
    uint8_t longer[TW_MAX_PAYLOAD + 1];
    memcpy(longer, buf, (size_t)len);
    longer[len] = 0;
    assert_int_equal(decode(longer, (size_t)len + 1, &scratch),
                     -TW_DROP_OVERSIZED);
    longer[0] ^= 0x01;
    assert_int_equal(decode(longer, (size_t)len, &scratch),
                     -TW_DROP_MALFORMED);
}

static struct tw_trade_offer sample_offer(unsigned count)
{
    struct tw_trade_offer o = {.count = (uint8_t)count};
    for (unsigned i = 0; i < count; i++) {
        o.items[i].item_id = 0x1122334455667700ull + i;
        o.items[i].quantity = 1000u * (i + 1);
    }
    return o;
}

static void assert_offer_equal(const struct tw_trade_offer *x,
                               const struct tw_trade_offer *y)
{
    assert_int_equal(x->count, y->count);
    for (unsigned i = 0; i < x->count; i++) {
        assert_int_equal(x->items[i].item_id, y->items[i].item_id);
        assert_int_equal(x->items[i].quantity, y->items[i].quantity);
    }
}

static void request_round_trip(void **state)
{
    (void)state;
    struct tw_msg_trade_request in = {.request_id = 9,
                                      .partner = 0xfedcba9876543210ull};
    struct tw_msg_trade_request out;
    uint8_t buf[64];
    int n = tw_encode_trade_request(&in, buf, sizeof buf);
    assert_int_equal(n, 13);
    assert_int_equal(buf[0], TW_MSG_TRADE_REQUEST);
    assert_int_equal(tw_decode_trade_request(buf, (size_t)n, &out), TW_OK);
    assert_int_equal(out.request_id, 9);
    assert_int_equal(out.partner, in.partner);
    assert_framing(buf, n, trade_request_any);
    in.request_id = 0;
    n = tw_encode_trade_request(&in, buf, sizeof buf);
    assert_int_equal(tw_decode_trade_request(buf, (size_t)n, &out),
                     -TW_DROP_MALFORMED);
}

static void respond_round_trip(void **state)
{
    (void)state;
    struct tw_msg_trade_respond in = {.request_id = 1, .trade_id = 2,
                                      .accept = true};
    struct tw_msg_trade_respond out;
    uint8_t buf[64];
    int n = tw_encode_trade_respond(&in, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(tw_decode_trade_respond(buf, (size_t)n, &out), TW_OK);
    assert_true(out.accept);
    assert_int_equal(out.trade_id, 2);
    assert_framing(buf, n, trade_respond_any);
    buf[n - 1] = 2; /* accept is 0 or 1 */
    assert_int_equal(tw_decode_trade_respond(buf, (size_t)n, &out),
                     -TW_DROP_MALFORMED);
    in.trade_id = 0;
    n = tw_encode_trade_respond(&in, buf, sizeof buf);
    assert_int_equal(tw_decode_trade_respond(buf, (size_t)n, &out),
                     -TW_DROP_MALFORMED);
}

static void offer_round_trip(void **state)
{
    (void)state;
    struct tw_msg_trade_offer in = {.request_id = 5, .trade_id = 6,
                                    .offer = sample_offer(TW_TRADE_MAX_OFFER)};
    struct tw_msg_trade_offer out;
    uint8_t buf[TW_MAX_PAYLOAD];
    int n = tw_encode_trade_offer(&in, buf, sizeof buf);
    assert_int_equal(n, 1 + 4 + 4 + 1 + 12 * TW_TRADE_MAX_OFFER);
    assert_int_equal(tw_decode_trade_offer(buf, (size_t)n, &out), TW_OK);
    assert_offer_equal(&in.offer, &out.offer);
    assert_framing(buf, n, trade_offer_any);

    in.offer = sample_offer(0);
    n = tw_encode_trade_offer(&in, buf, sizeof buf);
    assert_int_equal(tw_decode_trade_offer(buf, (size_t)n, &out), TW_OK);
    assert_int_equal(out.offer.count, 0);
}

static void offer_limits_enforced(void **state)
{
    (void)state;
    struct tw_msg_trade_offer in = {.request_id = 5, .trade_id = 6,
                                    .offer = sample_offer(2)};
    struct tw_msg_trade_offer out;
    uint8_t buf[TW_MAX_PAYLOAD];
    int n = tw_encode_trade_offer(&in, buf, sizeof buf);
    assert_true(n > 0);
    /* Count byte claims 17 entries: rejected before reading them. */
    buf[9] = TW_TRADE_MAX_OFFER + 1;
    assert_int_equal(tw_decode_trade_offer(buf, (size_t)n, &out),
                     -TW_DROP_MALFORMED);
    assert_int_equal(out.offer.count, 0);

    /* A zero quantity, a zero id and a duplicate id are malformed. */
    struct tw_trade_offer bad[3] = {sample_offer(2), sample_offer(2),
                                    sample_offer(2)};
    bad[0].items[1].quantity = 0;
    bad[1].items[0].item_id = 0;
    bad[2].items[1].item_id = bad[2].items[0].item_id;
    for (int i = 0; i < 3; i++) {
        in.offer = bad[i];
        assert_int_equal(tw_encode_trade_offer(&in, buf, sizeof buf),
                         -TW_DROP_MALFORMED);
        in.offer = sample_offer(2);
        n = tw_encode_trade_offer(&in, buf, sizeof buf);
        /* Patch the encoded bytes to the bad entries. */
        for (unsigned k = 0; k < 2; k++) {
            uint8_t *e = buf + 10 + 12 * k;
            for (int b = 0; b < 8; b++)
                e[b] = (uint8_t)(bad[i].items[k].item_id >> (8 * b));
            for (int b = 0; b < 4; b++)
                e[8 + b] = (uint8_t)(bad[i].items[k].quantity >> (8 * b));
        }
        assert_int_equal(tw_decode_trade_offer(buf, (size_t)n, &out),
                         -TW_DROP_MALFORMED);
    }
}

static void confirm_and_cancel_round_trip(void **state)
{
    (void)state;
    struct tw_msg_trade_confirm c = {.request_id = 3, .trade_id = 4,
                                     .offer_version = 0xdeadbeef};
    struct tw_msg_trade_confirm c2;
    uint8_t buf[64];
    int n = tw_encode_trade_confirm(&c, buf, sizeof buf);
    assert_int_equal(n, 13);
    assert_int_equal(tw_decode_trade_confirm(buf, (size_t)n, &c2), TW_OK);
    assert_int_equal(c2.offer_version, 0xdeadbeef);
    assert_framing(buf, n, trade_confirm_any);

    struct tw_msg_trade_cancel x = {.request_id = 8, .trade_id = 9};
    struct tw_msg_trade_cancel x2;
    n = tw_encode_trade_cancel(&x, buf, sizeof buf);
    assert_int_equal(n, 9);
    assert_int_equal(tw_decode_trade_cancel(buf, (size_t)n, &x2), TW_OK);
    assert_int_equal(x2.request_id, 8);
    assert_int_equal(x2.trade_id, 9);
    assert_framing(buf, n, trade_cancel_any);
}

static void update_round_trip(void **state)
{
    (void)state;
    struct tw_msg_trade_update in = {
        .trade_id = 77,
        .state = TW_TRADE_OPEN,
        .a = 1,
        .b = 2,
        .offer_version = 12,
        .confirmed_a = false,
        .confirmed_b = true,
        .offer_a = sample_offer(TW_TRADE_MAX_OFFER),
        .offer_b = sample_offer(3),
    };
    struct tw_msg_trade_update out;
    uint8_t buf[TW_MAX_PAYLOAD];
    int n = tw_encode_trade_update(&in, buf, sizeof buf);
    assert_true(n > 0);
    assert_true((unsigned)n <= TW_MAX_PAYLOAD);
    assert_int_equal(tw_decode_trade_update(buf, (size_t)n, &out), TW_OK);
    assert_offer_equal(&in.offer_a, &out.offer_a);
    assert_offer_equal(&in.offer_b, &out.offer_b);
    assert_int_equal(out.state, TW_TRADE_OPEN);
    assert_false(out.confirmed_a);
    assert_true(out.confirmed_b);
    assert_int_equal(out.offer_version, 12);
    assert_framing(buf, n, trade_update_any);

    buf[5] = TW_TRADE_STATE_COUNT; /* the state byte */
    assert_int_equal(tw_decode_trade_update(buf, (size_t)n, &out),
                     -TW_DROP_MALFORMED);
    in.state = TW_TRADE_NONE;
    assert_int_equal(tw_encode_trade_update(&in, buf, sizeof buf),
                     -TW_DROP_MALFORMED);
}

static void result_round_trip(void **state)
{
    (void)state;
    struct tw_msg_trade_result in = {.request_id = 0, .trade_id = 5,
                                     .status = TW_TRADE_S_FAILED,
                                     .reason = TW_TRADE_R_PARTNER_LEFT};
    struct tw_msg_trade_result out;
    uint8_t buf[64];
    int n = tw_encode_trade_result(&in, buf, sizeof buf);
    assert_int_equal(n, 11);
    assert_int_equal(tw_decode_trade_result(buf, (size_t)n, &out), TW_OK);
    assert_int_equal(out.reason, TW_TRADE_R_PARTNER_LEFT);
    assert_int_equal(out.status, TW_TRADE_S_FAILED);
    assert_framing(buf, n, trade_result_any);
    buf[10] = TW_TRADE_R_COUNT;
    assert_int_equal(tw_decode_trade_result(buf, (size_t)n, &out),
                     -TW_DROP_MALFORMED);
    buf[10] = 0;
    buf[9] = TW_TRADE_S_COUNT;
    assert_int_equal(tw_decode_trade_result(buf, (size_t)n, &out),
                     -TW_DROP_MALFORMED);
}

static struct tw_inventory full_inventory(void)
{
    struct tw_inventory inv = {.player_id = 4, .count = TW_INVENTORY_MAX};
    for (unsigned i = 0; i < TW_INVENTORY_MAX; i++) {
        inv.items[i].item_id = 1000 + i;
        inv.items[i].quantity = 1 + i;
        /* The longest kind everywhere: the worst case for the size. */
        memset(inv.items[i].kind, 'a' + (int)(i % 26), TW_ITEM_KIND_MAX);
        inv.items[i].kind[TW_ITEM_KIND_MAX] = '\0';
    }
    return inv;
}

static void inventory_round_trip(void **state)
{
    (void)state;
    struct tw_inventory in = full_inventory();
    struct tw_inventory out;
    uint8_t buf[TW_MAX_PAYLOAD];
    int n = tw_encode_inventory(&in, buf, sizeof buf);
    assert_true(n > 0); /* the largest inventory fits one payload */
    assert_int_equal(tw_decode_inventory(buf, (size_t)n, &out), TW_OK);
    assert_int_equal(out.count, TW_INVENTORY_MAX);
    assert_int_equal(out.player_id, 0);
    for (unsigned i = 0; i < TW_INVENTORY_MAX; i++) {
        assert_int_equal(out.items[i].item_id, in.items[i].item_id);
        assert_int_equal(out.items[i].quantity, in.items[i].quantity);
        assert_string_equal(out.items[i].kind, in.items[i].kind);
    }
    assert_framing(buf, n, inventory_any);

    in.count = 1;
    strcpy(in.items[0].kind, "gold");
    n = tw_encode_inventory(&in, buf, sizeof buf);
    assert_int_equal(n, 1 + 1 + 8 + 4 + 1 + 4);
    assert_int_equal(tw_decode_inventory(buf, (size_t)n, &out), TW_OK);
    assert_string_equal(out.items[0].kind, "gold");
}

static void inventory_limits_enforced(void **state)
{
    (void)state;
    struct tw_inventory in = {.count = 1};
    in.items[0].item_id = 1;
    in.items[0].quantity = 1;
    strcpy(in.items[0].kind, "gem");
    struct tw_inventory out;
    uint8_t buf[64];
    int n = tw_encode_inventory(&in, buf, sizeof buf);
    assert_int_equal(n, 18);

    uint8_t bad[64];
    memcpy(bad, buf, sizeof bad);
    bad[1] = TW_INVENTORY_MAX + 1; /* count */
    assert_int_equal(tw_decode_inventory(bad, (size_t)n, &out),
                     -TW_DROP_MALFORMED);
    memcpy(bad, buf, sizeof bad);
    bad[14] = 0; /* kind length */
    assert_int_equal(tw_decode_inventory(bad, 15, &out), -TW_DROP_MALFORMED);
    bad[14] = TW_ITEM_KIND_MAX + 1;
    assert_int_equal(tw_decode_inventory(bad, (size_t)n, &out),
                     -TW_DROP_MALFORMED);
    memcpy(bad, buf, sizeof bad);
    bad[16] = ' '; /* not printable-without-space */
    assert_int_equal(tw_decode_inventory(bad, (size_t)n, &out),
                     -TW_DROP_MALFORMED);
    memcpy(bad, buf, sizeof bad);
    memset(bad + 10, 0, 4); /* quantity 0 */
    assert_int_equal(tw_decode_inventory(bad, (size_t)n, &out),
                     -TW_DROP_MALFORMED);

    in.items[0].quantity = 0;
    assert_int_equal(tw_encode_inventory(&in, buf, sizeof buf),
                     -TW_DROP_MALFORMED);
    in.items[0].quantity = 1;
    in.items[0].kind[0] = '\0';
    assert_int_equal(tw_encode_inventory(&in, buf, sizeof buf),
                     -TW_DROP_MALFORMED);
}

static void encoders_report_small_buffer(void **state)
{
    (void)state;
    uint8_t buf[8];
    struct tw_msg_trade_request r = {.request_id = 1, .partner = 2};
    assert_int_equal(tw_encode_trade_request(&r, buf, sizeof buf),
                     -TW_DROP_OVERSIZED);
    struct tw_inventory inv = full_inventory();
    uint8_t mid[200];
    assert_int_equal(tw_encode_inventory(&inv, mid, sizeof mid),
                     -TW_DROP_OVERSIZED);
}

static void oversized_payload_rejected(void **state)
{
    (void)state;
    static uint8_t big[TW_MAX_PAYLOAD + 1];
    big[0] = TW_MSG_INVENTORY;
    struct tw_inventory out;
    assert_int_equal(tw_decode_inventory(big, sizeof big, &out),
                     -TW_DROP_OVERSIZED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_round_trip),
        cmocka_unit_test(respond_round_trip),
        cmocka_unit_test(offer_round_trip),
        cmocka_unit_test(offer_limits_enforced),
        cmocka_unit_test(confirm_and_cancel_round_trip),
        cmocka_unit_test(update_round_trip),
        cmocka_unit_test(result_round_trip),
        cmocka_unit_test(inventory_round_trip),
        cmocka_unit_test(inventory_limits_enforced),
        cmocka_unit_test(encoders_report_small_buffer),
        cmocka_unit_test(oversized_payload_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
