/*
 * tw-hostile: a misbehaving ENet client for tests. It opens several peers
 * and sends a bounded number of malformed packets: random bytes, unknown
 * message ids, truncated logins and inputs before login. With --key, half
 * of the peers log in properly first and then send garbage inside and
 * outside the session's seal. Peers that the server disconnects are
 * reconnected until the packet budget is spent. Prints a JSON line with
 * what it sent.
 */
#include "bits.h"
#include "clock.h"
#include "crypto.h"
#include "protocol.h"

#include <enet/enet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PEERS 64

enum kind {
    RANDOM_BYTES,
    UNKNOWN_ID,
    TRUNCATED_LOGIN,
    EARLY_INPUT,
    EMPTY,
    SEALED_UNKNOWN_ID,
    SEALED_TRUNCATED_INPUT,
    SEALED_WRONG_CHANNEL,
    UNSEALED_AFTER_LOGIN,
    KIND_COUNT
};

static const char *const kind_names[KIND_COUNT] = {
    "random_bytes",      "unknown_id",           "truncated_login",
    "early_input",       "empty",                "sealed_unknown_id",
    "sealed_truncated",  "sealed_wrong_channel", "unsealed_after_login",
};

struct hostile_peer {
    ENetPeer *peer;
    bool connected;
    bool logged_in;
    bool wants_login;
    struct tw_token token;
    struct tw_cipher tx;
};

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void send_raw(ENetPeer *peer, uint8_t channel, const void *data,
                     size_t len, uint32_t flags)
{
    ENetPacket *p = enet_packet_create(data, len, flags);
    if (p && enet_peer_send(peer, channel, p) < 0)
        enet_packet_destroy(p);
}

static void send_sealed(struct hostile_peer *h, uint8_t channel,
                        const uint8_t *plain, size_t len)
{
    uint8_t out[TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD];
    int n = tw_seal(&h->tx, channel, plain, len, out, sizeof out);
    if (n > 0)
        send_raw(h->peer, channel, out, (size_t)n, 0);
}

/* Sends one hostile packet; returns the kind sent. */
static enum kind send_garbage(struct hostile_peer *h)
{
    uint8_t buf[600];
    size_t len = 1 + rnd() % 300;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rnd();
    uint8_t channel = (uint8_t)(rnd() % TW_CHANNEL_COUNT);

    enum kind k = (enum kind)(rnd() % (h->logged_in ? KIND_COUNT
                                                     : SEALED_UNKNOWN_ID));
    switch (k) {
    case RANDOM_BYTES:
        break;
    case UNKNOWN_ID:
        buf[0] = 0xEE;
        break;
    case TRUNCATED_LOGIN:
        buf[0] = TW_MSG_LOGIN;
        len = 1 + rnd() % 100;
        channel = TW_CH_RELIABLE;
        break;
    case EARLY_INPUT:
    case UNSEALED_AFTER_LOGIN:
        buf[0] = TW_MSG_INPUT;
        len = 12;
        channel = TW_CH_INPUT;
        break;
    case EMPTY:
        len = 0;
        break;
    case SEALED_UNKNOWN_ID:
        buf[0] = 0xEE;
        send_sealed(h, TW_CH_RELIABLE, buf, 8);
        return k;
    case SEALED_TRUNCATED_INPUT:
        buf[0] = TW_MSG_INPUT;
        send_sealed(h, TW_CH_INPUT, buf, 1 + rnd() % 9);
        return k;
    case SEALED_WRONG_CHANNEL:
        buf[0] = TW_MSG_PING;
        send_sealed(h, TW_CH_INPUT, buf, 13);
        return k;
    case KIND_COUNT:
        break;
    }
    send_raw(h->peer, channel, buf, len,
             channel == TW_CH_RELIABLE ? ENET_PACKET_FLAG_RELIABLE : 0);
    return k;
}

static void login(struct hostile_peer *h)
{
    struct tw_msg_login msg;
    uint8_t buf[TW_MAX_PAYLOAD];
    tw_token_to_login(&h->token, &msg);
    int n = tw_encode_login(&msg, buf, sizeof buf);
    if (n > 0)
        send_raw(h->peer, TW_CH_RELIABLE, buf, (size_t)n,
                 ENET_PACKET_FLAG_RELIABLE);
    tw_cipher_init(&h->tx, h->token.c2s_key, h->token.match_id, TW_DIR_C2S);
}

