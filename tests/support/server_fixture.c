#include "server_fixture.h"

#include "clock.h"
#include "protocol.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int open_sink(struct tw_fixture *f)
{
    f->sink = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (f->sink < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (bind(f->sink, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(f->sink, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    f->sink_port = ntohs(sa.sin_port);
    return 0;
}

int tw_fixture_open(struct tw_fixture *f, void (*tweak)(struct tw_config *))
{
    memset(f, 0, sizeof *f);
    f->sink = -1;
    if (tw_crypto_init() != TW_OK || enet_initialize() != 0) {
        fputs("fixture: cannot initialize libsodium or ENet\n", stderr);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "/tmp/tw-fixture-XXXXXX");
    if (!mkdtemp(f->dir)) {
        perror("fixture: mkdtemp");
        return -1;
    }
    snprintf(f->key_path, sizeof f->key_path, "%s/match.key", f->dir);
    char err[256];
    if (tw_key_generate(f->key_path, err, sizeof err) != TW_OK ||
        tw_key_load(f->key_path, f->key, err, sizeof err) != TW_OK) {
        fprintf(stderr, "fixture: %s\n", err);
        tw_fixture_close(f);
        return -1;
    }
    if (open_sink(f) != 0) {
        perror("fixture: sink socket");
        tw_fixture_close(f);
        return -1;
    }

    tw_config_defaults(&f->cfg);
    snprintf(f->cfg.server.host, sizeof f->cfg.server.host, "127.0.0.1");
    f->cfg.server.port = 0; /* ephemeral: ENet binds any free port */
    snprintf(f->cfg.security.key_file, sizeof f->cfg.security.key_file, "%s",
             f->key_path);
    snprintf(f->cfg.store.path, sizeof f->cfg.store.path, "%s/store.db",
             f->dir);
    if (tweak)
        tweak(&f->cfg);
    f->server = tw_server_create(&f->cfg);
    if (!f->server) {
        tw_fixture_close(f);
        return -1;
    }
    f->host = tw_server_host(f->server);
    return 0;
}

void tw_fixture_remove_store(const struct tw_fixture *f)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (unsigned i = 0; i < 3; i++) {
        char path[TW_PATH_MAX + 8];
        snprintf(path, sizeof path, "%s%s", f->cfg.store.path, suffixes[i]);
        unlink(path);
    }
}

void tw_fixture_close(struct tw_fixture *f)
{
    tw_server_destroy(f->server);
    f->server = NULL;
    f->host = NULL;
    if (f->sink >= 0)
        close(f->sink);
    f->sink = -1;
    if (f->key_path[0])
        unlink(f->key_path);
    if (f->dir[0])
        tw_fixture_remove_store(f);
    if (f->dir[0])
        rmdir(f->dir);
    f->key_path[0] = f->dir[0] = '\0';
}

ENetPeer *tw_fixture_connect(struct tw_fixture *f, unsigned index,
                             uint8_t address_octet, uint64_t now)
{
    return tw_fixture_connect_version(f, index, address_octet,
                                      TW_PROTOCOL_VERSION, now);
}

ENetPeer *tw_fixture_connect_version(struct tw_fixture *f, unsigned index,
                                     uint8_t address_octet, uint32_t version,
                                     uint64_t now)
{
    if (index >= f->host->peerCount)
        return NULL;
    ENetPeer *peer = &f->host->peers[index];
    if (peer->state != ENET_PEER_STATE_DISCONNECTED)
        return NULL;

    /* What ENet's connect handshake would have set up. */
    peer->channels = enet_malloc(TW_CHANNEL_COUNT * sizeof *peer->channels);
    if (!peer->channels)
        return NULL;
    memset(peer->channels, 0, TW_CHANNEL_COUNT * sizeof *peer->channels);
    for (unsigned i = 0; i < TW_CHANNEL_COUNT; i++) {
        enet_list_clear(&peer->channels[i].incomingReliableCommands);
        enet_list_clear(&peer->channels[i].incomingUnreliableCommands);
    }
    peer->channelCount = TW_CHANNEL_COUNT;
    peer->address.host = htonl(0x7f000000u | address_octet);
    peer->address.port = f->sink_port;
    peer->connectID = (enet_uint32)(index + 1);
    peer->state = ENET_PEER_STATE_CONNECTED;
    enet_peer_on_connect(peer);

    ENetEvent ev = {.type = ENET_EVENT_TYPE_CONNECT,
                    .peer = peer,
                    .data = version};
    tw_server_dispatch(f->server, &ev, now);
    return peer;
}

void tw_fixture_disconnect(struct tw_fixture *f, ENetPeer *peer,
                           uint32_t data, uint64_t now)
{
    if (peer->state == ENET_PEER_STATE_DISCONNECTED)
        return;
    ENetEvent ev = {.type = ENET_EVENT_TYPE_DISCONNECT,
                    .peer = peer,
                    .data = data};
    tw_server_dispatch(f->server, &ev, now);
    enet_peer_reset(peer);
}

void tw_fixture_receive(struct tw_fixture *f, ENetPeer *peer, uint8_t channel,
                        const void *data, size_t len, uint64_t now)
{
    ENetPacket *packet = enet_packet_create(data, len, 0);
    if (!packet)
        return;
    ENetEvent ev = {.type = ENET_EVENT_TYPE_RECEIVE,
                    .peer = peer,
                    .channelID = channel,
                    .packet = packet};
    tw_server_dispatch(f->server, &ev, now);
}

bool tw_fixture_login(struct tw_fixture *f, ENetPeer *peer,
                      uint64_t player_id, struct tw_fixture_client *c,
                      uint64_t now)
{
    struct tw_token tok;
    char name[TW_NAME_MAX + 1];
    snprintf(name, sizeof name, "player%llu",
             (unsigned long long)(player_id % 1000000u));
    memset(c, 0, sizeof *c);
    if (tw_token_issue(f->key, player_id, name, f->cfg.match.match_id,
                       tw_clock_unix_s(), 3600, &tok) != TW_OK)
        return false;

    struct tw_msg_login login;
    uint8_t buf[TW_MAX_PAYLOAD];
    tw_token_to_login(&tok, &login);
    int n = tw_encode_login(&login, buf, sizeof buf);
    uint64_t before = tw_server_stats(f->server)->logins_total;
    if (n > 0)
        tw_fixture_receive(f, peer, TW_CH_RELIABLE, buf, (size_t)n, now);

    tw_cipher_init(&c->tx, tok.c2s_key, f->cfg.match.match_id, TW_DIR_C2S);
    tw_cipher_init(&c->rx, tok.s2c_key, f->cfg.match.match_id, TW_DIR_S2C);
    sodium_memzero(&tok, sizeof tok);
    c->player_id = player_id;
    c->logged_in = tw_server_stats(f->server)->logins_total > before;
    return c->logged_in;
}

void tw_fixture_send_sealed(struct tw_fixture *f, ENetPeer *peer,
                            struct tw_fixture_client *c, uint8_t channel,
                            const void *plain, size_t len, uint64_t now)
{
    uint8_t sealed[TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD];
    int n = tw_seal(&c->tx, channel, plain, len, sealed, sizeof sealed);
    if (n > 0)
        tw_fixture_receive(f, peer, channel, sealed, (size_t)n, now);
}
