/*
 * A bot's trading: it starts trades with random partners at a set rate,
 * answers requests, offers random items from its inventory, confirms, and
 * counts every outcome. One request is in flight at a time; a request
 * without an answer after retry_ms is sent again with the same request id,
 * which the server must answer with its first answer and not apply twice.
 * An answer that differs from the first one for the same request id is
 * counted as a mismatch.
 */
#ifndef TW_TRADER_H
#define TW_TRADER_H

#include "trade_msgs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tw_bot;

/* Shared by every bot of the crowd. */
struct tw_trader_config {
    double rate_per_min;  /* trades each bot starts per minute; 0: none */
    uint64_t player_base; /* bot i plays player_base + i */
    uint32_t bots;
    uint32_t retry_ms;    /* resend a request unanswered for this long */
    uint32_t duplicate_percent; /* share of requests sent twice at once */
};

struct tw_trader_counters {
    uint64_t started;   /* requests the server accepted */
    uint64_t done;      /* distinct trades this bot saw committed */
    uint64_t refused[TW_TRADE_R_COUNT]; /* requests rejected, by reason */
    uint64_t failed[TW_TRADE_R_COUNT];  /* trades that ended failed */
    uint64_t retries;        /* requests sent again, same request id */
    uint64_t duplicates;     /* requests sent twice on purpose */
    uint64_t repeat_answers; /* answers to a request already answered */
    uint64_t answer_mismatches; /* a repeat answer differed: a bug */
    uint64_t gave_up;        /* requests dropped after too many retries */
    uint64_t unresolved; /* trades cut off while committing by a disconnect */
};

/* What a request in flight needs to be sent again. */
struct tw_trader_pending {
    uint32_t request_id; /* 0: nothing in flight */
    uint8_t kind;        /* message id */
    uint16_t len;
    uint8_t msg[256]; /* the largest request, an offer, takes 202 bytes */
    uint64_t sent_ns;
    uint32_t tries;
};

struct tw_trader {
    const struct tw_trader_config *cfg;
    uint64_t rng;
    uint64_t player_id;
    bool have_inventory;
    bool leaving;
    struct tw_inventory inv;

    /* The trade this bot is in, from the latest TRADE_UPDATE. */
    uint32_t trade_id;
    struct tw_msg_trade_update update;
    bool have_update;
    bool offer_sent, offer_ok;
    uint32_t confirm_sent_version; /* offer_version + 1 of the last confirm */
    uint64_t trade_since_ns;
    uint64_t next_start_ns;

    uint32_t next_request_id;
    struct tw_trader_pending pending;
    /* The last answered request, to compare repeats against. */
    uint32_t answered_id;
    struct tw_msg_trade_result answered;

    uint32_t *done_ids; /* distinct committed trade ids, unsorted */
    size_t done_count, done_cap;
    struct tw_trader_counters n;
};

/* Prepares t for the bot playing player_id; seed makes it repeatable. */
void tw_trader_init(struct tw_trader *t, const struct tw_trader_config *cfg,
                    uint64_t player_id, uint64_t seed);
void tw_trader_free(struct tw_trader *t);

/*
 * Handles a decrypted server message. Returns false when msg is not a
 * trade or inventory message, so the caller can treat it as unexpected.
 */
bool tw_trader_on_message(struct tw_bot *b, const uint8_t *msg, size_t len,
                          uint64_t now);

/* Resends, answers, offers, confirms or starts a trade; one send at most. */
void tw_trader_tick(struct tw_bot *b, uint64_t now);

/* The session ended: forgets the trade and the request in flight. */
void tw_trader_on_disconnect(struct tw_trader *t);

/* Starts no new trade and cancels one that is not committing yet. */
void tw_trader_quiesce(struct tw_trader *t);

/* True when no request is in flight and the bot is in no trade. */
bool tw_trader_idle(const struct tw_trader *t);

#endif
