/* Unit tests for the match simulation: input queueing and movement. */
#include "config.h"
#include "match.h"
#include "sim.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static struct tw_config config(void)
{
    struct tw_config cfg;
    tw_config_defaults(&cfg);
    cfg.match.tick_hz = 30;
    cfg.match.max_speed = 6.0f;
    cfg.match.world_width = 100;
    cfg.match.world_height = 50;
    cfg.match.spawn_x = 10;
    cfg.match.spawn_y = 10;
    cfg.match.spawn_width = 20;
    cfg.match.spawn_height = 20;
    return cfg;
}

static struct tw_msg_input input_packet(uint32_t newest, uint8_t count,
                                        int8_t dx, int8_t dy)
{
    struct tw_msg_input in = {.newest_seq = newest, .count = count};
    for (unsigned i = 0; i < count; i++)
        in.inputs[i] = (struct tw_input){dx, dy};
    return in;
}

static void sim_clamps_diagonal_to_max_speed(void **state)
{
    (void)state;
    struct tw_sim_params p = {{100, 100}, 6.0f, 0.5f};
    struct tw_vec2 pos = {50, 50};
    tw_sim_step(&p, &pos, (struct tw_input){127, 127});
    float moved = hypotf(pos.x - 50, pos.y - 50);
    assert_float_equal(moved, 3.0f, 1e-4);
}

static void sim_keeps_player_inside_world(void **state)
{
    (void)state;
    struct tw_sim_params p = {{100, 50}, 1000.0f, 1.0f};
    struct tw_vec2 pos = {1, 49};
    tw_sim_step(&p, &pos, (struct tw_input){-127, 127});
    assert_float_equal(pos.x, 0.0f, 0);
    assert_float_equal(pos.y, 50.0f, 0);
}

static void match_spawns_inside_spawn_area(void **state)
{
    (void)state;
    struct tw_config cfg = config();
    struct tw_match m;
    assert_int_equal(tw_match_init(&m, &cfg, 8), TW_OK);
    for (uint64_t id = 1; id <= 8; id++) {
        int slot = tw_match_add(&m, id, "p");
        assert_true(slot >= 0);
        struct tw_vec2 pos = m.players[slot].pos;
        assert_true(pos.x >= 10 && pos.x <= 30);
        assert_true(pos.y >= 10 && pos.y <= 30);
    }
    assert_int_equal(tw_match_add(&m, 99, "full"), -1);
    assert_int_equal(tw_match_find(&m, 5), 4);
    tw_match_remove(&m, 4);
    assert_int_equal(tw_match_find(&m, 5), -1);
    assert_int_equal(m.active_count, 7);
    tw_match_free(&m);
}

static void match_applies_each_input_once_in_order(void **state)
{
    (void)state;
    struct tw_config cfg = config();
    struct tw_match m;
    assert_int_equal(tw_match_init(&m, &cfg, 1), TW_OK);
    int slot = tw_match_add(&m, 1, "p");
    struct tw_player *p = &m.players[slot];
    float x0 = p->pos.x;

    /* Each packet repeats earlier inputs; every sequence is applied once. */
    for (uint32_t seq = 1; seq <= 10; seq++) {
        struct tw_msg_input in = input_packet(seq, seq < 4 ? (uint8_t)seq : 4,
                                              127, 0);
        tw_match_queue_inputs(&m, slot, &in, 1);
        tw_match_step(&m);
    }
    assert_int_equal(p->last_applied_seq, 10);
    assert_int_equal(p->inputs_applied, 10);
    assert_int_equal(p->inputs_skipped, 0);
    assert_float_equal(p->pos.x - x0, 10 * 6.0f / 30.0f, 1e-3);
    tw_match_free(&m);
}

static void match_ignores_replayed_old_inputs(void **state)
{
    (void)state;
    struct tw_config cfg = config();
    struct tw_match m;
    assert_int_equal(tw_match_init(&m, &cfg, 1), TW_OK);
    int slot = tw_match_add(&m, 1, "p");
    struct tw_msg_input in = input_packet(5, 1, 127, 0);
    tw_match_queue_inputs(&m, slot, &in, 1);
    tw_match_step(&m);
    struct tw_vec2 after = m.players[slot].pos;

    struct tw_msg_input old = input_packet(5, 4, -127, 0);
    assert_int_equal(tw_match_queue_inputs(&m, slot, &old, 2), 0);
    tw_match_step(&m);
    assert_float_equal(m.players[slot].pos.x, after.x, 0);
    tw_match_free(&m);
}

static void match_skips_lost_inputs(void **state)
{
    (void)state;
    struct tw_config cfg = config();
    struct tw_match m;
    assert_int_equal(tw_match_init(&m, &cfg, 1), TW_OK);
    int slot = tw_match_add(&m, 1, "p");
    struct tw_msg_input first = input_packet(1, 1, 0, 127);
    tw_match_queue_inputs(&m, slot, &first, 1);
    tw_match_step(&m);

    /* Inputs 2..5 never arrive; 9 carries 6..9. */
    struct tw_msg_input later = input_packet(9, 4, 0, 127);
    tw_match_queue_inputs(&m, slot, &later, 2);
    for (int i = 0; i < 4; i++)
        tw_match_step(&m);
    assert_int_equal(m.players[slot].last_applied_seq, 9);
    assert_int_equal(m.players[slot].inputs_skipped, 4);
    tw_match_free(&m);
}

static void match_applies_at_most_two_inputs_per_tick(void **state)
{
    (void)state;
    struct tw_config cfg = config();
    struct tw_match m;
    assert_int_equal(tw_match_init(&m, &cfg, 1), TW_OK);
    int slot = tw_match_add(&m, 1, "p");
    /* A client that sends far ahead cannot move faster than two inputs a
     * tick, so a speed hack gains at most a bounded catch-up. */
    for (uint32_t seq = 4; seq <= 24; seq += 4) {
        struct tw_msg_input in = input_packet(seq, 4, 127, 0);
        tw_match_queue_inputs(&m, slot, &in, 1);
    }
    tw_match_step(&m);
    assert_int_equal(m.players[slot].inputs_applied, 2);
    tw_match_step(&m);
    assert_int_equal(m.players[slot].inputs_applied, 4);
    tw_match_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sim_clamps_diagonal_to_max_speed),
        cmocka_unit_test(sim_keeps_player_inside_world),
        cmocka_unit_test(match_spawns_inside_spawn_area),
        cmocka_unit_test(match_applies_each_input_once_in_order),
        cmocka_unit_test(match_ignores_replayed_old_inputs),
        cmocka_unit_test(match_skips_lost_inputs),
        cmocka_unit_test(match_applies_at_most_two_inputs_per_tick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
