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

void tw_ticker_init(struct tw_ticker *t, uint64_t start_ns, uint32_t hz)
{
    t->start_ns = start_ns;
    t->period_ns = 1000000000u / (hz ? hz : 1);
    t->next_tick = 0;
    t->skipped = 0;
}

uint64_t tw_ticker_deadline(const struct tw_ticker *t)
{
    return t->start_ns + t->next_tick * t->period_ns;
}

int tw_ticker_due(struct tw_ticker *t, uint64_t now_ns, uint32_t max_behind)
{
    uint64_t deadline = tw_ticker_deadline(t);
    if (now_ns < deadline)
        return 0;

    uint64_t behind = (now_ns - deadline) / t->period_ns;
    if (behind > max_behind) {
        /* Resume on the grid: the tick that runs now is the latest one due. */
        uint64_t latest = (now_ns - t->start_ns) / t->period_ns;
        t->skipped += latest - t->next_tick;
        t->next_tick = latest;
    }
    t->next_tick++;
    return 1;
}
