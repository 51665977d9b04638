#include "snapshot.h"

#include "bits.h"

#include <math.h>
#include <string.h>

#define HEADER_BITS (8u + 32u + 32u + 8u)
#define FULL_HEADER_BITS (HEADER_BITS + TW_SNAPSHOT_COUNT_BITS)
#define K_BITS 3u  /* small-delta width minus one */
#define K_MAX 8u
#define MAX_BASE_AGE 255u

/* One bit per slot: which slots a snapshot already holds. */
struct slot_set {
    uint64_t words[TW_MAX_SLOTS / 64];
};

static void set_clear(struct slot_set *s)
{
    memset(s->words, 0, sizeof s->words);
}

static bool set_has(const struct slot_set *s, unsigned slot)
{
    return (s->words[slot >> 6] >> (slot & 63)) & 1u;
}

static void set_put(struct slot_set *s, unsigned slot)
{
    s->words[slot >> 6] |= 1ull << (slot & 63);
}

static void set_drop(struct slot_set *s, unsigned slot)
{
    s->words[slot >> 6] &= ~(1ull << (slot & 63));
}

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
    if (bits <= FULL_HEADER_BITS)
        return 0;
    size_t n = (bits - FULL_HEADER_BITS) / entity_bits(q);
    return n > TW_SNAPSHOT_MAX_ENTITIES ? TW_SNAPSHOT_MAX_ENTITIES
                                        : (unsigned)n;
}

static uint32_t zigzag(int32_t v)
{
    return ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
}

static int64_t unzigzag(uint32_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1u);
}

static void put_entity(struct tw_bitwriter *w, const struct tw_quant *q,
                       const struct tw_snap_entity *e)
{
    tw_bw_bits(w, e->slot, TW_SLOT_BITS);
    tw_bw_bits(w, e->qx, q->x_bits);
    tw_bw_bits(w, e->qy, q->y_bits);
}

static void put_header(struct tw_bitwriter *w, const struct tw_msg_snapshot *m,
                       unsigned age)
{
    tw_bw_u8(w, TW_MSG_SNAPSHOT);
    tw_bw_u32(w, m->tick);
    tw_bw_u32(w, m->ack_input_seq);
    tw_bw_u8(w, (uint8_t)age);
}

static int encode_full(const struct tw_quant *q, struct tw_msg_snapshot *m,
                       uint8_t *out, size_t cap)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    put_header(&w, m, 0);
    tw_bw_bits(&w, m->count, TW_SNAPSHOT_COUNT_BITS);
    for (unsigned i = 0; i < m->count; i++)
        put_entity(&w, q, &m->entities[i]);
    if (w.error)
        return -TW_DROP_OVERSIZED;
    m->base_tick = 0;
    return (int)tw_bw_size(&w);
}

/* How a baseline entity is coded; see the wire form in snapshot.h. */
struct base_plan {
    int16_t cur;   /* index in the current snapshot, -1: left */
    uint8_t need;  /* bits per axis of its zigzag delta, 0: unchanged */
    uint32_t zx, zy;
};

/* Picks the small-delta width that makes the moved entities cheapest. */
static unsigned pick_width(const unsigned *need_count, unsigned moved,
                           unsigned far_bits)
{
    unsigned best_k = 1, small = 0;
    uint64_t best = UINT64_MAX;
    for (unsigned k = 1; k <= K_MAX; k++) {
        small += need_count[k];
        uint64_t cost = (uint64_t)small * (2u + 2u * k) +
                        (uint64_t)(moved - small) * (3u + far_bits);
        if (cost < best) {
            best = cost;
            best_k = k;
        }
    }
    return best_k;
}

static int encode_delta(const struct tw_quant *q,
                        const struct tw_msg_snapshot *base,
                        struct tw_msg_snapshot *m, const uint16_t *cur_at,
                        struct slot_set *fresh, uint8_t *out, size_t cap)
{
    struct base_plan plan[TW_SNAPSHOT_MAX_ENTITIES];
    unsigned need_count[33] = {0};
    unsigned moved = 0;

    for (unsigned i = 0; i < base->count; i++) {
        const struct tw_snap_entity *b = &base->entities[i];
        struct base_plan *p = &plan[i];
        p->need = 0;
        if (b->slot >= TW_MAX_SLOTS || !set_has(fresh, b->slot)) {
            p->cur = -1;
            continue;
        }
        set_drop(fresh, b->slot);
        p->cur = (int16_t)cur_at[b->slot];
        const struct tw_snap_entity *e = &m->entities[p->cur];
        p->zx = zigzag((int32_t)(e->qx - b->qx));
        p->zy = zigzag((int32_t)(e->qy - b->qy));
        if (p->zx | p->zy) {
            p->need = (uint8_t)tw_bits_for(p->zx > p->zy ? p->zx : p->zy);
            need_count[p->need]++;
            moved++;
        }
    }
    unsigned far_bits = q->x_bits + q->y_bits;
    unsigned k = pick_width(need_count, moved, far_bits);

    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    put_header(&w, m, m->tick - base->tick);
    tw_bw_bits(&w, k - 1, K_BITS);

