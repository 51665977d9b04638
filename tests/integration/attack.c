/*
 * tw-attack: bounded attacks and odd clients for the defense tests. Every
 * mode talks only to the --server address (loopback in the tests), stops
 * by itself and prints one JSON line with what it did.
 *
 *   fragments --lie empty|million|partial --count N
 *       connects one ENet peer, then sends N hand-made datagrams whose
 *       fragment commands lie: two empty fragments claiming a 100-byte
 *       packet, one byte claiming 1,048,576 fragments, or the honest first
 *       fragment of a 3000-byte packet whose rest never comes.
 *   half-open --bind ADDR --count N
 *       sends N ENet CONNECTs, each from a new UDP port of ADDR, and never
 *       answers the server's VERIFY_CONNECT.
 *   flood --peers P --count N
 *       P peers that never log in send N packets in turn: fragmented
 *       reliable packets, unreliable fragments above the packet size cap,
 *       lying fragments and random datagrams; refused peers reconnect.
 *   idle --key FILE --seconds S
 *       logs in two peers; one sends an input per tick (acknowledging no
 *       snapshot, so it gets full ones), the other only lets ENet
 *       acknowledge. Reports the bytes each received.
 *   jitter --key FILE --seconds S
 *       logs in one peer that services ENet after random 0-16 ms sleeps;
 *       reports how many snapshots arrived out of the ticks they span.
 *   cycles --key FILE --count N
 *       N sequential connect, login, disconnect cycles by 16 returning
 *       players.
 */
#include "clock.h"
#include "crypto.h"
#include "protocol.h"
#include "snapshot.h"

#include <arpa/inet.h>
#include <enet/enet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000ull
#define MAX_PEERS 64

struct options {
    const char *mode;
    ENetAddress server;
    const char *key_path;
    const char *lie;
    const char *bind_address;
    unsigned count, peers, seconds;
};

static struct options opt = {.count = 100, .peers = 4, .seconds = 5};
static uint8_t match_key[TW_KEY_BYTES];
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static bool partial; /* fragments --lie partial */

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static __attribute__((noreturn)) void die(const char *msg)
{
    fprintf(stderr, "tw-attack %s: %s\n", opt.mode ? opt.mode : "", msg);
    exit(1);
}

/* ---- hand-made ENet datagrams ------------------------------------------ */

