#include "clock.h"

#include <time.h>

uint64_t tw_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t tw_clock_unix_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec;
}

#define NS_PER_S 1000000000u

void tw_ticker_init(struct tw_ticker *t, uint64_t start_ns, uint32_t hz)
{
    t->start_ns = start_ns;
    t->hz = hz ? hz : 1;
    t->period_ns = NS_PER_S / t->hz;
    t->next_tick = 0;
    t->skipped = 0;
}

/* Returns ceil(k * 1e9 / hz) without overflowing for any k below 2^64 / 1e9. */
static uint64_t tick_offset_ns(const struct tw_ticker *t, uint64_t k)
{
    uint64_t whole = k / t->hz;
    uint64_t part = k % t->hz;
    return whole * NS_PER_S + (part * NS_PER_S + t->hz - 1) / t->hz;
}

uint64_t tw_ticker_deadline(const struct tw_ticker *t)
{
    return t->start_ns + tick_offset_ns(t, t->next_tick);
}

int tw_ticker_due(struct tw_ticker *t, uint64_t now_ns, uint32_t max_behind)
{
    if (now_ns < tw_ticker_deadline(t))
        return 0;

    /* The latest tick due is floor(elapsed * hz / 1e9), split the same way. */
    uint64_t elapsed = now_ns - t->start_ns;
    uint64_t latest = elapsed / NS_PER_S * t->hz +
                      elapsed % NS_PER_S * t->hz / NS_PER_S;
    if (latest - t->next_tick > max_behind) {
        /* Resume on the grid: the tick that runs now is the latest one due. */
        t->skipped += latest - t->next_tick;
        t->next_tick = latest;
    }
    t->next_tick++;
    return 1;
}
