/*
 * Token and packet opening: the first byte picks tw_token_from_json on the
 * rest, tw_token_open on a login decoded from the rest, tw_token_open on a
 * valid login with the rest XORed over it, or tw_open on the rest (plus a
 * seal and open round trip of the rest as plaintext).
 */
#include "fuzz.h"

#include "crypto.h"
#include "protocol.h"

#include <sodium.h>
#include <string.h>

static uint8_t match_key[TW_KEY_BYTES];
static struct tw_msg_login valid_login;
static uint8_t session_key[TW_KEY_BYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (tw_crypto_init() != TW_OK)
        abort();
    /* Fixed keys keep every run of an input identical. */
    for (unsigned i = 0; i < TW_KEY_BYTES; i++) {
        match_key[i] = (uint8_t)(i * 7 + 1);
        session_key[i] = (uint8_t)(i * 13 + 5);
    }
    struct tw_token tok;
    if (tw_token_issue(match_key, 42, "fuzzer", 7, 1700000000u, 3600, &tok) !=
        TW_OK)
        abort();
    tw_token_to_login(&tok, &valid_login);
    sodium_memzero(&tok, sizeof tok);
    return 0;
}

static void from_json(const uint8_t *p, size_t len)
{
    struct tw_token a, b;
    char err[256];
    if (tw_token_from_json((const char *)p, len, &a, err, sizeof err) != 0)
        return;
    char *json = tw_token_to_json(&a);
    FUZZ_REQUIRE(json != NULL);
    FUZZ_REQUIRE(tw_token_from_json(json, strlen(json), &b, err,
                                    sizeof err) == 0);
    FUZZ_REQUIRE(memcmp(&a, &b, sizeof a) == 0);
    tw_token_json_free(json);
}

static void open_login(const uint8_t *p, size_t len)
{
    struct tw_msg_login login;
    struct tw_token_private out;
    if (tw_decode_login(p, len, &login) != TW_OK)
        return;
    if (tw_token_open(match_key, &login, &out) == TW_OK)
        FUZZ_REQUIRE(out.match_id == login.match_id &&
                     out.expires_at == login.expires_at);
}

static void open_mutated_login(const uint8_t *p, size_t len)
{
    struct tw_msg_login login = valid_login;
    uint8_t *raw = (uint8_t *)&login;
    bool changed = false;
    for (size_t i = 0; i < len && i < sizeof login; i++) {
        raw[i] ^= p[i];
        changed |= p[i] != 0;
    }
    struct tw_token_private out;
    int rc = tw_token_open(match_key, &login, &out);
    if (!changed)
        FUZZ_REQUIRE(rc == TW_OK);
    if (rc == TW_OK)
        FUZZ_REQUIRE(out.player_id == 42 && strcmp(out.name, "fuzzer") == 0);
}

static void open_packet(const uint8_t *p, size_t len)
{
    struct tw_cipher tx, rx;
    static uint8_t plain[TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD];
    static uint8_t sealed[TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD];
    if (len < 1)
        return;
    uint8_t channel = p[0] % (TW_CHANNEL_COUNT + 1);
    p++;
    len--;
    tw_cipher_init(&rx, session_key, 7, TW_DIR_C2S);
    int n = tw_open(&rx, channel, p, len, plain, sizeof plain);
    FUZZ_REQUIRE(n < 0 || (size_t)n + TW_SEAL_OVERHEAD == len);

    /* Round trip: what one side seals, the other opens exactly once. */
    tw_cipher_init(&tx, session_key, 7, TW_DIR_C2S);
    tw_cipher_init(&rx, session_key, 7, TW_DIR_C2S);
    n = tw_seal(&tx, channel, p, len, sealed, sizeof sealed);
    if (n > 0) {
        int m = tw_open(&rx, channel, sealed, (size_t)n, plain, sizeof plain);
        FUZZ_REQUIRE(m >= 0 && (size_t)m == len);
        FUZZ_REQUIRE(memcmp(plain, p, len) == 0);
        m = tw_open(&rx, channel, sealed, (size_t)n, plain, sizeof plain);
        FUZZ_REQUIRE(m == -TW_DROP_REPLAYED);
    }
    tw_cipher_wipe(&tx);
    tw_cipher_wipe(&rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 0:
        from_json(data + 1, size - 1);
        break;
    case 1:
        open_login(data + 1, size - 1);
        break;
    case 2:
        open_mutated_login(data + 1, size - 1);
        break;
    case 3:
        open_packet(data + 1, size - 1);
        break;
    }
    return 0;
}
