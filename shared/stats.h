/*
 * Counters and histograms shared by the server and the client. A histogram
 * keeps log-linear buckets (8 per power of two), so percentiles are exact
 * to within 12.5 % at any scale with a fixed 4 KiB footprint.
 */
#ifndef TW_STATS_H
#define TW_STATS_H

#include "protocol.h"

#include <stdint.h>

#define TW_HIST_SUB 8u
#define TW_HIST_BUCKETS (64u * TW_HIST_SUB)

struct tw_hist {
    uint64_t count;
    uint64_t sum;
    uint64_t max;
    uint64_t buckets[TW_HIST_BUCKETS];
};

void tw_hist_add(struct tw_hist *h, uint64_t value);
/* Returns the value below which a fraction p (0..1) of samples fall. */
uint64_t tw_hist_percentile(const struct tw_hist *h, double p);
/* Returns the upper bound of bucket i, for export. */
uint64_t tw_hist_bucket_upper(unsigned i);
void tw_hist_merge(struct tw_hist *into, const struct tw_hist *from);

/* Server counters; the tick thread owns and writes them. */
struct tw_stats {
    uint64_t start_ns;
    uint64_t connects_total;
    uint64_t connects_active;
    uint64_t logins_total;
    uint64_t players_active;
    uint64_t refusals[TW_REASON_COUNT];
    uint64_t disconnects[TW_REASON_COUNT];
    uint64_t msgs_in, msgs_out;
    uint64_t bytes_in, bytes_out;
    uint64_t drops[TW_DROP_COUNT];
    uint64_t ticks;
    uint64_t tick_overruns; /* ticks whose work took longer than a period */
    uint64_t ticks_skipped; /* deadlines dropped to catch up */
    uint64_t snapshots_sent;
    uint64_t snapshot_entities_cut; /* in view but left out for room */
    uint64_t snapshots_full;    /* sent without a baseline */
    uint64_t snapshot_bytes;    /* snapshot payloads before sealing */
    uint64_t snapshot_entities; /* entities in the snapshots sent */
    uint64_t unreliable_over_mtu;   /* unreliable sends refused: would fragment */
    struct tw_hist tick_work_us;    /* time spent inside a tick */
    struct tw_hist tick_late_us;    /* tick start minus its deadline */
    struct tw_hist input_latency_us; /* input arrival to snapshot sent */
};

/* Returns the sum of every drop counter. */
uint64_t tw_stats_drops_total(const struct tw_stats *s);

/* Returns the resident set size of this process in bytes, or 0. */
uint64_t tw_stats_rss_bytes(void);

#endif
