#include "backoff.h"

#include <stdbool.h>
#include <enet/time.h>
#include <stdint.h>

enet_uint32 tw_backoff_ceiling(const ENetPeer *peer)
{
    enet_uint32 base = peer->roundTripTime + 4 * peer->roundTripTimeVariance;
    enet_uint32 cap = base > UINT32_MAX / 2 ? UINT32_MAX : 2 * base;
    return cap > TW_BACKOFF_FLOOR_MS ? cap : TW_BACKOFF_FLOOR_MS;
}

static void cap_peer(ENetPeer *peer)
{
    enet_uint32 cap = tw_backoff_ceiling(peer);
    ENetListIterator it = enet_list_begin(&peer->sentReliableCommands);
    bool first = true;
    for (; it != enet_list_end(&peer->sentReliableCommands);
         it = enet_list_next(it)) {
        ENetOutgoingCommand *cmd = (ENetOutgoingCommand *)it;
        if (cmd->roundTripTimeout > cap)
            cmd->roundTripTimeout = cap;
        /* ENet schedules its next timeout check from the oldest command. */
        enet_uint32 due = cmd->sentTime + cmd->roundTripTimeout;
        if (first || ENET_TIME_LESS(due, peer->nextTimeout))
            peer->nextTimeout = due;
        first = false;
    }
}

void tw_backoff_cap(ENetHost *host)
{
    for (size_t i = 0; i < host->peerCount; i++) {
        ENetPeer *peer = &host->peers[i];
        if (peer->state != ENET_PEER_STATE_DISCONNECTED)
            cap_peer(peer);
    }
}