    struct tw_snap_entity sorted[TW_SNAPSHOT_MAX_ENTITIES];
    unsigned n = 0;
    for (unsigned i = 0; i < base->count; i++) {
        const struct base_plan *p = &plan[i];
        if (p->cur < 0) {
            tw_bw_bits(&w, 7, 3); /* 111, low bit first */
            continue;
        }
        const struct tw_snap_entity *e = &m->entities[p->cur];
        sorted[n++] = *e;
        if (p->need == 0) {
            tw_bw_bits(&w, 0, 1);
        } else if (p->need <= k) {
            /* 1 then 0, then both deltas: at most 18 bits in one write. */
            tw_bw_bits(&w, 1u | p->zx << 2 | p->zy << (2 + k), 2 + 2 * k);
        } else {
            tw_bw_bits(&w, 3, 3); /* 1, 1, 0 */
            tw_bw_bits(&w, e->qx, q->x_bits);
            tw_bw_bits(&w, e->qy, q->y_bits);
        }
    }
    unsigned kept = n;
    for (unsigned i = 0; i < m->count; i++)
        if (set_has(fresh, m->entities[i].slot))
            sorted[n++] = m->entities[i];
    tw_bw_bits(&w, n - kept, TW_SNAPSHOT_COUNT_BITS);
    for (unsigned i = kept; i < n; i++)
        put_entity(&w, q, &sorted[i]);
    if (w.error)
        return -TW_DROP_OVERSIZED;

    memcpy(m->entities, sorted, n * sizeof sorted[0]);
    m->base_tick = base->tick;
    return (int)tw_bw_size(&w);
}

int tw_encode_snapshot(const struct tw_quant *q,
                       const struct tw_msg_snapshot *base,
                       struct tw_msg_snapshot *m, uint8_t *out, size_t cap)
{
    if (m->count > TW_SNAPSHOT_MAX_ENTITIES)
        return -TW_DROP_OVERSIZED;

    struct slot_set fresh;
    uint16_t cur_at[TW_MAX_SLOTS]; /* read only where fresh is set */
    set_clear(&fresh);
    for (unsigned i = 0; i < m->count; i++) {
        const struct tw_snap_entity *e = &m->entities[i];
        if (e->slot >= TW_MAX_SLOTS || set_has(&fresh, e->slot) ||
            e->qx > q->max_qx || e->qy > q->max_qy)
            return -TW_DROP_MALFORMED;
        set_put(&fresh, e->slot);
        cur_at[e->slot] = (uint16_t)i;
    }

    if (base && base->count <= TW_SNAPSHOT_MAX_ENTITIES &&
        base->tick < m->tick && m->tick - base->tick <= MAX_BASE_AGE) {
        int n = encode_delta(q, base, m, cur_at, &fresh, out, cap);
        if (n >= 0)
            return n;
    }
    return encode_full(q, m, out, cap);
}

static int read_header(struct tw_bitreader *r, const uint8_t *p, size_t len,
                       struct tw_snap_header *h)
{
    if (len == 0)
        return -TW_DROP_EMPTY;
    if (len > TW_MAX_PAYLOAD)
        return -TW_DROP_OVERSIZED;
    tw_br_init(r, p, len);
    if (tw_br_u8(r) != TW_MSG_SNAPSHOT)
        return -TW_DROP_MALFORMED;
    h->tick = tw_br_u32(r);
    h->ack_input_seq = tw_br_u32(r);
    uint32_t age = tw_br_u8(r);
    if (r->error)
        return -TW_DROP_TRUNCATED;
    if (age > h->tick)
        return -TW_DROP_MALFORMED;
    h->base_tick = age ? h->tick - age : 0;
    if (age && h->base_tick == 0)
        return -TW_DROP_MALFORMED; /* tick 0 is never sent */
    return TW_OK;
}

int tw_snapshot_peek(const uint8_t *p, size_t len, struct tw_snap_header *h)
{
    struct tw_bitreader r;
    return read_header(&r, p, len, h);
}

/* Reads one entity sent in full; false when it is out of range. */
static bool get_entity(struct tw_bitreader *r, const struct tw_quant *q,
                       struct slot_set *seen, struct tw_snap_entity *e)
{
    e->slot = (uint16_t)tw_br_bits(r, TW_SLOT_BITS);
    e->qx = tw_br_bits(r, q->x_bits);
    e->qy = tw_br_bits(r, q->y_bits);
    if (r->error)
        return true; /* reported as truncated by the caller */
    if (e->qx > q->max_qx || e->qy > q->max_qy || set_has(seen, e->slot))
        return false;
    set_put(seen, e->slot);
    return true;
}

