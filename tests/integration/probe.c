/*
 * tw-probe: runs one named session-security scenario against a server on
 * loopback and prints what it observed as one JSON object on standard
 * output. The Python tests start the server, run a scenario and compare
 * the observations with the server's counters.
 *
 * Scenarios (see usage()): version, login, idle, replace, replay, tamper,
 * privacy, nonces, forged. The tamper and privacy scenarios route the
 * probe's traffic through a UDP proxy inside this process, which records
 * every datagram and can flip one byte of a chosen sealed packet.
 *
 * Exit status: 0 when the scenario ran to the end, 1 when it could not
 * (for example the server never answered), 2 on bad usage.
 */
#include "clock.h"
#include "crypto.h"
#include "protocol.h"
#include "snapshot.h"

#include <enet/enet.h>
#include <sodium.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 4
#define MS 1000000ull
#define FINGERPRINT_BYTES 8
#define MAX_DATAGRAM 4096
#define MAX_CAPTURED 20000
#define MAX_POSITIONS 4096
#define MAX_NONCES 65536

/* ---- Options ----------------------------------------------------------- */

struct options {
    const char *scenario;
    const char *server;
    const char *key_path;
    const char *token_path;
    const char *bind_ip;
    const char *name;
    const char *record_path;
    uint32_t match_id;
    uint64_t player;
    uint32_t version;
    uint32_t hold_ms;
    uint32_t wait_ms;
};

static void usage(FILE *out)
{
    fputs(
        "usage: tw-probe --server IP:PORT --scenario NAME [options]\n"
        "\n"
        "Scenarios:\n"
        "  version   connect with --version as ENet connect data\n"
        "  login     log in with --token FILE (or a token minted with --key)\n"
        "            from --bind IP, stay --hold-ms, report the outcome\n"
        "  idle      connect and never log in; then log in a second peer\n"
        "  replace   log in player --player twice; the first is replaced\n"
        "  replay    resend a captured sealed input on the same peer, on\n"
        "            another logged-in peer and on an unauthenticated peer\n"
        "  tamper    flip one byte of a sealed input in flight (proxy)\n"
        "  privacy   record every datagram of a short session (proxy) and\n"
        "            search it for the player's name and positions\n"
        "  nonces    record (key, direction, channel, counter) of every\n"
        "            sealed packet across a reconnect and a replacement\n"
        "  forged    send inputs with a flipped tag bit and under a wrong\n"
        "            key, then the genuine one with the same counter\n"
        "\n"
        "Options:\n"
        "  --key FILE      match key, to mint tokens\n"
        "  --token FILE    token JSON for the login scenario\n"
        "  --match ID      match id of minted tokens (default 1)\n"
        "  --player ID     player id of minted tokens (default 7000)\n"
        "  --name NAME     player name of minted tokens (default probe)\n"
        "  --bind IP       local loopback address of the probe's peers\n"
        "  --record FILE   login: append a line \"KEY DIR CHANNEL COUNTER\"\n"
        "                  for every sealed packet sent or received\n"
        "  --version N     connect data of the version scenario (default 99)\n"
        "  --hold-ms MS    time to stay logged in (default 1000)\n"
        "  --wait-ms MS    longest wait for any one server reply\n"
        "                  (default 5000)\n",
        out);
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"scenario", required_argument, NULL, 's'},
        {"server", required_argument, NULL, 'S'},
        {"key", required_argument, NULL, 'k'},
        {"token", required_argument, NULL, 't'},
        {"bind", required_argument, NULL, 'b'},
        {"name", required_argument, NULL, 'n'},
        {"record", required_argument, NULL, 'r'},
        {"match", required_argument, NULL, 'm'},
        {"player", required_argument, NULL, 'p'},
        {"version", required_argument, NULL, 'v'},
        {"hold-ms", required_argument, NULL, 'H'},
        {"wait-ms", required_argument, NULL, 'W'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct options){.match_id = 1, .player = 7000, .name = "probe",
                          .version = 99, .hold_ms = 1000, .wait_ms = 5000};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': o->scenario = optarg; break;
        case 'S': o->server = optarg; break;
        case 'k': o->key_path = optarg; break;
        case 't': o->token_path = optarg; break;
        case 'b': o->bind_ip = optarg; break;
        case 'n': o->name = optarg; break;
        case 'r': o->record_path = optarg; break;
        case 'm': o->match_id = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'p': o->player = strtoull(optarg, NULL, 10); break;
        case 'v': o->version = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'H': o->hold_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'W': o->wait_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (!o->scenario || !o->server || optind != argc) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* ---- Records ----------------------------------------------------------- */

/* One sealed packet's nonce inputs: under one key, no two may be equal. */
struct nonce_use {
    uint8_t key_fp[FINGERPRINT_BYTES];
    uint8_t direction;
    uint8_t channel;
    uint64_t counter;
};

struct datagram {
    uint8_t c2s; /* 1: client to server */
    uint16_t len;
    uint8_t data[MAX_DATAGRAM];
};

/* Plaintexts the probe sealed or opened, for the privacy control checks. */
struct plaintext {
    uint16_t len;
    uint8_t data[TW_MAX_PAYLOAD];
};

/* ---- Proxy ------------------------------------------------------------- */

/*
 * A UDP relay between one ENet client host and the server. It records
 * every datagram in both directions, and once armed it flips one byte in
 * the first client-to-server datagram that contains `pattern`.
 */
struct proxy {
    int listen_fd;
    int upstream_fd;
    struct sockaddr_in client;
    bool have_client;
    ENetAddress address;
    bool capture;
    struct datagram *captured;
    size_t captured_count;
    uint8_t pattern[TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD];
    size_t pattern_len;
    bool armed;
    unsigned tampered;
};

