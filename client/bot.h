/*
 * Headless bots: each one connects, logs in with a connect token, moves in
 * a seeded pattern, predicts its own position and reconciles it against
 * the server's snapshots. All bots of a process share one ENet host.
 */
#ifndef TW_BOT_H
#define TW_BOT_H

#include "crypto.h"
#include "protocol.h"
#include "sim.h"
#include "snapshot.h"
#include "stats.h"
#include "trader.h"

#include <enet/enet.h>
#include <stdbool.h>
#include <stdint.h>

#define TW_BOT_HISTORY 64u /* inputs remembered for reconciliation */

enum tw_bot_state {
    TW_BOT_IDLE,
    TW_BOT_CONNECTING,
    TW_BOT_LOGGING_IN,
    TW_BOT_PLAYING,
    TW_BOT_LEAVING,
    TW_BOT_GONE,
};

struct tw_bot_counters {
    uint64_t snapshots;
    uint64_t snapshot_bytes;
    uint64_t errors; /* anything a well-behaved server never causes */
    uint64_t bad_packets;
    uint64_t events, event_gaps, event_duplicates, event_out_of_order;
    uint64_t pings_sent, pongs;
    uint64_t corrections; /* snapshots that moved the prediction */
    uint64_t snapshots_missed; /* ticks skipped between received snapshots */
    uint64_t snapshots_full;       /* sent without a baseline */
    uint64_t snapshot_no_baseline; /* deltas against a baseline not kept */
};

struct tw_bot {
    uint32_t index;
    enum tw_bot_state state;
    ENetPeer *peer;
    struct tw_token token;
    struct tw_cipher tx, rx;
    uint64_t rng;

    uint16_t slot;
    struct tw_sim_params sim;
    struct tw_quant quant;
    struct tw_vec2 pos; /* predicted */
    uint32_t next_seq;
    uint32_t last_snapshot_tick;
    bool have_snapshot;
    uint64_t last_arrival_ns;
    struct tw_snap_ring snaps; /* baselines for the server's deltas */
    struct tw_input history_input[TW_BOT_HISTORY];
    struct tw_vec2 history_pos[TW_BOT_HISTORY];
    uint32_t history_seq[TW_BOT_HISTORY];
    struct tw_input heading;
    uint32_t heading_ticks_left;

    uint64_t playing_since_ns;
    uint64_t playing_ns; /* total time spent logged in */
    uint32_t next_event_seq;
    uint32_t ping_id;
    uint32_t disconnect_reason; /* from the server, TW_REASON_* */
    bool logged_in_once;
    bool timed_out;
    struct tw_bot_counters n;

    struct tw_trader trade;
    /* --reconnect: sessions started again after an unexpected loss. */
    uint32_t reconnects;
    uint64_t reconnect_at_ns;
    uint32_t backoff_ms;
};

/* Aggregated measurements of the whole crowd. */
struct tw_crowd_stats {
    struct tw_hist rtt_ms;
    struct tw_hist ping_us; /* reliable round trip, measured by the bot */
    struct tw_hist prediction_mu; /* prediction error, micro-units */
    struct tw_hist jitter_us; /* arrival gap minus the expected gap */

    /* Sums since the last timeline sample; main.c resets them. */
    uint64_t interval_ping_sum_us, interval_pings;
    uint64_t interval_jitter_sum_us, interval_arrivals;
};

/* Prepares a bot; the token must already be filled. */
void tw_bot_init(struct tw_bot *b, uint32_t index, uint64_t seed);

/* Starts the ENet connection. Returns 0, or -1 when the host is full. */
int tw_bot_connect(struct tw_bot *b, ENetHost *host, const ENetAddress *to);

/* Handles one ENet event addressed to this bot. */
void tw_bot_on_event(struct tw_bot *b, const ENetEvent *ev, uint64_t now,
                     struct tw_crowd_stats *cs);

/* Sends this tick's input, and a reliable ping once a second. */
void tw_bot_tick(struct tw_bot *b, uint64_t now, uint32_t tick_hz,
                 struct tw_crowd_stats *cs);

/* Seals plain for this bot's session and queues it reliably. */
void tw_bot_send_reliable(struct tw_bot *b, const uint8_t *plain, int len);

/*
 * Resets what belongs to one session (snapshot and event sequence, keys)
 * so that tw_bot_connect can start a new one; counters are kept.
 */
void tw_bot_prepare_reconnect(struct tw_bot *b);

/* Starts a graceful leave: queued data is delivered before the disconnect. */
void tw_bot_leave(struct tw_bot *b, uint64_t now);

#endif
