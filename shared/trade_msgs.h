/*
 * Trade and inventory wire messages (ids 0x20..0x2F, reliable channel 0),
 * the limits they impose and the trade state and reason codes that both
 * sides share. Decoders follow protocol.h: they take the whole payload, id
 * included, check every length, count and range, and return TW_OK or a
 * negative enum tw_drop value.
 */
#ifndef TW_TRADE_MSGS_H
#define TW_TRADE_MSGS_H

#include "config.h"
#include "protocol.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Items one player can hold; an INVENTORY message of this many fits. */
#define TW_INVENTORY_MAX 32u
/* Entries in one side's offer. */
#define TW_TRADE_MAX_OFFER 16u

enum tw_trade_msg_id {
    TW_MSG_TRADE_REQUEST = 0x20, /* c2s: ask a player to trade */
    TW_MSG_TRADE_RESPOND = 0x21, /* c2s: accept or decline a request */
    TW_MSG_TRADE_OFFER = 0x22,   /* c2s: replace the sender's offer */
    TW_MSG_TRADE_CONFIRM = 0x23, /* c2s: agree to both offers as seen */
    TW_MSG_TRADE_CANCEL = 0x24,  /* c2s: leave the trade before commit */
    TW_MSG_TRADE_UPDATE = 0x28,  /* s2c: full state after every change */
    TW_MSG_TRADE_RESULT = 0x29,  /* s2c: answer to a request, or the end */
    TW_MSG_INVENTORY = 0x2A,     /* s2c: full item list */
};

enum tw_trade_state {
    TW_TRADE_NONE = 0,
    TW_TRADE_REQUESTED,  /* waiting for the partner to respond */
    TW_TRADE_OPEN,       /* both sides edit offers and confirm */
    TW_TRADE_COMMITTING, /* both confirmed; items locked, store writing */
    TW_TRADE_COMMITTED,
    TW_TRADE_FAILED,
    TW_TRADE_STATE_COUNT
};

/* Why a request was rejected or a trade ended; values are wire codes. */
enum tw_trade_reason {
    TW_TRADE_R_NONE = 0,
    TW_TRADE_R_NOT_IN_TRADE,    /* trade id is not the actor's trade */
    TW_TRADE_R_PARTNER_BUSY,    /* the partner is in another trade */
    TW_TRADE_R_PARTNER_LEFT,    /* the partner disconnected */
    TW_TRADE_R_PARTNER_UNKNOWN, /* no such player in this match */
    TW_TRADE_R_SELF_TRADE,
    TW_TRADE_R_ITEM_NOT_OWNED,
    TW_TRADE_R_QUANTITY_TOO_LARGE,
    TW_TRADE_R_OFFER_CHANGED,   /* confirm named an old offer version */
    TW_TRADE_R_ITEM_LOCKED,     /* item is in another trade's commit */
    TW_TRADE_R_NOT_YOUR_TURN,   /* e.g. the requester tried to respond */
    TW_TRADE_R_WRONG_STATE,
    TW_TRADE_R_BAD_REQUEST,
    TW_TRADE_R_DECLINED,
    TW_TRADE_R_CANCELLED,
    TW_TRADE_R_TIMEOUT,
    TW_TRADE_R_INVENTORY_FULL,  /* a side would exceed TW_INVENTORY_MAX */
    TW_TRADE_R_BUSY,            /* server out of trade slots or store queue */
    TW_TRADE_R_STORE_FAILED,    /* the database write failed */
    TW_TRADE_R_COUNT
};

enum tw_trade_status {
    TW_TRADE_S_OK = 0,    /* request applied */
    TW_TRADE_S_REJECTED,  /* request not applied; see reason */
    TW_TRADE_S_COMMITTED, /* the trade ended with items moved */
    TW_TRADE_S_FAILED,    /* the trade ended without moving items */
    TW_TRADE_S_COUNT
};

/* Returns a stable lowercase name such as "partner_busy", or "unknown". */
const char *tw_trade_reason_name(uint32_t reason);
const char *tw_trade_state_name(uint32_t state);
const char *tw_trade_status_name(uint32_t status);

struct tw_offer_item {
    uint64_t item_id; /* nonzero */
    uint32_t quantity; /* 1..the quantity held */
};

/* What one side gives: distinct item ids, each with a nonzero quantity. */
struct tw_trade_offer {
    uint8_t count; /* 0..TW_TRADE_MAX_OFFER */
    struct tw_offer_item items[TW_TRADE_MAX_OFFER];
};

