/* Monotonic and wall clocks, and the fixed-tick deadline arithmetic. */
#ifndef TW_CLOCK_H
#define TW_CLOCK_H

#include <stdint.h>

/* Returns CLOCK_MONOTONIC in nanoseconds; never jumps with the wall clock. */
uint64_t tw_clock_mono_ns(void);

/* Returns the wall clock as Unix seconds; used only for token expiry. */
uint64_t tw_clock_unix_s(void);

/*
 * Fixed-rate deadlines: tick k is due at start + ceil(k * 1e9 / hz) ns,
 * computed from k itself, so the rounding of the period never accumulates
 * into drift.
 */
struct tw_ticker {
    uint64_t start_ns;
    uint64_t period_ns; /* nominal period, 1e9 / hz rounded down */
    uint32_t hz;
    uint64_t next_tick; /* index of the next tick to run */
    uint64_t skipped;   /* ticks dropped by tw_ticker_due to catch up */
};

void tw_ticker_init(struct tw_ticker *t, uint64_t start_ns, uint32_t hz);

/* Returns the absolute deadline of the next tick. */
uint64_t tw_ticker_deadline(const struct tw_ticker *t);

/*
 * Decides whether a tick is due at now_ns. When the loop is more than
 * max_behind ticks late, the missed deadlines are skipped (counted in
 * t->skipped) instead of being run back to back. Returns 1 when a tick
 * should run now and advances next_tick, 0 when it is not yet due.
 */
int tw_ticker_due(struct tw_ticker *t, uint64_t now_ns, uint32_t max_behind);

#endif
