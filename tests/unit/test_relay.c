/*
 * Impairment decisions of the relay, driven packet by packet without
 * sockets: each statistic is checked on a seeded run, with tolerances of
 * several standard deviations so that the seeds chosen here are not special.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "delay_queue.h"
#include "impair.h"
#include "profile.h"

#define MS 1000u

static struct tw_impair_profile make_profile(const struct tw_impair_params *p)
{
    struct tw_impair_profile prof;
    memset(&prof, 0, sizeof(prof));
    strcpy(prof.name, "test");
    prof.base[TW_DIR_UP] = *p;
    prof.base[TW_DIR_DOWN] = *p;
    return prof;
}

static struct tw_impair_params no_impairment(void)
{
    struct tw_impair_params p;
    tw_impair_params_default(&p);
    return p;
}

/* Feeds n packets of len bytes spaced by gap_us and returns the flow state. */
static uint64_t feed(struct tw_impair_dir *d, unsigned n, size_t len,
                     uint64_t gap_us)
{
    uint64_t flow = 0;
    struct tw_impair_verdict v;
    for (unsigned i = 0; i < n; i++)
        tw_impair_decide(d, (uint64_t)i * gap_us, len, &flow, &v);
    return flow;
}

static void uniform_loss_near_ten_percent(void **state)
{
    (void)state;
    struct tw_impair_params p = no_impairment();
    p.loss_percent = 10.0;
    struct tw_impair_profile prof = make_profile(&p);
    struct tw_impair_dir d;
    tw_impair_dir_init(&d, &prof, TW_DIR_UP, 42, 0);

    feed(&d, 20000, 100, 1000);
    double rate = (double)d.counters.dropped_loss / 20000.0;
    assert_int_equal(d.counters.received, 20000);
    assert_true(rate > 0.085);
    assert_true(rate < 0.115);
}

static void gilbert_elliott_mean_loss_and_burst(void **state)
{
    (void)state;
    struct tw_impair_params p = no_impairment();
    p.ge_enabled = 1;
    p.ge.p_good_to_bad = 5.0;
    p.ge.p_bad_to_good = 25.0;
    p.ge.loss_in_good = 0.0;
    p.ge.loss_in_bad = 100.0;
    struct tw_impair_profile prof = make_profile(&p);
    struct tw_impair_dir d;
    tw_impair_dir_init(&d, &prof, TW_DIR_DOWN, 7, 0);

    /* Expected: loss 5 / (5 + 25) = 16.7 %, mean burst 1 / 0.25 = 4. */
    const unsigned n = 100000;
    uint64_t flow = 0, bursts = 0, lost = 0;
    int in_burst = 0;
    struct tw_impair_verdict v;
    for (unsigned i = 0; i < n; i++) {
        tw_impair_decide(&d, (uint64_t)i * 100, 64, &flow, &v);
        int dropped = v.fate == TW_IMPAIR_DROP_LOSS;
        lost += (uint64_t)dropped;
        if (dropped && !in_burst)
            bursts++;
        in_burst = dropped;
    }
    double mean_loss = (double)lost / n;
    double mean_burst = (double)lost / (double)bursts;
    assert_int_equal(lost, d.counters.dropped_loss);
    assert_true(mean_loss > 0.152);
    assert_true(mean_loss < 0.182);
    assert_true(mean_burst > 3.6);
    assert_true(mean_burst < 4.4);
}

static void duplicate_rate_and_copy_order(void **state)
{
    (void)state;
    struct tw_impair_params p = no_impairment();
    p.duplicate_percent = 5.0;
    p.delay_us = 20 * MS;
    p.jitter_us = 5 * MS;
    struct tw_impair_profile prof = make_profile(&p);
    struct tw_impair_dir d;
    tw_impair_dir_init(&d, &prof, TW_DIR_UP, 3, 0);

    uint64_t flow = 0, twos = 0;
    struct tw_impair_verdict v;
    for (unsigned i = 0; i < 20000; i++) {
        tw_impair_decide(&d, (uint64_t)i * 1000, 200, &flow, &v);
        assert_int_equal(v.fate, TW_IMPAIR_PASS);
        if (v.copies == 2) {
            twos++;
            assert_true(v.copy[1].due_us >= v.copy[0].due_us);
        }
    }
    double rate = (double)twos / 20000.0;
    assert_int_equal(twos, d.counters.duplicated);
    assert_true(rate > 0.04);
    assert_true(rate < 0.06);
}

