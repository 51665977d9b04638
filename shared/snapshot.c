#include "snapshot.h"

#include "bits.h"

#include <math.h>

#define HEADER_BITS (8u + 32u + 32u + 16u)

/*
 * Returns the steps that cover extent. The world size can come from the
 * network, and converting a NaN or out-of-range float to an integer is
 * undefined, so those map to 0 and UINT32_MAX.
 */
static uint32_t steps_for(float extent)
{
    float steps = ceilf(extent * TW_POS_SCALE);
    if (!(steps > 0.0f))
        return 0;
    if (steps >= 4294967296.0f)
        return UINT32_MAX;
    return (uint32_t)steps;
}

void tw_quant_init(struct tw_quant *q, struct tw_vec2 world)
{
    q->world = world;
    q->max_qx = steps_for(world.x);
    q->max_qy = steps_for(world.y);
    q->x_bits = tw_bits_for(q->max_qx);
    q->y_bits = tw_bits_for(q->max_qy);
}

uint32_t tw_quantize(float v, float extent, uint32_t max_q)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= extent)
        return max_q;
    /* Compared as a float first, so a huge extent cannot overflow a long. */
    float steps = rintf(v * TW_POS_SCALE);
    if (steps >= (float)max_q)
        return max_q;
    return (uint32_t)steps;
}

float tw_dequantize(uint32_t q)
{
    return (float)q / TW_POS_SCALE;
}

static unsigned entity_bits(const struct tw_quant *q)
{
    return TW_SLOT_BITS + q->x_bits + q->y_bits;
}

unsigned tw_snapshot_capacity(const struct tw_quant *q, size_t budget)
{
    size_t bits = budget * 8;
    if (bits <= HEADER_BITS)
        return 0;
    size_t n = (bits - HEADER_BITS) / entity_bits(q);
    return n > TW_SNAPSHOT_MAX_ENTITIES ? TW_SNAPSHOT_MAX_ENTITIES
                                        : (unsigned)n;
}

int tw_encode_snapshot(const struct tw_quant *q, const struct tw_msg_snapshot *m,
                       uint8_t *out, size_t cap)
{
    if (m->count > TW_SNAPSHOT_MAX_ENTITIES)
        return -TW_DROP_OVERSIZED;
    /* A field wider than its bits would be cut short without an error. */
    for (unsigned i = 0; i < m->count; i++) {
        const struct tw_snap_entity *e = &m->entities[i];
        if (e->slot >= TW_MAX_SLOTS || e->qx > q->max_qx || e->qy > q->max_qy)
            return -TW_DROP_MALFORMED;
    }
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_SNAPSHOT);
    tw_bw_u32(&w, m->tick);
    tw_bw_u32(&w, m->ack_input_seq);
    tw_bw_u16(&w, m->count);
    for (unsigned i = 0; i < m->count; i++) {
        const struct tw_snap_entity *e = &m->entities[i];
        tw_bw_bits(&w, e->slot, TW_SLOT_BITS);
        tw_bw_bits(&w, e->qx, q->x_bits);
        tw_bw_bits(&w, e->qy, q->y_bits);
    }
    if (w.error)
        return -TW_DROP_OVERSIZED;
    return (int)tw_bw_size(&w);
}

int tw_decode_snapshot(const struct tw_quant *q, const uint8_t *p, size_t len,
                       struct tw_msg_snapshot *m)
{
    if (len == 0)
        return -TW_DROP_EMPTY;
    if (len > TW_MAX_PAYLOAD)
        return -TW_DROP_OVERSIZED;
    struct tw_bitreader r;
    tw_br_init(&r, p, len);
    if (tw_br_u8(&r) != TW_MSG_SNAPSHOT)
        return -TW_DROP_MALFORMED;
    m->tick = tw_br_u32(&r);
    m->ack_input_seq = tw_br_u32(&r);
    m->count = tw_br_u16(&r);
    if (m->count > TW_SNAPSHOT_MAX_ENTITIES)
        return -TW_DROP_MALFORMED;
    for (unsigned i = 0; i < m->count; i++) {
        struct tw_snap_entity *e = &m->entities[i];
        e->slot = (uint16_t)tw_br_bits(&r, TW_SLOT_BITS);
        e->qx = tw_br_bits(&r, q->x_bits);
        e->qy = tw_br_bits(&r, q->y_bits);
    }
    if (r.error)
        return -TW_DROP_TRUNCATED;
    if (!tw_br_at_end(&r))
        return -TW_DROP_OVERSIZED;
    for (unsigned i = 0; i < m->count; i++)
        if (m->entities[i].qx > q->max_qx || m->entities[i].qy > q->max_qy)
            return -TW_DROP_MALFORMED;
    return TW_OK;
}
