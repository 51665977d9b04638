#include "bits.h"

#include <string.h>

void tw_bw_init(struct tw_bitwriter *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->bitpos = 0;
    w->error = false;
}

void tw_bw_bits(struct tw_bitwriter *w, uint32_t value, unsigned bits)
{
    if (w->error || bits == 0 || bits > 32) {
        w->error = w->error || bits > 32;
        return;
    }
    if (w->bitpos + bits > w->cap * 8) {
        w->error = true;
        return;
    }
    for (unsigned i = 0; i < bits; i++) {
        size_t byte = w->bitpos >> 3;
        unsigned shift = w->bitpos & 7;
        if (shift == 0)
            w->buf[byte] = 0;
        w->buf[byte] |= (uint8_t)(((value >> i) & 1u) << shift);
        w->bitpos++;
    }
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
    uint32_t value = 0;
    for (unsigned i = 0; i < bits; i++) {
        uint32_t bit = (r->buf[r->bitpos >> 3] >> (r->bitpos & 7)) & 1u;
        value |= bit << i;
        r->bitpos++;
    }
    return value;
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
    unsigned bits = 1;
    while (bits < 32 && (max_value >> bits) != 0)
        bits++;
    return bits;
}