int main(int argc, char **argv)
{
    const char *server = NULL, *key_path = NULL;
    unsigned peers = 8, packets = 10000, rate = 2000;
    uint64_t player_base = 900000;
    static const struct option options[] = {
        {"server", required_argument, NULL, 's'},
        {"key", required_argument, NULL, 'k'},
        {"peers", required_argument, NULL, 'n'},
        {"packets", required_argument, NULL, 'p'},
        {"rate", required_argument, NULL, 'r'},
        {"player-base", required_argument, NULL, 'b'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 's': server = optarg; break;
        case 'k': key_path = optarg; break;
        case 'n': peers = (unsigned)atoi(optarg); break;
        case 'p': packets = (unsigned)atoi(optarg); break;
        case 'r': rate = (unsigned)atoi(optarg); break;
        case 'b': player_base = strtoull(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    char host_part[64];
    const char *colon = server ? strrchr(server, ':') : NULL;
    if (!colon || peers == 0 || peers > MAX_PEERS || rate == 0 ||
        (size_t)(colon - server) >= sizeof host_part) {
        fprintf(stderr, "usage: tw-hostile --server IP:PORT [--key FILE] "
                        "[--peers 1..64] [--packets N] [--rate PER_SEC]\n");
        return 2;
    }
    memcpy(host_part, server, (size_t)(colon - server));
    host_part[colon - server] = '\0';

    if (tw_crypto_init() != TW_OK || enet_initialize() != 0)
        return 1;
    ENetAddress address = {.port = (enet_uint16)atoi(colon + 1)};
    enet_address_set_host_ip(&address, host_part);
    ENetHost *host = enet_host_create(NULL, peers, TW_CHANNEL_COUNT, 0, 0);
    if (!host)
        return 1;

    uint8_t key[TW_KEY_BYTES];
    char err[256];
    bool have_key = key_path && tw_key_load(key_path, key, err, sizeof err) == 0;
    static struct hostile_peer hp[MAX_PEERS];
    uint64_t sent[KIND_COUNT] = {0};
    unsigned total = 0, connects = 0, disconnects = 0, logins = 0;
    uint64_t start = tw_clock_mono_ns();
    uint64_t give_up = start + 120ull * 1000000000ull;

    while (total < packets && tw_clock_mono_ns() < give_up) {
        for (unsigned i = 0; i < peers; i++) {
            struct hostile_peer *h = &hp[i];
            if (h->peer)
                continue;
            /* Odd-numbered peers with a key log in before misbehaving. */
            h->wants_login = have_key && (i % 2 == 1);
            if (h->wants_login &&
                tw_token_issue(key, player_base + connects, "hostile", 1,
                               tw_clock_unix_s(), 600, &h->token) != TW_OK)
                h->wants_login = false;
            h->peer = enet_host_connect(host, &address, TW_CHANNEL_COUNT,
                                        TW_PROTOCOL_VERSION);
            if (h->peer)
                h->peer->data = h;
            connects++;
        }

        ENetEvent ev;
        while (enet_host_service(host, &ev, 1) > 0) {
            struct hostile_peer *h = ev.peer->data;
            if (ev.type == ENET_EVENT_TYPE_CONNECT && h) {
                h->connected = true;
                if (h->wants_login)
                    login(h);
            } else if (ev.type == ENET_EVENT_TYPE_RECEIVE) {
                /* Any sealed reply after a login means the server took it. */
                if (h && h->wants_login && !h->logged_in) {
                    h->logged_in = true;
                    logins++;
                }
                enet_packet_destroy(ev.packet);
            } else if (ev.type == ENET_EVENT_TYPE_DISCONNECT && h) {
                tw_cipher_wipe(&h->tx);
                memset(h, 0, sizeof *h);
                disconnects++;
            }
        }

        /* Pace the flood: send what the rate allows since the start. */
        uint64_t due = (tw_clock_mono_ns() - start) * rate / 1000000000ull;
        for (unsigned i = 0; i < peers && total < due && total < packets; i++) {
            struct hostile_peer *h = &hp[i];
            if (!h->connected || (h->wants_login && !h->logged_in))
                continue;
            sent[send_garbage(h)]++;
            total++;
        }
        enet_host_flush(host);
    }

    for (unsigned i = 0; i < peers; i++)
        if (hp[i].peer)
            enet_peer_disconnect_now(hp[i].peer, 0);
    enet_host_flush(host);

    printf("{\"packets\": %u, \"connects\": %u, \"disconnects\": %u, "
           "\"logins\": %u",
           total, connects, disconnects, logins);
    for (unsigned k = 0; k < KIND_COUNT; k++)
        printf(", \"%s\": %llu", kind_names[k], (unsigned long long)sent[k]);
    printf("}\n");
    enet_host_destroy(host);
    enet_deinitialize();
    return total == packets ? 0 : 1;
}
