/*
 * Packets waiting for their send time: a binary min-heap ordered by due
 * time, then by insertion, so packets due at the same microsecond leave in
 * the order they were scheduled.
 */
#ifndef TW_RELAY_DELAY_QUEUE_H
#define TW_RELAY_DELAY_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct tw_delayq_item {
    uint64_t due_us;
    uint64_t seq;      /* set by tw_delayq_push */
    uint32_t mapping;  /* owner's index in the relay's mapping table */
    uint8_t dir;       /* enum tw_dir */
    uint32_t len;
    uint8_t *data;     /* malloc'd; the heap takes ownership */
};

struct tw_delayq {
    struct tw_delayq_item *items;
    size_t count;
    size_t cap;
    size_t max_items;  /* push fails beyond this */
    size_t bytes;      /* payload bytes held */
    size_t max_bytes;  /* push fails beyond this */
    uint64_t next_seq;
};

void tw_delayq_init(struct tw_delayq *s, size_t max_items, size_t max_bytes);

/*
 * Inserts item; on success the heap owns item->data. Returns 0, or -1
 * when a bound would be exceeded or memory is short (the caller still
 * owns data then).
 */
int tw_delayq_push(struct tw_delayq *s, const struct tw_delayq_item *item)
    __attribute__((warn_unused_result));

/* Returns the earliest item, or NULL when empty. */
const struct tw_delayq_item *tw_delayq_peek(const struct tw_delayq *s);

/* Moves the earliest item into *out, and the caller then owns out->data.
 * The heap must not be empty. */
void tw_delayq_pop(struct tw_delayq *s, struct tw_delayq_item *out);

/* Frees every payload and the heap itself. */
void tw_delayq_free(struct tw_delayq *s);

#endif
