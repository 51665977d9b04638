#include "stats.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Bucket index: values below 8 map to themselves, then 8 per octave. */
static unsigned bucket_of(uint64_t v)
{
    if (v < TW_HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned sub = (unsigned)(v >> (msb - 3)) & (TW_HIST_SUB - 1);
    unsigned index = (msb - 2) * TW_HIST_SUB + sub;
    return index < TW_HIST_BUCKETS ? index : TW_HIST_BUCKETS - 1;
}

uint64_t tw_hist_bucket_upper(unsigned i)
{
    if (i < TW_HIST_SUB)
        return i;
    unsigned msb = i / TW_HIST_SUB + 2;
    uint64_t sub = i % TW_HIST_SUB;
    if (msb >= 63)
        return UINT64_MAX;
    uint64_t lower = (TW_HIST_SUB + sub) << (msb - 3);
    return lower + (1ull << (msb - 3)) - 1;
}

void tw_hist_add(struct tw_hist *h, uint64_t value)
{
    h->count++;
    h->sum += value;
    if (value > h->max)
        h->max = value;
    h->buckets[bucket_of(value)]++;
}

uint64_t tw_hist_percentile(const struct tw_hist *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(p * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < TW_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen > rank) {
            uint64_t upper = tw_hist_bucket_upper(i);
            return upper < h->max ? upper : h->max;
        }
    }
    return h->max;
}

void tw_hist_merge(struct tw_hist *into, const struct tw_hist *from)
{
    into->count += from->count;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
    for (unsigned i = 0; i < TW_HIST_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
}

uint64_t tw_stats_drops_total(const struct tw_stats *s)
{
    uint64_t total = 0;
    for (unsigned i = 1; i < TW_DROP_COUNT; i++)
        total += s->drops[i];
    return total;
}

uint64_t tw_stats_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2)
        return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}