/* Applies a zigzag delta; false when the result leaves 0..max. */
static bool apply_delta(uint32_t *v, uint32_t z, uint32_t max)
{
    int64_t next = (int64_t)*v + unzigzag(z);
    if (next < 0 || next > (int64_t)max)
        return false;
    *v = (uint32_t)next;
    return true;
}

static int decode_delta(struct tw_bitreader *r, const struct tw_quant *q,
                        const struct tw_msg_snapshot *base,
                        struct slot_set *seen, struct tw_msg_snapshot *m)
{
    unsigned k = tw_br_bits(r, K_BITS) + 1;
    unsigned n = 0;
    for (unsigned i = 0; i < base->count && !r->error; i++) {
        const struct tw_snap_entity *b = &base->entities[i];
        if (!tw_br_bool(r)) {
            m->entities[n++] = *b;
        } else if (!tw_br_bool(r)) {
            struct tw_snap_entity e = *b;
            uint32_t zx = tw_br_bits(r, k);
            uint32_t zy = tw_br_bits(r, k);
            if (!apply_delta(&e.qx, zx, q->max_qx) ||
                !apply_delta(&e.qy, zy, q->max_qy))
                return r->error ? -TW_DROP_TRUNCATED : -TW_DROP_MALFORMED;
            m->entities[n++] = e;
        } else if (!tw_br_bool(r)) {
            struct tw_snap_entity e = *b;
            e.qx = tw_br_bits(r, q->x_bits);
            e.qy = tw_br_bits(r, q->y_bits);
            if (e.qx > q->max_qx || e.qy > q->max_qy)
                return -TW_DROP_MALFORMED;
            m->entities[n++] = e;
        } else {
            continue; /* left */
        }
        set_put(seen, b->slot);
    }
    unsigned added = tw_br_bits(r, TW_SNAPSHOT_COUNT_BITS);
    if (r->error)
        return -TW_DROP_TRUNCATED;
    if (added > TW_SNAPSHOT_MAX_ENTITIES - n)
        return -TW_DROP_MALFORMED;
    for (unsigned i = 0; i < added; i++)
        if (!get_entity(r, q, seen, &m->entities[n++]))
            return -TW_DROP_MALFORMED;
    m->count = (uint16_t)n;
    return TW_OK;
}

int tw_decode_snapshot(const struct tw_quant *q,
                       const struct tw_msg_snapshot *base, const uint8_t *p,
                       size_t len, struct tw_msg_snapshot *m)
{
    struct tw_bitreader r;
    struct tw_snap_header h;
    int rc = read_header(&r, p, len, &h);
    if (rc != TW_OK)
        return rc;
    m->tick = h.tick;
    m->ack_input_seq = h.ack_input_seq;
    m->base_tick = h.base_tick;

    struct slot_set seen;
    set_clear(&seen);
    if (h.base_tick) {
        if (!base || base == m || base->tick != h.base_tick ||
            base->count > TW_SNAPSHOT_MAX_ENTITIES)
            return -TW_DROP_WRONG_STATE;
        rc = decode_delta(&r, q, base, &seen, m);
        if (rc != TW_OK)
            return rc;
    } else {
        unsigned count = tw_br_bits(&r, TW_SNAPSHOT_COUNT_BITS);
        if (r.error)
            return -TW_DROP_TRUNCATED;
        if (count > TW_SNAPSHOT_MAX_ENTITIES)
            return -TW_DROP_MALFORMED;
        for (unsigned i = 0; i < count; i++)
            if (!get_entity(&r, q, &seen, &m->entities[i]))
                return -TW_DROP_MALFORMED;
        m->count = (uint16_t)count;
    }
    if (r.error)
        return -TW_DROP_TRUNCATED;
    if (!tw_br_at_end(&r))
        return -TW_DROP_OVERSIZED;
    return TW_OK;
}

const struct tw_msg_snapshot *tw_snap_ring_find(const struct tw_snap_ring *r,
                                                uint32_t tick)
{
    unsigned at = tick % TW_SNAPSHOT_RING;
    if (tick == 0 || !r->valid[at] || r->snaps[at].tick != tick)
        return NULL;
    return &r->snaps[at];
}

struct tw_msg_snapshot *tw_snap_ring_claim(struct tw_snap_ring *r,
                                           uint32_t tick,
                                           const struct tw_msg_snapshot *base)
{
    unsigned at = tick % TW_SNAPSHOT_RING;
    if (base == &r->snaps[at])
        return NULL;
    r->valid[at] = false;
    return &r->snaps[at];
}

void tw_snap_ring_commit(struct tw_snap_ring *r, uint32_t tick)
{
    unsigned at = tick % TW_SNAPSHOT_RING;
    r->valid[at] = r->snaps[at].tick == tick && tick != 0;
}