struct datagram {
    uint8_t bytes[2048];
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

/* Starts a datagram from a connected peer, as its ENet would address it. */
static void peer_header(struct datagram *d, const ENetPeer *peer)
{
    d->len = 0;
    put16(d, (uint16_t)(peer->outgoingPeerID |
                        peer->outgoingSessionID
                            << ENET_PROTOCOL_HEADER_SESSION_SHIFT |
                        ENET_PROTOCOL_HEADER_FLAG_SENT_TIME));
    put16(d, (uint16_t)enet_time_get());
}

static void fragment_command(struct datagram *d, uint8_t channel,
                             uint16_t start, uint32_t count, uint32_t number,
                             uint32_t total, uint32_t offset, uint16_t len)
{
    d->bytes[d->len++] = ENET_PROTOCOL_COMMAND_SEND_FRAGMENT |
                         ENET_PROTOCOL_COMMAND_FLAG_ACKNOWLEDGE;
    d->bytes[d->len++] = channel;
    put16(d, (uint16_t)(start + number));
    put16(d, start);
    put16(d, len);
    put32(d, count);
    put32(d, number);
    put32(d, total);
    put32(d, offset);
    for (uint16_t i = 0; i < len; i++)
        d->bytes[d->len++] = (uint8_t)rnd();
}

/*
 * Builds one lying datagram on channel; *next_seq is the next reliable
 * sequence number of that channel, advanced by the fragments used.
 */
static void lying_fragments(struct datagram *d, const ENetPeer *peer,
                            uint8_t channel, bool million, uint16_t *next_seq)
{
    peer_header(d, peer);
    uint16_t start = *next_seq;
    if (partial) {
        /* Honest first fragment of a 3000-byte packet never completed. */
        uint16_t piece = (uint16_t)(peer->mtu - sizeof(ENetProtocolHeader) -
                                    sizeof(ENetProtocolSendFragment));
        fragment_command(d, channel, start, (3000u + piece - 1) / piece, 0,
                         3000, 0, piece);
        *next_seq += 3;
    } else if (million) {
        fragment_command(d, channel, start, 1024 * 1024, 0, 1, 0, 1);
        *next_seq += 1;
    } else {
        fragment_command(d, channel, start, 2, 0, 100, 0, 0);
        fragment_command(d, channel, start, 2, 1, 100, 50, 0);
        *next_seq += 2;
    }
}

static void send_datagram(ENetHost *host, const ENetAddress *to,
                          const struct datagram *d)
{
    ENetBuffer buf = {.data = (void *)d->bytes, .dataLength = d->len};
    enet_socket_send(host->socket, to, &buf, 1);
}

/* ---- ENet clients ------------------------------------------------------- */

struct client {
    ENetPeer *peer;
    bool connected, logged_in, gone;
    struct tw_token token;
    struct tw_cipher tx, rx;
    uint32_t tick_hz;
    struct tw_quant quant;
    uint64_t bytes_in, packets_in;
    uint64_t snapshots;
    uint32_t first_tick, last_tick;
    uint32_t next_seq;
};

static ENetHost *client_host(size_t peers)
{
    ENetHost *host = enet_host_create(NULL, peers, TW_CHANNEL_COUNT, 0, 0);
    if (!host)
        die("cannot create an ENet host");
    return host;
}

static void start_connect(ENetHost *host, struct client *c)
{
    memset(c, 0, sizeof *c);
    c->peer = enet_host_connect(host, &opt.server, TW_CHANNEL_COUNT,
                                TW_PROTOCOL_VERSION);
    if (!c->peer)
        die("no free ENet peer");
    c->peer->data = c;
}

/* When nonzero, logins cycle through this many player ids. */
static unsigned player_pool;

static void send_login(struct client *c)
{
    static uint64_t logins = 0;
    uint64_t base = 1000000 + (uint64_t)getpid() * 1000;
    uint64_t player = base + (player_pool ? logins % player_pool : logins);
    logins++;
    if (tw_token_issue(match_key, player, "attack", 1, tw_clock_unix_s(),
                       600, &c->token) != TW_OK)
        die("cannot mint a token");
    struct tw_msg_login login;
    uint8_t buf[TW_MAX_PAYLOAD];
    tw_token_to_login(&c->token, &login);
    int n = tw_encode_login(&login, buf, sizeof buf);
    ENetPacket *p = enet_packet_create(buf, (size_t)n,
                                       ENET_PACKET_FLAG_RELIABLE);
    if (p && enet_peer_send(c->peer, TW_CH_RELIABLE, p) < 0)
        enet_packet_destroy(p);
    tw_cipher_init(&c->tx, c->token.c2s_key, 1, TW_DIR_C2S);
    tw_cipher_init(&c->rx, c->token.s2c_key, 1, TW_DIR_S2C);
}

static void on_payload(struct client *c, uint8_t channel, const uint8_t *data,
                       size_t len)
{
    c->bytes_in += len;
    c->packets_in++;
    uint8_t plain[TW_MAX_PAYLOAD];
    int n = tw_open(&c->rx, channel, data, len, plain, sizeof plain);
    if (n <= 0)
        return;
    if (plain[0] == TW_MSG_LOGIN_OK) {
        struct tw_msg_login_ok ok;
        if (tw_decode_login_ok(plain, (size_t)n, &ok) == TW_OK) {
            c->logged_in = true;
            c->tick_hz = ok.tick_hz;
            tw_quant_init(&c->quant, ok.world);
        }
    } else if (plain[0] == TW_MSG_SNAPSHOT && c->logged_in) {
        struct tw_snap_header h;
        if (tw_snapshot_peek(plain, (size_t)n, &h) != TW_OK)
            return;
        if (c->snapshots++ == 0)
            c->first_tick = h.tick;
        c->last_tick = h.tick;
    }
}

/* Services host once; login_on_connect sends a login when a peer connects. */
static void pump(ENetHost *host, unsigned wait_ms, bool login_on_connect)
{
    ENetEvent ev;
    int rc = enet_host_service(host, &ev, wait_ms);
    while (rc > 0) {
        struct client *c = ev.peer ? ev.peer->data : NULL;
        switch (ev.type) {
        case ENET_EVENT_TYPE_CONNECT:
            if (c) {
                c->connected = true;
                if (login_on_connect)
                    send_login(c);
            }
            break;
        case ENET_EVENT_TYPE_RECEIVE:
            if (c)
                on_payload(c, ev.channelID, ev.packet->data,
                           ev.packet->dataLength);
            enet_packet_destroy(ev.packet);
            break;
        case ENET_EVENT_TYPE_DISCONNECT:
            if (c) {
                c->connected = false;
                c->gone = true;
            }
            ev.peer->data = NULL;
            break;
        case ENET_EVENT_TYPE_NONE:
            break;
        }
        rc = enet_host_service(host, &ev, 0);
    }
}

/* Services host until every client logged in; dies after timeout_ms. */
static void await_logins(ENetHost *host, struct client *cs, unsigned n,
                         unsigned timeout_ms)
{
    uint64_t until = tw_clock_mono_ns() + timeout_ms * MS;
    for (;;) {
        unsigned done = 0;
        for (unsigned i = 0; i < n; i++)
            done += cs[i].logged_in;
        if (done == n)
            return;
        if (tw_clock_mono_ns() > until)
            die("login timed out");
        pump(host, 5, true);
    }
}

static void send_input(struct client *c)
{
    /*
     * No snapshot is acknowledged, so the server sends full snapshots: the
     * largest a player can cost, the budget the idle peer is held to.
     */
    struct tw_msg_input in = {.newest_seq = ++c->next_seq,
                              .ack_snapshot = 0,
                              .count = 1,
                              .inputs = {{(int8_t)(rnd() % 255 - 127), 0}}};
    uint8_t plain[64], sealed[64 + TW_SEAL_OVERHEAD];
    int n = tw_encode_input(&in, plain, sizeof plain);
    int m = tw_seal(&c->tx, TW_CH_INPUT, plain, (size_t)n, sealed,
                    sizeof sealed);
    if (m <= 0)
        return;
    ENetPacket *p = enet_packet_create(sealed, (size_t)m,
                                       ENET_PACKET_FLAG_UNSEQUENCED);
    if (p && enet_peer_send(c->peer, TW_CH_INPUT, p) < 0)
        enet_packet_destroy(p);
}

static void wipe(struct client *c)
{
    tw_cipher_wipe(&c->tx);
    tw_cipher_wipe(&c->rx);
    sodium_memzero(&c->token, sizeof c->token);
}

/* ---- modes -------------------------------------------------------------- */

static int mode_fragments(void)
{
    bool million = strcmp(opt.lie, "million") == 0;
    partial = strcmp(opt.lie, "partial") == 0;
    if (!million && !partial && strcmp(opt.lie, "empty") != 0)
        die("--lie must be empty, million or partial");
    ENetHost *host = client_host(1);
    struct client c;
    start_connect(host, &c);
    uint64_t until = tw_clock_mono_ns() + 5000 * MS;
    while (!c.connected && tw_clock_mono_ns() < until)
        pump(host, 5, false);
    if (!c.connected)
        die("cannot connect");

    uint16_t seq = (uint16_t)(c.peer->channels[0].outgoingReliableSequenceNumber + 1);
    struct datagram d;
    for (unsigned i = 0; i < opt.count; i++) {
        lying_fragments(&d, c.peer, 0, million, &seq);
        send_datagram(host, &c.peer->address, &d);
        if (i % 50 == 49)
            pump(host, 1, false);
    }
    until = tw_clock_mono_ns() + 500 * MS;
    while (tw_clock_mono_ns() < until)
        pump(host, 5, false);
    printf("{\"datagrams\": %u, \"still_connected\": %s}\n", opt.count,
           c.connected ? "true" : "false");
    enet_host_destroy(host);
    return 0;
}

static int mode_half_open(void)
{
    struct sockaddr_in from = {.sin_family = AF_INET};
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons(opt.server.port),
                             .sin_addr.s_addr = opt.server.host};
    if (inet_pton(AF_INET, opt.bind_address, &from.sin_addr) != 1)
        die("--bind needs an IPv4 address");
    unsigned sent = 0;
    for (unsigned i = 0; i < opt.count; i++) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        if (s < 0)
            die("cannot open a socket");
        if (bind(s, (struct sockaddr *)&from, sizeof from) != 0)
            die("cannot bind --bind address");
        struct datagram d = {.len = 0};
        put16(&d, ENET_PROTOCOL_MAXIMUM_PEER_ID |
                      ENET_PROTOCOL_HEADER_FLAG_SENT_TIME);
        put16(&d, (uint16_t)enet_time_get());
        d.bytes[d.len++] = ENET_PROTOCOL_COMMAND_CONNECT |
                           ENET_PROTOCOL_COMMAND_FLAG_ACKNOWLEDGE;
        d.bytes[d.len++] = 0xff;
        put16(&d, 1);
        put16(&d, 0);          /* our peer id */
        d.bytes[d.len++] = 0xff; /* session ids: let the server pick */
        d.bytes[d.len++] = 0xff;
        put32(&d, 1400);       /* mtu */
        put32(&d, 32768);      /* window size */
        put32(&d, TW_CHANNEL_COUNT);
        put32(&d, 0);
        put32(&d, 0);
        put32(&d, ENET_PEER_PACKET_THROTTLE_INTERVAL);
        put32(&d, ENET_PEER_PACKET_THROTTLE_ACCELERATION);
        put32(&d, ENET_PEER_PACKET_THROTTLE_DECELERATION);
        put32(&d, (uint32_t)rnd()); /* connect id */
        put32(&d, TW_PROTOCOL_VERSION);
        if (sendto(s, d.bytes, d.len, 0, (struct sockaddr *)&to, sizeof to) ==
            (ssize_t)d.len)
            sent++;
        close(s);
        if (i % 100 == 99)
            sleep_ms(20);
    }
    printf("{\"attempts\": %u, \"sent\": %u}\n", opt.count, sent);
    return 0;
}

