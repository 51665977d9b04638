/*
 * The match simulation: players, their queued inputs, authoritative
 * movement and snapshot building. No networking here; the server feeds
 * inputs in and sends what tw_match_build_snapshot produces.
 *
 * Each tick puts every player on a uniform grid with cells at least
 * view_radius / 2 wide, so a snapshot looks at the 5 x 5 cells around its
 * receiver only: the work per receiver follows the crowd in view, not the
 * match size. The match also remembers, per player, which slots it sent
 * at each of the last TW_SNAPSHOT_RING ticks and every slot's quantized
 * position at those ticks, which rebuilds any baseline the client can
 * acknowledge for a few bytes per entity.
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
/*
 * A player's view is searched on the grid every this many ticks and kept
 * (with fresh positions) in between, so someone entering or leaving view
 * shows up at most two ticks late.
 */
#define TW_VIEW_REFRESH_TICKS 3u

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
    int sent_session;      /* session the sent-snapshot ring belongs to */
    unsigned view_cut;     /* players in view left out at the last search */
    uint64_t inputs_applied;
    uint64_t inputs_skipped; /* lost inputs jumped over */
};

struct tw_qpos {
    uint32_t qx, qy;
};

/* What one player was sent at one tick: count slots in sent_slots. */
struct tw_sent {
    uint32_t tick; /* 0: nothing */
    uint16_t count;
};

/* A player as the grid holds it: position, quantized position, slot. */
struct tw_aoi_item {
    float x, y;
    uint32_t qx, qy;
    uint32_t slot;
};

struct tw_aoi_candidate {
    float d2;
    uint32_t item; /* index in cell_items */
};

struct tw_match {
    struct tw_sim_params sim;
    struct tw_quant quant;
    struct tw_vec2 spawn_origin, spawn_size;
    struct tw_player *players;
    uint32_t capacity;
    uint32_t active_count;
    uint32_t tick;

    float view_radius;
    uint32_t max_visible;
    uint32_t grid_cols, grid_rows;
    float cell_w, cell_h;
    uint32_t *cell_start;   /* cols * rows + 1 offsets into cell_items */
    struct tw_aoi_item *cell_items; /* active players grouped by cell */
    uint32_t *player_cell;  /* per slot, UINT32_MAX when inactive */
    struct tw_aoi_candidate *candidates; /* scratch, capacity entries */

    struct tw_qpos *history; /* TW_SNAPSHOT_RING x capacity positions */
    struct tw_sent *sent;    /* capacity x TW_SNAPSHOT_RING */
    uint16_t *sent_slots;    /* capacity x TW_SNAPSHOT_RING x max_visible */
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
 * Fills out with the tick, the receiver's newest applied input and the
 * quantized positions of the receiver (first) and of the nearest other
 * players within view_radius, at most max_entities (and max_visible) in
 * all; between searches (TW_VIEW_REFRESH_TICKS) the last view sent is
 * reused. Returns the number of players in view left out for lack of room.
 */
unsigned tw_match_build_snapshot(struct tw_match *m, int slot,
                                 struct tw_msg_snapshot *out,
                                 unsigned max_entities);

/*
 * Rebuilds into base the snapshot slot was sent at the tick its client
 * last acknowledged. Returns base, or NULL when there is none: nothing
 * acknowledged, an unknown tick, or one older than TW_SNAPSHOT_RING ticks.
 */
const struct tw_msg_snapshot *tw_match_baseline(const struct tw_match *m,
                                                int slot,
                                                struct tw_msg_snapshot *base);

/* Remembers that sent (as ordered by the encoder) went to slot. */
void tw_match_record_sent(struct tw_match *m, int slot,
                          const struct tw_msg_snapshot *sent);

#endif
