/*
 * The server's packet handler and session state machine, fed sequences of
 * events from several fake peers. Each input is a program of one-byte
 * operations: connect (from one of a few addresses, any protocol version),
 * disconnect, raw packets on any channel, a login with a valid token minted
 * here, sealed packets under that login's session key (so the post-login
 * handlers are reached), replayed or corrupted logins, ticks and time
 * steps. Every input starts from a fresh server. The store file is kept
 * across the inputs of one run, because creating it costs a migration and
 * several fsyncs; only a few player ids ever log in, so it stays small.
 */
#include "fuzz.h"

#include "clock.h"
#include "log.h"
#include "protocol.h"
#include "server_fixture.h"

#include <string.h>

#define PEERS 8u
#define MAX_OPS 512u
#define MS 1000000ull

static struct tw_fixture fx;

static void close_fixture(void)
{
    tw_fixture_close(&fx);
}

static void small_server(struct tw_config *cfg)
{
    cfg->server.max_connections = PEERS;
    cfg->match.max_players = 4;
    cfg->match.max_visible = 8;
    cfg->security.max_connections = 5;
    cfg->security.max_per_ip = 3;
    cfg->security.rate_limit = 50;
    cfg->security.rate_burst = 20;
    cfg->security.login_timeout_ms = 1000;
    cfg->match.event_interval_ms = 10;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Silence even errors: the fuzzer provokes them by the million. */
    tw_log_min_level = (enum tw_log_level)(TW_ERROR + 1);
    if (tw_fixture_open(&fx, small_server) != 0)
        abort();
    atexit(close_fixture);
    /* Keep the key and sink; each input gets a server of its own. */
    tw_server_destroy(fx.server);
    fx.server = NULL;
    fx.host = NULL;
    return 0;
}

enum op {
    OP_CONNECT,
    OP_DISCONNECT,
    OP_RAW,
    OP_LOGIN,
    OP_SEALED,
    OP_TICK,
    OP_WAIT,
    OP_BAD_LOGIN,
    OP_COUNT
};

struct run {
    struct fuzz_input in;
    uint64_t now, end;
    struct tw_fixture_client clients[PEERS];
    uint8_t last_login[TW_MAX_PAYLOAD];
    size_t last_login_len;
    uint64_t next_player;
};

static void do_login(struct run *r, ENetPeer *peer, unsigned i)
{
    if (peer->state != ENET_PEER_STATE_CONNECTED)
        return;
    /* Few player ids, so logins collide and replace each other. */
    uint64_t player = 1 + fuzz_u8(&r->in) % 6;
    tw_fixture_login(&fx, peer, player, &r->clients[i], r->now);
}

static void do_bad_login(struct run *r, ENetPeer *peer)
{
    /* A fresh valid login, resent or with one byte flipped. */
    struct tw_token tok;
    struct tw_msg_login login;
    if (tw_token_issue(fx.key, 99, "replayer", fx.cfg.match.match_id,
                       tw_clock_unix_s(), 60, &tok) != TW_OK)
        return;
    tw_token_to_login(&tok, &login);
    int n = tw_encode_login(&login, r->last_login, sizeof r->last_login);
    r->last_login_len = n > 0 ? (size_t)n : 0;
    uint8_t where = fuzz_u8(&r->in), flip = fuzz_u8(&r->in);
    if (r->last_login_len)
        r->last_login[where % r->last_login_len] ^= flip;
    tw_fixture_receive(&fx, peer, TW_CH_RELIABLE, r->last_login,
                       r->last_login_len, r->now);
    tw_fixture_receive(&fx, peer, TW_CH_RELIABLE, r->last_login,
                       r->last_login_len, r->now);
}

static void step(struct run *r)
{
    uint8_t op = fuzz_u8(&r->in);
    unsigned i = fuzz_u8(&r->in) % PEERS;
    ENetPeer *peer = &fx.host->peers[i];
    size_t len;
    const uint8_t *bytes;

    switch (op % OP_COUNT) {
    case OP_CONNECT: {
        uint8_t how = fuzz_u8(&r->in);
        uint32_t version = how & 0x80 ? how & 3u : TW_PROTOCOL_VERSION;
        memset(&r->clients[i], 0, sizeof r->clients[i]);
        tw_fixture_connect_version(&fx, i, (uint8_t)(1 + how % 3), version,
                                   r->now);
        break;
    }
    case OP_DISCONNECT:
        tw_fixture_disconnect(&fx, peer, fuzz_u8(&r->in) % (TW_REASON_COUNT + 1),
                              r->now);
        r->clients[i].logged_in = false;
        break;
    case OP_RAW: {
        uint8_t channel = fuzz_u8(&r->in) % (TW_CHANNEL_COUNT + 1);
        bytes = fuzz_bytes(&r->in, fuzz_u8(&r->in), &len);
        if (peer->state != ENET_PEER_STATE_DISCONNECTED)
            tw_fixture_receive(&fx, peer, channel, bytes, len, r->now);
        break;
    }
    case OP_LOGIN:
        do_login(r, peer, i);
        break;
    case OP_SEALED: {
        uint8_t channel = fuzz_u8(&r->in) % TW_CHANNEL_COUNT;
        bytes = fuzz_bytes(&r->in, fuzz_u8(&r->in), &len);
        if (r->clients[i].logged_in &&
            peer->state != ENET_PEER_STATE_DISCONNECTED)
            tw_fixture_send_sealed(&fx, peer, &r->clients[i], channel, bytes,
                                   len, r->now);
        break;
    }
    case OP_TICK:
        tw_server_tick(fx.server, tw_clock_mono_ns());
        break;
    case OP_WAIT:
        r->now += (uint64_t)fuzz_u8(&r->in) * 4 * MS;
        if (r->now > r->end)
            r->now = r->end;
        break;
    case OP_BAD_LOGIN:
        if (peer->state != ENET_PEER_STATE_DISCONNECTED)
            do_bad_login(r, peer);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run r;
    memset(&r, 0, sizeof r);
    r.in = (struct fuzz_input){.data = data, .size = size};
    /*
     * Event times run from 2 s before the real clock up to it, so login
     * timeouts (measured by ticks on the real clock) can fire.
     */
    r.end = tw_clock_mono_ns();
    r.now = r.end > 2000 * MS ? r.end - 2000 * MS : 0;

    fx.server = tw_server_create(&fx.cfg);
    if (!fx.server)
        abort();
    fx.host = tw_server_host(fx.server);
    for (unsigned n = 0; n < MAX_OPS && fuzz_left(&r.in) > 0; n++)
        step(&r);

    const struct tw_stats *st = tw_server_stats(fx.server);
    FUZZ_REQUIRE(st->players_active <= fx.cfg.match.max_players);
    FUZZ_REQUIRE(st->unreliable_over_mtu == 0);
    for (unsigned i = 0; i < PEERS; i++)
        tw_cipher_wipe(&r.clients[i].tx), tw_cipher_wipe(&r.clients[i].rx);
    tw_server_destroy(fx.server);
    fx.server = NULL;
    fx.host = NULL;
    return 0;
}
