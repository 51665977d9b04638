#include "bits.h"

#include <string.h>

void tw_bw_init(struct tw_bitwriter *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->bitpos = 0;
    w->error = false;
}

/* Mask of the low `bits` bits, 1..32. */
static inline uint32_t low_mask(unsigned bits)
{
    return bits >= 32 ? 0xFFFFFFFFu : (1u << bits) - 1u;
}

/*
 * Writes whole bytes at a time: at most five bytes are touched, the first
 * one keeping the bits already written below the current position. Bits
 * above the end stay zero, as a fresh byte must.
 */
void tw_bw_bits(struct tw_bitwriter *w, uint32_t value, unsigned bits)
{
    if (w->error || bits == 0 || bits > 32) {
        w->error = w->error || bits > 32;
        return;
    }
    if (bits > w->cap * 8 - w->bitpos) {
        w->error = true;
        return;
    }
    size_t byte = w->bitpos >> 3;
    unsigned shift = (unsigned)(w->bitpos & 7);
    uint64_t v = (uint64_t)(value & low_mask(bits)) << shift;
    unsigned nbytes = (shift + bits + 7) >> 3;
    uint8_t *out = w->buf + byte;
    out[0] = (uint8_t)((out[0] & ((1u << shift) - 1u)) | (uint8_t)v);
    for (unsigned i = 1; i < nbytes; i++)
        out[i] = (uint8_t)(v >> (8 * i));
    w->bitpos += bits;
}

void tw_bw_u8(struct tw_bitwriter *w, uint8_t v)
{
    tw_bw_bits(w, v, 8);
}

void tw_bw_u16(struct tw_bitwriter *w, uint16_t v)
{
    tw_bw_bits(w, v, 16);
}

void tw_bw_u32(struct tw_bitwriter *w, uint32_t v)
{
    tw_bw_bits(w, v, 32);
}

void tw_bw_u64(struct tw_bitwriter *w, uint64_t v)
{
    tw_bw_bits(w, (uint32_t)v, 32);
    tw_bw_bits(w, (uint32_t)(v >> 32), 32);
}

void tw_bw_bool(struct tw_bitwriter *w, bool v)
{
    tw_bw_bits(w, v ? 1u : 0u, 1);
}

void tw_bw_align(struct tw_bitwriter *w)
{
    unsigned pad = (unsigned)((8 - (w->bitpos & 7)) & 7);
    if (pad)
        tw_bw_bits(w, 0, pad);
}

void tw_bw_bytes(struct tw_bitwriter *w, const void *data, size_t len)
{
    tw_bw_align(w);
    if (w->error)
        return;
    if (len > w->cap - (w->bitpos >> 3)) {
        w->error = true;
        return;
    }
    if (len)
        memcpy(w->buf + (w->bitpos >> 3), data, len);
    w->bitpos += len * 8;
}

size_t tw_bw_size(const struct tw_bitwriter *w)
{
    return (w->bitpos + 7) >> 3;
}

void tw_br_init(struct tw_bitreader *r, const void *buf, size_t len)
{
    r->buf = buf;
    r->len = len;
    r->bitpos = 0;
    r->error = false;
}

uint32_t tw_br_bits(struct tw_bitreader *r, unsigned bits)
{
    if (r->error || bits == 0 || bits > 32) {
        r->error = r->error || bits > 32;
        return 0;
    }
    if (bits > r->len * 8 - r->bitpos) {
        r->error = true;
        return 0;
    }
    const uint8_t *in = r->buf + (r->bitpos >> 3);
    unsigned shift = (unsigned)(r->bitpos & 7);
    unsigned nbytes = (shift + bits + 7) >> 3;
    uint64_t v = 0;
    for (unsigned i = 0; i < nbytes; i++)
        v |= (uint64_t)in[i] << (8 * i);
    r->bitpos += bits;
    return (uint32_t)(v >> shift) & low_mask(bits);
}

uint8_t tw_br_u8(struct tw_bitreader *r)
{
    return (uint8_t)tw_br_bits(r, 8);
}

uint16_t tw_br_u16(struct tw_bitreader *r)
{
    return (uint16_t)tw_br_bits(r, 16);
}

uint32_t tw_br_u32(struct tw_bitreader *r)
{
    return tw_br_bits(r, 32);
}

uint64_t tw_br_u64(struct tw_bitreader *r)
{
    uint64_t lo = tw_br_bits(r, 32);
    uint64_t hi = tw_br_bits(r, 32);
    /* A short read must not hand back the half that fitted. */
    if (r->error)
        return 0;
    return lo | (hi << 32);
}

bool tw_br_bool(struct tw_bitreader *r)
{
    return tw_br_bits(r, 1) != 0;
}

void tw_br_align(struct tw_bitreader *r)
{
    unsigned pad = (unsigned)((8 - (r->bitpos & 7)) & 7);
    if (pad)
        tw_br_bits(r, pad);
}

void tw_br_bytes(struct tw_bitreader *r, void *out, size_t len)
{
    tw_br_align(r);
    if (!r->error && len > r->len - (r->bitpos >> 3))
        r->error = true;
    if (r->error) {
        if (len)
            memset(out, 0, len);
        return;
    }
    if (len)
        memcpy(out, r->buf + (r->bitpos >> 3), len);
    r->bitpos += len * 8;
}

size_t tw_br_remaining_bytes(const struct tw_bitreader *r)
{
    size_t used = (r->bitpos + 7) >> 3;
    return used >= r->len ? 0 : r->len - used;
}

bool tw_br_at_end(const struct tw_bitreader *r)
{
    return ((r->bitpos + 7) >> 3) == r->len;
}

unsigned tw_bits_for(uint32_t max_value)
{
    return max_value == 0 ? 1u : 32u - (unsigned)__builtin_clz(max_value);
}
