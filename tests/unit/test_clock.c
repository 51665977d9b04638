#include "clock.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define NS 1000000000ull

/* The exact deadline of tick k, rounded up to a whole nanosecond. */
static uint64_t ideal_deadline(uint64_t start, uint32_t hz, uint64_t k)
{
    unsigned __int128 scaled = (unsigned __int128)k * NS + hz - 1;
    return start + (uint64_t)(scaled / hz);
}

static void ticker_has_no_drift(void **state)
{
    (void)state;
    const uint32_t rates[] = {7, 30, 60, 144, 240};
    const uint64_t start = 123456789ull;
    const uint64_t ticks = 1000000;
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        struct tw_ticker t;
        tw_ticker_init(&t, start, rates[i]);
        uint64_t prev = tw_ticker_deadline(&t);
        for (uint64_t k = 0; k < ticks; k++) {
            uint64_t deadline = tw_ticker_deadline(&t);
            uint64_t gap = deadline - prev;
            /* Consecutive deadlines are one period apart, give or take the
             * nanosecond that the exact period is rounded to. */
            if (k > 0 && (gap < NS / rates[i] || gap > NS / rates[i] + 1))
                fail_msg("hz %u tick %llu: gap %llu ns", rates[i],
                         (unsigned long long)k, (unsigned long long)gap);
            if (tw_ticker_due(&t, deadline - 1, 0) != 0)
                fail_msg("hz %u tick %llu ran early", rates[i],
                         (unsigned long long)k);
            if (tw_ticker_due(&t, deadline, 0) != 1)
                fail_msg("hz %u tick %llu did not run", rates[i],
                         (unsigned long long)k);
            prev = deadline;
        }
        assert_int_equal(t.next_tick, ticks);
        assert_int_equal(t.skipped, 0);
        assert_int_equal(tw_ticker_deadline(&t),
                         ideal_deadline(start, rates[i], ticks));
    }
}

static void ticker_not_due_before_deadline(void **state)
{
    (void)state;
    struct tw_ticker t;
    tw_ticker_init(&t, 1000, 10);
    assert_int_equal(tw_ticker_due(&t, 999, 4), 0);
    assert_int_equal(tw_ticker_due(&t, 1000, 4), 1);
    assert_int_equal(tw_ticker_deadline(&t), 1000 + NS / 10);
    assert_int_equal(tw_ticker_due(&t, 1000 + NS / 10 - 1, 4), 0);
    assert_int_equal(t.next_tick, 1);
}

static void ticker_catches_up_within_max_behind(void **state)
{
    (void)state;
    struct tw_ticker t;
    tw_ticker_init(&t, 0, 10);
    /* At 350 ms ticks 0..3 are due: 3 behind with max_behind 3, so they all
     * run back to back. */
    const uint64_t now = 350000000ull;
    int runs = 0;
    while (tw_ticker_due(&t, now, 3))
        runs++;
    assert_int_equal(runs, 4);
    assert_int_equal(t.next_tick, 4);
    assert_int_equal(t.skipped, 0);
}

static void ticker_skips_when_too_far_behind(void **state)
{
    (void)state;
    struct tw_ticker t;
    tw_ticker_init(&t, 0, 10);
    /* At 1050 ms ticks 0..10 are due: 10 behind with max_behind 2. */
    const uint64_t now = 1050000000ull;
    assert_int_equal(tw_ticker_due(&t, now, 2), 1);
    assert_int_equal(t.skipped, 10);
    assert_int_equal(t.next_tick, 11);
    assert_int_equal(tw_ticker_deadline(&t), 1100000000ull);
    assert_int_equal(tw_ticker_due(&t, now, 2), 0);

    /* The grid is kept: the next tick runs at its original deadline. */
    assert_int_equal(tw_ticker_due(&t, 1100000000ull, 2), 1);
    assert_int_equal(t.skipped, 10);
}

static void ticker_skip_keeps_exact_grid(void **state)
{
    (void)state;
    struct tw_ticker t;
    tw_ticker_init(&t, 0, 30);
    /* One hour late at 30 Hz, not a multiple of the rounded period. */
    const uint64_t now = 3600 * NS + 5;
    assert_int_equal(tw_ticker_due(&t, now, 1), 1);
    assert_int_equal(t.skipped, 108000);
    assert_int_equal(t.next_tick, 108001);
    assert_int_equal(tw_ticker_deadline(&t), ideal_deadline(0, 30, 108001));
    assert_true(tw_ticker_deadline(&t) > now);
}

static void ticker_zero_hz_runs_at_one_hz(void **state)
{
    (void)state;
    struct tw_ticker t;
    tw_ticker_init(&t, 0, 0);
    assert_int_equal(tw_ticker_due(&t, 0, 0), 1);
    assert_int_equal(tw_ticker_deadline(&t), NS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ticker_has_no_drift),
        cmocka_unit_test(ticker_not_due_before_deadline),
        cmocka_unit_test(ticker_catches_up_within_max_behind),
        cmocka_unit_test(ticker_skips_when_too_far_behind),
        cmocka_unit_test(ticker_skip_keeps_exact_grid),
        cmocka_unit_test(ticker_zero_hz_runs_at_one_hz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
