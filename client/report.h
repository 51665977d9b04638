/*
 * The crowd's progress line, end-of-run summary table and JSON report.
 */
#ifndef TW_REPORT_H
#define TW_REPORT_H

#include "bot.h"

#include <stdio.h>

struct tw_report_input {
    const struct tw_bot *bots;
    uint32_t bot_count;
    const struct tw_crowd_stats *stats;
    uint32_t tick_hz;
    uint64_t now_ns;
};

/* Aggregated figures, computed once and shared by every output. */
struct tw_report {
    uint32_t bots, connected, logged_in;
    double snapshots_per_sec;
    double snapshots_per_sec_min; /* the slowest bot's rate */
    double expected_snapshots_per_sec;
    double rtt_p50_ms, rtt_p99_ms;
    double ping_p50_ms, ping_p99_ms;
    double prediction_p50, prediction_p99; /* world units */
    double jitter_p50_ms, jitter_p99_ms;
    double snapshot_loss_percent;
    uint64_t errors, timeouts, corrections;
    uint64_t event_gaps, event_duplicates, event_out_of_order;
    uint64_t disconnects[TW_REASON_COUNT];
    uint64_t reconnects;

    /* Trades, summed over the bots (see struct tw_trader_counters). */
    struct tw_trader_counters trades;
    /* Distinct committed trade ids, sorted; see tw_report_collect. */
    uint32_t *trade_ids;
    size_t trade_id_count;
};

void tw_report_compute(const struct tw_report_input *in, struct tw_report *r);

/*
 * Fills r->trade_ids with the union of the trade ids the bots saw
 * committed, for the JSON report. Release it with tw_report_free.
 * Returns 0, or -1 when out of memory.
 */
int tw_report_collect(const struct tw_report_input *in, struct tw_report *r)
    __attribute__((warn_unused_result));
void tw_report_free(struct tw_report *r);

/* Writes one progress line, e.g. for stderr once a second. */
void tw_report_progress(FILE *out, const struct tw_report *r, double elapsed_s);

/* Writes the end-of-run summary table. */
void tw_report_summary(FILE *out, const struct tw_report *r);

/* One second of the crowd's life, for the network lab's charts. */
struct tw_timeline_sample {
    double t; /* seconds since the start */
    uint32_t connected;
    double rtt_ms;            /* mean ENet RTT of connected bots */
    double snapshots_per_sec; /* per connected bot, this second */
    double loss_percent;      /* snapshot ticks missed, this second */
    double jitter_ms;         /* mean arrival jitter, this second */
    double ping_ms;           /* mean reliable round trip, this second */
    uint64_t corrections;     /* this second */
};

struct tw_timeline {
    struct tw_timeline_sample *samples;
    size_t count, cap;
    double last_t;
    uint64_t last_snapshots, last_missed, last_corrections;
};

/* Appends a sample covering the time since the previous one. */
void tw_timeline_add(struct tw_timeline *tl, const struct tw_bot *bots,
                     uint32_t bot_count, struct tw_crowd_stats *cs,
                     double t);
void tw_timeline_free(struct tw_timeline *tl);

/*
 * Writes the JSON report, with the timeline when one is given, to path.
 * Returns 0, or -1 with errno set.
 */
int tw_report_write_json(const char *path, const struct tw_report *r,
                         const struct tw_timeline *tl)
    __attribute__((warn_unused_result));

#endif
