#include "crypto.h"

#include "log.h"

#include <cjson/cJSON.h>
#include <sodium.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(TW_KEY_BYTES == crypto_aead_chacha20poly1305_ietf_KEYBYTES,
               "packet key size");
_Static_assert(TW_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
               "token key size");
_Static_assert(TW_TAG_BYTES == crypto_aead_chacha20poly1305_ietf_ABYTES,
               "packet tag size");
_Static_assert(TW_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "token tag size");
_Static_assert(TW_TOKEN_NONCE_BYTES ==
                   crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
               "token nonce size");
_Static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12,
               "packet nonce size");
_Static_assert(TW_REPLAY_WINDOW % 64 == 0, "replay bitmap words");

#define TOKEN_AD_LABEL "tickwire"
#define TOKEN_AD_BYTES (8 + 2 + 4 + 8)
#define PACKET_AD_BYTES (2 + 4 + 1 + 1)
#define PACKET_NONCE_BYTES 12

/* Offsets inside the token plaintext. */
#define PT_PLAYER 0
#define PT_NAME 8
#define PT_MATCH (PT_NAME + TW_NAME_MAX + 1)
#define PT_CREATED (PT_MATCH + 4)
#define PT_EXPIRES (PT_CREATED + 8)
#define PT_C2S (PT_EXPIRES + 8)
#define PT_S2C (PT_C2S + TW_KEY_BYTES)
_Static_assert(PT_S2C + TW_KEY_BYTES == TW_TOKEN_PLAIN_BYTES,
               "token plaintext layout");

/* A token's JSON is about 500 bytes, so anything far larger is not one. */
#define TOKEN_JSON_MAX 4096

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int tw_crypto_init(void)
{
    return sodium_init() < 0 ? -1 : TW_OK;
}

/* ---- Connect tokens ---------------------------------------------------- */

/* True for 1..TW_NAME_MAX printable ASCII bytes followed by a NUL. */
static bool name_valid(const char *name, size_t cap)
{
    size_t n = 0;
    while (n < cap && name[n] != '\0') {
        unsigned char c = (unsigned char)name[n];
        if (c < 0x20 || c > 0x7e)
            return false;
        n++;
    }
    return n >= 1 && n <= TW_NAME_MAX && n < cap;
}

static void token_ad(uint8_t ad[TOKEN_AD_BYTES], uint16_t protocol,
                     uint32_t match_id, uint64_t expires_at)
{
    memcpy(ad, TOKEN_AD_LABEL, 8);
    put_u16(ad + 8, protocol);
    put_u32(ad + 10, match_id);
    put_u64(ad + 14, expires_at);
}

int tw_token_issue(const uint8_t match_key[TW_KEY_BYTES], uint64_t player_id,
                   const char *name, uint32_t match_id, uint64_t now,
                   uint32_t ttl_s, struct tw_token *out)
{
    sodium_memzero(out, sizeof *out);
    if (!name || !name_valid(name, TW_NAME_MAX + 1) || ttl_s == 0 ||
        player_id > TW_JSON_INT_MAX || now > TW_JSON_INT_MAX - ttl_s)
        return -1;
    if (tw_crypto_init() != TW_OK)
        return -1;

    out->protocol = TW_PROTOCOL_VERSION;
    out->match_id = match_id;
    out->player_id = player_id;
    strcpy(out->name, name); /* length checked by name_valid */
    out->created_at = now;
    out->expires_at = now + ttl_s;
    randombytes_buf(out->c2s_key, sizeof out->c2s_key);
    randombytes_buf(out->s2c_key, sizeof out->s2c_key);
    randombytes_buf(out->nonce, sizeof out->nonce);

    uint8_t plain[TW_TOKEN_PLAIN_BYTES] = {0};
    put_u64(plain + PT_PLAYER, player_id);
    memcpy(plain + PT_NAME, out->name, strlen(out->name));
    put_u32(plain + PT_MATCH, match_id);
    put_u64(plain + PT_CREATED, out->created_at);
    put_u64(plain + PT_EXPIRES, out->expires_at);
    memcpy(plain + PT_C2S, out->c2s_key, TW_KEY_BYTES);
    memcpy(plain + PT_S2C, out->s2c_key, TW_KEY_BYTES);

    uint8_t ad[TOKEN_AD_BYTES];
    token_ad(ad, out->protocol, match_id, out->expires_at);
    unsigned long long sealed_len = 0;
    int rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
        out->sealed, &sealed_len, plain, sizeof plain, ad, sizeof ad, NULL,
        out->nonce, match_key);
    sodium_memzero(plain, sizeof plain);
    if (rc != 0 || sealed_len != TW_TOKEN_SEALED_BYTES) {
        sodium_memzero(out, sizeof *out);
        return -1;
    }
    return TW_OK;
}