static int proxy_open(struct proxy *px, const ENetAddress *server)
{
    memset(px, 0, sizeof *px);
    px->listen_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    px->upstream_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (px->listen_fd < 0 || px->upstream_fd < 0)
        return -1;
    struct sockaddr_in local = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof local;
    if (bind(px->listen_fd, (struct sockaddr *)&local, sizeof local) != 0 ||
        getsockname(px->listen_fd, (struct sockaddr *)&local, &len) != 0)
        return -1;
    struct sockaddr_in up = {.sin_family = AF_INET,
                             .sin_port = htons(server->port),
                             .sin_addr.s_addr = server->host};
    if (connect(px->upstream_fd, (struct sockaddr *)&up, sizeof up) != 0)
        return -1;
    px->address.host = local.sin_addr.s_addr;
    px->address.port = ntohs(local.sin_port);
    px->captured = calloc(MAX_CAPTURED, sizeof *px->captured);
    return px->captured ? 0 : -1;
}

static void proxy_record(struct proxy *px, bool c2s, const uint8_t *data,
                         size_t len)
{
    if (!px->capture || px->captured_count == MAX_CAPTURED ||
        len > MAX_DATAGRAM)
        return;
    struct datagram *d = &px->captured[px->captured_count++];
    d->c2s = c2s;
    d->len = (uint16_t)len;
    memcpy(d->data, data, len);
}

/* Relays every datagram waiting on either socket. */
static void proxy_pump(struct proxy *px)
{
    uint8_t buf[MAX_DATAGRAM];
    for (;;) {
        struct sockaddr_in from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(px->listen_fd, buf, sizeof buf, 0,
                             (struct sockaddr *)&from, &from_len);
        if (n < 0)
            break;
        px->client = from;
        px->have_client = true;
        if (px->armed) {
            uint8_t *at = memmem(buf, (size_t)n, px->pattern,
                                 px->pattern_len);
            if (at) {
                /* The middle byte lies past the clear counter, in the
                 * ciphertext or the tag. */
                at[px->pattern_len / 2] ^= 0x20;
                px->armed = false;
                px->tampered++;
            }
        }
        proxy_record(px, true, buf, (size_t)n);
        send(px->upstream_fd, buf, (size_t)n, 0);
    }
    for (;;) {
        ssize_t n = recv(px->upstream_fd, buf, sizeof buf, 0);
        if (n < 0)
            break;
        proxy_record(px, false, buf, (size_t)n);
        if (px->have_client)
            sendto(px->listen_fd, buf, (size_t)n, 0,
                   (struct sockaddr *)&px->client, sizeof px->client);
    }
}

/* ---- Connections ------------------------------------------------------- */

struct conn {
    const char *label;
    ENetHost *host;
    ENetPeer *peer;
    struct tw_token token;
    bool has_token;
    bool auto_login;
    struct tw_cipher tx, rx;
    uint8_t tx_fp[FINGERPRINT_BYTES], rx_fp[FINGERPRINT_BYTES];
    bool connected, login_sent, logged_in, gone;
    uint32_t reason;
    uint64_t connected_ns, gone_ns;
    struct tw_msg_login_ok ok;
    struct tw_quant quant;
    struct tw_msg_snapshot snap; /* newest */
    uint8_t snap_plain[TW_MAX_PAYLOAD];
    size_t snap_plain_len;
    uint64_t snapshots;
    uint32_t max_entities;
    uint64_t open_failures;
    uint64_t pongs;
    uint32_t next_seq;
};

struct probe {
    struct options opt;
    ENetAddress server;
    ENetAddress target; /* the server, or the proxy in front of it */
    uint8_t key[TW_KEY_BYTES];
    bool have_key;
    struct proxy *proxy;
    struct conn *conns[MAX_CONNS];
    unsigned conn_count;

    bool log_nonces;
    struct nonce_use *nonces;
    size_t nonce_count;
    struct plaintext *plains;
    size_t plain_count;
};

static void fingerprint(const uint8_t key[TW_KEY_BYTES],
                        uint8_t fp[FINGERPRINT_BYTES])
{
    crypto_generichash(fp, FINGERPRINT_BYTES, key, TW_KEY_BYTES, NULL, 0);
}

static void log_nonce(struct probe *p, const uint8_t fp[FINGERPRINT_BYTES],
                      uint8_t direction, uint8_t channel, uint64_t counter)
{
    if (!p->log_nonces || p->nonce_count == MAX_NONCES)
        return;
    struct nonce_use *u = &p->nonces[p->nonce_count++];
    memcpy(u->key_fp, fp, FINGERPRINT_BYTES);
    u->direction = direction;
    u->channel = channel;
    u->counter = counter;
}

static void log_plain(struct probe *p, const uint8_t *data, size_t len)
{
    if (!p->plains || p->plain_count == MAX_CAPTURED || len > TW_MAX_PAYLOAD)
        return;
    struct plaintext *pt = &p->plains[p->plain_count++];
    pt->len = (uint16_t)len;
    memcpy(pt->data, data, len);
}

static uint64_t get_le64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

static int mint(struct probe *p, struct conn *c, uint64_t player,
                const char *name)
{
    if (!p->have_key)
        return -1;
    if (tw_token_issue(p->key, player, name, p->opt.match_id,
                       tw_clock_unix_s(), 600, &c->token) != TW_OK)
        return -1;
    c->has_token = true;
    return 0;
}

static int load_token(struct conn *c, const char *path)
{
    char text[4096];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text, f) : 0;
    if (f)
        fclose(f);
    char err[256];
    int rc = (n > 0 && n < sizeof text)
                 ? tw_token_from_json(text, n, &c->token, err, sizeof err)
                 : -1;
    sodium_memzero(text, sizeof text);
    if (rc != TW_OK) {
        fprintf(stderr, "tw-probe: cannot load token %s\n", path);
        return -1;
    }
    c->has_token = true;
    return 0;
}