static void reorder_lets_later_packets_pass(void **state)
{
    (void)state;
    struct tw_impair_params p = no_impairment();
    p.delay_us = 10 * MS;
    p.reorder_percent = 10.0;
    p.reorder_extra_us = 5 * MS;
    struct tw_impair_profile prof = make_profile(&p);
    struct tw_impair_dir d;
    tw_impair_dir_init(&d, &prof, TW_DIR_UP, 11, 0);

    const unsigned n = 20000;
    uint64_t *due = calloc(n, sizeof(*due));
    int *reordered = calloc(n, sizeof(*reordered));
    assert_non_null(due);
    assert_non_null(reordered);
    uint64_t flow = 0;
    struct tw_impair_verdict v;
    for (unsigned i = 0; i < n; i++) {
        tw_impair_decide(&d, (uint64_t)i * 1000, 100, &flow, &v);
        due[i] = v.copy[0].due_us;
        reordered[i] = v.reordered;
    }

    unsigned overtaken = 0;
    uint64_t last_in_order = 0;
    for (unsigned i = 0; i + 1 < n; i++) {
        if (reordered[i] && !reordered[i + 1] && due[i + 1] < due[i])
            overtaken++;
        if (!reordered[i]) {
            assert_true(due[i] >= last_in_order);
            last_in_order = due[i];
        }
    }
    double rate = (double)d.counters.reordered / n;
    assert_true(rate > 0.085);
    assert_true(rate < 0.115);
    /* Roughly 90 % of reordered packets are followed by a normal one. */
    assert_true(overtaken > d.counters.reordered * 8 / 10);
    free(due);
    free(reordered);
}

static int bits_differing(const uint8_t *a, const uint8_t *b, size_t len)
{
    int count = 0;
    for (size_t i = 0; i < len; i++)
        count += __builtin_popcount((unsigned)(a[i] ^ b[i]));
    return count;
}

static void corruption_flips_exactly_one_bit(void **state)
{
    (void)state;
    struct tw_impair_params p = no_impairment();
    p.corrupt_percent = 100.0;
    struct tw_impair_profile prof = make_profile(&p);
    struct tw_impair_dir d;
    tw_impair_dir_init(&d, &prof, TW_DIR_DOWN, 5, 0);

    uint8_t original[37], copy[37];
    for (size_t i = 0; i < sizeof(original); i++)
        original[i] = (uint8_t)(i * 31u + 7u);
    uint64_t flow = 0;
    struct tw_impair_verdict v;
    for (unsigned i = 0; i < 2000; i++) {
        tw_impair_decide(&d, (uint64_t)i * 100, sizeof(original), &flow, &v);
        assert_true(v.copy[0].corrupt_bit >= 0);
        assert_true(v.copy[0].corrupt_bit < (int64_t)sizeof(original) * 8);
        memcpy(copy, original, sizeof(copy));
        tw_impair_flip_bit(copy, sizeof(copy), (uint64_t)v.copy[0].corrupt_bit);
        assert_int_equal(bits_differing(original, copy, sizeof(copy)), 1);
    }
    assert_int_equal(d.counters.corrupted, 2000);
}

static void corruption_rate_within_tolerance(void **state)
{
    (void)state;
    struct tw_impair_params p = no_impairment();
    p.corrupt_percent = 3.0;
    struct tw_impair_profile prof = make_profile(&p);
    struct tw_impair_dir d;
    tw_impair_dir_init(&d, &prof, TW_DIR_UP, 9, 0);

    feed(&d, 20000, 80, 500);
    double rate = (double)d.counters.corrupted / 20000.0;
    assert_true(rate > 0.022);
    assert_true(rate < 0.038);
}