static int mode_flood(void)
{
    if (opt.peers == 0 || opt.peers > MAX_PEERS)
        die("--peers must be 1..64");
    ENetHost *host = client_host(opt.peers);
    static struct client cs[MAX_PEERS];
    static uint16_t next_seq[MAX_PEERS];
    for (unsigned i = 0; i < opt.peers; i++)
        start_connect(host, &cs[i]);

    static uint8_t big[8000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)rnd();
    unsigned sent = 0, kinds[4] = {0}, reconnects = 0;
    uint64_t until = tw_clock_mono_ns() + 60000 * MS;
    while (sent < opt.count && tw_clock_mono_ns() < until) {
        pump(host, 1, false);
        for (unsigned i = 0; i < opt.peers && sent < opt.count; i++) {
            struct client *c = &cs[i];
            if (c->gone) {
                reconnects++;
                start_connect(host, c);
                next_seq[i] = 0;
                continue;
            }
            if (!c->connected)
                continue;
            unsigned kind = (unsigned)(rnd() % 4);
            struct datagram d;
            ENetPacket *p = NULL;
            switch (kind) {
            case 0: /* fragmented the honest way, then dropped: no login */
                p = enet_packet_create(big, 3000, ENET_PACKET_FLAG_RELIABLE);
                if (p && enet_peer_send(c->peer, TW_CH_RELIABLE, p) < 0)
                    enet_packet_destroy(p);
                break;
            case 1: /* above security.max_packet_size */
                p = enet_packet_create(big, sizeof big,
                                       ENET_PACKET_FLAG_UNRELIABLE_FRAGMENT);
                if (p && enet_peer_send(c->peer, TW_CH_SNAPSHOT, p) < 0)
                    enet_packet_destroy(p);
                break;
            case 2: /* lying fragments on channel 1, off ENet's own seqs */
                if (next_seq[i] == 0)
                    next_seq[i] = 1;
                lying_fragments(&d, c->peer, TW_CH_SNAPSHOT, rnd() % 2,
                                &next_seq[i]);
                send_datagram(host, &c->peer->address, &d);
                break;
            case 3: /* random commands behind a valid header */
                peer_header(&d, c->peer);
                for (unsigned k = 0; k < 40; k++)
                    d.bytes[d.len++] = (uint8_t)rnd();
                send_datagram(host, &c->peer->address, &d);
                break;
            }
            kinds[kind]++;
            sent++;
        }
        enet_host_flush(host);
        if (sent % 200 == 0)
            sleep_ms(2);
    }
    for (unsigned i = 0; i < opt.peers; i++)
        if (cs[i].peer && cs[i].connected)
            enet_peer_disconnect_now(cs[i].peer, TW_REASON_CLIENT_LEFT);
    printf("{\"packets\": %u, \"fragmented\": %u, \"oversized\": %u, "
           "\"lying\": %u, \"random\": %u, \"reconnects\": %u}\n",
           sent, kinds[0], kinds[1], kinds[2], kinds[3], reconnects);
    enet_host_destroy(host);
    return sent == opt.count ? 0 : 1;
}