/* Creates the connection's own ENet host and starts connecting. */
static int conn_open(struct probe *p, struct conn *c, const char *label,
                     const char *bind_ip, uint32_t connect_data)
{
    c->label = label;
    c->next_seq = 1;
    ENetAddress local = {.host = ENET_HOST_ANY, .port = 0};
    if (bind_ip && enet_address_set_host_ip(&local, bind_ip) != 0)
        return -1;
    c->host = enet_host_create(bind_ip ? &local : NULL, 1, TW_CHANNEL_COUNT,
                               0, 0);
    if (!c->host)
        return -1;
    c->peer = enet_host_connect(c->host, &p->target, TW_CHANNEL_COUNT,
                                connect_data);
    if (!c->peer)
        return -1;
    c->peer->data = c;
    if (p->conn_count < MAX_CONNS)
        p->conns[p->conn_count++] = c;
    return 0;
}

static void send_raw(struct conn *c, uint8_t channel, const uint8_t *data,
                     size_t len, uint32_t flags)
{
    if (!c->peer || c->gone)
        return;
    ENetPacket *packet = enet_packet_create(data, len, flags);
    if (packet && enet_peer_send(c->peer, channel, packet) < 0)
        enet_packet_destroy(packet);
}

static void send_login(struct conn *c)
{
    struct tw_msg_login login;
    uint8_t buf[TW_MAX_PAYLOAD];
    tw_token_to_login(&c->token, &login);
    int n = tw_encode_login(&login, buf, sizeof buf);
    if (n > 0)
        send_raw(c, TW_CH_RELIABLE, buf, (size_t)n,
                 ENET_PACKET_FLAG_RELIABLE);
    tw_cipher_init(&c->tx, c->token.c2s_key, c->token.match_id, TW_DIR_C2S);
    tw_cipher_random_start(&c->tx); /* as tickwire-client does */
    tw_cipher_init(&c->rx, c->token.s2c_key, c->token.match_id, TW_DIR_S2C);
    fingerprint(c->token.c2s_key, c->tx_fp);
    fingerprint(c->token.s2c_key, c->rx_fp);
    c->login_sent = true;
}

/*
 * Seals plain with the connection's session key and sends it. The sealed
 * bytes are copied to copy (at least len + TW_SEAL_OVERHEAD) when given.
 * Returns the sealed size or -1.
 */
static int send_sealed(struct probe *p, struct conn *c, uint8_t channel,
                       const uint8_t *plain, size_t len, uint8_t *copy)
{
    uint8_t sealed[TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD];
    uint64_t counter = c->tx.next_counter[channel < TW_CHANNEL_COUNT
                                              ? channel
                                              : 0];
    int n = tw_seal(&c->tx, channel, plain, len, sealed, sizeof sealed);
    if (n < 0)
        return -1;
    log_nonce(p, c->tx_fp, TW_DIR_C2S, channel, counter);
    log_plain(p, plain, len);
    if (copy)
        memcpy(copy, sealed, (size_t)n);
    uint32_t flags = channel == TW_CH_RELIABLE ? ENET_PACKET_FLAG_RELIABLE
                                               : ENET_PACKET_FLAG_UNSEQUENCED;
    send_raw(c, channel, sealed, (size_t)n, flags);
    return n;
}

static int send_input(struct probe *p, struct conn *c, int8_t dx, int8_t dy,
                      uint8_t *copy)
{
    /* Acknowledging no snapshot asks for full ones: the probe keeps no
     * baselines to decode deltas against. */
    struct tw_msg_input in = {.newest_seq = c->next_seq++,
                              .ack_snapshot = 0,
                              .count = 1,
                              .inputs = {{dx, dy}}};
    uint8_t buf[64];
    int n = tw_encode_input(&in, buf, sizeof buf);
    if (n < 0)
        return -1;
    return send_sealed(p, c, TW_CH_INPUT, buf, (size_t)n, copy);
}

static void send_ping(struct probe *p, struct conn *c)
{
    struct tw_msg_ping ping = {.id = 1, .client_ns = tw_clock_mono_ns()};
    uint8_t buf[32];
    int n = tw_encode_ping(TW_MSG_PING, &ping, buf, sizeof buf);
    if (n > 0)
        send_sealed(p, c, TW_CH_RELIABLE, buf, (size_t)n, NULL);
}

static void on_packet(struct probe *p, struct conn *c, uint8_t channel,
                      const uint8_t *data, size_t len)
{
    if (!c->login_sent) {
        c->open_failures++;
        return;
    }
    if (len >= TW_COUNTER_BYTES)
        log_nonce(p, c->rx_fp, TW_DIR_S2C, channel, get_le64(data));
    uint8_t plain[TW_MAX_PAYLOAD];
    int n = tw_open(&c->rx, channel, data, len, plain, sizeof plain);
    if (n <= 0) {
        c->open_failures++;
        return;
    }
    log_plain(p, plain, (size_t)n);
    if (plain[0] == TW_MSG_LOGIN_OK) {
        if (tw_decode_login_ok(plain, (size_t)n, &c->ok) == TW_OK) {
            c->logged_in = true;
            tw_quant_init(&c->quant, c->ok.world);
        }
    } else if (plain[0] == TW_MSG_SNAPSHOT && c->logged_in) {
        if (tw_decode_snapshot(&c->quant, NULL, plain, (size_t)n,
                               &c->snap) == TW_OK) {
            c->snapshots++;
            if (c->snap.count > c->max_entities)
                c->max_entities = c->snap.count;
            memcpy(c->snap_plain, plain, (size_t)n);
            c->snap_plain_len = (size_t)n;
        }
    } else if (plain[0] == TW_MSG_PONG) {
        c->pongs++;
    }
}

static void service(struct probe *p, struct conn *c)
{
    ENetEvent ev;
    while (c->host && enet_host_service(c->host, &ev, 0) > 0) {
        switch (ev.type) {
        case ENET_EVENT_TYPE_CONNECT:
            c->connected = true;
            c->connected_ns = tw_clock_mono_ns();
            if (c->auto_login && c->has_token)
                send_login(c);
            break;
        case ENET_EVENT_TYPE_RECEIVE:
            on_packet(p, c, ev.channelID, ev.packet->data,
                      ev.packet->dataLength);
            enet_packet_destroy(ev.packet);
            break;
        case ENET_EVENT_TYPE_DISCONNECT:
            c->gone = true;
            c->gone_ns = tw_clock_mono_ns();
            c->reason = ev.data;
            c->peer = NULL;
            break;
        case ENET_EVENT_TYPE_NONE:
            break;
        }
    }
    if (c->host)
        enet_host_flush(c->host);
}