static void jitter_keeps_order_without_reorder(void **state)
{
    (void)state;
    struct tw_impair_params p = no_impairment();
    p.delay_us = 50 * MS;
    p.jitter_us = 30 * MS;
    struct tw_impair_profile prof = make_profile(&p);
    struct tw_impair_dir d;
    tw_impair_dir_init(&d, &prof, TW_DIR_UP, 13, 0);

    uint64_t flow = 0, last = 0, min_delay = UINT64_MAX, max_delay = 0;
    struct tw_impair_verdict v;
    for (unsigned i = 0; i < 5000; i++) {
        uint64_t now = (uint64_t)i * 16 * MS;
        tw_impair_decide(&d, now, 120, &flow, &v);
        assert_true(v.copy[0].due_us >= last);
        last = v.copy[0].due_us;
        uint64_t delay = v.copy[0].due_us - now;
        if (delay < min_delay)
            min_delay = delay;
        if (delay > max_delay)
            max_delay = delay;
    }
    /* The jitter is really applied: delays span most of 20..80 ms. */
    assert_true(min_delay >= 20 * MS);
    assert_true(min_delay < 25 * MS);
    assert_true(max_delay <= 80 * MS);
    assert_true(max_delay > 75 * MS);
}

static void rate_limit_and_queue_bound_hold(void **state)
{
    (void)state;
    struct tw_impair_params p = no_impairment();
    p.rate_kbit = 1000; /* 125000 bytes per second */
    p.queue_packets = 50;
    struct tw_impair_profile prof = make_profile(&p);
    struct tw_impair_dir d;
    tw_impair_dir_init(&d, &prof, TW_DIR_DOWN, 17, 0);

    /* Offer 1000-byte packets at 200 per second for 10 s: 1.6x the rate. */
    enum { N = 2000 };
    uint64_t *due = calloc(N, sizeof(*due));
    assert_non_null(due);
    unsigned accepted = 0;
    uint64_t flow = 0;
    struct tw_impair_verdict v;
    for (unsigned i = 0; i < N; i++) {
        uint64_t now = (uint64_t)i * 5 * MS;
        tw_impair_decide(&d, now, 1000, &flow, &v);
        if (v.fate != TW_IMPAIR_PASS)
            continue;
        due[accepted++] = v.copy[0].due_us;
        unsigned queued = 0;
        for (unsigned k = 0; k < accepted; k++)
            queued += due[k] > now;
        assert_true(queued <= 50);
    }

    /* Any one-second window carries at most the rate plus one packet. */
    for (unsigned i = 0; i < accepted; i++) {
        uint64_t bytes = 0;
        for (unsigned k = i; k < accepted && due[k] < due[i] + 1000000; k++)
            bytes += 1000;
        assert_true(bytes <= 125000 + 1000);
    }
    assert_true(d.counters.dropped_queue > 0);
    assert_int_equal(accepted + d.counters.dropped_queue, N);
    /* The link stays busy: about 125 packets per second get through. */
    assert_true(accepted > 1200);
    free(due);
}

static void lossy_params(struct tw_impair_params *p)
{
    *p = no_impairment();
    p->delay_us = 30 * MS;
    p->jitter_us = 10 * MS;
    p->loss_percent = 3;
    p->ge_enabled = 1;
    p->ge = (struct tw_ge_params){2, 30, 1, 60};
    p->duplicate_percent = 2;
    p->reorder_percent = 2;
    p->corrupt_percent = 2;
    p->rate_kbit = 2000;
    p->queue_packets = 20;
}