/*
 * The name field is canonical: printable bytes, then NULs to the end, so
 * one token has exactly one plaintext.
 */
static bool name_field_valid(const uint8_t *field)
{
    size_t n = 0;
    while (n < TW_NAME_MAX + 1 && field[n] != 0)
        n++;
    if (!name_valid((const char *)field, TW_NAME_MAX + 1))
        return false;
    for (size_t i = n; i < TW_NAME_MAX + 1; i++)
        if (field[i] != 0)
            return false;
    return true;
}

int tw_token_open(const uint8_t match_key[TW_KEY_BYTES],
                  const struct tw_msg_login *login,
                  struct tw_token_private *out)
{
    sodium_memzero(out, sizeof *out);

    uint8_t ad[TOKEN_AD_BYTES];
    token_ad(ad, login->protocol, login->match_id, login->expires_at);
    uint8_t plain[TW_TOKEN_PLAIN_BYTES];
    unsigned long long plain_len = 0;
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
        plain, &plain_len, NULL, login->sealed, sizeof login->sealed, ad,
        sizeof ad, login->nonce, match_key);
    if (rc != 0 || plain_len != TW_TOKEN_PLAIN_BYTES) {
        sodium_memzero(plain, sizeof plain);
        return -TW_DROP_BAD_SEAL;
    }

    out->player_id = get_u64(plain + PT_PLAYER);
    memcpy(out->name, plain + PT_NAME, TW_NAME_MAX + 1);
    out->match_id = get_u32(plain + PT_MATCH);
    out->created_at = get_u64(plain + PT_CREATED);
    out->expires_at = get_u64(plain + PT_EXPIRES);
    memcpy(out->c2s_key, plain + PT_C2S, TW_KEY_BYTES);
    memcpy(out->s2c_key, plain + PT_S2C, TW_KEY_BYTES);
    bool name_ok = name_field_valid(plain + PT_NAME);
    sodium_memzero(plain, sizeof plain);

    /*
     * The seal already binds the clear fields through the associated data,
     * so a mismatch here means the issuer itself wrote an inconsistent
     * token. It is still rejected rather than trusted.
     */
    if (!name_ok || out->match_id != login->match_id ||
        out->expires_at != login->expires_at ||
        out->created_at >= out->expires_at) {
        sodium_memzero(out, sizeof *out);
        return -TW_DROP_BAD_SEAL;
    }
    return TW_OK;
}

enum tw_reason tw_token_validate(const struct tw_token_private *t,
                                 const struct tw_msg_login *login,
                                 uint32_t match_id, uint64_t now,
                                 uint32_t skew_s)
{
    if (login->protocol != TW_PROTOCOL_VERSION)
        return TW_REASON_VERSION_MISMATCH;
    if (t->match_id != match_id || login->match_id != match_id)
        return TW_REASON_WRONG_MATCH;
    if (now >= t->expires_at)
        return TW_REASON_TOKEN_EXPIRED;
    /* Written as a subtraction so now + skew_s cannot wrap. */
    if (t->created_at > now && t->created_at - now > skew_s)
        return TW_REASON_CLOCK_SKEW;
    return TW_REASON_NONE;
}

void tw_token_to_login(const struct tw_token *t, struct tw_msg_login *out)
{
    memset(out, 0, sizeof *out);
    out->protocol = t->protocol;
    out->match_id = t->match_id;
    out->expires_at = t->expires_at;
    memcpy(out->nonce, t->nonce, sizeof out->nonce);
    memcpy(out->sealed, t->sealed, sizeof out->sealed);
}

/* ---- Token JSON -------------------------------------------------------- */

/*
 * cJSON frees its strings without wiping them, so every tree that held key
 * material is deleted here, and no base64 key survives in freed memory.
 */
