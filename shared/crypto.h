/*
 * Connect tokens, match keys and per-packet AEAD, all on libsodium.
 *
 * A token's private part is sealed with XChaCha20-Poly1305 under the match
 * key; the associated data binds the protocol version, the match id and the
 * expiry, which also travel in the clear. After login every payload is
 * sealed with ChaCha20-Poly1305 (IETF) under the session key of its
 * direction. The 96-bit nonce is the channel byte, three zero bytes and a
 * 64-bit counter that each (direction, channel) keeps, so no nonce repeats
 * under one key. Receivers keep a replay window per channel.
 *
 * Functions return TW_OK (0) or a negative value; sealing and opening
 * return -TW_DROP_* codes so the caller can count the reason.
 */
#ifndef TW_CRYPTO_H
#define TW_CRYPTO_H

#include "protocol.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TW_KEY_BYTES 32u
#define TW_TAG_BYTES 16u
#define TW_COUNTER_BYTES 8u
#define TW_SEAL_OVERHEAD (TW_COUNTER_BYTES + TW_TAG_BYTES)
#define TW_REPLAY_WINDOW 256u /* counters remembered behind the newest */
#define TW_TOKEN_FORMAT "tickwire-token-1"

/* Initializes libsodium; returns TW_OK or -1. Safe to call repeatedly. */
int tw_crypto_init(void) __attribute__((warn_unused_result));

/* The part only the server can read, sealed inside the token. */
struct tw_token_private {
    uint64_t player_id;
    char name[TW_NAME_MAX + 1]; /* NUL-terminated, printable ASCII */
    uint32_t match_id;
    uint64_t created_at; /* Unix seconds, issuer clock */
    uint64_t expires_at; /* Unix seconds */
    uint8_t c2s_key[TW_KEY_BYTES];
    uint8_t s2c_key[TW_KEY_BYTES];
};

/* What the client holds: its keys, plus the sealed part it forwards. */
struct tw_token {
    uint16_t protocol;
    uint32_t match_id;
    uint64_t player_id;
    char name[TW_NAME_MAX + 1];
    uint64_t created_at;
    uint64_t expires_at;
    uint8_t nonce[TW_TOKEN_NONCE_BYTES];
    uint8_t sealed[TW_TOKEN_SEALED_BYTES];
    uint8_t c2s_key[TW_KEY_BYTES];
    uint8_t s2c_key[TW_KEY_BYTES];
};

/*
 * Mints a token with fresh random session keys. name must be 1..31
 * printable ASCII bytes. Returns TW_OK, or -1 on a bad argument.
 */
int tw_token_issue(const uint8_t match_key[TW_KEY_BYTES], uint64_t player_id,
                   const char *name, uint32_t match_id, uint64_t now,
                   uint32_t ttl_s, struct tw_token *out)
    __attribute__((warn_unused_result));

/*
 * Opens the sealed part of a login. Returns TW_OK and fills out, or
 * -TW_DROP_BAD_SEAL (out wiped) when the seal, the associated data or the
 * decoded fields are invalid. It does not check expiry or match id.
 */
int tw_token_open(const uint8_t match_key[TW_KEY_BYTES],
                  const struct tw_msg_login *login,
                  struct tw_token_private *out)
    __attribute__((warn_unused_result));

/*
 * Checks an opened token against this server: match id, expiry and the
 * issuer's clock (created_at may be at most skew_s ahead of now).
 * Returns TW_REASON_NONE or the refusal reason.
 */
enum tw_reason tw_token_validate(const struct tw_token_private *t,
                                 const struct tw_msg_login *login,
                                 uint32_t match_id, uint64_t now,
                                 uint32_t skew_s);

/* Fills a login message from a token. */
void tw_token_to_login(const struct tw_token *t, struct tw_msg_login *out);

/*
 * JSON form of a token (format TW_TOKEN_FORMAT, binary fields in base64).
 * tw_token_to_json returns a malloc'd string or NULL. tw_token_from_json
 * returns TW_OK, or -1 with a one-line reason in err.
 */
char *tw_token_to_json(const struct tw_token *t);
int tw_token_from_json(const char *text, size_t len, struct tw_token *out,
                       char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Match key files: exactly 32 raw bytes. tw_key_generate writes a fresh key
 * with mode 0600 and fails when the file exists. tw_key_load refuses a file
 * of another size. Both return TW_OK or -1 with a reason in err.
 */
int tw_key_generate(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int tw_key_load(const char *path, uint8_t key[TW_KEY_BYTES], char *err,
                size_t errlen) __attribute__((warn_unused_result));

/*
 * Sliding replay window: accepts each counter once, rejects counters more
 * than TW_REPLAY_WINDOW - 1 behind the newest accepted one.
 */
struct tw_replay {
    uint64_t newest;
    bool any; /* false until the first counter is accepted */
    uint64_t seen[TW_REPLAY_WINDOW / 64];
};

void tw_replay_init(struct tw_replay *w);
/* Returns true when counter has not been seen and is not too old. */
bool tw_replay_check(const struct tw_replay *w, uint64_t counter);
/* Records counter as seen; call only after the packet opened. */
void tw_replay_accept(struct tw_replay *w, uint64_t counter);

/* One direction of a session: key, next send counter, receive windows. */
struct tw_cipher {
    uint8_t key[TW_KEY_BYTES];
    uint32_t match_id;
    uint8_t direction; /* 0 client to server, 1 server to client */
    uint64_t next_counter[TW_CHANNEL_COUNT];
    struct tw_replay replay[TW_CHANNEL_COUNT];
};

#define TW_DIR_C2S 0u
#define TW_DIR_S2C 1u

void tw_cipher_init(struct tw_cipher *c, const uint8_t key[TW_KEY_BYTES],
                    uint32_t match_id, uint8_t direction);
/* Wipes the key and counters (sodium_memzero). */
void tw_cipher_wipe(struct tw_cipher *c);

/*
 * Seals plain into out (cap must be >= len + TW_SEAL_OVERHEAD) and advances
 * the channel's counter. Returns the sealed size, or a negative code when
 * the counter is exhausted or cap is too small.
 */
int tw_seal(struct tw_cipher *c, uint8_t channel, const uint8_t *plain,
            size_t len, uint8_t *out, size_t cap)
    __attribute__((warn_unused_result));

/*
 * Opens a sealed packet into plain (cap >= len - TW_SEAL_OVERHEAD). Returns
 * the plaintext size, -TW_DROP_REPLAYED, -TW_DROP_BAD_SEAL or
 * -TW_DROP_TRUNCATED. On any failure plain must not be used and the replay
 * window is unchanged.
 */
int tw_open(struct tw_cipher *c, uint8_t channel, const uint8_t *packet,
            size_t len, uint8_t *plain, size_t cap)
    __attribute__((warn_unused_result));

#endif
