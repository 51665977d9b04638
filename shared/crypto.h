/*
 * Connect tokens, match keys and per-packet AEAD, all on libsodium.
 *
 * A token's private part is sealed with XChaCha20-Poly1305 under the match
 * key; the associated data binds the protocol version, the match id and the
 * expiry, which also travel in the clear. After login every payload is
 * sealed with ChaCha20-Poly1305 (IETF) under the session key of its
 * direction. The 96-bit nonce is the channel byte, the direction byte, two
 * zero bytes and the 64-bit little-endian counter that each (direction,
 * channel) keeps, so no nonce repeats under one key. The associated data of
 * a packet is the protocol version (u16), the match id (u32), the direction
 * and the channel (u8 each), little-endian. Receivers keep a replay window
 * per channel. docs/SECURITY.md describes the wire form.
 *
 * Functions return TW_OK (0) or a negative value; sealing and opening
 * return -TW_DROP_* codes so the caller can count the reason. Call
 * tw_crypto_init once before any other function here.
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

/* Plaintext inside a token's seal, which adds one tag. */
#define TW_TOKEN_PLAIN_BYTES 124u
_Static_assert(TW_TOKEN_PLAIN_BYTES + TW_TAG_BYTES == TW_TOKEN_SEALED_BYTES,
               "token seal size");

/*
 * Largest integer a token carries (2^53 - 1). JSON numbers are doubles, and
 * 2^53 + 1 parses as 2^53, so 2^53 itself would be ambiguous.
 */
#define TW_JSON_INT_MAX 9007199254740991ull

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
 * Mints a token with fresh random session keys, created at now and expiring
 * at now + ttl_s. name must be 1..31 printable ASCII bytes, ttl_s at least
 * 1, and player_id and the expiry at most TW_JSON_INT_MAX, so every token
 * has a JSON form. Returns TW_OK, or -1 on a bad argument (out wiped).
 */
int tw_token_issue(const uint8_t match_key[TW_KEY_BYTES], uint64_t player_id,
                   const char *name, uint32_t match_id, uint64_t now,
                   uint32_t ttl_s, struct tw_token *out)
    __attribute__((warn_unused_result));

/*
 * Opens the sealed part of a login. The associated data is built from the
 * login's clear protocol, match id and expiry, and the decoded match id and
 * expiry must equal the clear ones. Returns TW_OK and fills out, or
 * -TW_DROP_BAD_SEAL (out wiped) when the seal, the associated data or the
 * decoded fields are invalid. It does not check expiry against a clock,
 * the match id against the server's, or the protocol version.
 */
int tw_token_open(const uint8_t match_key[TW_KEY_BYTES],
                  const struct tw_msg_login *login,
                  struct tw_token_private *out)
    __attribute__((warn_unused_result));

/*
 * Checks an opened token against this server, in this order: the login's
 * protocol (TW_REASON_VERSION_MISMATCH), the match id (WRONG_MATCH), the
 * expiry (TOKEN_EXPIRED once now >= expires_at) and the issuer's clock
 * (CLOCK_SKEW when created_at > now + skew_s). Returns TW_REASON_NONE or
 * the first reason that applies.
 */
enum tw_reason tw_token_validate(const struct tw_token_private *t,
                                 const struct tw_msg_login *login,
                                 uint32_t match_id, uint64_t now,
                                 uint32_t skew_s);

/* Fills a login message from a token. */
void tw_token_to_login(const struct tw_token *t, struct tw_msg_login *out);

/*
 * JSON form of a token (format TW_TOKEN_FORMAT, binary fields in base64,
 * original alphabet with padding). tw_token_to_json returns a malloc'd
 * string that contains the session keys, so release it with
 * tw_token_json_free. It returns NULL when a field is out of range (an integer above
 * TW_JSON_INT_MAX, an invalid name) or memory runs out.
 * tw_token_from_json checks every field and rejects unknown or repeated
 * keys. It returns TW_OK, or -1 with a one-line reason naming the field in
 * err and out wiped. text need not end in NUL.
 */
char *tw_token_to_json(const struct tw_token *t)
    __attribute__((warn_unused_result));
/* Wipes and frees a string from tw_token_to_json. NULL is a no-op. */
void tw_token_json_free(char *json);
int tw_token_from_json(const char *text, size_t len, struct tw_token *out,
                       char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Match key files: exactly 32 raw bytes. tw_key_generate writes a fresh key
 * with mode 0600 and fails when the path exists, even as a symlink.
 * tw_key_load rejects anything but a regular file of 32 bytes, and a file
 * that group or others may write (they could swap in their own key). A
 * file that group or others may read is loaded with a logged warning.
 * Both return TW_OK or -1 with a reason in err; on failure key is wiped.
 */
int tw_key_generate(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int tw_key_load(const char *path, uint8_t key[TW_KEY_BYTES], char *err,
                size_t errlen) __attribute__((warn_unused_result));

/*
 * Sliding replay window: accepts each counter once, rejects counters more
 * than TW_REPLAY_WINDOW - 1 behind the newest accepted one. A counter far
 * ahead is accepted and moves the window.
 */
struct tw_replay {
    uint64_t newest;
    bool any; /* false until the first counter is accepted */
    /* Bit (counter % TW_REPLAY_WINDOW) is set when counter was accepted. */
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
 * Starts every send counter at a random value below 2^62. Senders call it
 * after tw_cipher_init, so that a session key used twice (a token accepted
 * again after a server restart) does not repeat nonces: two sessions'
 * counter ranges overlap with probability about packets / 2^62.
 */
void tw_cipher_random_start(struct tw_cipher *c);

/*
 * Seals plain into out (cap must be >= len + TW_SEAL_OVERHEAD) and advances
 * the channel's counter. Returns the sealed size, -TW_DROP_WRONG_CHANNEL,
 * -TW_DROP_OVERSIZED when len exceeds TW_MAX_PAYLOAD or cap is too small,
 * or -TW_DROP_WRONG_STATE once the channel's counter is exhausted (counter
 * UINT64_MAX is never sent): the session must then end.
 */
int tw_seal(struct tw_cipher *c, uint8_t channel, const uint8_t *plain,
            size_t len, uint8_t *out, size_t cap)
    __attribute__((warn_unused_result));

/*
 * Opens a sealed packet into plain (cap >= len - TW_SEAL_OVERHEAD). Returns
 * the plaintext size, -TW_DROP_TRUNCATED (shorter than the overhead),
 * -TW_DROP_OVERSIZED (plaintext above TW_MAX_PAYLOAD or cap),
 * -TW_DROP_WRONG_CHANNEL, -TW_DROP_REPLAYED or -TW_DROP_BAD_SEAL. The
 * window records the counter only after the tag verifies, so on any
 * failure the window is unchanged. On failure the first min(len, cap)
 * bytes of plain are zeroed and must not be used.
 */
int tw_open(struct tw_cipher *c, uint8_t channel, const uint8_t *packet,
            size_t len, uint8_t *plain, size_t cap)
    __attribute__((warn_unused_result));

#endif