static int mode_idle(void)
{
    ENetHost *host = client_host(2);
    static struct client cs[2]; /* 0 plays, 1 only acknowledges */
    start_connect(host, &cs[0]);
    start_connect(host, &cs[1]);
    await_logins(host, cs, 2, 5000);
    cs[0].bytes_in = cs[1].bytes_in = 0;
    cs[0].packets_in = cs[1].packets_in = 0;

    uint64_t start = tw_clock_mono_ns();
    uint64_t end = start + opt.seconds * 1000 * MS;
    uint64_t period = 1000 * MS / (cs[0].tick_hz ? cs[0].tick_hz : 30);
    uint64_t next_input = start;
    while (tw_clock_mono_ns() < end) {
        if (tw_clock_mono_ns() >= next_input) {
            send_input(&cs[0]);
            next_input += period;
        }
        pump(host, 1, false);
    }
    printf("{\"seconds\": %u, \"active_bytes\": %llu, \"active_packets\": "
           "%llu, \"idle_bytes\": %llu, \"idle_packets\": %llu, "
           "\"idle_connected\": %s}\n",
           opt.seconds, (unsigned long long)cs[0].bytes_in,
           (unsigned long long)cs[0].packets_in,
           (unsigned long long)cs[1].bytes_in,
           (unsigned long long)cs[1].packets_in,
           cs[1].connected ? "true" : "false");
    wipe(&cs[0]);
    wipe(&cs[1]);
    enet_host_destroy(host);
    return 0;
}

