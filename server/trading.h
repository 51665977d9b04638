/*
 * The match's trading glue: joins the trade state machine (trade.h) to
 * the store (store.h) and to the players' sessions. It keeps the mirror of
 * every loaded player's inventory, decodes the trade messages, answers
 * them, forwards trade events and applies the store's completions.
 *
 * A trade's outcome stays in the store as a notice until the client has
 * acknowledged (at the ENet level) the message that carried it; a session
 * that ends first leaves the notice for the next login.
 *
 * Runs on the tick thread and never waits on disk: loads and commits go
 * to the store thread, and their completions arrive through tw_trading_poll
 * when tw_trading_fd is readable. A player can trade once the load of
 * their inventory completes; that completion sends INVENTORY and the
 * outcomes of trades the player has not seen yet (store notices).
 *
 * The server names players by player id only; the send callback finds the
 * player's current session, so every action is bound to the session that
 * the server authenticated.
 */
#ifndef TW_TRADING_H
#define TW_TRADING_H

#include "config.h"
#include "store.h"
#include "trade.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tw_trading;

/*
 * Queues msg as a reliable message to player_id's session. Returns a
 * nonzero serial naming that session, or 0 when the player has no active
 * session or the message could not be queued.
 */
typedef uint64_t (*tw_trading_send_fn)(void *ctx, uint64_t player_id,
                                       const uint8_t *msg, size_t len);

/*
 * Returns 1 when session `serial` of player_id has had every reliable
 * message queued so far acknowledged by the client, 0 while some are in
 * flight, -1 when that session is no longer the player's or has ended.
 */
typedef int (*tw_trading_delivered_fn)(void *ctx, uint64_t player_id,
                                       uint64_t serial);

struct tw_trading_io {
    tw_trading_send_fn send;
    tw_trading_delivered_fn delivered;
    void *ctx;
};

struct tw_trading_stats {
    struct tw_trade_stats trade;
    struct tw_store_stats store;
    uint64_t loads, load_failures;
    uint64_t notices_sent, notice_acks_lost;
    uint64_t deliveries_lost; /* outcome sent, session ended unacknowledged */
    uint64_t commit_submit_failures;
};

/*
 * Opens cfg->store.path (blocking on disk, so call it before the tick
 * loop) and creates the trade manager for up to cfg->match.max_players
 * players. Returns TW_OK, or -1 with a one-line message in err.
 */
int tw_trading_create(const struct tw_config *cfg,
                      const struct tw_trading_io *io, struct tw_trading **out,
                      char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Stops the store: every queued request finishes and its completion is
 * applied (results still reach connected players), then the database
 * closes. Later commits fail with reason busy. Blocks on disk; call it
 * after the tick loop. Safe to call twice.
 */
void tw_trading_drain(struct tw_trading *t);

/* Drains the store if that has not happened yet, then frees t. */
void tw_trading_destroy(struct tw_trading *t);

/* Readable while store completions wait; poll it beside the socket. */
int tw_trading_fd(const struct tw_trading *t);

/* Applies every store completion ready now. Never blocks. */
void tw_trading_poll(struct tw_trading *t);

/* Once per tick: trade timeouts, load retries, delivered notices. */
void tw_trading_tick(struct tw_trading *t, uint64_t now_ms);

/*
 * A player logged in (or moved to a new session). Starts the load of
 * their inventory; a player already loaded gets INVENTORY and the state
 * of their trade again on the new session.
 */
void tw_trading_player_joined(struct tw_trading *t, uint64_t player_id,
                              const char *name);

/* A player left the match: ends their open trade and drops the mirror. */
void tw_trading_player_left(struct tw_trading *t, uint64_t player_id);

/*
 * Handles one decrypted trade message (id 0x20..0x24) from actor, the
 * session's player id, and sends the answer. Returns TW_OK, or a negative
 * enum tw_drop value when the message is malformed and was not applied.
 */
int tw_trading_handle(struct tw_trading *t, uint64_t actor,
                      const uint8_t *msg, size_t len)
    __attribute__((warn_unused_result));

/* Age in ms of the oldest store request not yet completed. */
uint64_t tw_trading_store_lag_ms(struct tw_trading *t);

void tw_trading_get_stats(struct tw_trading *t, struct tw_trading_stats *out);

/* Logs the trade and store counters as "WHAT: trades ..." lines. */
void tw_trading_log_stats(struct tw_trading *t, const char *what);

#endif
