/*
 * Wire protocol: channels, message ids, drop and disconnect reasons, and the
 * encoders and decoders of every message. docs/PROTOCOL.md is the byte-level
 * description; keep the two in step.
 *
 * Every payload starts with a one-byte message id. Decoders take the whole
 * payload (id included), check the id, every length and every range, and
 * return TW_OK or a negative enum tw_drop value; they never read past len.
 */
#ifndef TW_PROTOCOL_H
#define TW_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TW_PROTOCOL_VERSION 1u
#define TW_OK 0

/* Largest plaintext payload: sealed, it stays under one ENet MTU. */
#define TW_MAX_PAYLOAD 1200u
#define TW_NAME_MAX 31u
#define TW_INPUT_REDUNDANCY 4u /* inputs repeated in each input packet */
#define TW_MAX_SLOTS 4096u     /* ENet's peer-id ceiling, a 12-bit slot */
#define TW_POS_SCALE 16.0f     /* quantization steps per world unit */

enum tw_channel {
    TW_CH_RELIABLE = 0, /* reliable, ordered: login, events, trade, errors */
    TW_CH_SNAPSHOT = 1, /* unreliable, sequenced: server to client */
    TW_CH_INPUT = 2,    /* unreliable, unsequenced: client to server */
    TW_CHANNEL_COUNT = 3
};

enum tw_msg_id {
    TW_MSG_LOGIN = 0x01,     /* c2s, ch0, the only plaintext message */
    TW_MSG_LOGIN_OK = 0x02,  /* s2c, ch0 */
    TW_MSG_ERROR = 0x03,     /* s2c, ch0: reply to a failed request */
    TW_MSG_EVENT = 0x04,     /* s2c, ch0: numbered event, one per second */
    TW_MSG_PING = 0x05,      /* c2s, ch0: reliable round-trip probe */
    TW_MSG_PONG = 0x06,      /* s2c, ch0 */
    TW_MSG_MATCH_END = 0x07, /* s2c, ch0 */
    TW_MSG_SNAPSHOT = 0x40,  /* s2c, ch1 */
    TW_MSG_INPUT = 0x60,     /* c2s, ch2 */
};

/* Reason a packet was dropped; each value has its own counter. */
enum tw_drop {
    TW_DROP_NONE = 0,
    TW_DROP_EMPTY,
    TW_DROP_UNKNOWN_ID,
    TW_DROP_TRUNCATED,
    TW_DROP_OVERSIZED,
    TW_DROP_MALFORMED,
    TW_DROP_WRONG_STATE,
    TW_DROP_WRONG_CHANNEL,
    TW_DROP_BAD_SEAL,
    TW_DROP_REPLAYED,
    TW_DROP_RATE_LIMITED,
    TW_DROP_BAD_DATAGRAM, /* rejected by the raw datagram check */
    TW_DROP_COUNT
};

/* Reason a peer was refused or disconnected, sent as ENet's disconnect data. */
enum tw_reason {
    TW_REASON_NONE = 0,
    TW_REASON_SHUTDOWN,
    TW_REASON_VERSION_MISMATCH,
    TW_REASON_BAD_TOKEN,
    TW_REASON_TOKEN_EXPIRED,
    TW_REASON_WRONG_MATCH,
    TW_REASON_TOKEN_REUSED,
    TW_REASON_SERVER_FULL,
    TW_REASON_LOGIN_TIMEOUT,
    TW_REASON_RATE_LIMIT,
    TW_REASON_REPLACED,
    TW_REASON_MATCH_ENDED,
    TW_REASON_CLOCK_SKEW,
    TW_REASON_PROTOCOL_ERROR,
    TW_REASON_TOO_MANY_FROM_IP,
    TW_REASON_CLIENT_LEFT,
    TW_REASON_TOKEN_PREDATES_SERVER,
    TW_REASON_COUNT
};

/* Returns a stable lowercase name, e.g. "truncated"; "unknown" past range. */
const char *tw_drop_name(int drop);
const char *tw_reason_name(uint32_t reason);

