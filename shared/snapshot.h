/*
 * Position snapshots: quantization, the snapshot message and its delta
 * encoding against a baseline the receiver acknowledged.
 *
 * Positions are quantized to 1/TW_POS_SCALE of a world unit (1/16: at most
 * 1/32 unit of rounding error per axis), with as many bits per axis as the
 * world bounds need (15 for a 1024-unit world).
 *
 * Wire form, bits packed least significant first (see bits.h):
 *   u8 id (TW_MSG_SNAPSHOT), u32 tick, u32 ack_input_seq,
 *   u8 base_age: 0 for a full snapshot, else the baseline is tick - age.
 *   Full:  9-bit count, then count x (12-bit slot, x, y).
 *   Delta: 3-bit k - 1 (the small-delta width, 1..8 bits per axis), then
 *          one code per baseline entity, in baseline order:
 *            0    unchanged
 *            10   moved: zigzag(dx), zigzag(dy) in k bits each
 *            110  moved far: absolute x, y
 *            111  left the snapshot
 *          then a 9-bit count of new entities, each (12-bit slot, x, y).
 *   Zero padding to the byte boundary ends the message.
 * The decoded entity order is the baseline's (without those that left)
 * followed by the new ones, so a snapshot whose receiver comes first keeps
 * it first. Slots never repeat within one snapshot.
 */
#ifndef TW_SNAPSHOT_H
#define TW_SNAPSHOT_H

#include "protocol.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TW_SLOT_BITS 12u
#define TW_SNAPSHOT_MAX_ENTITIES 256u
#define TW_SNAPSHOT_COUNT_BITS 9u /* holds 0..TW_SNAPSHOT_MAX_ENTITIES */
/*
 * Snapshots either side keeps as baselines, indexed by tick modulo this;
 * an acknowledgement older than that gets a full snapshot.
 */
#define TW_SNAPSHOT_RING 16u

struct tw_quant {
    struct tw_vec2 world;
    uint32_t max_qx, max_qy;
    unsigned x_bits, y_bits;
};

void tw_quant_init(struct tw_quant *q, struct tw_vec2 world);
uint32_t tw_quantize(float v, float extent, uint32_t max_q);
float tw_dequantize(uint32_t q);

struct tw_snap_entity {
    uint16_t slot;
    uint32_t qx, qy;
};

struct tw_msg_snapshot {
    uint32_t tick;
    uint32_t ack_input_seq; /* newest input of the receiver applied */
    uint32_t base_tick;     /* baseline it was coded against, 0: full */
    uint16_t count;
    struct tw_snap_entity entities[TW_SNAPSHOT_MAX_ENTITIES];
};

/* The part of an encoded snapshot readable without its baseline. */
struct tw_snap_header {
    uint32_t tick;
    uint32_t ack_input_seq;
    uint32_t base_tick; /* 0: full snapshot */
};

/* Returns how many entities a full snapshot fits in budget bytes. */
unsigned tw_snapshot_capacity(const struct tw_quant *q, size_t budget);

/*
 * Encodes m into out, as a delta against base when base is not NULL (its
 * tick must be older than m's by 1..255), else in full. A delta that
 * would not fit in cap falls back to a full snapshot. Reorders m's
 * entities into the order the decoder will produce and sets m->base_tick
 * to the baseline used (0 when full), so m can serve as a later baseline.
 * Returns the bytes written, or -TW_DROP_OVERSIZED when even the full
 * form does not fit (more than tw_snapshot_capacity entities) and
 * -TW_DROP_MALFORMED for a repeated slot or an out-of-range position.
 */
int tw_encode_snapshot(const struct tw_quant *q,
                       const struct tw_msg_snapshot *base,
                       struct tw_msg_snapshot *m, uint8_t *out, size_t cap)
    __attribute__((warn_unused_result));

/* Reads the header; returns TW_OK or a negative enum tw_drop. */
int tw_snapshot_peek(const uint8_t *p, size_t len, struct tw_snap_header *h)
    __attribute__((warn_unused_result));

/*
 * Decodes p into m. A delta needs base to be the snapshot of its base
 * tick: any other base (or NULL) returns -TW_DROP_WRONG_STATE and nothing
 * is trusted. base and m must not overlap. On error m holds garbage.
 */
int tw_decode_snapshot(const struct tw_quant *q,
                       const struct tw_msg_snapshot *base, const uint8_t *p,
                       size_t len, struct tw_msg_snapshot *m)
    __attribute__((warn_unused_result));

/* Received snapshots kept as baselines, by tick. */
struct tw_snap_ring {
    bool valid[TW_SNAPSHOT_RING];
    struct tw_msg_snapshot snaps[TW_SNAPSHOT_RING];
};

/* Returns the kept snapshot of tick, or NULL. */
const struct tw_msg_snapshot *tw_snap_ring_find(const struct tw_snap_ring *r,
                                                uint32_t tick);
/*
 * Returns the entry tick decodes into, marked invalid until
 * tw_snap_ring_commit; NULL when it would overwrite base.
 */
struct tw_msg_snapshot *tw_snap_ring_claim(struct tw_snap_ring *r,
                                           uint32_t tick,
                                           const struct tw_msg_snapshot *base);
void tw_snap_ring_commit(struct tw_snap_ring *r, uint32_t tick);

#endif