static int mode_jitter(void)
{
    ENetHost *host = client_host(1);
    static struct client c;
    start_connect(host, &c);
    await_logins(host, &c, 1, 5000);
    c.snapshots = 0;

    uint64_t end = tw_clock_mono_ns() + opt.seconds * 1000 * MS;
    while (tw_clock_mono_ns() < end) {
        pump(host, 0, false);
        sleep_ms((unsigned)(rnd() % 17));
    }
    pump(host, 0, false);
    uint64_t span = c.snapshots ? (uint64_t)(c.last_tick - c.first_tick) + 1 : 0;
    printf("{\"received\": %llu, \"span\": %llu, \"tick_hz\": %u, "
           "\"connected\": %s}\n",
           (unsigned long long)c.snapshots, (unsigned long long)span,
           c.tick_hz, c.connected ? "true" : "false");
    wipe(&c);
    enet_host_destroy(host);
    return 0;
}

static int mode_cycles(void)
{
    /* Returning players: the store keeps a record per new player. */
    player_pool = 16;
    ENetHost *host = client_host(1);
    static struct client c;
    unsigned done = 0, failed = 0;
    for (unsigned i = 0; i < opt.count; i++) {
        start_connect(host, &c);
        uint64_t until = tw_clock_mono_ns() + 3000 * MS;
        while (!c.logged_in && !c.gone && tw_clock_mono_ns() < until)
            pump(host, 2, true);
        if (!c.logged_in) {
            failed++;
            enet_peer_reset(c.peer);
            wipe(&c);
            continue;
        }
        enet_peer_disconnect(c.peer, TW_REASON_CLIENT_LEFT);
        while (!c.gone && tw_clock_mono_ns() < until)
            pump(host, 2, false);
        if (c.gone)
            done++;
        else {
            failed++;
            enet_peer_reset(c.peer);
        }
        wipe(&c);
    }
    printf("{\"cycles\": %u, \"failed\": %u}\n", done, failed);
    enet_host_destroy(host);
    return failed == 0 ? 0 : 1;
}