struct tw_vec2 {
    float x, y;
};

/* Login: the sealed private part of a connect token, see crypto.h. */
#define TW_TOKEN_NONCE_BYTES 24u
#define TW_TOKEN_SEALED_BYTES 140u
struct tw_msg_login {
    uint16_t protocol;
    uint32_t match_id;
    uint64_t expires_at; /* Unix seconds */
    uint8_t nonce[TW_TOKEN_NONCE_BYTES];
    uint8_t sealed[TW_TOKEN_SEALED_BYTES];
};

struct tw_msg_login_ok {
    uint16_t slot;
    uint64_t player_id;
    uint16_t tick_hz;
    uint32_t server_tick;
    struct tw_vec2 spawn;
    struct tw_vec2 world; /* width and height; positions are 0..world */
    float max_speed;      /* units per second */
};

struct tw_msg_error {
    uint32_t request_id;
    uint8_t code;
};

struct tw_msg_event {
    uint32_t seq;
    uint64_t server_ms;
};

struct tw_msg_ping {
    uint32_t id;
    uint64_t client_ns; /* echoed unchanged in the pong */
};

struct tw_msg_match_end {
    uint8_t reason; /* enum tw_reason */
};

/* One tick of movement: a direction scaled to -127..127 on each axis. */
struct tw_input {
    int8_t dx, dy;
};

struct tw_msg_input {
    uint32_t newest_seq;      /* sequence of inputs[0]; older ones follow */
    uint32_t ack_snapshot;    /* newest snapshot tick the client has */
    uint8_t count;            /* 1..TW_INPUT_REDUNDANCY */
    struct tw_input inputs[TW_INPUT_REDUNDANCY];
};

int tw_encode_login(const struct tw_msg_login *m, uint8_t *out, size_t cap);
int tw_decode_login(const uint8_t *p, size_t len, struct tw_msg_login *m)
    __attribute__((warn_unused_result));

int tw_encode_login_ok(const struct tw_msg_login_ok *m, uint8_t *out,
                       size_t cap);
int tw_decode_login_ok(const uint8_t *p, size_t len, struct tw_msg_login_ok *m)
    __attribute__((warn_unused_result));

int tw_encode_error(const struct tw_msg_error *m, uint8_t *out, size_t cap);
int tw_decode_error(const uint8_t *p, size_t len, struct tw_msg_error *m)
    __attribute__((warn_unused_result));

int tw_encode_event(const struct tw_msg_event *m, uint8_t *out, size_t cap);
int tw_decode_event(const uint8_t *p, size_t len, struct tw_msg_event *m)
    __attribute__((warn_unused_result));

/* Ping and pong share a layout; only the id byte differs. */
int tw_encode_ping(uint8_t id, const struct tw_msg_ping *m, uint8_t *out,
                   size_t cap);
int tw_decode_ping(uint8_t id, const uint8_t *p, size_t len,
                   struct tw_msg_ping *m) __attribute__((warn_unused_result));

int tw_encode_match_end(const struct tw_msg_match_end *m, uint8_t *out,
                        size_t cap);
int tw_decode_match_end(const uint8_t *p, size_t len,
                        struct tw_msg_match_end *m)
    __attribute__((warn_unused_result));

int tw_encode_input(const struct tw_msg_input *m, uint8_t *out, size_t cap);
int tw_decode_input(const uint8_t *p, size_t len, struct tw_msg_input *m)
    __attribute__((warn_unused_result));

/*
 * Encoders return the number of bytes written, or -TW_DROP_OVERSIZED when
 * the message does not fit in cap. The input encoder returns
 * -TW_DROP_MALFORMED for fields its decoder would reject. Snapshots live in
 * snapshot.h.
 */

/* Stores a float bit-for-bit as uint32 (IEEE 754 on every supported host). */
uint32_t tw_float_bits(float f);
float tw_bits_float(uint32_t u);

#endif
