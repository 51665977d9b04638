/*
 * Trade negotiation between two players of one match, as a pure state
 * machine: no I/O, no clock reads, no store access. The match feeds it
 * client requests (bound to the session's player id, never an id from the
 * payload), player joins and leaves, the tick time and store results; it
 * returns an answer for each request and emits events for the match to
 * send or act on.
 *
 * Lifecycle: request -> accept or decline -> both sides edit offers ->
 * both confirm the current offer version -> committing (items locked,
 * store writing) -> committed or failed. A cancel, a leave or the timeout
 * ends a trade before it reaches committing. A player is in at most one
 * trade. Ownership checks go through struct tw_trade_inventory, the
 * match's in-memory mirror of the store.
 *
 * Request ids: each player's last TW_TRADE_REQUEST_CACHE answers are kept
 * by request id; a repeated id returns the first answer without applying
 * the request again, whatever the repeat carries.
 */
#ifndef TW_TRADE_H
#define TW_TRADE_H

#include "trade_msgs.h"

#include <stdbool.h>
#include <stdint.h>

#define TW_TRADE_REQUEST_CACHE 8u

struct tw_trade_mgr;

/* Read-only view of current inventories (the match's mirror). */
struct tw_trade_inventory {
    /* Returns the quantity of item_id that player holds, 0 if none. */
    uint32_t (*held)(void *ctx, uint64_t player_id, uint64_t item_id);
    /* Returns how many items (distinct ids) player holds. */
    uint32_t (*item_count)(void *ctx, uint64_t player_id);
    void *ctx;
};

enum tw_trade_event_kind {
    /* Send TRADE_UPDATE (ev->update) to ev->to. */
    TW_TRADE_EV_UPDATE = 1,
    /* Send TRADE_RESULT (ev->result, request_id 0) to ev->to. */
    TW_TRADE_EV_RESULT,
    /*
     * Submit the commit to the store, then call tw_trade_commit_done with
     * its outcome. ev->to is 0; ev->update holds the confirmed offers.
     */
    TW_TRADE_EV_COMMIT,
};

struct tw_trade_event {
    enum tw_trade_event_kind kind;
    uint64_t to;
    struct tw_msg_trade_update update;
    struct tw_msg_trade_result result;
};

/*
 * Called synchronously from inside the manager's functions. It may call
 * tw_trade_commit_done for a COMMIT event (say, when the store queue is
 * full) but no other manager function.
 */
typedef void (*tw_trade_emit_fn)(void *ctx, const struct tw_trade_event *ev);

struct tw_trade_params {
    uint32_t max_players; /* players joined at once, 1..65536 */
    uint32_t timeout_ms;  /* from request to commit; 0 turns it off */
    uint32_t first_trade_id; /* nonzero; from tw_store_next_trade_id */
    struct tw_trade_inventory inventory;
    tw_trade_emit_fn emit;
    void *emit_ctx;
};

/* The answer to one request: the match sends it as TRADE_RESULT. */
struct tw_trade_answer {
    uint32_t request_id;
    uint32_t trade_id;
    enum tw_trade_status status; /* OK or REJECTED */
    enum tw_trade_reason reason;
};

struct tw_trade_stats {
    uint32_t players;
    uint32_t active;      /* trades not yet ended */
    uint32_t committing;
    uint64_t started, committed, failed;
    uint64_t rejected[TW_TRADE_R_COUNT];
    uint64_t replayed; /* requests answered from the request-id cache */
};

/* Allocates a manager; returns NULL on bad params or out of memory. */
struct tw_trade_mgr *tw_trade_create(const struct tw_trade_params *p)
    __attribute__((warn_unused_result));
void tw_trade_destroy(struct tw_trade_mgr *m);

/*
 * Registers a logged-in player. Returns TW_OK, or -1 when the player is
 * already joined or the manager is full.
 */
int tw_trade_player_join(struct tw_trade_mgr *m, uint64_t player_id)
    __attribute__((warn_unused_result));

/*
 * Removes a player and forgets their request ids. A trade not yet
 * committing fails with reason partner_left for the partner; a committing
 * trade carries on and its result reaches the player through the store's
 * notices at the next login.
 */
void tw_trade_player_left(struct tw_trade_mgr *m, uint64_t player_id);

/* Sets the manager's clock and fails trades older than timeout_ms. */
void tw_trade_tick(struct tw_trade_mgr *m, uint64_t now_ms);

/*
 * Client requests. actor is the session's player id. Each returns the
 * answer to send back; status REJECTED leaves every trade unchanged.
 */
struct tw_trade_answer tw_trade_request(struct tw_trade_mgr *m,
                                        uint64_t actor, uint32_t request_id,
                                        uint64_t partner);
struct tw_trade_answer tw_trade_respond(struct tw_trade_mgr *m,
                                        uint64_t actor, uint32_t request_id,
                                        uint32_t trade_id, bool accept);
/* Replaces the actor's offer; clears both confirmations. */
struct tw_trade_answer tw_trade_offer(struct tw_trade_mgr *m, uint64_t actor,
                                      uint32_t request_id, uint32_t trade_id,
                                      const struct tw_trade_offer *offer);
/*
 * Confirms both offers at offer_version. The second confirm rechecks both
 * offers against the inventory and, when they still hold, emits COMMIT
 * and locks the items; when they do not, it is rejected and both
 * confirmations are cleared.
 */
struct tw_trade_answer tw_trade_confirm(struct tw_trade_mgr *m,
                                        uint64_t actor, uint32_t request_id,
                                        uint32_t trade_id,
                                        uint32_t offer_version);
struct tw_trade_answer tw_trade_cancel(struct tw_trade_mgr *m, uint64_t actor,
                                       uint32_t request_id,
                                       uint32_t trade_id);

/*
 * Ends a committing trade with the store's outcome: committed when ok,
 * else failed with reason. Emits RESULT to the parties still joined.
 * Returns TW_OK, or -1 when trade_id is not committing.
 */
int tw_trade_commit_done(struct tw_trade_mgr *m, uint32_t trade_id, bool ok,
                         enum tw_trade_reason reason);

/* Returns true when item_id is in the offers of a committing trade. */
bool tw_trade_item_locked(const struct tw_trade_mgr *m, uint64_t item_id);

/* Returns the id of the trade player_id is in, or 0. */
uint32_t tw_trade_of(const struct tw_trade_mgr *m, uint64_t player_id);

/* Fills out with the current state of trade_id; returns false if unknown. */
bool tw_trade_get(const struct tw_trade_mgr *m, uint32_t trade_id,
                  struct tw_msg_trade_update *out);

void tw_trade_get_stats(const struct tw_trade_mgr *m,
                        struct tw_trade_stats *out);

#endif