static void same_seed_same_decisions(void **state)
{
    (void)state;
    struct tw_impair_params p;
    lossy_params(&p);
    struct tw_impair_profile prof = make_profile(&p);
    struct tw_impair_dir a, b, c;
    tw_impair_dir_init(&a, &prof, TW_DIR_UP, 1234, 0);
    tw_impair_dir_init(&b, &prof, TW_DIR_UP, 1234, 0);
    tw_impair_dir_init(&c, &prof, TW_DIR_UP, 1235, 0);

    uint64_t fa = 0, fb = 0, fc = 0;
    unsigned differ = 0;
    for (unsigned i = 0; i < 5000; i++) {
        struct tw_impair_verdict va, vb, vc;
        size_t len = 50 + i % 900;
        uint64_t now = (uint64_t)i * 2 * MS;
        tw_impair_decide(&a, now, len, &fa, &va);
        tw_impair_decide(&b, now, len, &fb, &vb);
        tw_impair_decide(&c, now, len, &fc, &vc);
        assert_int_equal(va.fate, vb.fate);
        assert_int_equal(va.copies, vb.copies);
        assert_int_equal(va.reordered, vb.reordered);
        for (unsigned k = 0; k < va.copies; k++) {
            assert_int_equal(va.copy[k].due_us, vb.copy[k].due_us);
            assert_int_equal(va.copy[k].corrupt_bit, vb.copy[k].corrupt_bit);
        }
        differ += va.fate != vc.fate || va.copies != vc.copies ||
                  (va.copies && va.copy[0].due_us != vc.copy[0].due_us);
    }
    assert_memory_equal(&a.counters, &b.counters, sizeof(a.counters));
    assert_true(differ > 100);
}

static void directions_draw_distinct_streams(void **state)
{
    (void)state;
    struct tw_impair_params p = no_impairment();
    p.loss_percent = 50;
    struct tw_impair_profile prof = make_profile(&p);
    struct tw_impair_dir up, down;
    tw_impair_dir_init(&up, &prof, TW_DIR_UP, 99, 0);
    tw_impair_dir_init(&down, &prof, TW_DIR_DOWN, 99, 0);

    uint64_t fu = 0, fd = 0;
    unsigned differ = 0;
    for (unsigned i = 0; i < 1000; i++) {
        struct tw_impair_verdict vu, vd;
        tw_impair_decide(&up, i, 10, &fu, &vu);
        tw_impair_decide(&down, i, 10, &fd, &vd);
        differ += vu.fate != vd.fate;
    }
    assert_true(differ > 300);
}

static struct tw_impair_profile two_phase_profile(int repeat)
{
    struct tw_impair_params base = no_impairment();
    struct tw_impair_profile prof = make_profile(&base);
    prof.phase_count = 2;
    prof.phases_repeat = repeat;
    prof.phases[0].duration_us = 1000000;
    prof.phases[0].dir[TW_DIR_UP] = base;
    prof.phases[0].dir[TW_DIR_DOWN] = base;
    prof.phases[1].duration_us = 500000;
    prof.phases[1].dir[TW_DIR_UP] = base;
    prof.phases[1].dir[TW_DIR_DOWN] = base;
    prof.phases[1].dir[TW_DIR_UP].loss_percent = 100;
    prof.phases[1].dir[TW_DIR_DOWN].loss_percent = 100;
    return prof;
}

