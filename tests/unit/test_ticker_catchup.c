/*
 * The fixed-tick loop under overload, in simulated time: a 500 ms stall and
 * then 25 ms of work per 60 Hz tick for 5 s. Catch-up must be capped (no
 * burst of more than max_behind + 1 late ticks), and ticks must be back on
 * their deadlines within a second of the load ending.
 */
#include "clock.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#define MS 1000000ull
#define HZ 60u
#define MAX_BEHIND 5u

static const uint64_t stall_at = 1000 * MS;
static const uint64_t stall = 500 * MS;
static const uint64_t load_end = 1000 * MS + 500 * MS + 5000 * MS;

/* Work done by the tick that starts at t (simulated server). */
static uint64_t work_at(uint64_t t, int *stalled)
{
    if (!*stalled && t >= stall_at) {
        *stalled = 1;
        return stall;
    }
    if (t >= stall_at && t < load_end)
        return 25 * MS;
    return MS;
}

static void spiral_of_death_is_capped(void **state)
{
    (void)state;
    struct tw_ticker tk;
    tw_ticker_init(&tk, 0, HZ);
    uint64_t t = 0;
    int stalled = 0;
    unsigned late_run = 0, longest_late_run = 0;
    uint64_t back_on_time = 0;
    unsigned ticks_during_load = 0;

    while (t < load_end + 3000 * MS) {
        uint64_t deadline = tw_ticker_deadline(&tk);
        uint64_t skipped = tk.skipped;
        if (!tw_ticker_due(&tk, t, MAX_BEHIND)) {
            t = deadline; /* sleep until the next deadline */
            continue;
        }
        if (tk.skipped != skipped)
            deadline = tw_ticker_deadline(&tk) - tk.period_ns;
        uint64_t late = t - deadline;
        if (late > tk.period_ns) {
            late_run++;
            if (late_run > longest_late_run)
                longest_late_run = late_run;
        } else {
            late_run = 0;
            if (t >= load_end && back_on_time == 0)
                back_on_time = t;
        }
        if (t >= stall_at + stall && t < load_end)
            ticks_during_load++;
        t += work_at(t, &stalled);
    }

    assert_true(tk.skipped > 0);
    /* A skip puts the loop on the latest deadline; late ticks between
     * skips come only from work that is slower than the period. */
    assert_true(longest_late_run > 0);
    assert_true(back_on_time >= load_end);
    assert_true(back_on_time - load_end <= 1000 * MS);
    /* 25 ms of work allows at most 40 ticks a second: no burst beyond. */
    assert_true(ticks_during_load <= 5 * 40 + 1);
}

static void stall_runs_at_most_max_behind_plus_one_late_ticks(void **state)
{
    (void)state;
    struct tw_ticker tk;
    tw_ticker_init(&tk, 0, HZ);
    uint64_t t = 0;
    while (tk.next_tick < 60) {
        t = tw_ticker_deadline(&tk);
        assert_int_equal(tw_ticker_due(&tk, t, MAX_BEHIND), 1);
    }

    t += 500 * MS; /* the stall: 30 deadlines missed */
    unsigned back_to_back = 0;
    while (tw_ticker_due(&tk, t, MAX_BEHIND)) {
        back_to_back++;
        t += MS / 10; /* cheap ticks after the stall */
    }
    assert_true(tk.skipped >= 500 * HZ / 1000 - MAX_BEHIND - 1);
    assert_true(back_to_back >= 1);
    assert_true(back_to_back <= MAX_BEHIND + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spiral_of_death_is_capped),
        cmocka_unit_test(stall_runs_at_most_max_behind_plus_one_late_ticks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