/* Waits up to about 1 ms for traffic, then handles everything waiting. */
static void step(struct probe *p)
{
    struct pollfd fds[MAX_CONNS + 2];
    nfds_t n = 0;
    for (unsigned i = 0; i < p->conn_count; i++)
        if (p->conns[i]->host)
            fds[n++] = (struct pollfd){p->conns[i]->host->socket, POLLIN, 0};
    if (p->proxy) {
        fds[n++] = (struct pollfd){p->proxy->listen_fd, POLLIN, 0};
        fds[n++] = (struct pollfd){p->proxy->upstream_fd, POLLIN, 0};
    }
    poll(fds, n, 1);
    /* ENet 1.3.17 reads the wall clock unless it is given one. */
    enet_time_set((enet_uint32)(tw_clock_mono_ns() / MS));
    if (p->proxy)
        proxy_pump(p->proxy);
    for (unsigned i = 0; i < p->conn_count; i++)
        service(p, p->conns[i]);
    if (p->proxy)
        proxy_pump(p->proxy);
}

static void run_for(struct probe *p, uint64_t ms)
{
    uint64_t until = tw_clock_mono_ns() + ms * MS;
    while (tw_clock_mono_ns() < until)
        step(p);
}

static uint64_t deadline(const struct probe *p)
{
    return tw_clock_mono_ns() + (uint64_t)p->opt.wait_ms * MS;
}

static bool wait_logged_in(struct probe *p, struct conn *c)
{
    uint64_t until = deadline(p);
    while (!c->logged_in && !c->gone && tw_clock_mono_ns() < until)
        step(p);
    return c->logged_in && !c->gone;
}

static bool wait_gone(struct probe *p, struct conn *c)
{
    uint64_t until = deadline(p);
    while (!c->gone && tw_clock_mono_ns() < until)
        step(p);
    return c->gone;
}

static bool wait_snapshots(struct probe *p, struct conn *c, uint64_t count)
{
    uint64_t want = c->snapshots + count;
    uint64_t until = deadline(p);
    while (c->snapshots < want && !c->gone && tw_clock_mono_ns() < until)
        step(p);
    return c->snapshots >= want;
}

/* Leaves gracefully and waits for the server to confirm. */
static void conn_leave(struct probe *p, struct conn *c)
{
    if (c->peer && !c->gone) {
        enet_peer_disconnect(c->peer, TW_REASON_CLIENT_LEFT);
        uint64_t until = tw_clock_mono_ns() + 1000 * MS;
        while (!c->gone && tw_clock_mono_ns() < until)
            step(p);
    }
}

static const char *reason_of(const struct conn *c)
{
    return c->gone ? tw_reason_name(c->reason) : "connected";
}

static void conn_close(struct conn *c)
{
    if (c->host)
        enet_host_destroy(c->host);
    c->host = NULL;
    c->peer = NULL;
    tw_cipher_wipe(&c->tx);
    tw_cipher_wipe(&c->rx);
    sodium_memzero(&c->token, sizeof c->token);
}

/* The player's own entity in the newest snapshot (always listed first). */
static bool own_position(const struct conn *c, uint32_t *qx, uint32_t *qy)
{
    if (c->snapshots == 0 || c->snap.count == 0 ||
        c->snap.entities[0].slot != c->ok.slot)
        return false;
    *qx = c->snap.entities[0].qx;
    *qy = c->snap.entities[0].qy;
    return true;
}

/* ---- Scenarios --------------------------------------------------------- */

static int scenario_version(struct probe *p)
{
    static struct conn c;
    if (conn_open(p, &c, "version", p->opt.bind_ip, p->opt.version) != 0)
        return 1;
    bool gone = wait_gone(p, &c);
    printf("{\"connected\": %s, \"gone\": %s, \"reason\": \"%s\", "
           "\"reason_code\": %u}\n",
           c.connected ? "true" : "false", gone ? "true" : "false",
           reason_of(&c), c.reason);
    conn_close(&c);
    return gone ? 0 : 1;
}

