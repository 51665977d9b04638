/*
 * Every message decoder of protocol.h, snapshot.h and trade_msgs.h. The
 * first byte picks
 * the decoder; the rest is the payload. A message that decodes must encode
 * again and decode to the same value.
 */
#include "fuzz.h"

#include "protocol.h"
#include "snapshot.h"
#include "trade_msgs.h"

#include <string.h>

enum decoder {
    DEC_LOGIN,
    DEC_LOGIN_OK,
    DEC_ERROR,
    DEC_EVENT,
    DEC_PING,
    DEC_PONG,
    DEC_MATCH_END,
    DEC_INPUT,
    DEC_SNAPSHOT,
    DEC_TRADE_REQUEST,
    DEC_TRADE_RESPOND,
    DEC_TRADE_OFFER,
    DEC_TRADE_CONFIRM,
    DEC_TRADE_CANCEL,
    DEC_TRADE_UPDATE,
    DEC_TRADE_RESULT,
    DEC_INVENTORY,
    DEC_COUNT
};

/* Decodes p, and when it is valid checks decode(encode(m)) == m. */
#define ROUND_TRIP(type, decode, encode)                                       \
    do {                                                                       \
        static type a, b;                                                      \
        memset(&a, 0, sizeof a);                                               \
        memset(&b, 0, sizeof b);                                               \
        if (decode(p, len, &a) != TW_OK)                                       \
            break;                                                             \
        int n = encode(&a, out, sizeof out);                                   \
        FUZZ_REQUIRE(n > 0);                                                   \
        FUZZ_REQUIRE(decode(out, (size_t)n, &b) == TW_OK);                     \
        FUZZ_REQUIRE(memcmp(&a, &b, sizeof a) == 0);                           \
    } while (0)

static int decode_ping(const uint8_t *p, size_t len, struct tw_msg_ping *m)
{
    return tw_decode_ping(TW_MSG_PING, p, len, m);
}

static int encode_ping(const struct tw_msg_ping *m, uint8_t *out, size_t cap)
{
    return tw_encode_ping(TW_MSG_PING, m, out, cap);
}

static int decode_pong(const uint8_t *p, size_t len, struct tw_msg_ping *m)
{
    return tw_decode_ping(TW_MSG_PONG, p, len, m);
}

static int encode_pong(const struct tw_msg_ping *m, uint8_t *out, size_t cap)
{
    return tw_encode_ping(TW_MSG_PONG, m, out, cap);
}

/*
 * Snapshots, full or delta: 4 bytes of world size, then the message. A
 * delta is decoded against a fixed baseline given the tick it names.
 */
static void snapshot(const uint8_t *p, size_t len)
{
    static struct tw_msg_snapshot base, a, b;
    static uint8_t out[TW_MAX_PAYLOAD];
    if (len < 4)
        return;
    struct tw_vec2 world = {(float)(1 + (p[0] << 8 | p[1]) % 65535),
                            (float)(1 + (p[2] << 8 | p[3]) % 65535)};
    struct tw_quant q;
    tw_quant_init(&q, world);
    p += 4;
    len -= 4;

    struct tw_snap_header h;
    if (tw_snapshot_peek(p, len, &h) != TW_OK)
        return;
    const struct tw_msg_snapshot *with = NULL;
    if (h.base_tick != 0) {
        memset(&base, 0, sizeof base);
        base.tick = h.base_tick;
        base.count = 8;
        for (unsigned i = 0; i < base.count; i++)
            base.entities[i] = (struct tw_snap_entity){
                (uint16_t)(i * 3), i % (q.max_qx + 1), i % (q.max_qy + 1)};
        with = &base;
    }
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    if (tw_decode_snapshot(&q, with, p, len, &a) != TW_OK)
        return;
    FUZZ_REQUIRE(a.count <= TW_SNAPSHOT_MAX_ENTITIES);
    FUZZ_REQUIRE(a.tick == h.tick);

    /* Encoded in full again, it decodes to the same entities. */
    int n = tw_encode_snapshot(&q, NULL, &a, out, sizeof out);
    if (n == -TW_DROP_OVERSIZED)
        return; /* a delta may carry more entities than a full one fits */
    FUZZ_REQUIRE(n > 0);
    FUZZ_REQUIRE(tw_decode_snapshot(&q, NULL, out, (size_t)n, &b) == TW_OK);
    FUZZ_REQUIRE(a.count == b.count);
    FUZZ_REQUIRE(memcmp(a.entities, b.entities,
                        a.count * sizeof a.entities[0]) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[TW_MAX_PAYLOAD];
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t len = size - 1;

    switch (data[0] % DEC_COUNT) {
    case DEC_LOGIN:
        ROUND_TRIP(struct tw_msg_login, tw_decode_login, tw_encode_login);
        break;
    case DEC_LOGIN_OK:
        ROUND_TRIP(struct tw_msg_login_ok, tw_decode_login_ok,
                   tw_encode_login_ok);
        break;
    case DEC_ERROR:
        ROUND_TRIP(struct tw_msg_error, tw_decode_error, tw_encode_error);
        break;
    case DEC_EVENT:
        ROUND_TRIP(struct tw_msg_event, tw_decode_event, tw_encode_event);
        break;
    case DEC_PING:
        ROUND_TRIP(struct tw_msg_ping, decode_ping, encode_ping);
        break;
    case DEC_PONG:
        ROUND_TRIP(struct tw_msg_ping, decode_pong, encode_pong);
        break;
    case DEC_MATCH_END:
        ROUND_TRIP(struct tw_msg_match_end, tw_decode_match_end,
                   tw_encode_match_end);
        break;
    case DEC_INPUT:
        ROUND_TRIP(struct tw_msg_input, tw_decode_input, tw_encode_input);
        break;
    case DEC_SNAPSHOT:
        snapshot(p, len);
        break;
    case DEC_TRADE_REQUEST:
        ROUND_TRIP(struct tw_msg_trade_request, tw_decode_trade_request,
                   tw_encode_trade_request);
        break;
    case DEC_TRADE_RESPOND:
        ROUND_TRIP(struct tw_msg_trade_respond, tw_decode_trade_respond,
                   tw_encode_trade_respond);
        break;
    case DEC_TRADE_OFFER:
        ROUND_TRIP(struct tw_msg_trade_offer, tw_decode_trade_offer,
                   tw_encode_trade_offer);
        break;
    case DEC_TRADE_CONFIRM:
        ROUND_TRIP(struct tw_msg_trade_confirm, tw_decode_trade_confirm,
                   tw_encode_trade_confirm);
        break;
    case DEC_TRADE_CANCEL:
        ROUND_TRIP(struct tw_msg_trade_cancel, tw_decode_trade_cancel,
                   tw_encode_trade_cancel);
        break;
    case DEC_TRADE_UPDATE:
        ROUND_TRIP(struct tw_msg_trade_update, tw_decode_trade_update,
                   tw_encode_trade_update);
        break;
    case DEC_TRADE_RESULT:
        ROUND_TRIP(struct tw_msg_trade_result, tw_decode_trade_result,
                   tw_encode_trade_result);
        break;
    case DEC_INVENTORY:
        ROUND_TRIP(struct tw_inventory, tw_decode_inventory,
                   tw_encode_inventory);
        break;
    }
    return 0;
}
