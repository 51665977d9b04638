#include "datagram.h"

#include <stdbool.h>
#include <string.h>

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Fixed part of each command, as ENet 1.3.17's commandSizes table has it. */
static size_t command_size(unsigned command)
{
    switch (command) {
    case ENET_PROTOCOL_COMMAND_ACKNOWLEDGE:
        return sizeof(ENetProtocolAcknowledge);
    case ENET_PROTOCOL_COMMAND_CONNECT:
        return sizeof(ENetProtocolConnect);
    case ENET_PROTOCOL_COMMAND_VERIFY_CONNECT:
        return sizeof(ENetProtocolVerifyConnect);
    case ENET_PROTOCOL_COMMAND_DISCONNECT:
        return sizeof(ENetProtocolDisconnect);
    case ENET_PROTOCOL_COMMAND_PING:
        return sizeof(ENetProtocolPing);
    case ENET_PROTOCOL_COMMAND_SEND_RELIABLE:
        return sizeof(ENetProtocolSendReliable);
    case ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE:
        return sizeof(ENetProtocolSendUnreliable);
    case ENET_PROTOCOL_COMMAND_SEND_FRAGMENT:
    case ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE_FRAGMENT:
        return sizeof(ENetProtocolSendFragment);
    case ENET_PROTOCOL_COMMAND_SEND_UNSEQUENCED:
        return sizeof(ENetProtocolSendUnsequenced);
    case ENET_PROTOCOL_COMMAND_BANDWIDTH_LIMIT:
        return sizeof(ENetProtocolBandwidthLimit);
    case ENET_PROTOCOL_COMMAND_THROTTLE_CONFIGURE:
        return sizeof(ENetProtocolThrottleConfigure);
    default:
        return 0;
    }
}

/* Offset of the dataLength field in commands followed by payload, or 0. */
static size_t data_length_offset(unsigned command)
{
    switch (command) {
    case ENET_PROTOCOL_COMMAND_SEND_RELIABLE:
        return offsetof(ENetProtocolSendReliable, dataLength);
    case ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE:
        return offsetof(ENetProtocolSendUnreliable, dataLength);
    case ENET_PROTOCOL_COMMAND_SEND_UNSEQUENCED:
        return offsetof(ENetProtocolSendUnsequenced, dataLength);
    case ENET_PROTOCOL_COMMAND_SEND_FRAGMENT:
    case ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE_FRAGMENT:
        return offsetof(ENetProtocolSendFragment, dataLength);
    default:
        return 0;
    }
}

size_t tw_fragment_length(uint32_t mtu)
{
    return mtu > TW_FRAGMENT_OVERHEAD ? mtu - TW_FRAGMENT_OVERHEAD : 0;
}

/*
 * Accepts a fragment only where an ENet sender would put it: every
 * fragment but the last carries exactly piece bytes at number * piece, the
 * last carries the rest, and the count is what the total needs. Fragments
 * that pass therefore cover the whole packet without gaps, so ENet cannot
 * complete a packet before all of its bytes arrived.
 */
static int check_fragment(const uint8_t *cmd, size_t data_len, size_t piece,
                          size_t max_packet_size)
{
    uint32_t count = get32(cmd + offsetof(ENetProtocolSendFragment,
                                          fragmentCount));
    uint32_t number = get32(cmd + offsetof(ENetProtocolSendFragment,
                                           fragmentNumber));
    uint32_t total = get32(cmd + offsetof(ENetProtocolSendFragment,
                                          totalLength));
    uint32_t offset = get32(cmd + offsetof(ENetProtocolSendFragment,
                                           fragmentOffset));

    if (piece == 0 || data_len == 0)
        return -1;
    /* A sender splits only packets that do not fit in one command. */
    if (total <= piece || total > max_packet_size)
        return -1;
    if (count != (total + piece - 1) / piece || number >= count)
        return -1;
    if ((uint64_t)number * piece != offset)
        return -1;
    size_t expected = number + 1 == count ? total - offset : piece;
    return data_len == expected ? 0 : -1;
}

int tw_datagram_check(const ENetHost *host, const uint8_t *data, size_t len,
                      size_t max_packet_size, struct tw_datagram_info *info)
{
    memset(info, 0, sizeof *info);
    if (len < offsetof(ENetProtocolHeader, sentTime))
        return -1;

    uint16_t field = get16(data);
    uint16_t flags = field & ENET_PROTOCOL_HEADER_FLAG_MASK;
    uint16_t peer_id = field & (uint16_t) ~(ENET_PROTOCOL_HEADER_FLAG_MASK |
                                            ENET_PROTOCOL_HEADER_SESSION_MASK);
    info->peer_id = peer_id;

    /* tickwire sets no compressor, so ENet would drop these anyway. */
    if (flags & ENET_PROTOCOL_HEADER_FLAG_COMPRESSED)
        return -1;
    size_t pos = flags & ENET_PROTOCOL_HEADER_FLAG_SENT_TIME
                     ? sizeof(ENetProtocolHeader)
                     : offsetof(ENetProtocolHeader, sentTime);
    size_t piece = 0;
    if (host->checksum)
        pos += sizeof(uint32_t);
    if (pos > len)
        return -1;

    bool connecting = peer_id == ENET_PROTOCOL_MAXIMUM_PEER_ID;
    if (!connecting) {
        if (peer_id >= host->peerCount)
            return -1;
        piece = tw_fragment_length(host->peers[peer_id].mtu);
        if (host->checksum && piece > sizeof(uint32_t))
            piece -= sizeof(uint32_t);
    }
    if (pos == len)
        return -1; /* no command at all */

    while (pos < len) {
        if (len - pos < sizeof(ENetProtocolCommandHeader))
            return -1;
        const uint8_t *cmd = data + pos;
        unsigned command = cmd[0] & ENET_PROTOCOL_COMMAND_MASK;
        size_t size = command_size(command);
        if (size == 0 || len - pos < size)
            return -1;
        if (connecting != (command == ENET_PROTOCOL_COMMAND_CONNECT))
            return -1;
        pos += size;

        size_t at = data_length_offset(command);
        size_t data_len = at ? get16(cmd + at) : 0;
        if (data_len > max_packet_size || len - pos < data_len)
            return -1;
        pos += data_len;

        if (command == ENET_PROTOCOL_COMMAND_CONNECT) {
            info->connects++;
        } else if (command == ENET_PROTOCOL_COMMAND_SEND_FRAGMENT ||
                   command == ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE_FRAGMENT) {
            if (check_fragment(cmd, data_len, piece, max_packet_size) != 0)
                return -1;
            uint32_t total = get32(cmd + offsetof(ENetProtocolSendFragment,
                                                  totalLength));
            if (total > info->fragment_total)
                info->fragment_total = total;
            info->fragments++;
        }
    }
    return 0;
}
