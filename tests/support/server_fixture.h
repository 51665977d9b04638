/*
 * An in-process tickwire server driven through the test hooks of server.h,
 * for unit tests and fuzzers. Fake peers are slots of the server's own ENet
 * host put in the CONNECTED state by hand; what the server sends them goes
 * to a UDP socket on 127.0.0.1 that nobody reads. The server itself listens
 * on an ephemeral port of 127.0.0.1 with a fresh key and store in a temp
 * directory.
 */
#ifndef TW_SERVER_FIXTURE_H
#define TW_SERVER_FIXTURE_H

#include "config.h"
#include "crypto.h"
#include "server.h"

#include <enet/enet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tw_fixture {
    struct tw_config cfg;
    struct tw_server *server;
    ENetHost *host;
    uint8_t key[TW_KEY_BYTES];
    char dir[64];
    char key_path[96];
    int sink;           /* UDP socket that receives what peers are sent */
    uint16_t sink_port; /* host byte order */
};

/* The client side of a fake peer that logged in. */
struct tw_fixture_client {
    bool logged_in;
    uint64_t player_id;
    struct tw_cipher tx; /* client to server */
    struct tw_cipher rx; /* server to client */
};

/*
 * Creates the key, the sink and the server from the defaults with tweak
 * applied (tweak may be NULL). Returns 0, or -1 with a line on stderr.
 */
int tw_fixture_open(struct tw_fixture *f, void (*tweak)(struct tw_config *));
/* Destroys the server and removes the key, the store and the directory. */
void tw_fixture_close(struct tw_fixture *f);

/* Deletes the store's files, so the next server starts with an empty one. */
void tw_fixture_remove_store(const struct tw_fixture *f);

/*
 * Puts peer slot index in the CONNECTED state from 127.0.0.address_octet
 * and dispatches a CONNECT event. Returns the peer, or NULL when the slot
 * is out of range or not free.
 */
ENetPeer *tw_fixture_connect(struct tw_fixture *f, unsigned index,
                             uint8_t address_octet, uint64_t now);
/* Same, with the protocol version the client puts in its CONNECT. */
ENetPeer *tw_fixture_connect_version(struct tw_fixture *f, unsigned index,
                                     uint8_t address_octet, uint32_t version,
                                     uint64_t now);

/* Dispatches a DISCONNECT for a peer that is not free, then frees it. */
void tw_fixture_disconnect(struct tw_fixture *f, ENetPeer *peer,
                           uint32_t data, uint64_t now);

/* Dispatches a RECEIVE of len bytes on channel. */
void tw_fixture_receive(struct tw_fixture *f, ENetPeer *peer, uint8_t channel,
                        const void *data, size_t len, uint64_t now);

/*
 * Mints a valid token for player_id, sends its login on channel 0 and sets
 * up c's ciphers. Returns true when the server counted a new login.
 */
bool tw_fixture_login(struct tw_fixture *f, ENetPeer *peer,
                      uint64_t player_id, struct tw_fixture_client *c,
                      uint64_t now);

/* Seals plain with c's key and dispatches it on channel. */
void tw_fixture_send_sealed(struct tw_fixture *f, ENetPeer *peer,
                            struct tw_fixture_client *c, uint8_t channel,
                            const void *plain, size_t len, uint64_t now);

#endif