/* Appends the recorded nonce uses to path, one per line. */
static int write_nonces(const struct probe *p, const char *path)
{
    FILE *f = fopen(path, "a");
    if (!f)
        return -1;
    for (size_t i = 0; i < p->nonce_count; i++) {
        const struct nonce_use *u = &p->nonces[i];
        for (int b = 0; b < FINGERPRINT_BYTES; b++)
            fprintf(f, "%02x", u->key_fp[b]);
        fprintf(f, " %u %u %llu\n", u->direction, u->channel,
                (unsigned long long)u->counter);
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int scenario_login(struct probe *p)
{
    static struct conn c;
    if (p->opt.record_path) {
        p->nonces = calloc(MAX_NONCES, sizeof *p->nonces);
        if (!p->nonces)
            return 1;
        p->log_nonces = true;
    }
    int rc = p->opt.token_path ? load_token(&c, p->opt.token_path)
                               : mint(p, &c, p->opt.player, p->opt.name);
    if (rc != 0)
        return 1;
    c.auto_login = true;
    if (conn_open(p, &c, "login", p->opt.bind_ip, TW_PROTOCOL_VERSION) != 0)
        return 1;
    bool in = wait_logged_in(p, &c);
    if (in) {
        /* Announce the login so a test can start its next step. */
        fprintf(stderr, "tw-probe: logged in, slot %u\n", c.ok.slot);
        uint64_t until = tw_clock_mono_ns() + (uint64_t)p->opt.hold_ms * MS;
        while (!c.gone && tw_clock_mono_ns() < until)
            step(p);
    } else if (!c.gone) {
        wait_gone(p, &c);
    }
    bool stayed = !c.gone;
    conn_leave(p, &c);
    printf("{\"logged_in\": %s, \"stayed\": %s, \"reason\": \"%s\", "
           "\"snapshots\": %llu, \"open_failures\": %llu}\n",
           c.logged_in ? "true" : "false", stayed ? "true" : "false",
           stayed ? "none" : tw_reason_name(c.reason),
           (unsigned long long)c.snapshots,
           (unsigned long long)c.open_failures);
    conn_close(&c);
    if (p->opt.record_path && write_nonces(p, p->opt.record_path) != 0)
        return 1;
    free(p->nonces);
    p->nonces = NULL;
    return 0;
}

static int scenario_idle(struct probe *p)
{
    static struct conn idle, next;
    if (conn_open(p, &idle, "idle", p->opt.bind_ip, TW_PROTOCOL_VERSION) !=
        0)
        return 1;
    bool gone = wait_gone(p, &idle);
    uint64_t elapsed_ms =
        gone && idle.connected ? (idle.gone_ns - idle.connected_ns) / MS : 0;

    /* The idle peer's slot must be free for the next connection. */
    if (mint(p, &next, p->opt.player, p->opt.name) != 0)
        return 1;
    next.auto_login = true;
    if (conn_open(p, &next, "next", p->opt.bind_ip, TW_PROTOCOL_VERSION) != 0)
        return 1;
    bool in = wait_logged_in(p, &next);
    conn_leave(p, &next);
    printf("{\"connected\": %s, \"gone\": %s, \"reason\": \"%s\", "
           "\"elapsed_ms\": %llu, \"next_logged_in\": %s}\n",
           idle.connected ? "true" : "false", gone ? "true" : "false",
           reason_of(&idle), (unsigned long long)elapsed_ms,
           in ? "true" : "false");
    conn_close(&idle);
    conn_close(&next);
    return 0;
}

static int scenario_replace(struct probe *p)
{
    static struct conn a, b;
    if (mint(p, &a, p->opt.player, p->opt.name) != 0 ||
        mint(p, &b, p->opt.player, p->opt.name) != 0)
        return 1;
    a.auto_login = b.auto_login = true;
    if (conn_open(p, &a, "first", NULL, TW_PROTOCOL_VERSION) != 0 ||
        !wait_logged_in(p, &a) || !wait_snapshots(p, &a, 10))
        return 1;
    if (conn_open(p, &b, "second", p->opt.bind_ip, TW_PROTOCOL_VERSION) != 0)
        return 1;
    bool b_in = wait_logged_in(p, &b);
    bool a_gone = wait_gone(p, &a);
    bool b_snaps = b_in && wait_snapshots(p, &b, 30);
    printf("{\"first_reason\": \"%s\", \"first_gone\": %s, "
           "\"first_slot\": %u, \"first_max_entities\": %u, "
           "\"second_logged_in\": %s, \"second_slot\": %u, "
           "\"second_snapshots\": %s, \"second_max_entities\": %u, "
           "\"second_reason\": \"%s\"}\n",
           reason_of(&a), a_gone ? "true" : "false", a.ok.slot,
           a.max_entities, b_in ? "true" : "false", b.ok.slot,
           b_snaps ? "true" : "false", b.max_entities, reason_of(&b));
    conn_leave(p, &b);
    conn_close(&a);
    conn_close(&b);
    return 0;
}

static void send_copies(struct conn *c, const uint8_t *sealed, size_t len,
                        unsigned copies)
{
    for (unsigned i = 0; i < copies; i++)
        send_raw(c, TW_CH_INPUT, sealed, len, ENET_PACKET_FLAG_UNSEQUENCED);
}

static int scenario_replay(struct probe *p)
{
    static struct conn a, b, stranger;
    const unsigned copies = 3;
    if (mint(p, &a, p->opt.player, "replay-a") != 0 ||
        mint(p, &b, p->opt.player + 1, "replay-b") != 0)
        return 1;
    a.auto_login = b.auto_login = true;
    if (conn_open(p, &a, "a", NULL, TW_PROTOCOL_VERSION) != 0 ||
        conn_open(p, &b, "b", p->opt.bind_ip, TW_PROTOCOL_VERSION) != 0 ||
        conn_open(p, &stranger, "stranger", p->opt.bind_ip,
                  TW_PROTOCOL_VERSION) != 0)
        return 1;
    if (!wait_logged_in(p, &a) || !wait_logged_in(p, &b))
        return 1;

    /* Three genuine inputs; the server applies them before the replays. */
    uint8_t captured[TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD];
    int len = 0;
    for (int i = 0; i < 3; i++)
        len = send_input(p, &a, 0, 0, captured);
    uint64_t until = deadline(p);
    while (a.snap.ack_input_seq < 3 && !a.gone && tw_clock_mono_ns() < until)
        step(p);
    bool applied = a.snap.ack_input_seq >= 3;
    if (len <= 0 || !applied)
        return 1;

    send_copies(&a, captured, (size_t)len, copies);
    send_copies(&b, captured, (size_t)len, copies);
    send_copies(&stranger, captured, (size_t)len, copies);
    run_for(p, 300);
    bool both_stayed = !a.gone && !b.gone && wait_snapshots(p, &a, 5) &&
                       wait_snapshots(p, &b, 5);
    printf("{\"captured_counter\": %llu, \"same_peer\": %u, "
           "\"other_peer\": %u, \"unauthenticated\": %u, "
           "\"both_stayed\": %s, \"a_ack\": %u}\n",
           (unsigned long long)get_le64(captured), copies, copies, copies,
           both_stayed ? "true" : "false", a.snap.ack_input_seq);
    conn_leave(p, &a);
    conn_leave(p, &b);
    conn_close(&a);
    conn_close(&b);
    conn_close(&stranger);
    return 0;
}

/* Sends one input per 33 ms for ms milliseconds while servicing. */
static void play(struct probe *p, struct conn *c, uint64_t ms, int8_t dx,
                 int8_t dy)
{
    uint64_t until = tw_clock_mono_ns() + ms * MS;
    uint64_t next = 0;
    while (!c->gone && tw_clock_mono_ns() < until) {
        if (tw_clock_mono_ns() >= next) {
            send_input(p, c, dx, dy, NULL);
            next = tw_clock_mono_ns() + 33 * MS;
        }
        step(p);
    }
}

static int open_proxy(struct probe *p, struct proxy *px)
{
    if (proxy_open(px, &p->server) != 0) {
        fprintf(stderr, "tw-probe: cannot open the UDP proxy: %s\n",
                strerror(errno));
        return -1;
    }
    p->proxy = px;
    p->target = px->address;
    return 0;
}

static int scenario_tamper(struct probe *p)
{
    static struct proxy px;
    static struct conn c;
    if (open_proxy(p, &px) != 0 || mint(p, &c, p->opt.player, "tamper") != 0)
        return 1;
    c.auto_login = true;
    if (conn_open(p, &c, "tamper", NULL, TW_PROTOCOL_VERSION) != 0 ||
        !wait_logged_in(p, &c))
        return 1;
    play(p, &c, 300, 40, 0);

    /* Arm the proxy with the exact sealed bytes before ENet sends them. */
    uint8_t buf[64];
    struct tw_msg_input in = {.newest_seq = c.next_seq, .count = 1,
                              .ack_snapshot = 0,
                              .inputs = {{40, 0}}};
    int n = tw_encode_input(&in, buf, sizeof buf);
    struct tw_cipher preview = c.tx;
    int sealed = n > 0 ? tw_seal(&preview, TW_CH_INPUT, buf, (size_t)n,
                                 px.pattern, sizeof px.pattern)
                       : -1;
    tw_cipher_wipe(&preview);
    if (sealed <= 0)
        return 1;
    px.pattern_len = (size_t)sealed;
    px.armed = true;
    uint32_t tampered_seq = c.next_seq;
    send_input(p, &c, 40, 0, NULL);
    uint64_t until = deadline(p);
    while (px.armed && tw_clock_mono_ns() < until)
        step(p);

    uint64_t before = c.snapshots;
    play(p, &c, p->opt.hold_ms, 40, 0);
    printf("{\"tampered\": %u, \"tampered_seq\": %u, "
           "\"snapshots_after\": %llu, \"ack_after\": %u, "
           "\"stayed\": %s, \"reason\": \"%s\", \"open_failures\": %llu}\n",
           px.tampered, tampered_seq,
           (unsigned long long)(c.snapshots - before), c.snap.ack_input_seq,
           c.gone ? "false" : "true", reason_of(&c),
           (unsigned long long)c.open_failures);
    conn_leave(p, &c);
    conn_close(&c);
    return 0;
}

/* Counts captured datagrams that contain pattern. */
static unsigned count_in_wire(const struct proxy *px, const void *pattern,
                              size_t len)
{
    unsigned hits = 0;
    for (size_t i = 0; i < px->captured_count; i++)
        if (memmem(px->captured[i].data, px->captured[i].len, pattern, len))
            hits++;
    return hits;
}

static unsigned count_in_plain(const struct probe *p, const void *pattern,
                               size_t len)
{
    unsigned hits = 0;
    for (size_t i = 0; i < p->plain_count; i++)
        if (memmem(p->plains[i].data, p->plains[i].len, pattern, len))
            hits++;
    return hits;
}

struct position {
    uint32_t qx, qy;
    uint8_t entity[5]; /* slot, qx, qy as the snapshot bit-packs them */
};

static void put_float_pair(uint8_t out[8], float x, float y)
{
    uint32_t bx = tw_float_bits(x), by = tw_float_bits(y);
    for (int i = 0; i < 4; i++) {
        out[i] = (uint8_t)(bx >> (8 * i));
        out[4 + i] = (uint8_t)(by >> (8 * i));
    }
}

static int scenario_privacy(struct probe *p)
{
    static struct proxy px;
    static struct conn c;
    static struct position pos[MAX_POSITIONS];
    size_t pos_count = 0;
    if (open_proxy(p, &px) != 0 || mint(p, &c, p->opt.player,
                                         p->opt.name) != 0)
        return 1;
    p->plains = calloc(MAX_CAPTURED, sizeof *p->plains);
    if (!p->plains)
        return 1;
    px.capture = true;
    c.auto_login = true;
    if (conn_open(p, &c, "privacy", NULL, TW_PROTOCOL_VERSION) != 0 ||
        !wait_logged_in(p, &c))
        return 1;

    /* Move diagonally and note every position the server reports. */
    uint64_t until = tw_clock_mono_ns() + (uint64_t)p->opt.hold_ms * MS;
    uint64_t next_input = 0, seen = 0;
    while (!c.gone && tw_clock_mono_ns() < until) {
        if (tw_clock_mono_ns() >= next_input) {
            send_input(p, &c, 90, 60, NULL);
            next_input = tw_clock_mono_ns() + 33 * MS;
        }
        step(p);
        uint32_t qx, qy;
        if (c.snapshots != seen && own_position(&c, &qx, &qy) &&
            pos_count < MAX_POSITIONS && c.snap_plain_len >= 16) {
            seen = c.snapshots;
            bool known = pos_count > 0 && pos[pos_count - 1].qx == qx &&
                         pos[pos_count - 1].qy == qy;
            if (!known) {
                pos[pos_count].qx = qx;
                pos[pos_count].qy = qy;
                /* A full snapshot's first entity starts at bit 89. */
                memcpy(pos[pos_count].entity, c.snap_plain + 11, 5);
                pos_count++;
            }
        }
    }
    conn_leave(p, &c);
    px.capture = false;

    unsigned name_hits = count_in_wire(&px, p->opt.name,
                                       strlen(p->opt.name));
    unsigned float_hits = 0, u16_hits = 0, entity_hits = 0;
    unsigned float_control = 0, entity_control = 0;
    uint8_t pair[8];
    put_float_pair(pair, c.ok.spawn.x, c.ok.spawn.y);
    float_hits += count_in_wire(&px, pair, sizeof pair);
    float_control += count_in_plain(p, pair, sizeof pair);
    for (size_t i = 0; i < pos_count; i++) {
        put_float_pair(pair, tw_dequantize(pos[i].qx),
                       tw_dequantize(pos[i].qy));
        float_hits += count_in_wire(&px, pair, sizeof pair);
        uint8_t le[4] = {(uint8_t)pos[i].qx, (uint8_t)(pos[i].qx >> 8),
                         (uint8_t)pos[i].qy, (uint8_t)(pos[i].qy >> 8)};
        uint8_t be[4] = {le[1], le[0], le[3], le[2]};
        u16_hits += count_in_wire(&px, le, sizeof le);
        u16_hits += count_in_wire(&px, be, sizeof be);
        entity_hits += count_in_wire(&px, pos[i].entity, 5);
        entity_control += count_in_plain(p, pos[i].entity, 5) > 0;
    }

    size_t bytes = 0, c2s = 0;
    for (size_t i = 0; i < px.captured_count; i++) {
        bytes += px.captured[i].len;
        c2s += px.captured[i].c2s;
    }
    printf("{\"logged_in\": %s, \"datagrams\": %zu, \"client_to_server\": "
           "%zu, \"bytes\": %zu, \"positions\": %zu, \"leaks\": "
           "{\"name\": %u, \"float_pair\": %u, \"u16_pair\": %u, "
           "\"entity_bits\": %u}, \"control\": {\"float_pair\": %u, "
           "\"entity_bits\": %u}}\n",
           c.logged_in ? "true" : "false", px.captured_count, c2s, bytes,
           pos_count, name_hits, float_hits, u16_hits, entity_hits,
           float_control, entity_control);
    conn_close(&c);
    free(p->plains);
    p->plains = NULL;
    return 0;
}

/* Compares whole records, padding included: calloc zeroed it. */
static int compare_nonce(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(struct nonce_use));
}

static void play_with_pings(struct probe *p, struct conn *c, uint64_t ms)
{
    uint64_t until = tw_clock_mono_ns() + ms * MS;
    uint64_t next_input = 0, next_ping = 0;
    while (!c->gone && tw_clock_mono_ns() < until) {
        uint64_t now = tw_clock_mono_ns();
        if (now >= next_input) {
            send_input(p, c, 20, -20, NULL);
            next_input = now + 33 * MS;
        }
        if (now >= next_ping) {
            send_ping(p, c);
            next_ping = now + 150 * MS;
        }
        step(p);
    }
}

static int scenario_nonces(struct probe *p)
{
    static struct conn first, second, third;
    p->nonces = calloc(MAX_NONCES, sizeof *p->nonces);
    if (!p->nonces)
        return 1;
    p->log_nonces = true;
    if (mint(p, &first, p->opt.player, "nonce") != 0 ||
        mint(p, &second, p->opt.player, "nonce") != 0 ||
        mint(p, &third, p->opt.player, "nonce") != 0)
        return 1;
    first.auto_login = second.auto_login = third.auto_login = true;

    /* A session, a reconnect after leaving, and a replacing login. */
    if (conn_open(p, &first, "first", NULL, TW_PROTOCOL_VERSION) != 0 ||
        !wait_logged_in(p, &first))
        return 1;
    play_with_pings(p, &first, p->opt.hold_ms);
    conn_leave(p, &first);
    if (conn_open(p, &second, "second", NULL, TW_PROTOCOL_VERSION) != 0 ||
        !wait_logged_in(p, &second))
        return 1;
    play_with_pings(p, &second, p->opt.hold_ms);
    if (conn_open(p, &third, "third", p->opt.bind_ip, TW_PROTOCOL_VERSION) !=
            0 ||
        !wait_logged_in(p, &third))
        return 1;
    wait_gone(p, &second);
    play_with_pings(p, &third, p->opt.hold_ms);
    conn_leave(p, &third);
    p->log_nonces = false;

    size_t per[2][TW_CHANNEL_COUNT] = {{0}};
    for (size_t i = 0; i < p->nonce_count; i++)
        per[p->nonces[i].direction & 1][p->nonces[i].channel %
                                        TW_CHANNEL_COUNT]++;
    qsort(p->nonces, p->nonce_count, sizeof *p->nonces, compare_nonce);
    size_t duplicates = 0, keys = 0;
    for (size_t i = 0; i < p->nonce_count; i++) {
        if (i > 0 && compare_nonce(&p->nonces[i - 1], &p->nonces[i]) == 0)
            duplicates++;
        if (i == 0 || memcmp(p->nonces[i - 1].key_fp, p->nonces[i].key_fp,
                             FINGERPRINT_BYTES) != 0)
            keys++;
    }
    printf("{\"packets\": %zu, \"duplicates\": %zu, \"keys\": %zu, "
           "\"c2s\": [%zu, %zu, %zu], \"s2c\": [%zu, %zu, %zu], "
           "\"replaced_reason\": \"%s\", \"open_failures\": %llu}\n",
           p->nonce_count, duplicates, keys, per[0][0], per[0][1], per[0][2],
           per[1][0], per[1][1], per[1][2], reason_of(&second),
           (unsigned long long)(first.open_failures + second.open_failures +
                                third.open_failures));
    conn_close(&first);
    conn_close(&second);
    conn_close(&third);
    free(p->nonces);
    p->nonces = NULL;
    return 0;
}

/*
 * Waits for `snapshots` more snapshots; returns false if the player's
 * position or acknowledged input changed in any of them.
 */
static bool holds_still(struct probe *p, struct conn *c, uint64_t snapshots,
                        uint32_t qx, uint32_t qy)
{
    uint64_t want = c->snapshots + snapshots;
    uint64_t until = deadline(p);
    uint64_t seen = c->snapshots;
    bool still = true;
    while (c->snapshots < want && !c->gone && tw_clock_mono_ns() < until) {
        step(p);
        if (c->snapshots == seen)
            continue;
        seen = c->snapshots;
        uint32_t x, y;
        if (!own_position(c, &x, &y) || x != qx || y != qy ||
            c->snap.ack_input_seq != 0)
            still = false;
    }
    return still && c->snapshots >= want;
}

static int scenario_forged(struct probe *p)
{
    static struct conn c;
    if (mint(p, &c, p->opt.player, "forged") != 0)
        return 1;
    c.auto_login = true;
    if (conn_open(p, &c, "forged", NULL, TW_PROTOCOL_VERSION) != 0 ||
        !wait_logged_in(p, &c) || !wait_snapshots(p, &c, 3))
        return 1;
    uint32_t qx0, qy0;
    if (!own_position(&c, &qx0, &qy0))
        return 1;

    /* The genuine input, the first this session sends on channel 2. */
    struct tw_msg_input in = {.newest_seq = 1, .count = 1,
                              .inputs = {{127, 127}}};
    uint8_t plain[64];
    int n = tw_encode_input(&in, plain, sizeof plain);
    uint8_t genuine[TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD];
    uint64_t counter = c.tx.next_counter[TW_CH_INPUT];
    int glen = n > 0 ? tw_seal(&c.tx, TW_CH_INPUT, plain, (size_t)n, genuine,
                               sizeof genuine)
                     : -1;
    if (glen <= 0)
        return 1;

    uint8_t flipped[sizeof genuine];
    memcpy(flipped, genuine, (size_t)glen);
    flipped[glen - 1] ^= 0x01; /* last bit of the tag */

    /* The same input under a key the server never issued. */
    uint8_t wrong_key[TW_KEY_BYTES];
    randombytes_buf(wrong_key, sizeof wrong_key);
    struct tw_cipher wrong;
    tw_cipher_init(&wrong, wrong_key, c.token.match_id, TW_DIR_C2S);
    sodium_memzero(wrong_key, sizeof wrong_key);
    wrong.next_counter[TW_CH_INPUT] = counter;
    uint8_t wrong_low[sizeof genuine], wrong_high[sizeof genuine];
    int wlen = tw_seal(&wrong, TW_CH_INPUT, plain, (size_t)n, wrong_low,
                       sizeof wrong_low);
    /* Far ahead: had it moved the window, the genuine counter would be
     * too old to accept. */
    wrong.next_counter[TW_CH_INPUT] = counter + 1000;
    int hlen = tw_seal(&wrong, TW_CH_INPUT, plain, (size_t)n, wrong_high,
                       sizeof wrong_high);
    tw_cipher_wipe(&wrong);
    if (wlen <= 0 || hlen <= 0)
        return 1;

    send_raw(&c, TW_CH_INPUT, flipped, (size_t)glen,
             ENET_PACKET_FLAG_UNSEQUENCED);
    send_raw(&c, TW_CH_INPUT, wrong_low, (size_t)wlen,
             ENET_PACKET_FLAG_UNSEQUENCED);
    send_raw(&c, TW_CH_INPUT, wrong_high, (size_t)hlen,
             ENET_PACKET_FLAG_UNSEQUENCED);
    bool still = holds_still(p, &c, 15, qx0, qy0);

    send_raw(&c, TW_CH_INPUT, genuine, (size_t)glen,
             ENET_PACKET_FLAG_UNSEQUENCED);
    uint64_t until = deadline(p);
    while (c.snap.ack_input_seq < 1 && !c.gone && tw_clock_mono_ns() < until)
        step(p);
    wait_snapshots(p, &c, 2);
    uint32_t qx1 = qx0, qy1 = qy0;
    own_position(&c, &qx1, &qy1);
    printf("{\"forged_sent\": 3, \"still_while_forged\": %s, "
           "\"genuine_applied\": %s, \"moved_after_genuine\": %s, "
           "\"stayed\": %s, \"reason\": \"%s\"}\n",
           still ? "true" : "false",
           c.snap.ack_input_seq == 1 ? "true" : "false",
           (qx1 != qx0 || qy1 != qy0) ? "true" : "false",
           c.gone ? "false" : "true", reason_of(&c));
    conn_leave(p, &c);
    conn_close(&c);
    return 0;
}

/* ---- Main -------------------------------------------------------------- */

struct scenario {
    const char *name;
    int (*run)(struct probe *p);
    bool needs_key;
};

static const struct scenario scenarios[] = {
    {"version", scenario_version, false},
    {"login", scenario_login, false},
    {"idle", scenario_idle, true},
    {"replace", scenario_replace, true},
    {"replay", scenario_replay, true},
    {"tamper", scenario_tamper, true},
    {"privacy", scenario_privacy, true},
    {"nonces", scenario_nonces, true},
    {"forged", scenario_forged, true},
};

static int parse_server(const char *text, ENetAddress *out)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof host)
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    out->port = (enet_uint16)strtoul(colon + 1, NULL, 10);
    return out->port ? enet_address_set_host_ip(out, host) : -1;
}

