/*
 * Connection and traffic limits of the server, driven in process through
 * the hooks of server.h: rate limit, pending and per-address caps, login
 * timeout, handshakes that never complete, and snapshot size per MTU.
 */
#include "server_fixture.h"

#include "clock.h"
#include "datagram.h"
#include "protocol.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define MS 1000000ull

static struct tw_fixture fx;

/* Synthetic event times start well in the past of the real clock. */
static uint64_t base_time(void)
{
    uint64_t now = tw_clock_mono_ns();
    return now > 60000 * MS ? now - 60000 * MS : 0;
}

static const struct tw_stats *stats(void)
{
    return tw_server_stats(fx.server);
}

/* Returns the reason in the DISCONNECT queued for peer, or -1. */
static long queued_disconnect_reason(ENetPeer *peer)
{
    for (ENetListIterator it = enet_list_begin(&peer->outgoingCommands);
         it != enet_list_end(&peer->outgoingCommands);
         it = enet_list_next(it)) {
        const ENetOutgoingCommand *oc = (const ENetOutgoingCommand *)it;
        if ((oc->command.header.command & ENET_PROTOCOL_COMMAND_MASK) ==
            ENET_PROTOCOL_COMMAND_DISCONNECT)
            return (long)ENET_NET_TO_HOST_32(oc->command.disconnect.data);
    }
    return -1;
}

static void send_pings(ENetPeer *peer, struct tw_fixture_client *c,
                       uint64_t from, uint64_t interval, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        struct tw_msg_ping ping = {.id = i, .client_ns = i};
        uint8_t buf[32];
        int n = tw_encode_ping(TW_MSG_PING, &ping, buf, sizeof buf);
        assert_true(n > 0);
        tw_fixture_send_sealed(&fx, peer, c, TW_CH_RELIABLE, buf, (size_t)n,
                               from + i * interval);
    }
}

static void rate_limits(struct tw_config *cfg)
{
    cfg->security.rate_limit = 10;
    cfg->security.rate_burst = 20;
}

static void rate_limit_disconnects_flooding_peer(void **state)
{
    (void)state;
    assert_int_equal(tw_fixture_open(&fx, rate_limits), 0);
    uint64_t t = base_time();
    ENetPeer *peer = tw_fixture_connect(&fx, 0, 1, t);
    struct tw_fixture_client c;
    assert_true(tw_fixture_login(&fx, peer, 1, &c, t));

    send_pings(peer, &c, t, 10 * MS, 300); /* 100 per second for 3 s */

    assert_true(stats()->drops[TW_DROP_RATE_LIMITED] > 0);
    assert_int_equal(stats()->disconnects[TW_REASON_RATE_LIMIT], 1);
    assert_int_equal(peer->state, ENET_PEER_STATE_DISCONNECTING);
    assert_int_equal(queued_disconnect_reason(peer), TW_REASON_RATE_LIMIT);
    assert_string_equal(tw_reason_name(TW_REASON_RATE_LIMIT),
                        "rate limit exceeded");
    tw_fixture_close(&fx);
}

static void peer_within_rate_limit_is_served(void **state)
{
    (void)state;
    assert_int_equal(tw_fixture_open(&fx, rate_limits), 0);
    uint64_t t = base_time();
    ENetPeer *peer = tw_fixture_connect(&fx, 0, 1, t);
    struct tw_fixture_client c;
    assert_true(tw_fixture_login(&fx, peer, 1, &c, t));

    send_pings(peer, &c, t + 100 * MS, 125 * MS, 40); /* 8 per second */

    assert_int_equal(stats()->drops[TW_DROP_RATE_LIMITED], 0);
    assert_int_equal(stats()->disconnects[TW_REASON_RATE_LIMIT], 0);
    assert_int_equal(peer->state, ENET_PEER_STATE_CONNECTED);
    tw_fixture_close(&fx);
}

static void small_pending_cap(struct tw_config *cfg)
{
    cfg->security.max_connections = 4;
    cfg->security.max_per_ip = 3;
}

static void pending_peers_beyond_cap_refused(void **state)
{
    (void)state;
    assert_int_equal(tw_fixture_open(&fx, small_pending_cap), 0);
    uint64_t t = base_time();
    ENetPeer *peers[6];
    for (unsigned i = 0; i < 6; i++)
        peers[i] = tw_fixture_connect(&fx, i, (uint8_t)(10 + i), t);

    assert_int_equal(stats()->refusals[TW_REASON_SERVER_FULL], 2);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(peers[i]->state, ENET_PEER_STATE_CONNECTED);
    for (unsigned i = 4; i < 6; i++)
        assert_int_equal(peers[i]->state, ENET_PEER_STATE_DISCONNECTED);
    tw_fixture_close(&fx);
}

