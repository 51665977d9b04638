/*
 * The match simulation: players, their queued inputs, authoritative
 * movement and snapshot building. No networking here; the server feeds
 * inputs in and sends what tw_match_build_snapshot produces.
 */
#ifndef TW_MATCH_H
#define TW_MATCH_H

#include "config.h"
#include "protocol.h"
#include "sim.h"
#include "snapshot.h"

#include <stdbool.h>
#include <stdint.h>

#define TW_INPUT_BUFFER 32u /* inputs a player may have queued ahead */
#define TW_MAX_INPUTS_PER_TICK 2u

struct tw_player {
    bool active;
    uint64_t player_id;
    char name[TW_NAME_MAX + 1];
    struct tw_vec2 pos;
    int session; /* server session index, -1 while none */

    bool any_applied;
    uint32_t last_applied_seq;
    uint32_t queued_seq[TW_INPUT_BUFFER];
    bool queued[TW_INPUT_BUFFER];
    struct tw_input queued_input[TW_INPUT_BUFFER];
    uint64_t queued_arrival_ns[TW_INPUT_BUFFER];

    /* Arrival of the newest applied input not yet shown in a snapshot. */
    uint64_t unreported_arrival_ns;
    uint32_t ack_snapshot; /* newest snapshot tick the client reported */
    uint64_t inputs_applied;
    uint64_t inputs_skipped; /* lost inputs jumped over */
};

struct tw_match {
    struct tw_sim_params sim;
    struct tw_quant quant;
    struct tw_vec2 spawn_origin, spawn_size;
    struct tw_player *players;
    uint32_t capacity;
    uint32_t active_count;
    uint32_t tick;
};

/* Allocates room for capacity players. Returns TW_OK or -1 (no memory). */
int tw_match_init(struct tw_match *m, const struct tw_config *cfg,
                  uint32_t capacity) __attribute__((warn_unused_result));
void tw_match_free(struct tw_match *m);

/* Returns the slot of an active player, or -1. */
int tw_match_find(const struct tw_match *m, uint64_t player_id);

/*
 * Adds a player at a spawn point derived from its id. Returns the slot, or
 * -1 when the match is full.
 */
int tw_match_add(struct tw_match *m, uint64_t player_id, const char *name);
void tw_match_remove(struct tw_match *m, int slot);

/*
 * Queues the inputs of one packet. Inputs already applied, duplicated or
 * too far ahead of the queue are ignored; returns how many were queued.
 */
unsigned tw_match_queue_inputs(struct tw_match *m, int slot,
                               const struct tw_msg_input *in,
                               uint64_t now_ns);

/* Applies queued inputs in sequence order and advances the tick. */
void tw_match_step(struct tw_match *m);

/*
 * Fills out with the tick, the receiver's newest applied input and every
 * player's quantized position, the receiver first, at most max_entities.
 * Returns the number of entities left out for lack of room.
 */
unsigned tw_match_build_snapshot(const struct tw_match *m, int slot,
                                 struct tw_msg_snapshot *out,
                                 unsigned max_entities);

#endif
