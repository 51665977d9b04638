/*
 * A ceiling on ENet's retransmission backoff.
 *
 * ENet 1.3.17 doubles a reliable command's retransmission timeout on every
 * loss without a limit, and drops the peer once the timeout has doubled
 * five times (timeoutLimit 32) and peer->timeoutMinimum has passed. At
 * 15 % loss each way, by estimate one reliable command in two thousand
 * loses six sends in a row: the lab's 64-bot lossy scenario lost about ten
 * healthy peers a minute, and a command that lost a few sends waited
 * seconds for its next try.
 */
#ifndef TW_BACKOFF_H
#define TW_BACKOFF_H

#include <enet/enet.h>

/* The lowest ceiling, for links whose round trip is only a few ms. */
#define TW_BACKOFF_FLOOR_MS 500u

/*
 * Caps the retransmission timeout of every reliable command in flight on
 * every peer of host at max(TW_BACKOFF_FLOOR_MS, 2 * (rtt + 4 * variance)).
 * The limit ENet compares against stays 32 times the first timeout, so on
 * a slow link a peer is dropped after peer->timeoutMaximum without an
 * acknowledgement, and on a fast one (whose limit lies below the cap)
 * after peer->timeoutMinimum. Call after each enet_host_service.
 */
void tw_backoff_cap(ENetHost *host);

/* The ceiling tw_backoff_cap applies to one peer, in ms. */
enet_uint32 tw_backoff_ceiling(const ENetPeer *peer);

#endif
