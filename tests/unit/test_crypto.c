#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto.h"

#include <cjson/cJSON.h>
#include <sodium.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOW 1700000000ull
#define MATCH 42u
#define TTL 600u
#define SKEW 30u

static uint8_t match_key[TW_KEY_BYTES];

static int setup_all(void **state)
{
    (void)state;
    if (tw_crypto_init() != TW_OK)
        return -1;
    randombytes_buf(match_key, sizeof match_key);
    return 0;
}

static bool all_zero(const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        if (b[i] != 0)
            return false;
    return true;
}

static void issue(struct tw_token *t, struct tw_msg_login *login)
{
    assert_int_equal(tw_token_issue(match_key, 77, "Ann B", MATCH, NOW, TTL,
                                    t),
                     TW_OK);
    tw_token_to_login(t, login);
}

/* ---- Tokens ------------------------------------------------------------ */

static void token_round_trip(void **state)
{
    (void)state;
    struct tw_token t;
    struct tw_msg_login login;
    issue(&t, &login);
    assert_int_equal(t.protocol, TW_PROTOCOL_VERSION);
    assert_int_equal(t.created_at, NOW);
    assert_int_equal(t.expires_at, NOW + TTL);
    assert_memory_not_equal(t.c2s_key, t.s2c_key, TW_KEY_BYTES);

    struct tw_token_private p;
    assert_int_equal(tw_token_open(match_key, &login, &p), TW_OK);
    assert_int_equal(p.player_id, 77);
    assert_string_equal(p.name, "Ann B");
    assert_int_equal(p.match_id, MATCH);
    assert_int_equal(p.created_at, NOW);
    assert_int_equal(p.expires_at, NOW + TTL);
    assert_memory_equal(p.c2s_key, t.c2s_key, TW_KEY_BYTES);
    assert_memory_equal(p.s2c_key, t.s2c_key, TW_KEY_BYTES);
    assert_int_equal(tw_token_validate(&p, &login, MATCH, NOW, SKEW),
                     TW_REASON_NONE);
}

static void token_survives_login_encoding(void **state)
{
    (void)state;
    struct tw_token t;
    struct tw_msg_login login, decoded;
    issue(&t, &login);
    uint8_t wire[TW_MAX_PAYLOAD];
    int n = tw_encode_login(&login, wire, sizeof wire);
    assert_true(n > 0);
    assert_int_equal(tw_decode_login(wire, (size_t)n, &decoded), TW_OK);
    struct tw_token_private p;
    assert_int_equal(tw_token_open(match_key, &decoded, &p), TW_OK);
    assert_int_equal(p.player_id, 77);
}