static void usage(void)
{
    fputs("usage: tw-attack MODE --server HOST:PORT [options]\n"
          "modes: fragments half-open flood idle jitter cycles (see the "
          "source header)\n"
          "  --key FILE      match key, to mint tokens (idle jitter cycles)\n"
          "  --lie KIND      fragments: empty, million or partial\n"
          "  --bind ADDR     half-open: local IPv4 address to send from\n"
          "  --count N       datagrams, attempts, packets or cycles\n"
          "  --peers N       flood: peers (1..64)\n"
          "  --seconds S     idle, jitter: how long to measure\n",
          stderr);
    exit(2);
}

static void parse(int argc, char **argv)
{
    static const struct option longs[] = {
        {"server", required_argument, NULL, 's'},
        {"key", required_argument, NULL, 'k'},
        {"lie", required_argument, NULL, 'l'},
        {"bind", required_argument, NULL, 'b'},
        {"count", required_argument, NULL, 'n'},
        {"peers", required_argument, NULL, 'p'},
        {"seconds", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2)
        usage();
    opt.mode = argv[1];
    bool have_server = false;
    int o;
    optind = 2;
    while ((o = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (o) {
        case 's': {
            char host[64];
            unsigned port;
            if (sscanf(optarg, "%63[^:]:%u", host, &port) != 2 ||
                port == 0 || port > 65535 ||
                enet_address_set_host_ip(&opt.server, host) != 0)
                die("--server must be IPv4:PORT");
            opt.server.port = (enet_uint16)port;
            have_server = true;
            break;
        }
        case 'k':
            opt.key_path = optarg;
            break;
        case 'l':
            opt.lie = optarg;
            break;
        case 'b':
            opt.bind_address = optarg;
            break;
        case 'n':
            opt.count = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            opt.peers = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 't':
            opt.seconds = (unsigned)strtoul(optarg, NULL, 10);
            break;
        default:
            usage();
        }
    }
    if (!have_server || opt.count > 1000000 || opt.seconds > 120)
        usage();
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    if (tw_crypto_init() != TW_OK || enet_initialize() != 0)
        die("cannot initialize libsodium or ENet");
    rng_state ^= (uint64_t)getpid() << 20;
    if (opt.key_path) {
        char err[256];
        if (tw_key_load(opt.key_path, match_key, err, sizeof err) != TW_OK)
            die(err);
    }
    int rc;
    if (strcmp(opt.mode, "fragments") == 0 && opt.lie)
        rc = mode_fragments();
    else if (strcmp(opt.mode, "half-open") == 0 && opt.bind_address)
        rc = mode_half_open();
    else if (strcmp(opt.mode, "flood") == 0)
        rc = mode_flood();
    else if (strcmp(opt.mode, "idle") == 0 && opt.key_path)
        rc = mode_idle();
    else if (strcmp(opt.mode, "jitter") == 0 && opt.key_path)
        rc = mode_jitter();
    else if (strcmp(opt.mode, "cycles") == 0 && opt.key_path)
        rc = mode_cycles();
    else
        usage();
    enet_deinitialize();
    return rc;
}
