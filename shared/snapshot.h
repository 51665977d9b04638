/*
 * Position snapshots: quantization and the snapshot message encoding.
 * Positions are quantized to 1/TW_POS_SCALE of a world unit, with as many
 * bits per axis as the world bounds need.
 */
#ifndef TW_SNAPSHOT_H
#define TW_SNAPSHOT_H

#include "protocol.h"

#include <stddef.h>
#include <stdint.h>

#define TW_SLOT_BITS 12u
#define TW_SNAPSHOT_MAX_ENTITIES 256u

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
    uint16_t count;
    struct tw_snap_entity entities[TW_SNAPSHOT_MAX_ENTITIES];
};

/* Returns how many entities fit in a payload of budget bytes. */
unsigned tw_snapshot_capacity(const struct tw_quant *q, size_t budget);

/*
 * Returns the bytes written, -TW_DROP_OVERSIZED when the message does not
 * fit in cap or has more than TW_SNAPSHOT_MAX_ENTITIES entities, or
 * -TW_DROP_MALFORMED for a slot or position outside q's ranges.
 */
int tw_encode_snapshot(const struct tw_quant *q, const struct tw_msg_snapshot *m,
                       uint8_t *out, size_t cap);
int tw_decode_snapshot(const struct tw_quant *q, const uint8_t *p, size_t len,
                       struct tw_msg_snapshot *m)
    __attribute__((warn_unused_result));

#endif