static void phases_switch_at_boundaries(void **state)
{
    (void)state;
    struct tw_impair_profile once = two_phase_profile(0);
    struct tw_impair_profile cycle = two_phase_profile(1);
    static const struct {
        uint64_t t;
        int once_phase;
        int cycle_phase;
    } cases[] = {
        {0, 0, 0},          {999999, 0, 0},   {1000000, 1, 1},
        {1499999, 1, 1},    {1500000, -1, 0}, {2499999, -1, 0},
        {2500000, -1, 1},   {3000000, -1, 0}, {100500000, -1, 0}, {100000000, -1, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int phase;
        const struct tw_impair_params *p =
            tw_impair_params_at(&once, TW_DIR_UP, cases[i].t, &phase);
        assert_int_equal(phase, cases[i].once_phase);
        assert_true(p->loss_percent == (phase == 1 ? 100.0 : 0.0));
        tw_impair_params_at(&cycle, TW_DIR_DOWN, cases[i].t, &phase);
        assert_int_equal(phase, cases[i].cycle_phase);
    }
}

static void phase_outage_drops_every_packet(void **state)
{
    (void)state;
    struct tw_impair_profile prof = two_phase_profile(0);
    struct tw_impair_dir d;
    /* The clock starts at 5 s: phases count from the start time. */
    tw_impair_dir_init(&d, &prof, TW_DIR_UP, 1, 5000000);

    uint64_t flow = 0;
    struct tw_impair_verdict v;
    for (uint64_t t = 0; t < 2000000; t += 1000) {
        tw_impair_decide(&d, 5000000 + t, 100, &flow, &v);
        int in_outage = t >= 1000000 && t < 1500000;
        int expected_phase = -1;
        if (t < 1000000)
            expected_phase = 0;
        else if (in_outage)
            expected_phase = 1;
        assert_int_equal(v.fate == TW_IMPAIR_DROP_LOSS, in_outage);
        assert_int_equal(v.phase, expected_phase);
    }
    assert_int_equal(d.counters.dropped_loss, 500);
}

static void profile_layers_base_phase_and_direction(void **state)
{
    (void)state;
    static const char text[] =
        "{\"name\":\"x\",\"source\":\"test\",\"delay_ms\":10,"
        "\"jitter_ms\":2.5,\"up\":{\"rate_kbit\":300},"
        "\"down\":{\"delay_ms\":20},"
        "\"gilbert_elliott\":{\"p_good_to_bad\":1,\"p_bad_to_good\":50,"
        "\"loss_in_bad\":100},"
        "\"phases\":[{\"duration_s\":20},"
        "{\"duration_s\":3,\"loss_percent\":100,\"down\":{\"delay_ms\":5}}],"
        "\"phases_repeat\":true}";
    struct tw_impair_profile prof;
    char err[256] = "";
    assert_int_equal(tw_profile_parse(text, strlen(text), &prof, err,
                                      sizeof(err)), 0);
    assert_string_equal(prof.name, "x");
    assert_int_equal(prof.base[TW_DIR_UP].delay_us, 10000);
    assert_int_equal(prof.base[TW_DIR_UP].jitter_us, 2500);
    assert_int_equal(prof.base[TW_DIR_UP].rate_kbit, 300);
    assert_int_equal(prof.base[TW_DIR_DOWN].rate_kbit, 0);
    assert_int_equal(prof.base[TW_DIR_DOWN].delay_us, 20000);
    assert_true(prof.base[TW_DIR_DOWN].ge_enabled);
    assert_true(prof.base[TW_DIR_DOWN].ge.loss_in_bad == 100.0);
    assert_int_equal(prof.phase_count, 2);
    assert_true(prof.phases_repeat);
    assert_int_equal(prof.phases[0].duration_us, 20000000);
    assert_int_equal(prof.phases[0].dir[TW_DIR_DOWN].delay_us, 20000);
    assert_true(prof.phases[1].dir[TW_DIR_UP].loss_percent == 100.0);
    assert_int_equal(prof.phases[1].dir[TW_DIR_UP].rate_kbit, 300);
    assert_int_equal(prof.phases[1].dir[TW_DIR_DOWN].delay_us, 5000);
}

static void profile_rejects_bad_input(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *expect; /* substring of the error */
    } cases[] = {
        {"{\"source\":\"s\",\"loss_percent\":101}", "loss_percent"},
        {"{\"source\":\"s\",\"delay\":5}", "delay: unknown key"},
        {"{\"loss_percent\":1}", "source: missing"},
        {"{\"source\":\"s\",\"queue_packets\":0}", "queue_packets"},
        {"{\"source\":\"s\",\"queue_packets\":2.5}", "whole number"},
        {"{\"source\":\"s\",\"up\":{\"up\":{}}}", "up.up: unknown key"},
        {"{\"source\":\"s\",\"jitter_ms\":\"3\"}", "expected a number"},
        {"{\"source\":\"s\",\"phases\":[]}", "phases"},
        {"{\"source\":\"s\",\"phases\":[{\"loss_percent\":5}]}",
         "phases[0].duration_s"},
        {"{\"source\":\"s\",\"delay_ms\":1,\"delay_ms\":2}", "more than once"},
        {"{\"source\":\"s\",\"gilbert_elliott\":{\"p\":1}}",
         "gilbert_elliott.p: unknown key"},
        {"{\"source\":\"s\",\"phases_repeat\":1}", "phases_repeat"},
        {"[1,2]", "expected an object"},
        {"{\"source\":", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tw_impair_profile prof;
        char err[256] = "";
        int rc = tw_profile_parse(cases[i].text, strlen(cases[i].text), &prof,
                                  err, sizeof(err));
        assert_int_equal(rc, -1);
        if (!strstr(err, cases[i].expect))
            fail_msg("case %zu: error '%s' lacks '%s'", i, err,
                     cases[i].expect);
    }
}

static void shipped_profiles_load(void **state)
{
    (void)state;
    static const char *const names[] = {"lan", "wifi", "lte", "3g",
                                        "edge", "lossy", "outage"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct tw_impair_profile prof;
        char err[512] = "";
        int rc = tw_profile_load(names[i], TW_RELAY_PROFILE_DIR, &prof, err,
                                 sizeof(err));
        if (rc != 0)
            fail_msg("%s: %s", names[i], err);
        assert_string_equal(prof.name, names[i]);
        assert_true(strlen(prof.source) > 10);
    }

    struct tw_impair_profile prof;
    char err[512] = "";
    assert_int_equal(tw_profile_load("outage", TW_RELAY_PROFILE_DIR, &prof,
                                     err, sizeof(err)), 0);
    int phase;
    tw_impair_params_at(&prof, TW_DIR_UP, 21000000, &phase);
    assert_int_equal(phase, 1);
    assert_int_equal(tw_profile_load("../etc/passwd", TW_RELAY_PROFILE_DIR,
                                     &prof, err, sizeof(err)), -1);
    assert_int_equal(tw_profile_load("no-such-profile", TW_RELAY_PROFILE_DIR,
                                     &prof, err, sizeof(err)), -1);
}

static void delay_queue_orders_by_due_then_arrival(void **state)
{
    (void)state;
    struct tw_delayq q;
    tw_delayq_init(&q, 4, 1000);
    static const uint64_t due[] = {30, 10, 30, 20};
    for (unsigned i = 0; i < 4; i++) {
        struct tw_delayq_item item = {.due_us = due[i], .mapping = i,
                                      .len = 1, .data = malloc(1)};
        assert_int_equal(tw_delayq_push(&q, &item), 0);
    }
    struct tw_delayq_item extra = {.due_us = 1, .len = 1};
    assert_int_equal(tw_delayq_push(&q, &extra), -1);

    static const uint32_t expect[] = {1, 3, 0, 2};
    for (unsigned i = 0; i < 4; i++) {
        struct tw_delayq_item item;
        tw_delayq_pop(&q, &item);
        assert_int_equal(item.mapping, expect[i]);
        free(item.data);
    }
    assert_null(tw_delayq_peek(&q));
    tw_delayq_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uniform_loss_near_ten_percent),
        cmocka_unit_test(gilbert_elliott_mean_loss_and_burst),
        cmocka_unit_test(duplicate_rate_and_copy_order),
        cmocka_unit_test(reorder_lets_later_packets_pass),
        cmocka_unit_test(corruption_flips_exactly_one_bit),
        cmocka_unit_test(corruption_rate_within_tolerance),
        cmocka_unit_test(jitter_keeps_order_without_reorder),
        cmocka_unit_test(rate_limit_and_queue_bound_hold),
        cmocka_unit_test(same_seed_same_decisions),
        cmocka_unit_test(directions_draw_distinct_streams),
        cmocka_unit_test(phases_switch_at_boundaries),
        cmocka_unit_test(phase_outage_drops_every_packet),
        cmocka_unit_test(profile_layers_base_phase_and_direction),
        cmocka_unit_test(profile_rejects_bad_input),
        cmocka_unit_test(shipped_profiles_load),
        cmocka_unit_test(delay_queue_orders_by_due_then_arrival),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