static void json_wipe_delete(cJSON *root)
{
    if (!root)
        return;
    for (cJSON *it = root->child; it; it = it->next) {
        if (it->valuestring)
            sodium_memzero(it->valuestring, strlen(it->valuestring));
    }
    cJSON_Delete(root);
}

static bool add_b64(cJSON *root, const char *key, const uint8_t *bin,
                    size_t len)
{
    char b64[256];
    if (sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL) >
        sizeof b64)
        return false;
    sodium_bin2base64(b64, sizeof b64, bin, len,
                      sodium_base64_VARIANT_ORIGINAL);
    bool ok = cJSON_AddStringToObject(root, key, b64) != NULL;
    sodium_memzero(b64, sizeof b64);
    return ok;
}

/*
 * cJSON 1.7.15 prints numbers with 15 significant digits when that reads
 * back within an epsilon, which rounds large ids (9007199254740991 prints
 * as 9.00719925474099e+15). Integers are therefore written as raw digits.
 */
static bool add_int(cJSON *root, const char *key, uint64_t v)
{
    if (v > TW_JSON_INT_MAX)
        return false;
    char digits[24];
    snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    return cJSON_AddRawToObject(root, key, digits) != NULL;
}

char *tw_token_to_json(const struct tw_token *t)
{
    if (!name_valid(t->name, sizeof t->name))
        return NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    bool ok = cJSON_AddStringToObject(root, "format", TW_TOKEN_FORMAT) &&
              add_int(root, "protocol", t->protocol) &&
              add_int(root, "match_id", t->match_id) &&
              add_int(root, "player_id", t->player_id) &&
              cJSON_AddStringToObject(root, "name", t->name) &&
              add_int(root, "created_at", t->created_at) &&
              add_int(root, "expires_at", t->expires_at) &&
              add_b64(root, "nonce", t->nonce, sizeof t->nonce) &&
              add_b64(root, "sealed", t->sealed, sizeof t->sealed) &&
              add_b64(root, "client_to_server_key", t->c2s_key,
                      sizeof t->c2s_key) &&
              add_b64(root, "server_to_client_key", t->s2c_key,
                      sizeof t->s2c_key);

    /*
     * Printing into our own buffer keeps cJSON from growing (and leaving
     * behind) copies of the keys. cJSON's documentation requests 5 spare
 * bytes.
     */
    char *json = NULL;
    if (ok) {
        json = malloc(TOKEN_JSON_MAX);
        if (json && !cJSON_PrintPreallocated(root, json, TOKEN_JSON_MAX - 5,
                                              1)) {
            tw_token_json_free(json);
            json = NULL;
        }
    }
    json_wipe_delete(root);
    return json;
}

void tw_token_json_free(char *json)
{
    if (!json)
        return;
    sodium_memzero(json, strlen(json));
    free(json);
}

static const char *const json_keys[] = {
    "format",     "protocol",   "match_id", "player_id",
    "name",       "created_at", "expires_at", "nonce",
    "sealed",     "client_to_server_key", "server_to_client_key",
};
#define JSON_KEY_COUNT (sizeof json_keys / sizeof json_keys[0])

static int read_int(const cJSON *root, const char *key, uint64_t max,
                    uint64_t *out, char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it) {
        set_err(err, errlen, "%s: missing", key);
        return -1;
    }
    double d = it->valuedouble;
    /* The range test comes first so the cast below is defined. */
    if (!cJSON_IsNumber(it) || !(d >= 0.0 && d <= (double)max) ||
        (double)(uint64_t)d != d) {
        set_err(err, errlen,
                "%s: must be an integer from 0 to %llu", key,
                (unsigned long long)max);
        return -1;
    }
    *out = (uint64_t)d;
    return TW_OK;
}

static int read_b64(const cJSON *root, const char *key, uint8_t *bin,
                    size_t len, char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it) {
        set_err(err, errlen, "%s: missing", key);
        return -1;
    }
    size_t want = sodium_base64_ENCODED_LEN(len,
                                            sodium_base64_VARIANT_ORIGINAL) -
                  1;
    const char *s = cJSON_GetStringValue(it);
    size_t bin_len = 0;
    const char *end = NULL;
    if (!s || strlen(s) != want ||
        sodium_base642bin(bin, len, s, want, NULL, &bin_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        bin_len != len || end != s + want) {
        sodium_memzero(bin, len);
        set_err(err, errlen,
                "%s: must be %zu bytes in padded standard base64 "
                "(%zu characters)",
                key, len, want);
        return -1;
    }
    return TW_OK;
}