static void token_rejects_every_flipped_bit(void **state)
{
    (void)state;
    struct tw_token t;
    struct tw_msg_login login;
    issue(&t, &login);
    struct tw_token_private p;

    for (size_t i = 0; i < TW_TOKEN_SEALED_BYTES * 8; i++) {
        struct tw_msg_login bad = login;
        bad.sealed[i / 8] ^= (uint8_t)(1u << (i % 8));
        memset(&p, 0xAA, sizeof p);
        assert_int_equal(tw_token_open(match_key, &bad, &p),
                         -TW_DROP_BAD_SEAL);
        assert_true(all_zero(&p, sizeof p));
    }
    for (size_t i = 0; i < TW_TOKEN_NONCE_BYTES * 8; i++) {
        struct tw_msg_login bad = login;
        bad.nonce[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(tw_token_open(match_key, &bad, &p),
                         -TW_DROP_BAD_SEAL);
    }
    /* The untouched login still opens: nothing above was stateful. */
    assert_int_equal(tw_token_open(match_key, &login, &p), TW_OK);
}

static void token_rejects_wrong_key(void **state)
{
    (void)state;
    struct tw_token t;
    struct tw_msg_login login;
    issue(&t, &login);
    uint8_t other[TW_KEY_BYTES];
    memcpy(other, match_key, sizeof other);
    other[0] ^= 1;
    struct tw_token_private p;
    assert_int_equal(tw_token_open(other, &login, &p), -TW_DROP_BAD_SEAL);
    assert_true(all_zero(&p, sizeof p));
}

static void token_rejects_changed_clear_fields(void **state)
{
    (void)state;
    struct tw_token t;
    struct tw_msg_login login;
    issue(&t, &login);
    struct tw_token_private p;

    struct tw_msg_login bad = login;
    bad.match_id = MATCH + 1;
    assert_int_equal(tw_token_open(match_key, &bad, &p), -TW_DROP_BAD_SEAL);

    bad = login;
    bad.expires_at = login.expires_at + 3600;
    assert_int_equal(tw_token_open(match_key, &bad, &p), -TW_DROP_BAD_SEAL);

    bad = login;
    bad.protocol = TW_PROTOCOL_VERSION + 1;
    assert_int_equal(tw_token_open(match_key, &bad, &p), -TW_DROP_BAD_SEAL);
}

/*
 * Seals a hand-built plaintext the way the issuer does, to reach the
 * checks behind the seal that tw_token_issue never violates.
 */
static void seal_raw(uint8_t plain[TW_TOKEN_PLAIN_BYTES], uint32_t ad_match,
                     uint64_t ad_expires, struct tw_msg_login *login)
{
    memset(login, 0, sizeof *login);
    login->protocol = TW_PROTOCOL_VERSION;
    login->match_id = ad_match;
    login->expires_at = ad_expires;
    randombytes_buf(login->nonce, sizeof login->nonce);
    uint8_t ad[22];
    memcpy(ad, "tickwire", 8);
    ad[8] = TW_PROTOCOL_VERSION & 0xff;
    ad[9] = TW_PROTOCOL_VERSION >> 8;
    for (int i = 0; i < 4; i++)
        ad[10 + i] = (uint8_t)(ad_match >> (8 * i));
    for (int i = 0; i < 8; i++)
        ad[14 + i] = (uint8_t)(ad_expires >> (8 * i));
    unsigned long long clen;
    assert_int_equal(crypto_aead_xchacha20poly1305_ietf_encrypt(
                         login->sealed, &clen, plain, TW_TOKEN_PLAIN_BYTES,
                         ad, sizeof ad, NULL, login->nonce, match_key),
                     0);
    assert_int_equal(clen, TW_TOKEN_SEALED_BYTES);
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void build_plain(uint8_t plain[TW_TOKEN_PLAIN_BYTES], uint32_t match,
                        uint64_t created, uint64_t expires)
{
    memset(plain, 0, TW_TOKEN_PLAIN_BYTES);
    put_le(plain, 5, 8);
    memcpy(plain + 8, "Bob", 3);
    put_le(plain + 40, match, 4);
    put_le(plain + 44, created, 8);
    put_le(plain + 52, expires, 8);
    memset(plain + 60, 0x11, 64);
}

static void token_rejects_inconsistent_sealed_fields(void **state)
{
    (void)state;
    uint8_t plain[TW_TOKEN_PLAIN_BYTES];
    struct tw_msg_login login;
    struct tw_token_private p;

    build_plain(plain, MATCH, NOW, NOW + TTL);
    seal_raw(plain, MATCH, NOW + TTL, &login);
    assert_int_equal(tw_token_open(match_key, &login, &p), TW_OK);
    assert_string_equal(p.name, "Bob");

    build_plain(plain, MATCH + 1, NOW, NOW + TTL);
    seal_raw(plain, MATCH, NOW + TTL, &login);
    assert_int_equal(tw_token_open(match_key, &login, &p), -TW_DROP_BAD_SEAL);
    assert_true(all_zero(&p, sizeof p));

    build_plain(plain, MATCH, NOW, NOW + TTL + 1);
    seal_raw(plain, MATCH, NOW + TTL, &login);
    assert_int_equal(tw_token_open(match_key, &login, &p), -TW_DROP_BAD_SEAL);

    build_plain(plain, MATCH, NOW + TTL, NOW + TTL);
    seal_raw(plain, MATCH, NOW + TTL, &login);
    assert_int_equal(tw_token_open(match_key, &login, &p), -TW_DROP_BAD_SEAL);

    build_plain(plain, MATCH, NOW, NOW + TTL);
    plain[9] = 0x07; /* control character in the name */
    seal_raw(plain, MATCH, NOW + TTL, &login);
    assert_int_equal(tw_token_open(match_key, &login, &p), -TW_DROP_BAD_SEAL);

    build_plain(plain, MATCH, NOW, NOW + TTL);
    plain[8 + 20] = 'x'; /* bytes after the terminating NUL */
    seal_raw(plain, MATCH, NOW + TTL, &login);
    assert_int_equal(tw_token_open(match_key, &login, &p), -TW_DROP_BAD_SEAL);

    build_plain(plain, MATCH, NOW, NOW + TTL);
    memset(plain + 8, 'a', 32); /* no terminating NUL */
    seal_raw(plain, MATCH, NOW + TTL, &login);
    assert_int_equal(tw_token_open(match_key, &login, &p), -TW_DROP_BAD_SEAL);

    build_plain(plain, MATCH, NOW, NOW + TTL);
    memset(plain + 8, 0, 32); /* empty name */
    seal_raw(plain, MATCH, NOW + TTL, &login);
    assert_int_equal(tw_token_open(match_key, &login, &p), -TW_DROP_BAD_SEAL);
}

static void token_issue_rejects_bad_arguments(void **state)
{
    (void)state;
    struct tw_token t;
    assert_int_equal(tw_token_issue(match_key, 1, "", MATCH, NOW, TTL, &t),
                     -1);
    assert_int_equal(tw_token_issue(match_key, 1,
                                    "abcdefghijklmnopqrstuvwxyz012345",
                                    MATCH, NOW, TTL, &t),
                     -1);
    assert_int_equal(tw_token_issue(match_key, 1,
                                    "abcdefghijklmnopqrstuvwxyz01234",
                                    MATCH, NOW, TTL, &t),
                     TW_OK);
    assert_int_equal(tw_token_issue(match_key, 1, "tab\there", MATCH, NOW,
                                    TTL, &t),
                     -1);
    assert_int_equal(tw_token_issue(match_key, 1, "caf\xc3\xa9", MATCH, NOW,
                                    TTL, &t),
                     -1);
    assert_int_equal(tw_token_issue(match_key, 1, "a", MATCH, NOW, 0, &t),
                     -1);
    assert_int_equal(tw_token_issue(match_key, TW_JSON_INT_MAX + 1, "a",
                                    MATCH, NOW, TTL, &t),
                     -1);
    assert_int_equal(tw_token_issue(match_key, 1, "a", MATCH,
                                    TW_JSON_INT_MAX - 10, 11, &t),
                     -1);
    assert_true(all_zero(&t, sizeof t));
    assert_int_equal(tw_token_issue(match_key, 1, "a", MATCH,
                                    TW_JSON_INT_MAX - 10, 10, &t),
                     TW_OK);
}

static void token_validate_expiry_boundary(void **state)
{
    (void)state;
    struct tw_token t;
    struct tw_msg_login login;
    issue(&t, &login);
    struct tw_token_private p;
    assert_int_equal(tw_token_open(match_key, &login, &p), TW_OK);
    assert_int_equal(
        tw_token_validate(&p, &login, MATCH, NOW + TTL - 1, SKEW),
        TW_REASON_NONE);
    assert_int_equal(tw_token_validate(&p, &login, MATCH, NOW + TTL, SKEW),
                     TW_REASON_TOKEN_EXPIRED);
    assert_int_equal(
        tw_token_validate(&p, &login, MATCH, UINT64_MAX, SKEW),
        TW_REASON_TOKEN_EXPIRED);
}

static void token_validate_clock_skew_boundary(void **state)
{
    (void)state;
    struct tw_token t;
    struct tw_msg_login login;
    issue(&t, &login);
    struct tw_token_private p;
    assert_int_equal(tw_token_open(match_key, &login, &p), TW_OK);
    assert_int_equal(tw_token_validate(&p, &login, MATCH, NOW - SKEW, SKEW),
                     TW_REASON_NONE);
    assert_int_equal(
        tw_token_validate(&p, &login, MATCH, NOW - SKEW - 1, SKEW),
        TW_REASON_CLOCK_SKEW);
    assert_int_equal(tw_token_validate(&p, &login, MATCH, NOW, 0),
                     TW_REASON_NONE);
    assert_int_equal(tw_token_validate(&p, &login, MATCH, NOW - 1, 0),
                     TW_REASON_CLOCK_SKEW);
    assert_int_equal(tw_token_validate(&p, &login, MATCH, 0, UINT32_MAX),
                     TW_REASON_NONE);
}

static void token_validate_match_and_version(void **state)
{
    (void)state;
    struct tw_token t;
    struct tw_msg_login login;
    issue(&t, &login);
    struct tw_token_private p;
    assert_int_equal(tw_token_open(match_key, &login, &p), TW_OK);
    assert_int_equal(tw_token_validate(&p, &login, MATCH + 1, NOW, SKEW),
                     TW_REASON_WRONG_MATCH);
    struct tw_msg_login other = login;
    other.protocol = TW_PROTOCOL_VERSION + 1;
    assert_int_equal(tw_token_validate(&p, &other, MATCH, NOW, SKEW),
                     TW_REASON_VERSION_MISMATCH);
    /* The version is reported first, even when the token also expired. */
    assert_int_equal(
        tw_token_validate(&p, &other, MATCH + 1, NOW + TTL, SKEW),
        TW_REASON_VERSION_MISMATCH);
}

/* ---- Replay window ----------------------------------------------------- */

/* Check then accept, the way tw_open uses the window. */
static bool offer(struct tw_replay *w, uint64_t counter)
{
    if (!tw_replay_check(w, counter))
        return false;
    tw_replay_accept(w, counter);
    return true;
}

static void replay_rejects_duplicate(void **state)
{
    (void)state;
    struct tw_replay w;
    tw_replay_init(&w);
    assert_true(offer(&w, 0));
    assert_false(offer(&w, 0));
    assert_true(offer(&w, 1));
    assert_false(offer(&w, 1));
    assert_false(offer(&w, 0));
}

static void replay_window_edges(void **state)
{
    (void)state;
    struct tw_replay w;
    tw_replay_init(&w);
    assert_true(offer(&w, 1000));
    assert_true(offer(&w, 1000 - 255));
    assert_false(offer(&w, 1000 - 255));
    assert_false(offer(&w, 1000 - 256));
    assert_false(offer(&w, 0));
    for (uint64_t c = 1000 - 254; c < 1000; c++)
        assert_true(offer(&w, c));
    for (uint64_t c = 1000 - 255; c <= 1000; c++)
        assert_false(offer(&w, c));
}

static void replay_accepts_far_ahead_jump(void **state)
{
    (void)state;
    struct tw_replay w;
    tw_replay_init(&w);
    for (uint64_t c = 0; c < 300; c++)
        assert_true(offer(&w, c));
    assert_true(offer(&w, 1000000));
    /* Slots reused by the jump must read as unseen, the old ones as old. */
    assert_true(offer(&w, 1000000 - 255));
    assert_true(offer(&w, 1000000 - 1));
    assert_false(offer(&w, 1000000 - 256));
    assert_false(offer(&w, 299));
    assert_false(offer(&w, 1000000));

    /* A jump shorter than the window keeps what is still inside it. */
    assert_true(offer(&w, 1000100));
    assert_false(offer(&w, 1000000 - 1));
    assert_true(offer(&w, 1000000 + 50));
    assert_true(offer(&w, 1000100 - 255));
    assert_false(offer(&w, 1000100 - 256));
}

static void replay_accepts_out_of_order_once(void **state)
{
    (void)state;
    struct tw_replay w;
    tw_replay_init(&w);
    static const uint64_t order[] = {5, 3, 9, 4, 8, 6, 7, 2, 1, 0, 10};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        assert_true(offer(&w, order[i]));
    for (uint64_t c = 0; c <= 10; c++)
        assert_false(offer(&w, c));
    assert_int_equal(w.newest, 10);
}

static void replay_check_does_not_record(void **state)
{
    (void)state;
    struct tw_replay w;
    tw_replay_init(&w);
    assert_true(tw_replay_check(&w, 7));
    assert_true(tw_replay_check(&w, 7));
    assert_false(w.any);
    tw_replay_accept(&w, 7);
    assert_false(tw_replay_check(&w, 7));
}

/* ---- Packet AEAD ------------------------------------------------------- */

static void make_pair(struct tw_cipher *tx, struct tw_cipher *rx,
                      uint8_t direction)
{
    uint8_t key[TW_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    tw_cipher_init(tx, key, MATCH, direction);
    tw_cipher_init(rx, key, MATCH, direction);
    sodium_memzero(key, sizeof key);
}

static void packet_round_trip_every_channel(void **state)
{
    (void)state;
    struct tw_cipher tx, rx;
    make_pair(&tx, &rx, TW_DIR_S2C);
    const uint8_t msg[] = "snapshot 12";
    uint8_t wire[64], plain[64];
    for (uint8_t ch = 0; ch < TW_CHANNEL_COUNT; ch++) {
        for (int i = 0; i < 3; i++) {
            int n = tw_seal(&tx, ch, msg, sizeof msg, wire, sizeof wire);
            assert_int_equal(n, sizeof msg + TW_SEAL_OVERHEAD);
            /* The counter travels in the clear, little-endian. */
            assert_int_equal(wire[0], i);
            assert_true(all_zero(wire + 1, 7));
            int m = tw_open(&rx, ch, wire, (size_t)n, plain, sizeof plain);
            assert_int_equal(m, sizeof msg);
            assert_memory_equal(plain, msg, sizeof msg);
        }
    }
    /* Empty payloads are legal too. */
    int n = tw_seal(&tx, 0, NULL, 0, wire, sizeof wire);
    assert_int_equal(n, TW_SEAL_OVERHEAD);
    assert_int_equal(tw_open(&rx, 0, wire, (size_t)n, plain, sizeof plain),
                     0);
    tw_cipher_wipe(&tx);
    assert_true(all_zero(&tx, sizeof tx));
}

static void packet_rejects_every_flipped_bit(void **state)
{
    (void)state;
    struct tw_cipher tx, rx;
    make_pair(&tx, &rx, TW_DIR_C2S);
    uint8_t msg[40];
    randombytes_buf(msg, sizeof msg);
    uint8_t wire[64], plain[64];
    int n = tw_seal(&tx, TW_CH_INPUT, msg, sizeof msg, wire, sizeof wire);
    assert_int_equal(n, sizeof msg + TW_SEAL_OVERHEAD);

    struct tw_replay before = rx.replay[TW_CH_INPUT];
    for (size_t i = 0; i < (size_t)n * 8; i++) {
        uint8_t bad[64];
        memcpy(bad, wire, (size_t)n);
        bad[i / 8] ^= (uint8_t)(1u << (i % 8));
        memset(plain, 0xAA, sizeof plain);
        assert_int_equal(
            tw_open(&rx, TW_CH_INPUT, bad, (size_t)n, plain, sizeof plain),
            -TW_DROP_BAD_SEAL);
        assert_true(all_zero(plain, (size_t)n));
    }
    assert_memory_equal(&before, &rx.replay[TW_CH_INPUT], sizeof before);
    assert_int_equal(
        tw_open(&rx, TW_CH_INPUT, wire, (size_t)n, plain, sizeof plain),
        sizeof msg);
    assert_memory_equal(plain, msg, sizeof msg);
}

static void packet_rejects_other_context(void **state)
{
    (void)state;
    uint8_t key[TW_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    struct tw_cipher tx, same, other_dir, other_match, other_key;
    tw_cipher_init(&tx, key, MATCH, TW_DIR_C2S);
    tw_cipher_init(&same, key, MATCH, TW_DIR_C2S);
    tw_cipher_init(&other_dir, key, MATCH, TW_DIR_S2C);
    tw_cipher_init(&other_match, key, MATCH + 1, TW_DIR_C2S);
    key[31] ^= 0x80;
    tw_cipher_init(&other_key, key, MATCH, TW_DIR_C2S);

    const uint8_t msg[] = "ping";
    uint8_t wire[64], plain[64];
    int n = tw_seal(&tx, TW_CH_RELIABLE, msg, sizeof msg, wire, sizeof wire);
    assert_true(n > 0);
    assert_int_equal(
        tw_open(&same, TW_CH_INPUT, wire, (size_t)n, plain, sizeof plain),
        -TW_DROP_BAD_SEAL);
    assert_int_equal(tw_open(&other_dir, TW_CH_RELIABLE, wire, (size_t)n,
                             plain, sizeof plain),
                     -TW_DROP_BAD_SEAL);
    assert_int_equal(tw_open(&other_match, TW_CH_RELIABLE, wire, (size_t)n,
                             plain, sizeof plain),
                     -TW_DROP_BAD_SEAL);
    assert_int_equal(tw_open(&other_key, TW_CH_RELIABLE, wire, (size_t)n,
                             plain, sizeof plain),
                     -TW_DROP_BAD_SEAL);
    assert_int_equal(
        tw_open(&same, TW_CH_RELIABLE, wire, (size_t)n, plain, sizeof plain),
        sizeof msg);
}

static void packet_replay_rejected_window_kept(void **state)
{
    (void)state;
    struct tw_cipher tx, rx;
    make_pair(&tx, &rx, TW_DIR_S2C);
    const uint8_t msg[] = "event";
    uint8_t first[64], second[64], plain[64];
    int n1 = tw_seal(&tx, 1, msg, sizeof msg, first, sizeof first);
    int n2 = tw_seal(&tx, 1, msg, sizeof msg, second, sizeof second);
    assert_true(n1 > 0 && n2 > 0);

    assert_int_equal(tw_open(&rx, 1, second, (size_t)n2, plain, sizeof plain),
                     sizeof msg);
    memset(plain, 0xAA, sizeof plain);
    assert_int_equal(tw_open(&rx, 1, second, (size_t)n2, plain, sizeof plain),
                     -TW_DROP_REPLAYED);
    assert_true(all_zero(plain, (size_t)n2));
    /* Out of order inside the window: the older packet still opens once. */
    assert_int_equal(tw_open(&rx, 1, first, (size_t)n1, plain, sizeof plain),
                     sizeof msg);
    assert_int_equal(tw_open(&rx, 1, first, (size_t)n1, plain, sizeof plain),
                     -TW_DROP_REPLAYED);

    /* A forged packet with a fresh counter must not mark that counter. */
    struct tw_replay before = rx.replay[1];
    uint8_t forged[64];
    memcpy(forged, second, (size_t)n2);
    forged[0] = 9;
    assert_int_equal(tw_open(&rx, 1, forged, (size_t)n2, plain, sizeof plain),
                     -TW_DROP_BAD_SEAL);
    assert_memory_equal(&before, &rx.replay[1], sizeof before);
    assert_true(tw_replay_check(&rx.replay[1], 9));
}

/*
 * Two sessions under one key (a token accepted twice) must not start
 * their counters at the same place, and a receiver accepts any start.
 */
static void packet_random_start_separates_sessions(void **state)
{
    (void)state;
    uint8_t key[TW_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    struct tw_cipher first, second, rx;
    tw_cipher_init(&first, key, MATCH, TW_DIR_S2C);
    tw_cipher_init(&second, key, MATCH, TW_DIR_S2C);
    tw_cipher_init(&rx, key, MATCH, TW_DIR_S2C);
    tw_cipher_random_start(&first);
    tw_cipher_random_start(&second);
    for (int ch = 0; ch < TW_CHANNEL_COUNT; ch++) {
        assert_true(first.next_counter[ch] < (1ull << 62));
        assert_true(second.next_counter[ch] < (1ull << 62));
        assert_true(first.next_counter[ch] != second.next_counter[ch]);
    }
    assert_true(first.next_counter[0] != first.next_counter[1]);

    const uint8_t msg[] = "login ok";
    uint8_t wire[64], plain[64];
    uint64_t start = first.next_counter[0];
    int n = tw_seal(&first, 0, msg, sizeof msg, wire, sizeof wire);
    assert_true(n > 0);
    uint64_t on_wire = 0;
    for (int i = 7; i >= 0; i--)
        on_wire = (on_wire << 8) | wire[i];
    assert_true(on_wire == start);
    assert_int_equal(tw_open(&rx, 0, wire, (size_t)n, plain, sizeof plain),
                     sizeof msg);
    sodium_memzero(key, sizeof key);
}

static void packet_counter_exhaustion_guard(void **state)
{
    (void)state;
    struct tw_cipher tx, rx;
    make_pair(&tx, &rx, TW_DIR_C2S);
    const uint8_t msg[] = "last";
    uint8_t wire[64], plain[64];
    tx.next_counter[TW_CH_INPUT] = UINT64_MAX - 1;
    int n = tw_seal(&tx, TW_CH_INPUT, msg, sizeof msg, wire, sizeof wire);
    assert_true(n > 0);
    assert_int_equal(tx.next_counter[TW_CH_INPUT], UINT64_MAX);
    assert_int_equal(
        tw_open(&rx, TW_CH_INPUT, wire, (size_t)n, plain, sizeof plain),
        sizeof msg);

    assert_int_equal(
        tw_seal(&tx, TW_CH_INPUT, msg, sizeof msg, wire, sizeof wire),
        -TW_DROP_WRONG_STATE);
    assert_int_equal(
        tw_seal(&tx, TW_CH_INPUT, msg, sizeof msg, wire, sizeof wire),
        -TW_DROP_WRONG_STATE);
    assert_int_equal(tx.next_counter[TW_CH_INPUT], UINT64_MAX);
    /* Other channels keep their own counters. */
    assert_true(tw_seal(&tx, TW_CH_RELIABLE, msg, sizeof msg, wire,
                        sizeof wire) > 0);

    /* A packet claiming counter UINT64_MAX is never genuine. */
    memset(wire, 0xFF, TW_COUNTER_BYTES);
    assert_int_equal(
        tw_open(&rx, TW_CH_INPUT, wire, (size_t)n, plain, sizeof plain),
        -TW_DROP_BAD_SEAL);
}

static void packet_rejects_bad_sizes(void **state)
{
    (void)state;
    struct tw_cipher tx, rx;
    make_pair(&tx, &rx, TW_DIR_C2S);
    static uint8_t big[TW_MAX_PAYLOAD + 1];
    static uint8_t wire[TW_MAX_PAYLOAD + 1 + TW_SEAL_OVERHEAD];
    uint8_t plain[TW_MAX_PAYLOAD];

    assert_int_equal(tw_seal(&tx, 0, big, 10, wire, 10 + TW_SEAL_OVERHEAD - 1),
                     -TW_DROP_OVERSIZED);
    assert_int_equal(
        tw_seal(&tx, 0, big, TW_MAX_PAYLOAD + 1, wire, sizeof wire),
        -TW_DROP_OVERSIZED);
    assert_int_equal(tw_seal(&tx, TW_CHANNEL_COUNT, big, 1, wire, sizeof wire),
                     -TW_DROP_WRONG_CHANNEL);
    assert_int_equal(tx.next_counter[0], 0);

    int n = tw_seal(&tx, 0, big, TW_MAX_PAYLOAD, wire, sizeof wire);
    assert_int_equal(n, TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD);
    assert_int_equal(tw_open(&rx, 0, wire, TW_SEAL_OVERHEAD - 1, plain,
                             sizeof plain),
                     -TW_DROP_TRUNCATED);
    assert_int_equal(tw_open(&rx, 0, wire, (size_t)n, plain, sizeof plain - 1),
                     -TW_DROP_OVERSIZED);
    assert_int_equal(tw_open(&rx, 0, wire, sizeof wire, plain, sizeof plain),
                     -TW_DROP_OVERSIZED);
    assert_int_equal(tw_open(&rx, TW_CHANNEL_COUNT, wire, (size_t)n, plain,
                             sizeof plain),
                     -TW_DROP_WRONG_CHANNEL);
    assert_int_equal(tw_open(&rx, 0, wire, (size_t)n, plain, sizeof plain),
                     TW_MAX_PAYLOAD);
}

/*
 * Sealing zeros exposes the keystream, so equal ciphertext bodies would
 * mean a repeated (key, nonce). Both directions share one key here on
 * purpose: real sessions use two keys, and the nonces must not collide
 * even without that.
 */
static int compare_bodies(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static void packet_nonces_never_repeat(void **state)
{
    (void)state;
    enum { PER_STREAM = 200, BODY = 32 };
    uint8_t key[TW_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    struct tw_cipher dirs[2];
    tw_cipher_init(&dirs[0], key, MATCH, TW_DIR_C2S);
    tw_cipher_init(&dirs[1], key, MATCH, TW_DIR_S2C);

    size_t total = 2 * TW_CHANNEL_COUNT * PER_STREAM;
    uint8_t(*bodies)[BODY] = calloc(total, BODY);
    assert_non_null(bodies);
    const uint8_t zeros[BODY] = {0};
    uint8_t wire[BODY + TW_SEAL_OVERHEAD];
    size_t k = 0;
    for (int i = 0; i < PER_STREAM; i++) {
        for (int d = 0; d < 2; d++) {
            for (uint8_t ch = 0; ch < TW_CHANNEL_COUNT; ch++) {
                int n = tw_seal(&dirs[d], ch, zeros, BODY, wire, sizeof wire);
                assert_int_equal(n, sizeof wire);
                memcpy(bodies[k++], wire + TW_COUNTER_BYTES, BODY);
            }
        }
    }
    qsort(bodies, total, BODY, compare_bodies);
    for (size_t i = 1; i < total; i++)
        assert_memory_not_equal(bodies[i - 1], bodies[i], BODY);
    free(bodies);
}

/* ---- Token JSON -------------------------------------------------------- */

static void json_round_trip(void **state)
{
    (void)state;
    struct tw_token t, back;
    struct tw_msg_login login;
    issue(&t, &login);
    char *json = tw_token_to_json(&t);
    assert_non_null(json);
    char err[256] = "";
    assert_int_equal(tw_token_from_json(json, strlen(json), &back, err,
                                        sizeof err),
                     TW_OK);
    assert_int_equal(back.protocol, t.protocol);
    assert_int_equal(back.match_id, t.match_id);
    assert_int_equal(back.player_id, t.player_id);
    assert_string_equal(back.name, t.name);
    assert_int_equal(back.created_at, t.created_at);
    assert_int_equal(back.expires_at, t.expires_at);
    assert_memory_equal(back.nonce, t.nonce, sizeof t.nonce);
    assert_memory_equal(back.sealed, t.sealed, sizeof t.sealed);
    assert_memory_equal(back.c2s_key, t.c2s_key, TW_KEY_BYTES);
    assert_memory_equal(back.s2c_key, t.s2c_key, TW_KEY_BYTES);
    tw_token_json_free(json);

    /* The decoded token still logs in. */
    struct tw_msg_login again;
    struct tw_token_private p;
    tw_token_to_login(&back, &again);
    assert_int_equal(tw_token_open(match_key, &again, &p), TW_OK);
}

static void json_carries_largest_integers(void **state)
{
    (void)state;
    struct tw_token t;
    assert_int_equal(tw_token_issue(match_key, TW_JSON_INT_MAX, "max",
                                    UINT32_MAX, TW_JSON_INT_MAX - 1, 1, &t),
                     TW_OK);
    char *json = tw_token_to_json(&t);
    assert_non_null(json);
    assert_non_null(strstr(json, "9007199254740991"));
    struct tw_token back;
    char err[256];
    assert_int_equal(
        tw_token_from_json(json, strlen(json), &back, err, sizeof err), TW_OK);
    assert_int_equal(back.player_id, TW_JSON_INT_MAX);
    assert_int_equal(back.match_id, UINT32_MAX);
    assert_int_equal(back.expires_at, TW_JSON_INT_MAX);
    tw_token_json_free(json);

    t.player_id = TW_JSON_INT_MAX + 1;
    assert_null(tw_token_to_json(&t));
    t.player_id = 1;
    t.name[0] = '\n';
    assert_null(tw_token_to_json(&t));
}

/* Replaces (or with value NULL, deletes) key in a valid token's JSON. */
static char *mutate(const char *json, const char *key, const char *value)
{
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    if (value) {
        /* Raw, so numbers keep their exact digits through printing. */
        cJSON *v = cJSON_CreateRaw(value);
        assert_non_null(v);
        if (cJSON_GetObjectItemCaseSensitive(root, key))
            assert_true(cJSON_ReplaceItemInObjectCaseSensitive(root, key, v));
        else
            assert_true(cJSON_AddItemToObject(root, key, v));
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    }
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    assert_non_null(out);
    return out;
}

static void json_rejects_each_malformed_field(void **state)
{
    (void)state;
    struct tw_token t;
    struct tw_msg_login login;
    issue(&t, &login);
    char *json = tw_token_to_json(&t);
    assert_non_null(json);

    static const struct {
        const char *key;
        const char *value; /* NULL: the key is removed */
    } cases[] = {
        {"format", NULL},
        {"format", "\"tickwire-token-2\""},
        {"format", "1"},
        {"protocol", NULL},
        {"protocol", "65536"},
        {"protocol", "-1"},
        {"protocol", "\"1\""},
        {"match_id", NULL},
        {"match_id", "4294967296"},
        {"match_id", "1.5"},
        {"match_id", "null"},
        {"player_id", NULL},
        {"player_id", "9007199254740992"},
        {"player_id", "1e300"},
        {"player_id", "-5"},
        {"player_id", "true"},
        {"name", NULL},
        {"name", "\"\""},
        {"name", "\"abcdefghijklmnopqrstuvwxyz012345\""},
        {"name", "\"new\\nline\""},
        {"name", "\"caf\\u00e9\""},
        {"name", "7"},
        {"created_at", NULL},
        {"created_at", "[]"},
        {"created_at", "9999999999"}, /* after expires_at */
        {"expires_at", NULL},
        {"expires_at", "1700000000"}, /* equal to created_at */
        {"expires_at", "9007199254740992"},
        {"nonce", NULL},
        {"nonce", "\"AAAA\""},
        {"nonce", "\"eYGy6vKy8WhVnwr2cBsbcLfXiBu3UQ1\""},
        {"nonce", "\"eYGy6vKy8WhVnwr2cBsbcLfXiBu3UQ1!\""},
        {"nonce", "\"eYGy6vKy8WhVnwr2cBsbcLfXiBu3UQ1a=\""},
        {"nonce", "\"eYGy6vKy-WhVnwr2cBsbcLfXiBu3UQ1a\""},
        {"nonce", "24"},
        {"sealed", NULL},
        {"sealed", "\"\""},
        {"sealed", "{}"},
        {"client_to_server_key", NULL},
        /* One character short, unpadded, and nonzero unused low bits. */
        {"client_to_server_key",
         "\"6mvzHT/0ZCJ17SXYi7+9XBScCLeFJ14RSLi6JkBpKZ=\""},
        {"client_to_server_key",
         "\"6mvzHT/0ZCJ17SXYi7+9XBScCLeFJ14RSLi6JkBpKZk\""},
        {"client_to_server_key",
         "\"6mvzHT/0ZCJ17SXYi7+9XBScCLeFJ14RSLi6JkBpKZl=\""},
        {"server_to_client_key", NULL},
        {"server_to_client_key",
         "\"dv8rqiy4xscAOPcgxz/E8Lo7DXwfQYuCgGnhBYEtMDE=AAAA\""},
        {"extra", "1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *bad = mutate(json, cases[i].key, cases[i].value);
        struct tw_token out;
        char err[256] = "";
        int rc = tw_token_from_json(bad, strlen(bad), &out, err, sizeof err);
        if (rc != -1 || strstr(err, cases[i].key) == NULL)
            fail_msg("%s = %s: rc %d, err \"%s\"", cases[i].key,
                     cases[i].value ? cases[i].value : "(removed)", rc, err);
        assert_true(all_zero(&out, sizeof out));
        cJSON_free(bad);
    }

    /* Whole-document problems. */
    struct tw_token out;
    char err[256];
    const char *not_object = "[1,2]";
    assert_int_equal(tw_token_from_json(not_object, strlen(not_object), &out,
                                        err, sizeof err),
                     -1);
    assert_int_equal(tw_token_from_json(json, strlen(json) - 2, &out, err,
                                        sizeof err),
                     -1);
    assert_non_null(strstr(err, "invalid JSON"));

    size_t n = strlen(json);
    char *doubled = malloc(n + 64);
    assert_non_null(doubled);
    /* Same document with "name" given twice. */
    snprintf(doubled, n + 64, "{\"name\":\"X\",%s", json + 1);
    assert_int_equal(tw_token_from_json(doubled, strlen(doubled), &out, err,
                                        sizeof err),
                     -1);
    assert_non_null(strstr(err, "repeated"));
    free(doubled);

    char *huge = malloc(8192);
    assert_non_null(huge);
    memset(huge, ' ', 8192);
    memcpy(huge, json, n);
    assert_int_equal(tw_token_from_json(huge, 8192, &out, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "larger"));
    free(huge);

    /* Whitespace within the size cap is fine. */
    assert_int_equal(tw_token_from_json(json, n, &out, err, sizeof err),
                     TW_OK);
    tw_token_json_free(json);
}

/* ---- Key files --------------------------------------------------------- */

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tw_crypto_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in_dir(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const void *data, size_t len,
                       mode_t mode)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void key_generate_mode_and_no_overwrite(void **state)
{
    (void)state;
    char path[128], err[256];
    path_in_dir(path, sizeof path, "match.key");

    /* Even a permissive umask must not widen the mode. */
    mode_t old = umask(0);
    int rc = tw_key_generate(path, err, sizeof err);
    umask(old);
    assert_int_equal(rc, TW_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, TW_KEY_BYTES);

    uint8_t key[TW_KEY_BYTES], again[TW_KEY_BYTES];
    assert_int_equal(tw_key_load(path, key, err, sizeof err), TW_OK);
    assert_false(all_zero(key, sizeof key));

    assert_int_equal(tw_key_generate(path, err, sizeof err), -1);
    assert_non_null(strstr(err, "already exists"));
    assert_int_equal(tw_key_load(path, again, err, sizeof err), TW_OK);
    assert_memory_equal(key, again, sizeof key);

    /* A dangling symlink is not followed. */
    char link_path[128], target[128];
    path_in_dir(link_path, sizeof link_path, "link.key");
    path_in_dir(target, sizeof target, "target.key");
    assert_int_equal(symlink(target, link_path), 0);
    assert_int_equal(tw_key_generate(link_path, err, sizeof err), -1);
    assert_int_equal(access(target, F_OK), -1);
}

static void key_load_rejects_bad_files(void **state)
{
    (void)state;
    char path[128], err[256];
    uint8_t key[TW_KEY_BYTES];
    uint8_t bytes[TW_KEY_BYTES + 1];
    memset(bytes, 0x5A, sizeof bytes);

    path_in_dir(path, sizeof path, "short.key");
    write_file(path, bytes, TW_KEY_BYTES - 1, 0600);
    assert_int_equal(tw_key_load(path, key, err, sizeof err), -1);
    assert_non_null(strstr(err, "31 bytes"));
    assert_true(all_zero(key, sizeof key));

    path_in_dir(path, sizeof path, "long.key");
    write_file(path, bytes, TW_KEY_BYTES + 1, 0600);
    assert_int_equal(tw_key_load(path, key, err, sizeof err), -1);

    path_in_dir(path, sizeof path, "empty.key");
    write_file(path, bytes, 0, 0600);
    assert_int_equal(tw_key_load(path, key, err, sizeof err), -1);

    path_in_dir(path, sizeof path, "shared.key");
    write_file(path, bytes, TW_KEY_BYTES, 0660);
    assert_int_equal(tw_key_load(path, key, err, sizeof err), -1);
    assert_non_null(strstr(err, "writable"));

    path_in_dir(path, sizeof path, "world.key");
    write_file(path, bytes, TW_KEY_BYTES, 0602);
    assert_int_equal(tw_key_load(path, key, err, sizeof err), -1);

    /* Readable by others is loaded, with a warning in the log. */
    path_in_dir(path, sizeof path, "readable.key");
    write_file(path, bytes, TW_KEY_BYTES, 0644);
    assert_int_equal(tw_key_load(path, key, err, sizeof err), TW_OK);
    assert_memory_equal(key, bytes, TW_KEY_BYTES);

    assert_int_equal(tw_key_load(tmpdir, key, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));

    /* A FIFO without a writer must not block the load. */
    path_in_dir(path, sizeof path, "fifo.key");
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(tw_key_load(path, key, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));

    path_in_dir(path, sizeof path, "missing.key");
    assert_int_equal(tw_key_load(path, key, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
}

static void key_file_token_end_to_end(void **state)
{
    (void)state;
    char path[128], err[256];
    path_in_dir(path, sizeof path, "e2e.key");
    assert_int_equal(tw_key_generate(path, err, sizeof err), TW_OK);
    uint8_t key[TW_KEY_BYTES];
    assert_int_equal(tw_key_load(path, key, err, sizeof err), TW_OK);

    struct tw_token t, back;
    assert_int_equal(tw_token_issue(key, 9, "Eve", 3, NOW, 5, &t), TW_OK);
    char *json = tw_token_to_json(&t);
    assert_non_null(json);
    assert_int_equal(
        tw_token_from_json(json, strlen(json), &back, err, sizeof err), TW_OK);
    tw_token_json_free(json);

    struct tw_msg_login login;
    struct tw_token_private p;
    tw_token_to_login(&back, &login);
    assert_int_equal(tw_token_open(key, &login, &p), TW_OK);
    assert_int_equal(tw_token_validate(&p, &login, 3, NOW + 4, 0),
                     TW_REASON_NONE);

    /* Session keys from the token drive both packet directions. */
    struct tw_cipher client_tx, server_rx;
    tw_cipher_init(&client_tx, back.c2s_key, 3, TW_DIR_C2S);
    tw_cipher_init(&server_rx, p.c2s_key, 3, TW_DIR_C2S);
    const uint8_t msg[] = "input";
    uint8_t wire[64], plain[64];
    int n = tw_seal(&client_tx, TW_CH_INPUT, msg, sizeof msg, wire,
                    sizeof wire);
    assert_int_equal(tw_open(&server_rx, TW_CH_INPUT, wire, (size_t)n, plain,
                             sizeof plain),
                     sizeof msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(token_round_trip),
        cmocka_unit_test(token_survives_login_encoding),
        cmocka_unit_test(token_rejects_every_flipped_bit),
        cmocka_unit_test(token_rejects_wrong_key),
        cmocka_unit_test(token_rejects_changed_clear_fields),
        cmocka_unit_test(token_rejects_inconsistent_sealed_fields),
        cmocka_unit_test(token_issue_rejects_bad_arguments),
        cmocka_unit_test(token_validate_expiry_boundary),
        cmocka_unit_test(token_validate_clock_skew_boundary),
        cmocka_unit_test(token_validate_match_and_version),
        cmocka_unit_test(replay_rejects_duplicate),
        cmocka_unit_test(replay_window_edges),
        cmocka_unit_test(replay_accepts_far_ahead_jump),
        cmocka_unit_test(replay_accepts_out_of_order_once),
        cmocka_unit_test(replay_check_does_not_record),
        cmocka_unit_test(packet_round_trip_every_channel),
        cmocka_unit_test(packet_rejects_every_flipped_bit),
        cmocka_unit_test(packet_rejects_other_context),
        cmocka_unit_test(packet_replay_rejected_window_kept),
        cmocka_unit_test(packet_counter_exhaustion_guard),
        cmocka_unit_test(packet_rejects_bad_sizes),
        cmocka_unit_test(packet_nonces_never_repeat),
        cmocka_unit_test(packet_random_start_separates_sessions),
        cmocka_unit_test(json_round_trip),
        cmocka_unit_test(json_carries_largest_integers),
        cmocka_unit_test(json_rejects_each_malformed_field),
        cmocka_unit_test_setup_teardown(key_generate_mode_and_no_overwrite,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(key_load_rejects_bad_files,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(key_file_token_end_to_end, setup_dir,
                                        teardown_dir),
    };
    return cmocka_run_group_tests(tests, setup_all, NULL);
}
