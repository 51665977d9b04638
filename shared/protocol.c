#include "protocol.h"

#include "bits.h"
#include "codec.h"

#include <math.h>
#include <string.h>

static const char *const drop_names[TW_DROP_COUNT] = {
    [TW_DROP_NONE] = "none",
    [TW_DROP_EMPTY] = "empty",
    [TW_DROP_UNKNOWN_ID] = "unknown_id",
    [TW_DROP_TRUNCATED] = "truncated",
    [TW_DROP_OVERSIZED] = "oversized",
    [TW_DROP_MALFORMED] = "malformed",
    [TW_DROP_WRONG_STATE] = "wrong_state",
    [TW_DROP_WRONG_CHANNEL] = "wrong_channel",
    [TW_DROP_BAD_SEAL] = "bad_seal",
    [TW_DROP_REPLAYED] = "replayed",
    [TW_DROP_RATE_LIMITED] = "rate_limited",
    [TW_DROP_BAD_DATAGRAM] = "bad_datagram",
};

static const char *const reason_names[TW_REASON_COUNT] = {
    [TW_REASON_NONE] = "none",
    [TW_REASON_SHUTDOWN] = "shutdown",
    [TW_REASON_VERSION_MISMATCH] = "version mismatch",
    [TW_REASON_BAD_TOKEN] = "bad token",
    [TW_REASON_TOKEN_EXPIRED] = "token expired",
    [TW_REASON_WRONG_MATCH] = "wrong match",
    [TW_REASON_TOKEN_REUSED] = "token reused",
    [TW_REASON_SERVER_FULL] = "server full",
    [TW_REASON_LOGIN_TIMEOUT] = "login timeout",
    [TW_REASON_RATE_LIMIT] = "rate limit exceeded",
    [TW_REASON_REPLACED] = "replaced by a newer login",
    [TW_REASON_MATCH_ENDED] = "match ended",
    [TW_REASON_CLOCK_SKEW] = "token issued in the future (clock skew)",
    [TW_REASON_PROTOCOL_ERROR] = "protocol error",
    [TW_REASON_TOO_MANY_FROM_IP] = "too many connections from this address",
    [TW_REASON_CLIENT_LEFT] = "client left",
    [TW_REASON_TOKEN_PREDATES_SERVER] =
        "token issued before the server started",
};

const char *tw_drop_name(int drop)
{
    if (drop < 0)
        drop = -drop;
    if (drop >= TW_DROP_COUNT)
        return "unknown";
    return drop_names[drop];
}

const char *tw_reason_name(uint32_t reason)
{
    if (reason >= TW_REASON_COUNT)
        return "unknown";
    return reason_names[reason];
}

uint32_t tw_float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float tw_bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int tw_codec_finish_write(const struct tw_bitwriter *w)
{
    if (w->error)
        return -TW_DROP_OVERSIZED;
    return (int)tw_bw_size(w);
}

int tw_codec_finish_read(const struct tw_bitreader *r)
{
    if (r->error)
        return -TW_DROP_TRUNCATED;
    if (!tw_br_at_end(r))
        return -TW_DROP_OVERSIZED;
    return TW_OK;
}

/* A wrong id byte is a dispatch bug or a forged payload. */
int tw_codec_start_read(struct tw_bitreader *r, const uint8_t *p, size_t len,
                        uint8_t id)
{
    if (len == 0)
        return -TW_DROP_EMPTY;
    if (len > TW_MAX_PAYLOAD)
        return -TW_DROP_OVERSIZED;
    tw_br_init(r, p, len);
    if (tw_br_u8(r) != id)
        return -TW_DROP_MALFORMED;
    return TW_OK;
}

static bool finite_vec(struct tw_vec2 v)
{
    return isfinite(v.x) && isfinite(v.y);
}

int tw_encode_login(const struct tw_msg_login *m, uint8_t *out, size_t cap)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_LOGIN);
    tw_bw_u16(&w, m->protocol);
    tw_bw_u32(&w, m->match_id);
    tw_bw_u64(&w, m->expires_at);
    tw_bw_bytes(&w, m->nonce, sizeof m->nonce);
    tw_bw_bytes(&w, m->sealed, sizeof m->sealed);
    return tw_codec_finish_write(&w);
}

int tw_decode_login(const uint8_t *p, size_t len, struct tw_msg_login *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_LOGIN);
    if (rc != TW_OK)
        return rc;
    m->protocol = tw_br_u16(&r);
    m->match_id = tw_br_u32(&r);
    m->expires_at = tw_br_u64(&r);
    tw_br_bytes(&r, m->nonce, sizeof m->nonce);
    tw_br_bytes(&r, m->sealed, sizeof m->sealed);
    return tw_codec_finish_read(&r);
}

int tw_encode_login_ok(const struct tw_msg_login_ok *m, uint8_t *out,
                       size_t cap)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_LOGIN_OK);
    tw_bw_u16(&w, m->slot);
    tw_bw_u64(&w, m->player_id);
    tw_bw_u16(&w, m->tick_hz);
    tw_bw_u32(&w, m->server_tick);
    tw_bw_u32(&w, tw_float_bits(m->spawn.x));
    tw_bw_u32(&w, tw_float_bits(m->spawn.y));
    tw_bw_u32(&w, tw_float_bits(m->world.x));
    tw_bw_u32(&w, tw_float_bits(m->world.y));
    tw_bw_u32(&w, tw_float_bits(m->max_speed));
    return tw_codec_finish_write(&w);
}