static int check_keys(const cJSON *root, char *err, size_t errlen)
{
    bool seen[JSON_KEY_COUNT] = {false};
    for (const cJSON *it = root->child; it; it = it->next) {
        size_t k = 0;
        while (k < JSON_KEY_COUNT && strcmp(it->string, json_keys[k]) != 0)
            k++;
        if (k == JSON_KEY_COUNT) {
            /* The key came from a file: print only what is safe. */
            char shown[40];
            size_t n = 0;
            for (const char *c = it->string; *c && n + 1 < sizeof shown; c++)
                shown[n++] = (*c >= 0x20 && *c <= 0x7e) ? *c : '?';
            shown[n] = '\0';
            set_err(err, errlen, "%s: unknown key", shown);
            return -1;
        }
        if (seen[k]) {
            set_err(err, errlen, "%s: repeated key", json_keys[k]);
            return -1;
        }
        seen[k] = true;
    }
    return TW_OK;
}

static int parse_token(const cJSON *root, struct tw_token *out, char *err,
                       size_t errlen)
{
    if (!cJSON_IsObject(root)) {
        set_err(err, errlen, "token: not a JSON object");
        return -1;
    }
    if (check_keys(root, err, errlen) != TW_OK)
        return -1;

    const char *format =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "format"));
    if (!format || strcmp(format, TW_TOKEN_FORMAT) != 0) {
        set_err(err, errlen, "format: must be \"%s\"", TW_TOKEN_FORMAT);
        return -1;
    }

    uint64_t protocol, match_id;
    if (read_int(root, "protocol", UINT16_MAX, &protocol, err, errlen) ||
        read_int(root, "match_id", UINT32_MAX, &match_id, err, errlen) ||
        read_int(root, "player_id", TW_JSON_INT_MAX, &out->player_id, err,
                 errlen) ||
        read_int(root, "created_at", TW_JSON_INT_MAX, &out->created_at, err,
                 errlen) ||
        read_int(root, "expires_at", TW_JSON_INT_MAX, &out->expires_at, err,
                 errlen))
        return -1;
    out->protocol = (uint16_t)protocol;
    out->match_id = (uint32_t)match_id;
    if (out->expires_at <= out->created_at) {
        set_err(err, errlen, "expires_at: must be after created_at");
        return -1;
    }

    const char *name =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "name"));
    if (!name || strlen(name) > TW_NAME_MAX ||
        !name_valid(name, TW_NAME_MAX + 1)) {
        set_err(err, errlen, "name: must be 1 to %u printable ASCII characters",
                TW_NAME_MAX);
        return -1;
    }
    strcpy(out->name, name);

    if (read_b64(root, "nonce", out->nonce, sizeof out->nonce, err,
                 errlen) ||
        read_b64(root, "sealed", out->sealed, sizeof out->sealed, err,
                 errlen) ||
        read_b64(root, "client_to_server_key", out->c2s_key,
                 sizeof out->c2s_key, err, errlen) ||
        read_b64(root, "server_to_client_key", out->s2c_key,
                 sizeof out->s2c_key, err, errlen))
        return -1;
    return TW_OK;
}

int tw_token_from_json(const char *text, size_t len, struct tw_token *out,
                       char *err, size_t errlen)
{
    sodium_memzero(out, sizeof *out);
    if (len > TOKEN_JSON_MAX) {
        set_err(err, errlen, "token: %zu bytes, larger than the %d allowed",
                len, TOKEN_JSON_MAX);
        return -1;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        set_err(err, errlen, "token: invalid JSON");
        return -1;
    }
    int rc = parse_token(root, out, err, errlen);
    json_wipe_delete(root);
    if (rc != TW_OK)
        sodium_memzero(out, sizeof *out);
    return rc;
}

