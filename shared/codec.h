/*
 * Helpers shared by the message encoders and decoders (protocol.c,
 * trade_msgs.c): the common checks at the start and end of every message.
 */
#ifndef TW_CODEC_H
#define TW_CODEC_H

#include "bits.h"
#include "protocol.h"

/* Returns the size written, or -TW_DROP_OVERSIZED when the writer overflowed. */
int tw_codec_finish_write(const struct tw_bitwriter *w);

/*
 * Starts a decoder: rejects an empty or over-long payload, then reads and
 * checks the id byte. Returns TW_OK or a negative enum tw_drop value.
 */
int tw_codec_start_read(struct tw_bitreader *r, const uint8_t *p, size_t len,
                        uint8_t id);

/*
 * Finishes a decoder: a read past the end means a truncated payload, and
 * bytes left over mean an oversized one. Returns TW_OK or -TW_DROP_*.
 */
int tw_codec_finish_read(const struct tw_bitreader *r);

#endif
