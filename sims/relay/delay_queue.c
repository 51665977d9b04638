#include "delay_queue.h"

#include <stdlib.h>
#include <string.h>

void tw_delayq_init(struct tw_delayq *s, size_t max_items, size_t max_bytes)
{
    memset(s, 0, sizeof(*s));
    s->max_items = max_items;
    s->max_bytes = max_bytes;
}

static int earlier(const struct tw_delayq_item *a,
                   const struct tw_delayq_item *b)
{
    if (a->due_us != b->due_us)
        return a->due_us < b->due_us;
    return a->seq < b->seq;
}

static void swap_items(struct tw_delayq_item *a, struct tw_delayq_item *b)
{
    struct tw_delayq_item t = *a;
    *a = *b;
    *b = t;
}

int tw_delayq_push(struct tw_delayq *s, const struct tw_delayq_item *item)
{
    if (s->count >= s->max_items || item->len > s->max_bytes - s->bytes)
        return -1;
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        if (cap > s->max_items)
            cap = s->max_items;
        struct tw_delayq_item *grown = realloc(s->items, cap * sizeof(*grown));
        if (!grown)
            return -1;
        s->items = grown;
        s->cap = cap;
    }

    size_t i = s->count++;
    s->items[i] = *item;
    s->items[i].seq = s->next_seq++;
    s->bytes += item->len;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(&s->items[i], &s->items[parent]))
            break;
        swap_items(&s->items[i], &s->items[parent]);
        i = parent;
    }
    return 0;
}

const struct tw_delayq_item *tw_delayq_peek(const struct tw_delayq *s)
{
    return s->count ? &s->items[0] : NULL;
}

void tw_delayq_pop(struct tw_delayq *s, struct tw_delayq_item *out)
{
    *out = s->items[0];
    s->bytes -= out->len;
    s->items[0] = s->items[--s->count];

    size_t i = 0;
    for (;;) {
        size_t left = 2 * i + 1, right = left + 1, best = i;
        if (left < s->count && earlier(&s->items[left], &s->items[best]))
            best = left;
        if (right < s->count && earlier(&s->items[right], &s->items[best]))
            best = right;
        if (best == i)
            break;
        swap_items(&s->items[i], &s->items[best]);
        i = best;
    }
}

void tw_delayq_free(struct tw_delayq *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->items[i].data);
    free(s->items);
    memset(s, 0, sizeof(*s));
}