/* ---- Match key files --------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int tw_key_generate(const char *path, char *err, size_t errlen)
{
    if (tw_crypto_init() != TW_OK) {
        set_err(err, errlen, "%s: libsodium failed to initialize", path);
        return -1;
    }
    /* O_EXCL also fails on a dangling symlink, so nothing is redirected. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            set_err(err, errlen,
                    "%s: already exists; refusing to overwrite a match key",
                    path);
        else
            set_err(err, errlen, "%s: cannot create: %s", path,
                    strerror(errno));
        return -1;
    }

    uint8_t key[TW_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    /* The umask can only narrow 0600, and fchmod makes the mode exact. */
    int rc = fchmod(fd, 0600);
    if (rc == 0)
        rc = write_all(fd, key, sizeof key);
    if (rc == 0)
        rc = fsync(fd);
    sodium_memzero(key, sizeof key);
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        unlink(path);
        set_err(err, errlen, "%s: cannot write: %s", path, strerror(saved));
        return -1;
    }
    return TW_OK;
}

static int read_exact(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int tw_key_load(const char *path, uint8_t key[TW_KEY_BYTES], char *err,
                size_t errlen)
{
    sodium_memzero(key, TW_KEY_BYTES);
    /* O_NONBLOCK keeps a FIFO from blocking before the S_ISREG check. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_err(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        set_err(err, errlen,
                "%s: writable by group or others (mode %04o); run chmod 600",
                path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    if (st.st_size != (off_t)TW_KEY_BYTES) {
        set_err(err, errlen, "%s: %lld bytes, a match key is exactly %u",
                path, (long long)st.st_size, TW_KEY_BYTES);
        close(fd);
        return -1;
    }

    /* A final read of 0 proves the file did not grow since fstat. */
    uint8_t extra;
    errno = 0;
    int rc = read_exact(fd, key, TW_KEY_BYTES);
    if (rc == 0 && read(fd, &extra, 1) != 0)
        rc = -1;
    int saved = errno;
    close(fd);
    if (rc != 0) {
        sodium_memzero(key, TW_KEY_BYTES);
        set_err(err, errlen, "%s: cannot read %u bytes: %s", path,
                TW_KEY_BYTES, saved ? strerror(saved) : "size changed");
        return -1;
    }
    if (st.st_mode & (S_IRGRP | S_IROTH))
        TW_LOG(TW_WARN, "crypto", TW_NO_PEER,
               "%s: readable by group or others (mode %04o); run chmod 600",
               path, (unsigned)(st.st_mode & 07777));
    return TW_OK;
}

/* ---- Replay window ----------------------------------------------------- */

void tw_replay_init(struct tw_replay *w)
{
    memset(w, 0, sizeof *w);
}

static bool replay_bit(const struct tw_replay *w, uint64_t counter)
{
    uint64_t i = counter % TW_REPLAY_WINDOW;
    return (w->seen[i / 64] >> (i % 64)) & 1u;
}

static void replay_set(struct tw_replay *w, uint64_t counter, bool on)
{
    uint64_t i = counter % TW_REPLAY_WINDOW;
    uint64_t mask = (uint64_t)1 << (i % 64);
    if (on)
        w->seen[i / 64] |= mask;
    else
        w->seen[i / 64] &= ~mask;
}

bool tw_replay_check(const struct tw_replay *w, uint64_t counter)
{
    if (!w->any || counter > w->newest)
        return true;
    if (w->newest - counter >= TW_REPLAY_WINDOW)
        return false;
    return !replay_bit(w, counter);
}

void tw_replay_accept(struct tw_replay *w, uint64_t counter)
{
    if (!w->any) {
        memset(w->seen, 0, sizeof w->seen);
        w->any = true;
        w->newest = counter;
    } else if (counter > w->newest) {
        /* Slots between the old and the new newest now belong to unseen
         * counters. A jump of a whole window or more clears them all. */
        uint64_t gap = counter - w->newest;
        if (gap >= TW_REPLAY_WINDOW) {
            memset(w->seen, 0, sizeof w->seen);
        } else {
            for (uint64_t c = w->newest + 1; c < counter; c++)
                replay_set(w, c, false);
        }
        w->newest = counter;
    } else if (w->newest - counter >= TW_REPLAY_WINDOW) {
        return;
    }
    replay_set(w, counter, true);
}

/* ---- Packet AEAD ------------------------------------------------------- */

void tw_cipher_init(struct tw_cipher *c, const uint8_t key[TW_KEY_BYTES],
                    uint32_t match_id, uint8_t direction)
{
    memset(c, 0, sizeof *c);
    memcpy(c->key, key, TW_KEY_BYTES);
    c->match_id = match_id;
    c->direction = direction;
    for (int ch = 0; ch < TW_CHANNEL_COUNT; ch++)
        tw_replay_init(&c->replay[ch]);
}

void tw_cipher_wipe(struct tw_cipher *c)
{
    sodium_memzero(c, sizeof *c);
}

void tw_cipher_random_start(struct tw_cipher *c)
{
    for (int ch = 0; ch < TW_CHANNEL_COUNT; ch++) {
        uint64_t r;
        randombytes_buf(&r, sizeof r);
        c->next_counter[ch] = r >> 2;
    }
}

static void packet_nonce(uint8_t nonce[PACKET_NONCE_BYTES], uint8_t channel,
                         uint8_t direction, uint64_t counter)
{
    nonce[0] = channel;
    nonce[1] = direction;
    nonce[2] = 0;
    nonce[3] = 0;
    put_u64(nonce + 4, counter);
}

static void packet_ad(uint8_t ad[PACKET_AD_BYTES], uint32_t match_id,
                      uint8_t direction, uint8_t channel)
{
    put_u16(ad, TW_PROTOCOL_VERSION);
    put_u32(ad + 2, match_id);
    ad[6] = direction;
    ad[7] = channel;
}

int tw_seal(struct tw_cipher *c, uint8_t channel, const uint8_t *plain,
            size_t len, uint8_t *out, size_t cap)
{
    if (channel >= TW_CHANNEL_COUNT)
        return -TW_DROP_WRONG_CHANNEL;
    if (len > TW_MAX_PAYLOAD || cap < len + TW_SEAL_OVERHEAD)
        return -TW_DROP_OVERSIZED;
    uint64_t counter = c->next_counter[channel];
    if (counter == UINT64_MAX)
        return -TW_DROP_WRONG_STATE;

    uint8_t nonce[PACKET_NONCE_BYTES];
    uint8_t ad[PACKET_AD_BYTES];
    packet_nonce(nonce, channel, c->direction, counter);
    packet_ad(ad, c->match_id, c->direction, channel);
    put_u64(out, counter);
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out + TW_COUNTER_BYTES, &clen,
                                              plain, len, ad, sizeof ad, NULL,
                                              nonce, c->key);
    c->next_counter[channel] = counter + 1;
    return (int)(TW_COUNTER_BYTES + clen);
}

