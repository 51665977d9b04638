/*
 * Raw ENet datagram checks: what a real ENet 1.3.17 sender produces passes,
 * and fragments that lie about their sizes or counts are rejected.
 */
#include "datagram.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define MAX_PACKET 4096u
#define MTU 1400u

static ENetHost *make_host(void)
{
    ENetHost *host = enet_host_create(NULL, 4, 3, 0, 0);
    assert_non_null(host);
    for (size_t i = 0; i < host->peerCount; i++)
        host->peers[i].mtu = MTU;
    return host;
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

static void header(struct datagram *d, uint16_t peer_id)
{
    d->len = 0;
    put16(d, peer_id | ENET_PROTOCOL_HEADER_FLAG_SENT_TIME);
    put16(d, 1234); /* sent time */
}

/* Appends a fragment command followed by data_len payload bytes. */
static void fragment(struct datagram *d, uint32_t count, uint32_t number,
                     uint32_t total, uint32_t offset, uint16_t data_len)
{
    d->bytes[d->len++] = ENET_PROTOCOL_COMMAND_SEND_FRAGMENT |
                         ENET_PROTOCOL_COMMAND_FLAG_ACKNOWLEDGE;
    d->bytes[d->len++] = 0; /* channel */
    put16(d, (uint16_t)(1 + number));
    put16(d, 1); /* start sequence number */
    put16(d, data_len);
    put32(d, count);
    put32(d, number);
    put32(d, total);
    put32(d, offset);
    memset(d->bytes + d->len, 0xab, data_len);
    d->len += data_len;
}

static int check(ENetHost *host, const struct datagram *d,
                 struct tw_datagram_info *info)
{
    return tw_datagram_check(host, d->bytes, d->len, MAX_PACKET, info);
}

static void zero_byte_fragments_claiming_100_bytes_rejected(void **state)
{
    (void)state;
    ENetHost *host = make_host();
    struct datagram d;
    struct tw_datagram_info info;
    header(&d, 0);
    fragment(&d, 2, 0, 100, 0, 0);
    fragment(&d, 2, 1, 100, 50, 0);
    assert_int_equal(check(host, &d, &info), -1);

    /* Each fragment alone, too. */
    header(&d, 0);
    fragment(&d, 2, 1, 100, 50, 0);
    assert_int_equal(check(host, &d, &info), -1);
    enet_host_destroy(host);
}

static void million_fragments_for_one_byte_rejected(void **state)
{
    (void)state;
    ENetHost *host = make_host();
    struct datagram d;
    struct tw_datagram_info info;
    header(&d, 0);
    fragment(&d, 1024 * 1024, 0, 1, 0, 1);
    assert_int_equal(check(host, &d, &info), -1);
    enet_host_destroy(host);
}

static void fragments_leaving_a_gap_rejected(void **state)
{
    (void)state;
    ENetHost *host = make_host();
    size_t piece = tw_fragment_length(MTU);
    struct datagram d;
    struct tw_datagram_info info;

    /* A second fragment shorter than the split: bytes 1200..1371 unsent. */
    header(&d, 0);
    fragment(&d, 3, 1, 3000, 1200, 1200);
    assert_int_equal(check(host, &d, &info), -1);

    /* The last fragment must end the packet exactly. */
    header(&d, 0);
    fragment(&d, 3, 2, 3000, (uint32_t)(2 * piece), 10);
    assert_int_equal(check(host, &d, &info), -1);
    enet_host_destroy(host);
}

static void fragment_count_must_match_total(void **state)
{
    (void)state;
    ENetHost *host = make_host();
    size_t piece = tw_fragment_length(MTU);
    struct datagram d;
    struct tw_datagram_info info;
    header(&d, 0);
    fragment(&d, 4, 0, 3000, 0, (uint16_t)piece);
    assert_int_equal(check(host, &d, &info), -1);
    enet_host_destroy(host);
}

static void fragment_total_above_max_packet_size_rejected(void **state)
{
    (void)state;
    ENetHost *host = make_host();
    size_t piece = tw_fragment_length(MTU);
    struct datagram d;
    struct tw_datagram_info info;
    uint32_t total = MAX_PACKET + 1;
    uint32_t count = (uint32_t)((total + piece - 1) / piece);
    header(&d, 0);
    fragment(&d, count, 0, total, 0, (uint16_t)piece);
    assert_int_equal(check(host, &d, &info), -1);
    enet_host_destroy(host);
}

static void fragment_of_a_packet_that_fits_rejected(void **state)
{
    (void)state;
    ENetHost *host = make_host();
    struct datagram d;
    struct tw_datagram_info info;
    header(&d, 0);
    fragment(&d, 1, 0, 100, 0, 100);
    assert_int_equal(check(host, &d, &info), -1);
    enet_host_destroy(host);
}

static void fragments_split_like_enet_pass(void **state)
{
    (void)state;
    ENetHost *host = make_host();
    size_t piece = tw_fragment_length(MTU);
    struct datagram d;
    struct tw_datagram_info info;
    for (uint32_t i = 0; i < 3; i++) {
        uint32_t offset = (uint32_t)(i * piece);
        uint16_t len = (uint16_t)(i < 2 ? piece : 3000 - offset);
        header(&d, 0);
        fragment(&d, 3, i, 3000, offset, len);
        assert_int_equal(check(host, &d, &info), 0);
        assert_int_equal(info.fragments, 1);
        assert_int_equal(info.peer_id, 0);
    }
    enet_host_destroy(host);
}

static void fragment_length_follows_peer_mtu(void **state)
{
    (void)state;
    ENetHost *host = make_host();
    host->peers[1].mtu = ENET_PROTOCOL_MINIMUM_MTU;
    size_t small = tw_fragment_length(ENET_PROTOCOL_MINIMUM_MTU);
    size_t large = tw_fragment_length(MTU);
    struct datagram d;
    struct tw_datagram_info info;

    header(&d, 1);
    fragment(&d, (uint32_t)((2000 + small - 1) / small), 0, 2000, 0,
             (uint16_t)small);
    assert_int_equal(check(host, &d, &info), 0);

    header(&d, 1);
    fragment(&d, 2, 0, 2000, 0, (uint16_t)large);
    assert_int_equal(check(host, &d, &info), -1);
    enet_host_destroy(host);
}

static void malformed_headers_and_commands_rejected(void **state)
{
    (void)state;
    ENetHost *host = make_host();
    struct datagram d;
    struct tw_datagram_info info;

    d.len = 1;
    d.bytes[0] = 0;
    assert_int_equal(check(host, &d, &info), -1);

    header(&d, 0);
    assert_int_equal(check(host, &d, &info), -1); /* no command */

    header(&d, 0);
    d.bytes[0] |= ENET_PROTOCOL_HEADER_FLAG_COMPRESSED >> 8;
    fragment(&d, 3, 0, 3000, 0, (uint16_t)tw_fragment_length(MTU));
    assert_int_equal(check(host, &d, &info), -1);

    header(&d, 7); /* the host has 4 peers */
    d.bytes[d.len++] = ENET_PROTOCOL_COMMAND_PING;
    d.bytes[d.len++] = 0xff;
    put16(&d, 1);
    assert_int_equal(check(host, &d, &info), -1);

    header(&d, 0); /* truncated command */
    d.bytes[d.len++] = ENET_PROTOCOL_COMMAND_SEND_RELIABLE;
    d.bytes[d.len++] = 0;
    put16(&d, 1);
    assert_int_equal(check(host, &d, &info), -1);

    header(&d, 0); /* claims 100 data bytes, carries 10 */
    d.bytes[d.len++] = ENET_PROTOCOL_COMMAND_SEND_RELIABLE;
    d.bytes[d.len++] = 0;
    put16(&d, 1);
    put16(&d, 100);
    d.len += 10;
    assert_int_equal(check(host, &d, &info), -1);

    header(&d, 0); /* unknown command number */
    d.bytes[d.len++] = 13;
    d.bytes[d.len++] = 0;
    put16(&d, 1);
    assert_int_equal(check(host, &d, &info), -1);
    enet_host_destroy(host);
}

static void connect_only_without_peer_id(void **state)
{
    (void)state;
    ENetHost *host = make_host();
    struct datagram d;
    struct tw_datagram_info info;

    header(&d, ENET_PROTOCOL_MAXIMUM_PEER_ID);
    d.bytes[d.len++] = ENET_PROTOCOL_COMMAND_CONNECT |
                       ENET_PROTOCOL_COMMAND_FLAG_ACKNOWLEDGE;
    d.bytes[d.len++] = 0xff;
    put16(&d, 1);
    memset(d.bytes + d.len, 0, sizeof(ENetProtocolConnect) - 4);
    d.len += sizeof(ENetProtocolConnect) - 4;
    assert_int_equal(check(host, &d, &info), 0);
    assert_int_equal(info.connects, 1);

    d.bytes[1] = 0; /* the same CONNECT addressed to peer 0 */
    d.bytes[0] = ENET_PROTOCOL_HEADER_FLAG_SENT_TIME >> 8;
    assert_int_equal(check(host, &d, &info), -1);

    header(&d, ENET_PROTOCOL_MAXIMUM_PEER_ID);
    d.bytes[d.len++] = ENET_PROTOCOL_COMMAND_PING;
    d.bytes[d.len++] = 0xff;
    put16(&d, 1);
    assert_int_equal(check(host, &d, &info), -1);
    enet_host_destroy(host);
}

/* Every datagram a real ENet client sends to a real ENet host passes. */
static unsigned seen, rejected, fragments;

static int ENET_CALLBACK record(ENetHost *host, ENetEvent *ev)
{
    (void)ev;
    struct tw_datagram_info info;
    seen++;
    if (tw_datagram_check(host, host->receivedData, host->receivedDataLength,
                          MAX_PACKET, &info) != 0)
        rejected++;
    else
        fragments += info.fragments;
    return 0;
}

static void enet_sender_traffic_passes(void **state)
{
    (void)state;
    ENetAddress at = {.port = 0};
    enet_address_set_host_ip(&at, "127.0.0.1");
    ENetHost *server = enet_host_create(&at, 4, 3, 0, 0);
    assert_non_null(server);
    server->maximumPacketSize = MAX_PACKET;
    server->intercept = record;
    at.port = server->address.port;
    ENetHost *client = enet_host_create(NULL, 1, 3, 0, 0);
    assert_non_null(client);
    ENetPeer *peer = enet_host_connect(client, &at, 3, 0);
    assert_non_null(peer);

    static uint8_t big[3000];
    memset(big, 0x5a, sizeof big);
    bool sent = false;
    unsigned received = 0;
    ENetEvent ev;
    for (int i = 0; i < 2000 && received < 3; i++) {
        while (enet_host_service(client, &ev, 0) > 0) {
            if (ev.type == ENET_EVENT_TYPE_CONNECT && !sent) {
                sent = true;
                enet_peer_send(peer, 0,
                               enet_packet_create(big, sizeof big,
                                                  ENET_PACKET_FLAG_RELIABLE));
                enet_peer_send(peer, 1,
                               enet_packet_create(
                                   big, 2500,
                                   ENET_PACKET_FLAG_UNRELIABLE_FRAGMENT));
                enet_peer_send(peer, 2,
                               enet_packet_create(
                                   big, 40, ENET_PACKET_FLAG_UNSEQUENCED));
            }
        }
        while (enet_host_service(server, &ev, 1) > 0) {
            if (ev.type == ENET_EVENT_TYPE_RECEIVE) {
                received++;
                enet_packet_destroy(ev.packet);
            }
        }
    }
    assert_int_equal(received, 3);
    assert_true(seen > 0);
    assert_int_equal(rejected, 0);
    assert_true(fragments >= 5);
    enet_host_destroy(client);
    enet_host_destroy(server);
}

int main(void)
{
    if (enet_initialize() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zero_byte_fragments_claiming_100_bytes_rejected),
        cmocka_unit_test(million_fragments_for_one_byte_rejected),
        cmocka_unit_test(fragments_leaving_a_gap_rejected),
        cmocka_unit_test(fragment_count_must_match_total),
        cmocka_unit_test(fragment_total_above_max_packet_size_rejected),
        cmocka_unit_test(fragment_of_a_packet_that_fits_rejected),
        cmocka_unit_test(fragments_split_like_enet_pass),
        cmocka_unit_test(fragment_length_follows_peer_mtu),
        cmocka_unit_test(malformed_headers_and_commands_rejected),
        cmocka_unit_test(connect_only_without_peer_id),
        cmocka_unit_test(enet_sender_traffic_passes),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    enet_deinitialize();
    return rc;
}
