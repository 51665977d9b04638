/*
 * The raw ENet datagram check behind the server's intercept hook. Peers of
 * the host have different MTUs. A datagram that passes must have every
 * fragment inside its packet, and no more fragments than the largest
 * allowed packet needs.
 */
#include "fuzz.h"

#include "datagram.h"

#include <arpa/inet.h>
#include <string.h>

#define MAX_PACKET 4096u

static ENetHost *host;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (enet_initialize() != 0)
        abort();
    host = enet_host_create(NULL, 8, 3, 0, 0);
    if (!host)
        abort();
    static const uint32_t mtus[8] = {576, 577, 1000, 1200, 1400, 1500, 2048,
                                     4096};
    for (size_t i = 0; i < host->peerCount; i++)
        host->peers[i].mtu = mtus[i];
    return 0;
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return ntohl(v);
}

/* Walks a datagram that passed and checks each fragment's bounds. */
static void check_fragments(const uint8_t *data, size_t size, uint16_t peer)
{
    size_t pos = (data[0] & 0x80) ? sizeof(ENetProtocolHeader) : 2;
    size_t piece = tw_fragment_length(host->peers[peer].mtu);
    while (pos < size) {
        unsigned command = data[pos] & ENET_PROTOCOL_COMMAND_MASK;
        if (command != ENET_PROTOCOL_COMMAND_SEND_FRAGMENT &&
            command != ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE_FRAGMENT)
            return; /* the walk only follows leading fragments */
        const uint8_t *cmd = data + pos;
        size_t len = (size_t)(cmd[6] << 8 | cmd[7]);
        uint32_t count = get32(cmd + 8);
        uint32_t total = get32(cmd + 16);
        uint32_t offset = get32(cmd + 20);
        FUZZ_REQUIRE(len > 0);
        FUZZ_REQUIRE(total <= MAX_PACKET);
        FUZZ_REQUIRE((uint64_t)offset + len <= total);
        FUZZ_REQUIRE(count <= (MAX_PACKET + piece - 1) / piece);
        pos += sizeof(ENetProtocolSendFragment) + len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tw_datagram_info info;
    if (tw_datagram_check(host, data, size, MAX_PACKET, &info) != 0)
        return 0;
    FUZZ_REQUIRE(size >= 2);
    if (info.peer_id != ENET_PROTOCOL_MAXIMUM_PEER_ID) {
        FUZZ_REQUIRE(info.peer_id < host->peerCount);
        FUZZ_REQUIRE(info.connects == 0);
        check_fragments(data, size, info.peer_id);
    } else {
        FUZZ_REQUIRE(info.fragments == 0);
    }
    return 0;
}
