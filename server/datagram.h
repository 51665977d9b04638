/*
 * Validation of raw ENet 1.3.17 datagrams before ENet parses them, run from
 * the host's intercept hook. ENet 1.3.17 trusts the sizes in fragment
 * commands: a peer can make it deliver a packet assembled from bytes that
 * never arrived (fragments that claim more than they carry), or allocate a
 * bitmap of up to 128 KiB per claimed packet (a million fragments for one
 * byte). A fragment here must tile its packet exactly the way an ENet
 * sender splits it, so a completed packet consists only of received bytes
 * and the fragment count is bounded by max_packet_size.
 */
#ifndef TW_DATAGRAM_H
#define TW_DATAGRAM_H

#include <enet/enet.h>
#include <stddef.h>
#include <stdint.h>

/* ENet's header (peer id and sent time) plus one fragment command. */
#define TW_FRAGMENT_OVERHEAD                                                   \
    (sizeof(ENetProtocolHeader) + sizeof(ENetProtocolSendFragment))

/* What a valid datagram carries, for the connection limits. */
struct tw_datagram_info {
    uint16_t peer_id;   /* ENET_PROTOCOL_MAXIMUM_PEER_ID before connecting */
    unsigned connects;  /* CONNECT commands */
    unsigned fragments; /* reliable and unreliable fragment commands */
    uint32_t fragment_total; /* largest packet size a fragment claims */
};

/*
 * Returns the payload bytes of every fragment but the last when an ENet
 * sender splits a packet for a peer with this MTU (0 when mtu is too small
 * to carry any).
 */
size_t tw_fragment_length(uint32_t mtu);

/*
 * Checks one received datagram addressed to host. It must have a valid
 * header without compression, a peer id below host->peerCount (or the
 * connect id), only known commands that fit, data lengths that fit, and
 * fragments that match the sender's split for the peer's negotiated MTU
 * with a total of at most max_packet_size bytes. Returns 0 and fills info,
 * or -1 when ENet must not see the datagram.
 */
int tw_datagram_check(const ENetHost *host, const uint8_t *data, size_t len,
                      size_t max_packet_size, struct tw_datagram_info *info)
    __attribute__((warn_unused_result));

#endif
