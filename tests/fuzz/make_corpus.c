/*
 * tw-make-corpus OUTDIR CONFIG: writes the seed corpora of the fuzz targets
 * into OUTDIR/<target>/ from real encoded messages, tokens, datagrams and
 * event programs, plus a copy of CONFIG for the config loader. Run it after
 * changing a wire format and commit the files; fuzz findings are added
 * beside them by hand.
 */
#include "crypto.h"
#include "datagram.h"
#include "protocol.h"
#include "snapshot.h"
#include "trade_msgs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *out_dir;

static void put(const char *target, const char *name, const void *data,
                size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Writes selector byte + message. */
static void put_msg(const char *target, const char *name, uint8_t selector,
                    const uint8_t *msg, int len)
{
    uint8_t buf[4096];
    if (len < 0 || (size_t)len + 1 > sizeof buf) {
        fprintf(stderr, "cannot encode %s\n", name);
        exit(1);
    }
    buf[0] = selector;
    memcpy(buf + 1, msg, (size_t)len);
    put(target, name, buf, (size_t)len + 1);
}

static void decode_corpus(const struct tw_token *tok)
{
    uint8_t m[TW_MAX_PAYLOAD];
    struct tw_msg_login login;
    tw_token_to_login(tok, &login);
    put_msg("decode", "login", 0, m, tw_encode_login(&login, m, sizeof m));

    struct tw_msg_login_ok ok = {.slot = 3, .player_id = 77, .tick_hz = 30,
                                 .server_tick = 1000, .spawn = {448, 500},
                                 .world = {1024, 1024}, .max_speed = 8};
    put_msg("decode", "login_ok", 1, m, tw_encode_login_ok(&ok, m, sizeof m));
    struct tw_msg_error err = {.request_id = 9, .code = 2};
    put_msg("decode", "error", 2, m, tw_encode_error(&err, m, sizeof m));
    struct tw_msg_event ev = {.seq = 12, .server_ms = 123456};
    put_msg("decode", "event", 3, m, tw_encode_event(&ev, m, sizeof m));
    struct tw_msg_ping ping = {.id = 5, .client_ns = 987654321};
    put_msg("decode", "ping", 4, m,
            tw_encode_ping(TW_MSG_PING, &ping, m, sizeof m));
    put_msg("decode", "pong", 5, m,
            tw_encode_ping(TW_MSG_PONG, &ping, m, sizeof m));
    struct tw_msg_match_end end = {.reason = TW_REASON_MATCH_ENDED};
    put_msg("decode", "match_end", 6, m,
            tw_encode_match_end(&end, m, sizeof m));
    struct tw_msg_input in = {.newest_seq = 40, .ack_snapshot = 30,
                              .count = 4,
                              .inputs = {{1, -1}, {127, -127}, {0, 0}, {5, 6}}};
    put_msg("decode", "input", 7, m, tw_encode_input(&in, m, sizeof m));

    /* Snapshot: 4 bytes of world size (1024 x 1024 here), then the message. */
    static struct tw_msg_snapshot snap;
    struct tw_quant q;
    tw_quant_init(&q, (struct tw_vec2){1024, 1024});
    snap.tick = 99;
    snap.ack_input_seq = 40;
    snap.count = 3;
    for (unsigned i = 0; i < snap.count; i++)
        snap.entities[i] = (struct tw_snap_entity){(uint16_t)i, 100 * i, 7 * i};
    uint8_t with_world[TW_MAX_PAYLOAD + 4] = {0x03, 0xff, 0x03, 0xff};
    int n = tw_encode_snapshot(&q, NULL, &snap, with_world + 4,
                               TW_MAX_PAYLOAD);
    put_msg("decode", "snapshot", 8, with_world, n + 4);

    /* A delta against the fuzz target's fixed baseline (8 entities). */
    static struct tw_msg_snapshot base;
    base.tick = 98;
    base.count = 8;
    for (unsigned i = 0; i < base.count; i++)
        base.entities[i] = (struct tw_snap_entity){(uint16_t)(i * 3), i, i};
    snap.count = 4;
    snap.entities[0] = (struct tw_snap_entity){0, 5, 5};
    snap.entities[1] = (struct tw_snap_entity){3, 1, 1};
    snap.entities[2] = (struct tw_snap_entity){100, 7, 9};
    snap.entities[3] = (struct tw_snap_entity){9, 3, 4};
    n = tw_encode_snapshot(&q, &base, &snap, with_world + 4, TW_MAX_PAYLOAD);
    put_msg("decode", "snapshot_delta", 8, with_world, n + 4);

    struct tw_msg_trade_request req = {.request_id = 1, .partner = 77};
    put_msg("decode", "trade_request", 9, m,
            tw_encode_trade_request(&req, m, sizeof m));
    struct tw_msg_trade_respond resp = {.request_id = 2, .trade_id = 5,
                                        .accept = true};
    put_msg("decode", "trade_respond", 10, m,
            tw_encode_trade_respond(&resp, m, sizeof m));
    struct tw_msg_trade_offer offer = {
        .request_id = 3, .trade_id = 5,
        .offer = {.count = 2, .items = {{10, 1}, {11, 5}}}};
    put_msg("decode", "trade_offer", 11, m,
            tw_encode_trade_offer(&offer, m, sizeof m));
    struct tw_msg_trade_confirm confirm = {.request_id = 4, .trade_id = 5,
                                           .offer_version = 2};
    put_msg("decode", "trade_confirm", 12, m,
            tw_encode_trade_confirm(&confirm, m, sizeof m));
    struct tw_msg_trade_cancel cancel = {.request_id = 5, .trade_id = 5};
    put_msg("decode", "trade_cancel", 13, m,
            tw_encode_trade_cancel(&cancel, m, sizeof m));
    struct tw_msg_trade_update update = {
        .trade_id = 5, .state = 1, .a = 77, .b = 78, .offer_version = 2,
        .confirmed_a = true,
        .offer_a = {.count = 1, .items = {{10, 1}}},
        .offer_b = {.count = 1, .items = {{20, 3}}}};
    put_msg("decode", "trade_update", 14, m,
            tw_encode_trade_update(&update, m, sizeof m));
    struct tw_msg_trade_result result = {.request_id = 4, .trade_id = 5};
    put_msg("decode", "trade_result", 15, m,
            tw_encode_trade_result(&result, m, sizeof m));
    struct tw_inventory inv = {.player_id = 77, .count = 2,
                               .items = {{10, "gold", 100}, {11, "sword", 1}}};
    put_msg("decode", "inventory", 16, m,
            tw_encode_inventory(&inv, m, sizeof m));
}

static void token_corpus(const struct tw_token *tok)
{
    char *json = tw_token_to_json(tok);
    if (!json)
        exit(1);
    put_msg("token", "json", 0, (const uint8_t *)json, (int)strlen(json));
    tw_token_json_free(json);

    uint8_t m[TW_MAX_PAYLOAD];
    struct tw_msg_login login;
    tw_token_to_login(tok, &login);
    put_msg("token", "login", 1, m, tw_encode_login(&login, m, sizeof m));

    uint8_t zeros[16] = {0};
    put_msg("token", "valid_login_unchanged", 2, zeros, sizeof zeros);
    uint8_t flip[64] = {0};
    flip[40] = 0x01;
    put_msg("token", "valid_login_flipped", 2, flip, sizeof flip);

    uint8_t packet[64] = {TW_CH_INPUT};
    for (unsigned i = 1; i < sizeof packet; i++)
        packet[i] = (uint8_t)i;
    put_msg("token", "packet", 3, packet, sizeof packet);
}

static void config_corpus(const char *config_path)
{
    FILE *f = fopen(config_path, "rb");
    static char text[65536];
    size_t n = f ? fread(text, 1, sizeof text, f) : 0;
    if (!f || n == 0) {
        perror(config_path);
        exit(1);
    }
    fclose(f);
    put("config", "match.json", text, n);
    put("config", "empty_object", "{}", 2);
    const char *small = "{\"server\":{\"port\":7000,\"host\":\"127.0.0.1\"},"
                        "\"match\":{\"tick_hz\":60},\"debug\":"
                        "{\"enet_time_start_ms\":4294957296}}";
    put("config", "small", small, strlen(small));
}

struct datagram {
    uint8_t bytes[4096];
    size_t len;
};

static void put16(struct datagram *d, uint16_t v)
{
    d->bytes[d->len++] = (uint8_t)(v >> 8);
    d->bytes[d->len++] = (uint8_t)v;
}

static void put32(struct datagram *d, uint32_t v)
{
    put16(d, (uint16_t)(v >> 16));
    put16(d, (uint16_t)v);
}

static void fragment(struct datagram *d, uint16_t peer, uint32_t count,
                     uint32_t number, uint32_t total, uint32_t offset,
                     uint16_t len)
{
    d->len = 0;
    put16(d, peer | ENET_PROTOCOL_HEADER_FLAG_SENT_TIME);
    put16(d, 100);
    d->bytes[d->len++] = ENET_PROTOCOL_COMMAND_SEND_FRAGMENT |
                         ENET_PROTOCOL_COMMAND_FLAG_ACKNOWLEDGE;
    d->bytes[d->len++] = 0;
    put16(d, (uint16_t)(2 + number));
    put16(d, 2);
    put16(d, len);
    put32(d, count);
    put32(d, number);
    put32(d, total);
    put32(d, offset);
    memset(d->bytes + d->len, 0x41, len);
    d->len += len;
}

static void datagram_corpus(void)
{
    struct datagram d;
    size_t piece = tw_fragment_length(1400); /* peer 4 of the fuzz host */
    fragment(&d, 4, 3, 3000, 0, 0, (uint16_t)piece);
    put("datagram", "fragment_first", d.bytes, d.len);
    fragment(&d, 4, 3, 3000, 2, (uint32_t)(2 * piece),
             (uint16_t)(3000 - 2 * piece));
    put("datagram", "fragment_last", d.bytes, d.len);
    fragment(&d, 4, 2, 100, 1, 50, 0);
    put("datagram", "fragment_empty_lie", d.bytes, d.len);
    fragment(&d, 4, 1024 * 1024, 0, 1, 0, 1);
    put("datagram", "fragment_million", d.bytes, d.len);

    d.len = 0;
    put16(&d, ENET_PROTOCOL_MAXIMUM_PEER_ID | ENET_PROTOCOL_HEADER_FLAG_SENT_TIME);
    put16(&d, 100);
    d.bytes[d.len++] = ENET_PROTOCOL_COMMAND_CONNECT |
                       ENET_PROTOCOL_COMMAND_FLAG_ACKNOWLEDGE;
    d.bytes[d.len++] = 0xff;
    put16(&d, 1);
    put16(&d, 0);       /* outgoing peer id */
    d.bytes[d.len++] = 0xff;
    d.bytes[d.len++] = 0xff;
    put32(&d, 1400);    /* mtu */
    put32(&d, 32768);   /* window size */
    put32(&d, 3);       /* channels */
    put32(&d, 0);
    put32(&d, 0);
    put32(&d, 5000);
    put32(&d, 2);
    put32(&d, 2);
    put32(&d, 0x12345678);
    put32(&d, TW_PROTOCOL_VERSION);
    put("datagram", "connect", d.bytes, d.len);

    d.len = 0;
    put16(&d, 4 | ENET_PROTOCOL_HEADER_FLAG_SENT_TIME);
    put16(&d, 100);
    d.bytes[d.len++] = ENET_PROTOCOL_COMMAND_ACKNOWLEDGE;
    d.bytes[d.len++] = 0xff;
    put16(&d, 0);
    put16(&d, 1);
    put16(&d, 90);
    d.bytes[d.len++] = ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE;
    d.bytes[d.len++] = 1;
    put16(&d, 0);
    put16(&d, 1);
    put16(&d, 4);
    put32(&d, 0xdeadbeef);
    put("datagram", "ack_and_unreliable", d.bytes, d.len);
}

/* Server event programs; see the op list in fuzz_server.c. */
enum { CONNECT, DISCONNECT, RAW, LOGIN, SEALED, TICK, WAIT, BAD_LOGIN };

static void server_corpus(void)
{
    uint8_t p[1024];
    size_t n = 0;
    uint8_t m[TW_MAX_PAYLOAD];

    /* Log in, play, ping, leave. */
    p[n++] = CONNECT, p[n++] = 0, p[n++] = 0;
    p[n++] = LOGIN, p[n++] = 0, p[n++] = 1;
    struct tw_msg_input in = {.newest_seq = 1, .count = 1, .inputs = {{3, 4}}};
    int len = tw_encode_input(&in, m, sizeof m);
    p[n++] = SEALED, p[n++] = 0, p[n++] = TW_CH_INPUT, p[n++] = (uint8_t)len;
    memcpy(p + n, m, (size_t)len), n += (size_t)len;
    p[n++] = TICK, p[n++] = 0;
    struct tw_msg_ping ping = {.id = 1, .client_ns = 2};
    len = tw_encode_ping(TW_MSG_PING, &ping, m, sizeof m);
    p[n++] = SEALED, p[n++] = 0, p[n++] = TW_CH_RELIABLE, p[n++] = (uint8_t)len;
    memcpy(p + n, m, (size_t)len), n += (size_t)len;
    p[n++] = WAIT, p[n++] = 0, p[n++] = 50;
    p[n++] = TICK, p[n++] = 0;
    p[n++] = DISCONNECT, p[n++] = 0, p[n++] = TW_REASON_CLIENT_LEFT;
    put("server", "play_and_leave", p, n);

    /* Many peers from one address, garbage before login, then timeouts. */
    n = 0;
    for (uint8_t i = 0; i < 8; i++)
        p[n++] = CONNECT, p[n++] = i, p[n++] = 0;
    p[n++] = RAW, p[n++] = 1, p[n++] = 0, p[n++] = 4;
    p[n++] = TW_MSG_LOGIN, p[n++] = 1, p[n++] = 2, p[n++] = 3;
    p[n++] = RAW, p[n++] = 2, p[n++] = 2, p[n++] = 2;
    p[n++] = TW_MSG_INPUT, p[n++] = 0;
    p[n++] = WAIT, p[n++] = 0, p[n++] = 255;
    p[n++] = TICK, p[n++] = 0;
    put("server", "crowd_from_one_address", p, n);

    /* Same player from two peers, a full match, reused and broken tokens. */
    n = 0;
    for (uint8_t i = 0; i < 6; i++) {
        p[n++] = CONNECT, p[n++] = i, p[n++] = (uint8_t)(i % 3);
        p[n++] = LOGIN, p[n++] = i, p[n++] = i;
    }
    p[n++] = CONNECT, p[n++] = 6, p[n++] = 1;
    p[n++] = LOGIN, p[n++] = 6, p[n++] = 0;
    p[n++] = CONNECT, p[n++] = 7, p[n++] = 2;
    p[n++] = BAD_LOGIN, p[n++] = 7, p[n++] = 0, p[n++] = 0;
    p[n++] = TICK, p[n++] = 0;
    put("server", "replace_full_reuse", p, n);

    /* Wrong protocol version, then a rate-limited flood of raw packets. */
    n = 0;
    p[n++] = CONNECT, p[n++] = 0, p[n++] = 0x82;
    p[n++] = CONNECT, p[n++] = 1, p[n++] = 0;
    p[n++] = LOGIN, p[n++] = 1, p[n++] = 3;
    for (int i = 0; i < 60; i++)
        p[n++] = RAW, p[n++] = 1, p[n++] = 2, p[n++] = 1, p[n++] = 0x60;
    p[n++] = TICK, p[n++] = 0;
    put("server", "version_and_flood", p, n);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fputs("usage: tw-make-corpus OUTDIR CONFIG\n", stderr);
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        perror(out_dir);
        return 1;
    }
    if (tw_crypto_init() != TW_OK)
        return 1;
    uint8_t key[TW_KEY_BYTES];
    for (unsigned i = 0; i < TW_KEY_BYTES; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    struct tw_token tok;
    if (tw_token_issue(key, 42, "seed", 7, 1700000000u, 3600, &tok) != TW_OK)
        return 1;
    decode_corpus(&tok);
    token_corpus(&tok);
    config_corpus(argv[2]);
    datagram_corpus();
    server_corpus();
    return 0;
}