int tw_decode_login_ok(const uint8_t *p, size_t len, struct tw_msg_login_ok *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_LOGIN_OK);
    if (rc != TW_OK)
        return rc;
    m->slot = tw_br_u16(&r);
    m->player_id = tw_br_u64(&r);
    m->tick_hz = tw_br_u16(&r);
    m->server_tick = tw_br_u32(&r);
    m->spawn.x = tw_bits_float(tw_br_u32(&r));
    m->spawn.y = tw_bits_float(tw_br_u32(&r));
    m->world.x = tw_bits_float(tw_br_u32(&r));
    m->world.y = tw_bits_float(tw_br_u32(&r));
    m->max_speed = tw_bits_float(tw_br_u32(&r));
    rc = tw_codec_finish_read(&r);
    if (rc != TW_OK)
        return rc;
    if (m->slot >= TW_MAX_SLOTS || m->tick_hz == 0 || !finite_vec(m->spawn) ||
        !finite_vec(m->world) || !(m->world.x > 0 && m->world.y > 0) ||
        !isfinite(m->max_speed) || m->max_speed < 0)
        return -TW_DROP_MALFORMED;
    return TW_OK;
}

int tw_encode_error(const struct tw_msg_error *m, uint8_t *out, size_t cap)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_ERROR);
    tw_bw_u32(&w, m->request_id);
    tw_bw_u8(&w, m->code);
    return tw_codec_finish_write(&w);
}

int tw_decode_error(const uint8_t *p, size_t len, struct tw_msg_error *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_ERROR);
    if (rc != TW_OK)
        return rc;
    m->request_id = tw_br_u32(&r);
    m->code = tw_br_u8(&r);
    return tw_codec_finish_read(&r);
}

int tw_encode_event(const struct tw_msg_event *m, uint8_t *out, size_t cap)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_EVENT);
    tw_bw_u32(&w, m->seq);
    tw_bw_u64(&w, m->server_ms);
    return tw_codec_finish_write(&w);
}

int tw_decode_event(const uint8_t *p, size_t len, struct tw_msg_event *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_EVENT);
    if (rc != TW_OK)
        return rc;
    m->seq = tw_br_u32(&r);
    m->server_ms = tw_br_u64(&r);
    return tw_codec_finish_read(&r);
}

int tw_encode_ping(uint8_t id, const struct tw_msg_ping *m, uint8_t *out,
                   size_t cap)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, id);
    tw_bw_u32(&w, m->id);
    tw_bw_u64(&w, m->client_ns);
    return tw_codec_finish_write(&w);
}

int tw_decode_ping(uint8_t id, const uint8_t *p, size_t len,
                   struct tw_msg_ping *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, id);
    if (rc != TW_OK)
        return rc;
    m->id = tw_br_u32(&r);
    m->client_ns = tw_br_u64(&r);
    return tw_codec_finish_read(&r);
}

int tw_encode_match_end(const struct tw_msg_match_end *m, uint8_t *out,
                        size_t cap)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_MATCH_END);
    tw_bw_u8(&w, m->reason);
    return tw_codec_finish_write(&w);
}

int tw_decode_match_end(const uint8_t *p, size_t len,
                        struct tw_msg_match_end *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_MATCH_END);
    if (rc != TW_OK)
        return rc;
    m->reason = tw_br_u8(&r);
    rc = tw_codec_finish_read(&r);
    if (rc == TW_OK && m->reason >= TW_REASON_COUNT)
        return -TW_DROP_MALFORMED;
    return rc;
}

/*
 * Checks the ranges the decoder enforces, so the encoder never produces a
 * message its peer would drop: -128 has no positive twin on an axis, and
 * the oldest input's sequence must not wrap below 0.
 */
static bool input_fields_valid(const struct tw_msg_input *m)
{
    if (m->count == 0 || m->count > TW_INPUT_REDUNDANCY)
        return false;
    for (unsigned i = 0; i < m->count; i++)
        if (m->inputs[i].dx == INT8_MIN || m->inputs[i].dy == INT8_MIN)
            return false;
    return m->newest_seq >= (uint32_t)m->count - 1u;
}

int tw_encode_input(const struct tw_msg_input *m, uint8_t *out, size_t cap)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    if (!input_fields_valid(m))
        return -TW_DROP_MALFORMED;
    tw_bw_u8(&w, TW_MSG_INPUT);
    tw_bw_u32(&w, m->newest_seq);
    tw_bw_u32(&w, m->ack_snapshot);
    tw_bw_bits(&w, m->count - 1u, 2);
    for (unsigned i = 0; i < m->count; i++) {
        tw_bw_bits(&w, (uint8_t)m->inputs[i].dx, 8);
        tw_bw_bits(&w, (uint8_t)m->inputs[i].dy, 8);
    }
    return tw_codec_finish_write(&w);
}

int tw_decode_input(const uint8_t *p, size_t len, struct tw_msg_input *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_INPUT);
    if (rc != TW_OK)
        return rc;
    m->newest_seq = tw_br_u32(&r);
    m->ack_snapshot = tw_br_u32(&r);
    m->count = (uint8_t)(tw_br_bits(&r, 2) + 1u);
    for (unsigned i = 0; i < m->count; i++) {
        m->inputs[i].dx = (int8_t)tw_br_bits(&r, 8);
        m->inputs[i].dy = (int8_t)tw_br_bits(&r, 8);
    }
    rc = tw_codec_finish_read(&r);
    if (rc != TW_OK)
        return rc;
    return input_fields_valid(m) ? TW_OK : -TW_DROP_MALFORMED;
}
