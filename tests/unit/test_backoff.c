#include "backoff.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

struct fixture {
    ENetHost *host;
    ENetOutgoingCommand cmds[3];
};

/* A host with no address sends nothing; its peers are filled by hand. */
static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    assert_int_equal(enet_initialize(), 0);
    f.host = enet_host_create(NULL, 2, 1, 0, 0);
    assert_non_null(f.host);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    /* The commands live in the fixture, so ENet must not free them. */
    for (size_t i = 0; i < f->host->peerCount; i++)
        enet_list_clear(&f->host->peers[i].sentReliableCommands);
    enet_host_destroy(f->host);
    enet_deinitialize();
    return 0;
}

static ENetPeer *peer_in_flight(struct fixture *f, enet_uint32 rtt,
                                enet_uint32 variance,
                                const enet_uint32 *timeouts, size_t n)
{
    ENetPeer *peer = &f->host->peers[0];
    peer->state = ENET_PEER_STATE_CONNECTED;
    peer->roundTripTime = rtt;
    peer->roundTripTimeVariance = variance;
    peer->nextTimeout = 100000;
    for (size_t i = 0; i < n; i++) {
        f->cmds[i].sentTime = 1000 + 10 * (enet_uint32)i;
        f->cmds[i].roundTripTimeout = timeouts[i];
        f->cmds[i].roundTripTimeoutLimit = 32 * 250;
        enet_list_insert(enet_list_end(&peer->sentReliableCommands),
                         &f->cmds[i]);
    }
    return peer;
}

static void backoff_caps_long_timeouts_at_the_floor(void **state)
{
    struct fixture *f = *state;
    const enet_uint32 timeouts[] = {4000, 200, 16000};
    ENetPeer *peer = peer_in_flight(f, 100, 10, timeouts, 3);
    assert_int_equal(tw_backoff_ceiling(peer), TW_BACKOFF_FLOOR_MS);

    tw_backoff_cap(f->host);
    assert_int_equal(f->cmds[0].roundTripTimeout, TW_BACKOFF_FLOOR_MS);
    assert_int_equal(f->cmds[1].roundTripTimeout, 200);
    assert_int_equal(f->cmds[2].roundTripTimeout, TW_BACKOFF_FLOOR_MS);
    /* The disconnect limit is ENet's own decision and stays put. */
    assert_int_equal(f->cmds[0].roundTripTimeoutLimit, 32 * 250);
    /* The next check comes when the earliest command is due. */
    assert_int_equal(peer->nextTimeout, 1010 + 200);
}

static void backoff_ceiling_follows_a_slow_link(void **state)
{
    struct fixture *f = *state;
    const enet_uint32 timeouts[] = {8000};
    ENetPeer *peer = peer_in_flight(f, 900, 50, timeouts, 1);
    assert_int_equal(tw_backoff_ceiling(peer), 2 * (900 + 4 * 50));

    tw_backoff_cap(f->host);
    assert_int_equal(f->cmds[0].roundTripTimeout, 2200);
    assert_int_equal(peer->nextTimeout, 1000 + 2200);
}

static void backoff_leaves_disconnected_peers_alone(void **state)
{
    struct fixture *f = *state;
    const enet_uint32 timeouts[] = {8000};
    ENetPeer *peer = peer_in_flight(f, 100, 10, timeouts, 1);
    peer->state = ENET_PEER_STATE_DISCONNECTED;

    tw_backoff_cap(f->host);
    assert_int_equal(f->cmds[0].roundTripTimeout, 8000);
    assert_int_equal(peer->nextTimeout, 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            backoff_caps_long_timeouts_at_the_floor, setup, teardown),
        cmocka_unit_test_setup_teardown(
            backoff_ceiling_follows_a_slow_link, setup, teardown),
        cmocka_unit_test_setup_teardown(
            backoff_leaves_disconnected_peers_alone, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