struct tw_item {
    uint64_t item_id;
    char kind[TW_ITEM_KIND_MAX + 1]; /* 1..TW_ITEM_KIND_MAX printable ASCII */
    uint32_t quantity;               /* nonzero */
};

struct tw_inventory {
    uint64_t player_id;
    uint8_t count; /* 0..TW_INVENTORY_MAX */
    struct tw_item items[TW_INVENTORY_MAX];
};

struct tw_msg_trade_request {
    uint32_t request_id; /* nonzero */
    uint64_t partner;
};

struct tw_msg_trade_respond {
    uint32_t request_id;
    uint32_t trade_id;
    bool accept;
};

struct tw_msg_trade_offer {
    uint32_t request_id;
    uint32_t trade_id;
    struct tw_trade_offer offer;
};

struct tw_msg_trade_confirm {
    uint32_t request_id;
    uint32_t trade_id;
    uint32_t offer_version; /* the version in the TRADE_UPDATE confirmed */
};

struct tw_msg_trade_cancel {
    uint32_t request_id;
    uint32_t trade_id;
};

/* Side a is the player who sent the request, side b the partner. */
struct tw_msg_trade_update {
    uint32_t trade_id;
    uint8_t state; /* enum tw_trade_state */
    uint64_t a, b;
    uint32_t offer_version; /* bumped whenever either offer changes */
    bool confirmed_a, confirmed_b;
    struct tw_trade_offer offer_a, offer_b;
};

struct tw_msg_trade_result {
    uint32_t request_id; /* 0 when it reports the end of a trade */
    uint32_t trade_id;   /* 0 when the request named no valid trade */
    uint8_t status;      /* enum tw_trade_status */
    uint8_t reason;      /* enum tw_trade_reason */
};

/* Encoders return the bytes written, -TW_DROP_OVERSIZED when cap is too
 * small, or -TW_DROP_MALFORMED when m breaks a limit above. */
int tw_encode_trade_request(const struct tw_msg_trade_request *m,
                            uint8_t *out, size_t cap);
int tw_decode_trade_request(const uint8_t *p, size_t len,
                            struct tw_msg_trade_request *m)
    __attribute__((warn_unused_result));

int tw_encode_trade_respond(const struct tw_msg_trade_respond *m,
                            uint8_t *out, size_t cap);
int tw_decode_trade_respond(const uint8_t *p, size_t len,
                            struct tw_msg_trade_respond *m)
    __attribute__((warn_unused_result));

/* Rejects (as malformed) zero item ids, zero quantities and duplicates. */
int tw_encode_trade_offer(const struct tw_msg_trade_offer *m, uint8_t *out,
                          size_t cap);
int tw_decode_trade_offer(const uint8_t *p, size_t len,
                          struct tw_msg_trade_offer *m)
    __attribute__((warn_unused_result));

int tw_encode_trade_confirm(const struct tw_msg_trade_confirm *m,
                            uint8_t *out, size_t cap);
int tw_decode_trade_confirm(const uint8_t *p, size_t len,
                            struct tw_msg_trade_confirm *m)
    __attribute__((warn_unused_result));

int tw_encode_trade_cancel(const struct tw_msg_trade_cancel *m, uint8_t *out,
                           size_t cap);
int tw_decode_trade_cancel(const uint8_t *p, size_t len,
                           struct tw_msg_trade_cancel *m)
    __attribute__((warn_unused_result));

int tw_encode_trade_update(const struct tw_msg_trade_update *m, uint8_t *out,
                           size_t cap);
int tw_decode_trade_update(const uint8_t *p, size_t len,
                           struct tw_msg_trade_update *m)
    __attribute__((warn_unused_result));

int tw_encode_trade_result(const struct tw_msg_trade_result *m, uint8_t *out,
                           size_t cap);
int tw_decode_trade_result(const uint8_t *p, size_t len,
                           struct tw_msg_trade_result *m)
    __attribute__((warn_unused_result));

int tw_encode_inventory(const struct tw_inventory *m, uint8_t *out,
                        size_t cap);
/* player_id is not on the wire; the decoder sets it to 0. */
int tw_decode_inventory(const uint8_t *p, size_t len, struct tw_inventory *m)
    __attribute__((warn_unused_result));

/* Returns true when kind is 1..TW_ITEM_KIND_MAX printable ASCII bytes. */
bool tw_item_kind_valid(const char *kind, size_t len);

/* Returns true when the offer is within limits: see tw_trade_offer. */
bool tw_trade_offer_valid(const struct tw_trade_offer *o);

#endif
