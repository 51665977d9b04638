/*
 * Durable inventories and trades in SQLite (WAL, synchronous=FULL).
 *
 * One store thread owns the connection. The tick thread submits requests
 * (load a player, commit a trade, acknowledge a notice) that only take a
 * short queue lock and never wait on disk, then collects completions with
 * tw_store_poll, for instance when tw_store_fd becomes readable. Each
 * request completes exactly once, in submission order.
 *
 * Schema: players, items (one owner per item id), minted (starter grants,
 * the ledger the audit checks totals against), trades and trade_items
 * (committed trades and what moved), notices (trade outcomes not yet
 * acknowledged as delivered, so a player who left sees them at the next
 * login). PRAGMA user_version holds the schema version; opening migrates
 * older files and rejects newer ones.
 *
 * A trade commit is idempotent by trade id: committing an id that is
 * already committed changes nothing and reports replayed.
 */
#ifndef TW_STORE_H
#define TW_STORE_H

#include "config.h"
#include "trade_msgs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TW_STORE_SCHEMA_VERSION 2
/* PRAGMA application_id of a tickwire store ("TWST"). */
#define TW_STORE_APP_ID 0x54575354
/* Requests submitted and not yet collected by tw_store_poll. */
#define TW_STORE_QUEUE_MAX 1024u
/* Notices returned by one load; the rest come after acknowledgement. */
#define TW_STORE_MAX_NOTICES 8u

struct tw_store;

/* A trade to write: a gives give_a to b, b gives give_b to a. */
struct tw_store_commit {
    uint32_t trade_id; /* nonzero */
    uint64_t a, b;
    struct tw_trade_offer give_a, give_b;
};

enum tw_store_op {
    TW_STORE_OP_LOAD = 1,
    TW_STORE_OP_COMMIT,
    TW_STORE_OP_ACK,
};

enum tw_store_status {
    TW_STORE_OK = 0,
    TW_STORE_ABORTED, /* commit rechecks failed (see reason); nothing moved */
    TW_STORE_ERROR,   /* SQLite failed or the file holds invalid rows */
};

/* A trade outcome the player has not seen yet. */
struct tw_trade_notice {
    uint32_t trade_id;
    uint64_t partner;
    uint8_t status; /* TW_TRADE_S_COMMITTED or TW_TRADE_S_FAILED */
    uint8_t reason; /* enum tw_trade_reason */
};

struct tw_store_result {
    enum tw_store_op op;
    enum tw_store_status status;
    enum tw_trade_reason reason; /* why a commit was ABORTED */
    uint64_t cookie;             /* as passed at submission */
    uint64_t player_id;          /* LOAD and ACK */
    uint32_t trade_id;           /* COMMIT and ACK */
    bool created;  /* LOAD: the player is new and got the starter items */
    bool replayed; /* COMMIT: trade_id was committed before; nothing moved */
    /* LOAD: inv[0]. COMMIT (also ABORTED): a then b, as stored after it. */
    struct tw_inventory inv[2];
    /* LOAD: unacknowledged notices, oldest first. */
    uint8_t notice_count;
    struct tw_trade_notice notices[TW_STORE_MAX_NOTICES];
    uint64_t latency_us; /* submission to completion */
};

/* Runs on the thread that calls tw_store_poll or tw_store_close. */
typedef void (*tw_store_done_fn)(void *ctx, const struct tw_store_result *r);

struct tw_store_stats {
    uint32_t pending;         /* submitted and not yet completed */
    uint64_t oldest_pending_ms; /* age of the oldest pending request */
    uint64_t completed;
    uint64_t commits, aborted, replayed, errors;
    uint64_t max_latency_us;
};

/*
 * Opens or creates cfg->store.path, migrates the schema and starts the
 * store thread. Runs on the caller's thread and may block on disk, so call
 * it before the tick loop. Returns TW_OK, or -1 with a one-line message in
 * err and *out NULL.
 */
int tw_store_open(const struct tw_config *cfg, struct tw_store **out,
                  char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Returns an eventfd that is readable while completions wait; add it to a
 * poll set and call tw_store_poll when it fires.
 */
int tw_store_fd(const struct tw_store *s);

/*
 * Returns the first trade id not yet used in this file (committed or
 * failed). It is read once at open, which is safe because tw_store_open
 * locks "<path>.lock" and refuses a file another server has open.
 */
uint32_t tw_store_next_trade_id(const struct tw_store *s);

/*
 * Submits a load of player_id's inventory and pending notices, creating
 * the player with the starter items on first sight (name is updated when
 * it changed). Returns TW_OK, -EAGAIN when TW_STORE_QUEUE_MAX requests
 * are outstanding, -ESHUTDOWN after close began, -EINVAL or -ENOMEM.
 */
int tw_store_load_player(struct tw_store *s, uint64_t player_id,
                         const char *name, uint64_t cookie)
    __attribute__((warn_unused_result));

/*
 * Submits a trade commit: one transaction that rechecks each item's owner
 * and quantity, moves whole items, splits partly traded ones into a new
 * item id for the receiver, records the trade and a notice for both
 * players. Any mismatch aborts it whole and records failure notices.
 * Returns as tw_store_load_player.
 */
int tw_store_commit(struct tw_store *s, const struct tw_store_commit *c,
                    uint64_t cookie) __attribute__((warn_unused_result));

/* Submits the deletion of a notice once its result reached the player. */
int tw_store_ack_notice(struct tw_store *s, uint64_t player_id,
                        uint32_t trade_id, uint64_t cookie)
    __attribute__((warn_unused_result));

/*
 * Calls fn for every completion ready now, without blocking. Returns how
 * many it delivered.
 */
int tw_store_poll(struct tw_store *s, tw_store_done_fn fn, void *ctx);

void tw_store_get_stats(struct tw_store *s, struct tw_store_stats *out);

/*
 * Stops accepting requests, lets the store thread finish every queued
 * one, delivers the remaining completions to fn (when not NULL), closes
 * the database and frees s. Blocks on disk.
 */
void tw_store_close(struct tw_store *s, tw_store_done_fn fn, void *ctx);

/*
 * Checks the database at path and prints a JSON report to out: integrity
 * check, totals per item kind against the minted ledger, the most owners
 * of any item id, invalid rows and the number of committed trades. Does
 * not change the data. Returns 0 when consistent, 3 when not, 1 when the
 * audit could not run (missing file, old schema, I/O error).
 */
int tw_store_audit(const char *path, FILE *out);

/*
 * Creates or migrates the database at path up to schema version
 * target_version (1..TW_STORE_SCHEMA_VERSION), for tests and tooling.
 * Returns TW_OK or -1 with a message in err.
 */
int tw_store_migrate_file(const char *path, int target_version, char *err,
                          size_t errlen) __attribute__((warn_unused_result));

#endif