static void pending_peers_per_address_capped(void **state)
{
    (void)state;
    assert_int_equal(tw_fixture_open(&fx, small_pending_cap), 0);
    uint64_t t = base_time();
    ENetPeer *peers[4];
    for (unsigned i = 0; i < 4; i++)
        peers[i] = tw_fixture_connect(&fx, i, 2, t);
    assert_int_equal(stats()->refusals[TW_REASON_TOO_MANY_FROM_IP], 1);
    assert_int_equal(peers[3]->state, ENET_PEER_STATE_DISCONNECTED);

    ENetPeer *other = tw_fixture_connect(&fx, 4, 3, t);
    assert_int_equal(other->state, ENET_PEER_STATE_CONNECTED);
    assert_int_equal(stats()->refusals[TW_REASON_TOO_MANY_FROM_IP], 1);
    tw_fixture_close(&fx);
}

static void logged_in_peers_not_counted_per_address(void **state)
{
    (void)state;
    assert_int_equal(tw_fixture_open(&fx, small_pending_cap), 0);
    uint64_t t = base_time();
    for (unsigned i = 0; i < 8; i++) {
        ENetPeer *peer = tw_fixture_connect(&fx, i, 2, t);
        struct tw_fixture_client c;
        assert_true(tw_fixture_login(&fx, peer, 100 + i, &c, t));
    }
    assert_int_equal(stats()->refusals[TW_REASON_TOO_MANY_FROM_IP], 0);
    assert_int_equal(stats()->players_active, 8);
    tw_fixture_close(&fx);
}

static void short_login_timeout(struct tw_config *cfg)
{
    cfg->security.login_timeout_ms = 100;
}

static void login_timeout_closes_silent_peer(void **state)
{
    (void)state;
    assert_int_equal(tw_fixture_open(&fx, short_login_timeout), 0);
    uint64_t now = tw_clock_mono_ns();
    ENetPeer *silent = tw_fixture_connect(&fx, 0, 1, now - 500 * MS);
    ENetPeer *fresh = tw_fixture_connect(&fx, 1, 1, now);

    tw_server_tick(fx.server, tw_clock_mono_ns());

    assert_int_equal(stats()->refusals[TW_REASON_LOGIN_TIMEOUT], 1);
    assert_int_equal(silent->state, ENET_PEER_STATE_DISCONNECTED);
    assert_int_equal(fresh->state, ENET_PEER_STATE_CONNECTED);
    tw_fixture_close(&fx);
}

static void half_open_handshake_reset_at_login_timeout(void **state)
{
    (void)state;
    assert_int_equal(tw_fixture_open(&fx, short_login_timeout), 0);
    ENetPeer *half = &fx.host->peers[3];
    half->state = ENET_PEER_STATE_ACKNOWLEDGING_CONNECT;

    tw_server_tick(fx.server, tw_clock_mono_ns());
    assert_int_equal(half->state, ENET_PEER_STATE_ACKNOWLEDGING_CONNECT);

    /* The timeout is measured on the real clock from the first tick. */
    struct timespec pause = {.tv_nsec = 150 * 1000000L};
    nanosleep(&pause, NULL);
    tw_server_tick(fx.server, tw_clock_mono_ns());

    assert_int_equal(half->state, ENET_PEER_STATE_DISCONNECTED);
    assert_int_equal(stats()->refusals[TW_REASON_LOGIN_TIMEOUT], 1);
    tw_fixture_close(&fx);
}

static void crowd_in_one_spot(struct tw_config *cfg)
{
    cfg->match.max_players = 256;
    cfg->match.max_visible = 256;
    cfg->match.spawn_x = cfg->match.spawn_y = 500;
    cfg->match.spawn_width = cfg->match.spawn_height = 0;
    cfg->security.max_per_ip = 256;
}

static void snapshots_fit_one_command_at_any_mtu(void **state)
{
    (void)state;
    assert_int_equal(tw_fixture_open(&fx, crowd_in_one_spot), 0);
    uint64_t t = base_time();
    const unsigned players = 240;
    for (unsigned i = 0; i < players; i++) {
        ENetPeer *peer = tw_fixture_connect(&fx, i, 1, t);
        struct tw_fixture_client c;
        assert_true(tw_fixture_login(&fx, peer, 1000 + i, &c, t));
        if (i % 2)
            peer->mtu = ENET_PROTOCOL_MINIMUM_MTU;
    }

    tw_server_tick(fx.server, tw_clock_mono_ns());

    assert_int_equal(stats()->snapshots_sent, players);
    assert_int_equal(stats()->unreliable_over_mtu, 0);
    assert_true(stats()->snapshot_entities_cut > 0);
    tw_fixture_close(&fx);
}

int main(void)
{
    tw_log_min_level = TW_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rate_limit_disconnects_flooding_peer),
        cmocka_unit_test(peer_within_rate_limit_is_served),
        cmocka_unit_test(pending_peers_beyond_cap_refused),
        cmocka_unit_test(pending_peers_per_address_capped),
        cmocka_unit_test(logged_in_peers_not_counted_per_address),
        cmocka_unit_test(login_timeout_closes_silent_peer),
        cmocka_unit_test(half_open_handshake_reset_at_login_timeout),
        cmocka_unit_test(snapshots_fit_one_command_at_any_mtu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
