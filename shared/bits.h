/*
 * Bit-level writer and reader over caller-owned buffers. Bits are packed
 * least significant first. Both sides carry a sticky error flag: after the
 * first overflow or short read every further call is a no-op returning 0,
 * so a decoder checks once at the end instead of after every field.
 */
#ifndef TW_BITS_H
#define TW_BITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tw_bitwriter {
    uint8_t *buf;
    size_t cap;    /* bytes */
    size_t bitpos; /* bits written so far */
    bool error;
};

struct tw_bitreader {
    const uint8_t *buf;
    size_t len;    /* bytes */
    size_t bitpos; /* bits consumed so far */
    bool error;
};

void tw_bw_init(struct tw_bitwriter *w, uint8_t *buf, size_t cap);

/* Writes the low `bits` bits of value (1..32); sets error on overflow. */
void tw_bw_bits(struct tw_bitwriter *w, uint32_t value, unsigned bits);
void tw_bw_u8(struct tw_bitwriter *w, uint8_t v);
void tw_bw_u16(struct tw_bitwriter *w, uint16_t v);
void tw_bw_u32(struct tw_bitwriter *w, uint32_t v);
void tw_bw_u64(struct tw_bitwriter *w, uint64_t v);
void tw_bw_bool(struct tw_bitwriter *w, bool v);
/* Pads to the next byte boundary, then copies len raw bytes. */
void tw_bw_bytes(struct tw_bitwriter *w, const void *data, size_t len);
/* Pads with zero bits to the next byte boundary. */
void tw_bw_align(struct tw_bitwriter *w);
/* Returns the bytes used so far, counting a partial last byte. */
size_t tw_bw_size(const struct tw_bitwriter *w);

void tw_br_init(struct tw_bitreader *r, const void *buf, size_t len);

/* Reads `bits` bits (1..32); returns 0 and sets error past the end. */
uint32_t tw_br_bits(struct tw_bitreader *r, unsigned bits);
uint8_t tw_br_u8(struct tw_bitreader *r);
uint16_t tw_br_u16(struct tw_bitreader *r);
uint32_t tw_br_u32(struct tw_bitreader *r);
uint64_t tw_br_u64(struct tw_bitreader *r);
bool tw_br_bool(struct tw_bitreader *r);
/* Aligns, then copies len bytes into out; zero-fills out on error. */
void tw_br_bytes(struct tw_bitreader *r, void *out, size_t len);
void tw_br_align(struct tw_bitreader *r);
/* Returns whole bytes left after aligning the current position up. */
size_t tw_br_remaining_bytes(const struct tw_bitreader *r);
/* Returns true when every byte has been consumed (after alignment). */
bool tw_br_at_end(const struct tw_bitreader *r);

/* Returns the number of bits needed to store values 0..max_value. */
unsigned tw_bits_for(uint32_t max_value);

#endif