int main(int argc, char **argv)
{
    static struct probe p;
    if (parse_options(argc, argv, &p.opt) != 0)
        return 2;
    const struct scenario *sc = NULL;
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        if (strcmp(scenarios[i].name, p.opt.scenario) == 0)
            sc = &scenarios[i];
    if (!sc) {
        fprintf(stderr, "tw-probe: unknown scenario %s\n", p.opt.scenario);
        return 2;
    }
    if (tw_crypto_init() != TW_OK || enet_initialize() != 0)
        return 1;
    if (parse_server(p.opt.server, &p.server) != 0) {
        fprintf(stderr, "tw-probe: invalid --server %s\n", p.opt.server);
        return 2;
    }
    p.target = p.server;
    if (p.opt.key_path) {
        char err[256];
        if (tw_key_load(p.opt.key_path, p.key, err, sizeof err) != TW_OK) {
            fprintf(stderr, "tw-probe: %s\n", err);
            return 1;
        }
        p.have_key = true;
    }
    if (sc->needs_key && !p.have_key) {
        fprintf(stderr, "tw-probe: scenario %s needs --key\n", sc->name);
        return 2;
    }
    int rc = sc->run(&p);
    if (rc != 0)
        fprintf(stderr, "tw-probe: scenario %s did not complete\n", sc->name);
    fflush(stdout);
    sodium_memzero(p.key, sizeof p.key);
    enet_deinitialize();
    return rc;
}