int tw_open(struct tw_cipher *c, uint8_t channel, const uint8_t *packet,
            size_t len, uint8_t *plain, size_t cap)
{
    int rc;
    if (len < TW_SEAL_OVERHEAD) {
        rc = -TW_DROP_TRUNCATED;
        goto fail;
    }
    size_t plain_len = len - TW_SEAL_OVERHEAD;
    if (channel >= TW_CHANNEL_COUNT) {
        rc = -TW_DROP_WRONG_CHANNEL;
        goto fail;
    }
    if (plain_len > TW_MAX_PAYLOAD || plain_len > cap) {
        rc = -TW_DROP_OVERSIZED;
        goto fail;
    }
    uint64_t counter = get_u64(packet);
    /* No sender uses UINT64_MAX, so such a packet is forged: skip the tag. */
    if (counter == UINT64_MAX) {
        rc = -TW_DROP_BAD_SEAL;
        goto fail;
    }
    if (!tw_replay_check(&c->replay[channel], counter)) {
        rc = -TW_DROP_REPLAYED;
        goto fail;
    }

    uint8_t nonce[PACKET_NONCE_BYTES];
    uint8_t ad[PACKET_AD_BYTES];
    packet_nonce(nonce, channel, c->direction, counter);
    packet_ad(ad, c->match_id, c->direction, channel);
    unsigned long long mlen = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(
            plain, &mlen, NULL, packet + TW_COUNTER_BYTES,
            len - TW_COUNTER_BYTES, ad, sizeof ad, nonce, c->key) != 0 ||
        mlen != plain_len) {
        rc = -TW_DROP_BAD_SEAL;
        goto fail;
    }
    tw_replay_accept(&c->replay[channel], counter);
    return (int)mlen;

fail:
    if (plain)
        sodium_memzero(plain, len < cap ? len : cap);
    return rc;
}
