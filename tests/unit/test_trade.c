#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "trade.h"

#include <stdlib.h>
#include <string.h>

#define A 101u
#define B 202u
#define C 303u
#define MAX_HOLDINGS 256
#define MAX_EVENTS 64

/* Item ids: player * 100 + n, so ownership is obvious in the tests. */
struct holding {
    uint64_t owner, item_id;
    uint32_t quantity;
};

struct fixture {
    struct holding held[MAX_HOLDINGS];
    int held_n;
    struct tw_trade_event events[MAX_EVENTS];
    int events_n;
    struct tw_trade_mgr *m;
    /* When set, a COMMIT event is failed at once with this reason. */
    enum tw_trade_reason fail_commit_with;
};

static uint32_t fake_held(void *ctx, uint64_t player, uint64_t item_id)
{
    struct fixture *f = ctx;
    for (int i = 0; i < f->held_n; i++)
        if (f->held[i].owner == player && f->held[i].item_id == item_id)
            return f->held[i].quantity;
    return 0;
}

static uint32_t fake_count(void *ctx, uint64_t player)
{
    struct fixture *f = ctx;
    uint32_t n = 0;
    for (int i = 0; i < f->held_n; i++)
        n += f->held[i].owner == player;
    return n;
}

static void record(void *ctx, const struct tw_trade_event *ev)
{
    struct fixture *f = ctx;
    assert_true(f->events_n < MAX_EVENTS);
    f->events[f->events_n++] = *ev;
    if (ev->kind == TW_TRADE_EV_COMMIT &&
        f->fail_commit_with != TW_TRADE_R_NONE)
        assert_int_equal(tw_trade_commit_done(f->m, ev->update.trade_id,
                                              false, f->fail_commit_with),
                         TW_OK);
}

static void give(struct fixture *f, uint64_t owner, uint64_t item_id,
                 uint32_t quantity)
{
    assert_true(f->held_n < MAX_HOLDINGS);
    f->held[f->held_n++] = (struct holding){owner, item_id, quantity};
}

static void set_owner(struct fixture *f, uint64_t item_id, uint64_t owner)
{
    for (int i = 0; i < f->held_n; i++)
        if (f->held[i].item_id == item_id)
            f->held[i].owner = owner;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    struct tw_trade_params p = {
        .max_players = 16,
        .timeout_ms = 30000,
        .first_trade_id = 500,
        .inventory = {fake_held, fake_count, f},
        .emit = record,
        .emit_ctx = f,
    };
    f->m = tw_trade_create(&p);
    assert_non_null(f->m);
    assert_int_equal(tw_trade_player_join(f->m, A), TW_OK);
    assert_int_equal(tw_trade_player_join(f->m, B), TW_OK);
    assert_int_equal(tw_trade_player_join(f->m, C), TW_OK);
    give(f, A, A * 100 + 1, 10);
    give(f, A, A * 100 + 2, 1);
    give(f, B, B * 100 + 1, 5);
    give(f, C, C * 100 + 1, 3);
    tw_trade_tick(f->m, 1000);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tw_trade_destroy(f->m);
    free(f);
    return 0;
}

static struct tw_trade_offer offer1(uint64_t item_id, uint32_t quantity)
{
    struct tw_trade_offer o = {.count = 1};
    o.items[0].item_id = item_id;
    o.items[0].quantity = quantity;
    return o;
}

static uint32_t next_rid = 1;

static void assert_ok(struct tw_trade_answer a)
{
    assert_int_equal(a.reason, TW_TRADE_R_NONE);
    assert_int_equal(a.status, TW_TRADE_S_OK);
}

static void assert_rejected(struct tw_trade_answer a,
                            enum tw_trade_reason reason)
{
    assert_string_equal(tw_trade_reason_name(a.reason),
                        tw_trade_reason_name(reason));
    assert_int_equal(a.status, TW_TRADE_S_REJECTED);
}

/* Opens a trade between A and B and returns its id. */
static uint32_t open_ab(struct fixture *f)
{
    struct tw_trade_answer a = tw_trade_request(f->m, A, next_rid++, B);
    assert_ok(a);
    assert_ok(tw_trade_respond(f->m, B, next_rid++, a.trade_id, true));
    return a.trade_id;
}

static uint32_t version_of(struct fixture *f, uint32_t trade_id)
{
    struct tw_msg_trade_update u;
    assert_true(tw_trade_get(f->m, trade_id, &u));
    return u.offer_version;
}

static enum tw_trade_state state_of(struct fixture *f, uint32_t trade_id)
{
    struct tw_msg_trade_update u;
    if (!tw_trade_get(f->m, trade_id, &u))
        return TW_TRADE_NONE;
    return (enum tw_trade_state)u.state;
}

/* Opens A-B with one item each way and confirms both; now committing. */
static uint32_t committing_ab(struct fixture *f)
{
    uint32_t t = open_ab(f);
    struct tw_trade_offer oa = offer1(A * 100 + 1, 4);
    struct tw_trade_offer ob = offer1(B * 100 + 1, 5);
    assert_ok(tw_trade_offer(f->m, A, next_rid++, t, &oa));
    assert_ok(tw_trade_offer(f->m, B, next_rid++, t, &ob));
    uint32_t v = version_of(f, t);
    assert_ok(tw_trade_confirm(f->m, A, next_rid++, t, v));
    assert_ok(tw_trade_confirm(f->m, B, next_rid++, t, v));
    assert_int_equal(state_of(f, t), TW_TRADE_COMMITTING);
    return t;
}

static const struct tw_trade_event *find_event(struct fixture *f,
                                               enum tw_trade_event_kind kind,
                                               uint64_t to)
{
    const struct tw_trade_event *last = NULL;
    for (int i = 0; i < f->events_n; i++)
        if (f->events[i].kind == kind && f->events[i].to == to)
            last = &f->events[i];
    return last;
}

static void request_sends_update_to_both(void **state)
{
    struct fixture *f = *state;
    struct tw_trade_answer a = tw_trade_request(f->m, A, 7, B);
    assert_ok(a);
    assert_int_equal(a.request_id, 7);
    assert_int_equal(a.trade_id, 500);
    assert_int_equal(f->events_n, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(f->events[i].kind, TW_TRADE_EV_UPDATE);
        assert_int_equal(f->events[i].update.state, TW_TRADE_REQUESTED);
        assert_int_equal(f->events[i].update.a, A);
        assert_int_equal(f->events[i].update.b, B);
    }
    assert_int_equal(f->events[0].to, A);
    assert_int_equal(f->events[1].to, B);
    assert_int_equal(tw_trade_of(f->m, A), 500);
    assert_int_equal(tw_trade_of(f->m, B), 500);
}

static void accept_opens_trade(void **state)
{
    struct fixture *f = *state;
    uint32_t t = open_ab(f);
    assert_int_equal(state_of(f, t), TW_TRADE_OPEN);
    const struct tw_trade_event *ev = find_event(f, TW_TRADE_EV_UPDATE, A);
    assert_non_null(ev);
    assert_int_equal(ev->update.state, TW_TRADE_OPEN);
}

static void decline_fails_trade_for_both(void **state)
{
    struct fixture *f = *state;
    struct tw_trade_answer a = tw_trade_request(f->m, A, 1, B);
    f->events_n = 0;
    assert_ok(tw_trade_respond(f->m, B, 2, a.trade_id, false));
    for (uint64_t who = A; who <= B; who += B - A) {
        const struct tw_trade_event *ev =
            find_event(f, TW_TRADE_EV_RESULT, who);
        assert_non_null(ev);
        assert_int_equal(ev->result.status, TW_TRADE_S_FAILED);
        assert_int_equal(ev->result.reason, TW_TRADE_R_DECLINED);
        assert_int_equal(ev->result.request_id, 0);
        assert_int_equal(ev->result.trade_id, a.trade_id);
    }
    assert_int_equal(tw_trade_of(f->m, A), 0);
    assert_int_equal(tw_trade_of(f->m, B), 0);
    assert_int_equal(state_of(f, a.trade_id), TW_TRADE_NONE);
}

static void requester_cannot_respond(void **state)
{
    struct fixture *f = *state;
    struct tw_trade_answer a = tw_trade_request(f->m, A, 1, B);
    assert_rejected(tw_trade_respond(f->m, A, 2, a.trade_id, true),
                    TW_TRADE_R_NOT_YOUR_TURN);
    assert_int_equal(state_of(f, a.trade_id), TW_TRADE_REQUESTED);
}

static void respond_twice_is_wrong_state(void **state)
{
    struct fixture *f = *state;
    uint32_t t = open_ab(f);
    assert_rejected(tw_trade_respond(f->m, B, next_rid++, t, false),
                    TW_TRADE_R_WRONG_STATE);
    assert_int_equal(state_of(f, t), TW_TRADE_OPEN);
}

static void offer_before_accept_rejected(void **state)
{
    struct fixture *f = *state;
    struct tw_trade_answer a = tw_trade_request(f->m, A, 1, B);
    struct tw_trade_offer o = offer1(A * 100 + 1, 1);
    assert_rejected(tw_trade_offer(f->m, A, 2, a.trade_id, &o),
                    TW_TRADE_R_WRONG_STATE);
    assert_rejected(tw_trade_confirm(f->m, B, 3, a.trade_id, 0),
                    TW_TRADE_R_WRONG_STATE);
}

static void offer_bumps_version_and_updates(void **state)
{
    struct fixture *f = *state;
    uint32_t t = open_ab(f);
    uint32_t v0 = version_of(f, t);
    f->events_n = 0;
    struct tw_trade_offer o = offer1(A * 100 + 1, 3);
    assert_ok(tw_trade_offer(f->m, A, next_rid++, t, &o));
    assert_int_equal(version_of(f, t), v0 + 1);
    const struct tw_trade_event *ev = find_event(f, TW_TRADE_EV_UPDATE, B);
    assert_non_null(ev);
    assert_int_equal(ev->update.offer_a.count, 1);
    assert_int_equal(ev->update.offer_a.items[0].item_id, A * 100 + 1);
    assert_int_equal(ev->update.offer_a.items[0].quantity, 3);
    assert_int_equal(ev->update.offer_b.count, 0);
    assert_non_null(find_event(f, TW_TRADE_EV_UPDATE, A));
}

static void offer_change_clears_confirmations(void **state)
{
    struct fixture *f = *state;
    uint32_t t = open_ab(f);
    struct tw_trade_offer o = offer1(A * 100 + 1, 3);
    assert_ok(tw_trade_offer(f->m, A, next_rid++, t, &o));
    assert_ok(tw_trade_confirm(f->m, A, next_rid++, t, version_of(f, t)));
    struct tw_msg_trade_update u;
    assert_true(tw_trade_get(f->m, t, &u));
    assert_true(u.confirmed_a);
    assert_false(u.confirmed_b);

    struct tw_trade_offer ob = offer1(B * 100 + 1, 1);
    assert_ok(tw_trade_offer(f->m, B, next_rid++, t, &ob));
    assert_true(tw_trade_get(f->m, t, &u));
    assert_false(u.confirmed_a);
    assert_false(u.confirmed_b);
    assert_int_equal(u.state, TW_TRADE_OPEN);
}

static void confirm_of_old_version_rejected(void **state)
{
    struct fixture *f = *state;
    uint32_t t = open_ab(f);
    struct tw_trade_offer o = offer1(A * 100 + 1, 3);
    assert_ok(tw_trade_offer(f->m, A, next_rid++, t, &o));
    uint32_t seen = version_of(f, t);
    assert_ok(tw_trade_confirm(f->m, A, next_rid++, t, seen));
    o.items[0].quantity = 1; /* A lowers the offer after B looked at it */
    assert_ok(tw_trade_offer(f->m, A, next_rid++, t, &o));
    assert_rejected(tw_trade_confirm(f->m, B, next_rid++, t, seen),
                    TW_TRADE_R_OFFER_CHANGED);
    assert_int_equal(state_of(f, t), TW_TRADE_OPEN);
    struct tw_msg_trade_update u;
    assert_true(tw_trade_get(f->m, t, &u));
    assert_false(u.confirmed_a);
    assert_false(u.confirmed_b);
}

static void both_confirm_emits_commit(void **state)
{
    struct fixture *f = *state;
    f->events_n = 0;
    uint32_t t = committing_ab(f);
    const struct tw_trade_event *ev = find_event(f, TW_TRADE_EV_COMMIT, 0);
    assert_non_null(ev);
    assert_int_equal(ev->update.trade_id, t);
    assert_int_equal(ev->update.a, A);
    assert_int_equal(ev->update.b, B);
    assert_int_equal(ev->update.offer_a.items[0].item_id, A * 100 + 1);
    assert_int_equal(ev->update.offer_a.items[0].quantity, 4);
    assert_int_equal(ev->update.offer_b.items[0].item_id, B * 100 + 1);
    assert_int_equal(f->events[f->events_n - 1].kind, TW_TRADE_EV_COMMIT);
    assert_true(tw_trade_item_locked(f->m, A * 100 + 1));
    assert_true(tw_trade_item_locked(f->m, B * 100 + 1));
    assert_false(tw_trade_item_locked(f->m, A * 100 + 2));
    struct tw_trade_stats st;
    tw_trade_get_stats(f->m, &st);
    assert_int_equal(st.committing, 1);
}

static void commit_done_reports_committed(void **state)
{
    struct fixture *f = *state;
    uint32_t t = committing_ab(f);
    f->events_n = 0;
    assert_int_equal(tw_trade_commit_done(f->m, t, true, TW_TRADE_R_NONE),
                     TW_OK);
    assert_int_equal(f->events_n, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(f->events[i].kind, TW_TRADE_EV_RESULT);
        assert_int_equal(f->events[i].result.status, TW_TRADE_S_COMMITTED);
        assert_int_equal(f->events[i].result.trade_id, t);
    }
    assert_false(tw_trade_item_locked(f->m, A * 100 + 1));
    assert_int_equal(tw_trade_of(f->m, A), 0);
    assert_int_equal(tw_trade_of(f->m, B), 0);
    assert_int_equal(tw_trade_commit_done(f->m, t, true, TW_TRADE_R_NONE),
                     -1);
    struct tw_trade_stats st;
    tw_trade_get_stats(f->m, &st);
    assert_int_equal(st.committed, 1);
    assert_int_equal(st.active, 0);
    assert_int_equal(st.committing, 0);
}

static void commit_done_failure_carries_reason(void **state)
{
    struct fixture *f = *state;
    uint32_t t = committing_ab(f);
    f->events_n = 0;
    assert_int_equal(tw_trade_commit_done(f->m, t, false,
                                          TW_TRADE_R_ITEM_NOT_OWNED),
                     TW_OK);
    const struct tw_trade_event *ev = find_event(f, TW_TRADE_EV_RESULT, B);
    assert_non_null(ev);
    assert_int_equal(ev->result.status, TW_TRADE_S_FAILED);
    assert_int_equal(ev->result.reason, TW_TRADE_R_ITEM_NOT_OWNED);
}

static void commit_callback_may_fail_at_once(void **state)
{
    struct fixture *f = *state;
    f->fail_commit_with = TW_TRADE_R_BUSY;
    uint32_t t = open_ab(f);
    struct tw_trade_offer o = offer1(A * 100 + 2, 1);
    assert_ok(tw_trade_offer(f->m, A, next_rid++, t, &o));
    assert_ok(tw_trade_confirm(f->m, A, next_rid++, t, version_of(f, t)));
    assert_ok(tw_trade_confirm(f->m, B, next_rid++, t, version_of(f, t)));
    assert_int_equal(state_of(f, t), TW_TRADE_NONE);
    assert_int_equal(tw_trade_of(f->m, A), 0);
    const struct tw_trade_event *ev = find_event(f, TW_TRADE_EV_RESULT, A);
    assert_non_null(ev);
    assert_int_equal(ev->result.reason, TW_TRADE_R_BUSY);
    assert_false(tw_trade_item_locked(f->m, A * 100 + 2));
}

static void actions_outside_trade_rejected(void **state)
{
    struct fixture *f = *state;
    struct tw_trade_offer o = offer1(A * 100 + 1, 1);
    assert_rejected(tw_trade_respond(f->m, A, 1, 500, true),
                    TW_TRADE_R_NOT_IN_TRADE);
    assert_rejected(tw_trade_offer(f->m, A, 2, 500, &o),
                    TW_TRADE_R_NOT_IN_TRADE);
    assert_rejected(tw_trade_confirm(f->m, A, 3, 500, 0),
                    TW_TRADE_R_NOT_IN_TRADE);
    assert_rejected(tw_trade_cancel(f->m, A, 4, 500),
                    TW_TRADE_R_NOT_IN_TRADE);
    uint32_t t = open_ab(f);
    assert_rejected(tw_trade_cancel(f->m, A, next_rid++, t + 1),
                    TW_TRADE_R_NOT_IN_TRADE);
    assert_int_equal(state_of(f, t), TW_TRADE_OPEN);
}

/*
 * The actor is always the caller's session id, so C naming the A-B trade
 * id acts only as C, who is not a party.
 */
static void third_party_cannot_act_on_trade(void **state)
{
    struct fixture *f = *state;
    struct tw_trade_answer a = tw_trade_request(f->m, A, 1, B);
    struct tw_trade_offer o = offer1(C * 100 + 1, 1);
    f->events_n = 0;
    assert_rejected(tw_trade_respond(f->m, C, 1, a.trade_id, true),
                    TW_TRADE_R_NOT_IN_TRADE);
    assert_int_equal(state_of(f, a.trade_id), TW_TRADE_REQUESTED);
    assert_ok(tw_trade_respond(f->m, B, 2, a.trade_id, true));
    f->events_n = 0;
    assert_rejected(tw_trade_offer(f->m, C, 2, a.trade_id, &o),
                    TW_TRADE_R_NOT_IN_TRADE);
    assert_rejected(tw_trade_confirm(f->m, C, 3, a.trade_id, 0),
                    TW_TRADE_R_NOT_IN_TRADE);
    assert_rejected(tw_trade_cancel(f->m, C, 4, a.trade_id),
                    TW_TRADE_R_NOT_IN_TRADE);
    assert_int_equal(f->events_n, 0);
    struct tw_msg_trade_update u;
    assert_true(tw_trade_get(f->m, a.trade_id, &u));
    assert_int_equal(u.state, TW_TRADE_OPEN);
    assert_int_equal(u.offer_a.count + u.offer_b.count, 0);
    assert_false(u.confirmed_a || u.confirmed_b);
}

static void request_to_busy_partner_rejected(void **state)
{
    struct fixture *f = *state;
    open_ab(f);
    assert_rejected(tw_trade_request(f->m, C, 1, B),
                    TW_TRADE_R_PARTNER_BUSY);
    assert_int_equal(tw_trade_of(f->m, C), 0);
}

static void request_while_in_trade_rejected(void **state)
{
    struct fixture *f = *state;
    open_ab(f);
    assert_rejected(tw_trade_request(f->m, A, next_rid++, C),
                    TW_TRADE_R_WRONG_STATE);
    assert_int_equal(tw_trade_of(f->m, C), 0);
}

static void request_to_unknown_partner_rejected(void **state)
{
    struct fixture *f = *state;
    assert_rejected(tw_trade_request(f->m, A, 1, 999),
                    TW_TRADE_R_PARTNER_UNKNOWN);
    assert_rejected(tw_trade_request(f->m, A, 2, 0),
                    TW_TRADE_R_PARTNER_UNKNOWN);
    assert_int_equal(f->events_n, 0);
}

static void request_to_self_rejected(void **state)
{
    struct fixture *f = *state;
    assert_rejected(tw_trade_request(f->m, A, 1, A), TW_TRADE_R_SELF_TRADE);
    assert_int_equal(tw_trade_of(f->m, A), 0);
}

static void offer_of_unowned_item_rejected(void **state)
{
    struct fixture *f = *state;
    uint32_t t = open_ab(f);
    struct tw_trade_offer o = offer1(B * 100 + 1, 1); /* B's item */
    assert_rejected(tw_trade_offer(f->m, A, next_rid++, t, &o),
                    TW_TRADE_R_ITEM_NOT_OWNED);
    o = offer1(424242, 1);
    assert_rejected(tw_trade_offer(f->m, A, next_rid++, t, &o),
                    TW_TRADE_R_ITEM_NOT_OWNED);
    assert_int_equal(version_of(f, t), 0);
}

static void offer_above_quantity_rejected(void **state)
{
    struct fixture *f = *state;
    uint32_t t = open_ab(f);
    struct tw_trade_offer o = offer1(A * 100 + 1, 11);
    assert_rejected(tw_trade_offer(f->m, A, next_rid++, t, &o),
                    TW_TRADE_R_QUANTITY_TOO_LARGE);
    o.items[0].quantity = 10;
    assert_ok(tw_trade_offer(f->m, A, next_rid++, t, &o));
}

static void malformed_offer_rejected(void **state)
{
    struct fixture *f = *state;
    uint32_t t = open_ab(f);
    struct tw_trade_offer o = offer1(A * 100 + 1, 0);
    assert_rejected(tw_trade_offer(f->m, A, next_rid++, t, &o),
                    TW_TRADE_R_BAD_REQUEST);
    o.count = 2;
    o.items[0].quantity = 1;
    o.items[1] = o.items[0]; /* the same item twice */
    assert_rejected(tw_trade_offer(f->m, A, next_rid++, t, &o),
                    TW_TRADE_R_BAD_REQUEST);
    o.count = TW_TRADE_MAX_OFFER + 1;
    assert_rejected(tw_trade_offer(f->m, A, next_rid++, t, &o),
                    TW_TRADE_R_BAD_REQUEST);
}

static void empty_trade_cannot_be_confirmed(void **state)
{
    struct fixture *f = *state;
    uint32_t t = open_ab(f);
    assert_rejected(tw_trade_confirm(f->m, A, next_rid++, t, 0),
                    TW_TRADE_R_BAD_REQUEST);
}

static void partner_leaving_fails_trade(void **state)
{
    struct fixture *f = *state;
    uint32_t t = open_ab(f);
    f->events_n = 0;
    tw_trade_player_left(f->m, B);
    assert_int_equal(f->events_n, 1);
    assert_int_equal(f->events[0].kind, TW_TRADE_EV_RESULT);
    assert_int_equal(f->events[0].to, A);
    assert_int_equal(f->events[0].result.trade_id, t);
    assert_int_equal(f->events[0].result.reason, TW_TRADE_R_PARTNER_LEFT);
    assert_int_equal(tw_trade_of(f->m, A), 0);
    assert_rejected(tw_trade_cancel(f->m, A, next_rid++, t),
                    TW_TRADE_R_NOT_IN_TRADE);
    assert_rejected(tw_trade_request(f->m, A, next_rid++, B),
                    TW_TRADE_R_PARTNER_UNKNOWN);
    assert_ok(tw_trade_request(f->m, A, next_rid++, C));
}

static void leave_while_committing_keeps_commit(void **state)
{
    struct fixture *f = *state;
    uint32_t t = committing_ab(f);
    f->events_n = 0;
    tw_trade_player_left(f->m, A);
    assert_int_equal(f->events_n, 0);
    assert_int_equal(state_of(f, t), TW_TRADE_COMMITTING);
    assert_int_equal(tw_trade_commit_done(f->m, t, true, TW_TRADE_R_NONE),
                     TW_OK);
    assert_int_equal(f->events_n, 1);
    assert_int_equal(f->events[0].to, B);
    assert_int_equal(f->events[0].result.status, TW_TRADE_S_COMMITTED);
}

/*
 * A leaves during a commit and returns before the store answers; the
 * mirror still lists A's items, so only the lock stops A offering one of
 * them in a second trade.
 */
static void item_in_committing_trade_locked(void **state)
{
    struct fixture *f = *state;
    uint32_t t1 = committing_ab(f);
    tw_trade_player_left(f->m, A);
    assert_int_equal(tw_trade_player_join(f->m, A), TW_OK);
    struct tw_trade_answer a = tw_trade_request(f->m, A, 1, C);
    assert_ok(a);
    assert_ok(tw_trade_respond(f->m, C, 2, a.trade_id, true));
    struct tw_trade_offer o = offer1(A * 100 + 1, 1);
    assert_rejected(tw_trade_offer(f->m, A, 3, a.trade_id, &o),
                    TW_TRADE_R_ITEM_LOCKED);
    struct tw_trade_offer other = offer1(A * 100 + 2, 1);
    assert_ok(tw_trade_offer(f->m, A, 4, a.trade_id, &other));

    /* The first commit lands: A's item 1 moved in part, item 2 stays. */
    assert_int_equal(tw_trade_commit_done(f->m, t1, true, TW_TRADE_R_NONE),
                     TW_OK);
    assert_false(tw_trade_item_locked(f->m, A * 100 + 1));
    assert_ok(tw_trade_offer(f->m, A, 5, a.trade_id, &o));
}

/*
 * The same item confirmed in two trades: the second one's final check
 * sees the item gone from the mirror, so only the first commits.
 */
static void same_item_in_two_trades_commits_once(void **state)
{
    struct fixture *f = *state;
    uint32_t t1 = committing_ab(f);
    tw_trade_player_left(f->m, A);
    assert_int_equal(tw_trade_player_join(f->m, A), TW_OK);
    struct tw_trade_answer a = tw_trade_request(f->m, A, 1, C);
    assert_ok(tw_trade_respond(f->m, C, 2, a.trade_id, true));
    struct tw_trade_offer o = offer1(A * 100 + 2, 1);
    assert_ok(tw_trade_offer(f->m, A, 3, a.trade_id, &o));
    uint32_t v = version_of(f, a.trade_id);
    assert_ok(tw_trade_confirm(f->m, C, 4, a.trade_id, v));

    /* Another commit moved item 2 away from A before A confirms. */
    set_owner(f, A * 100 + 2, B);
    assert_rejected(tw_trade_confirm(f->m, A, 5, a.trade_id, v),
                    TW_TRADE_R_ITEM_NOT_OWNED);
    struct tw_msg_trade_update u;
    assert_true(tw_trade_get(f->m, a.trade_id, &u));
    assert_int_equal(u.state, TW_TRADE_OPEN);
    assert_false(u.confirmed_a || u.confirmed_b);
    assert_int_equal(state_of(f, t1), TW_TRADE_COMMITTING);
}

static void full_inventory_blocks_commit(void **state)
{
    struct fixture *f = *state;
    for (uint32_t i = 0; i < TW_INVENTORY_MAX - 1; i++)
        give(f, B, B * 100 + 10 + i, 1); /* B now holds the maximum */
    uint32_t t = open_ab(f);
    struct tw_trade_offer o = offer1(A * 100 + 1, 1);
    assert_ok(tw_trade_offer(f->m, A, next_rid++, t, &o));
    assert_ok(tw_trade_confirm(f->m, A, next_rid++, t, version_of(f, t)));
    assert_rejected(tw_trade_confirm(f->m, B, next_rid++, t, version_of(f, t)),
                    TW_TRADE_R_INVENTORY_FULL);
    /* Giving one whole item back makes room. */
    struct tw_trade_offer ob = offer1(B * 100 + 10, 1);
    assert_ok(tw_trade_offer(f->m, B, next_rid++, t, &ob));
    assert_ok(tw_trade_confirm(f->m, A, next_rid++, t, version_of(f, t)));
    assert_ok(tw_trade_confirm(f->m, B, next_rid++, t, version_of(f, t)));
    assert_int_equal(state_of(f, t), TW_TRADE_COMMITTING);
}

static void timeout_fails_open_trades_only(void **state)
{
    struct fixture *f = *state;
    uint32_t t1 = committing_ab(f);
    struct tw_trade_answer a = tw_trade_request(f->m, C, next_rid++,
                                                A); /* A is busy */
    assert_rejected(a, TW_TRADE_R_PARTNER_BUSY);
    assert_int_equal(tw_trade_player_join(f->m, 404), TW_OK);
    a = tw_trade_request(f->m, C, next_rid++, 404);
    assert_ok(a);
    f->events_n = 0;
    tw_trade_tick(f->m, 1000 + 29999);
    assert_int_equal(f->events_n, 0);
    tw_trade_tick(f->m, 1000 + 30000);
    assert_int_equal(f->events_n, 2);
    const struct tw_trade_event *ev = find_event(f, TW_TRADE_EV_RESULT, C);
    assert_non_null(ev);
    assert_int_equal(ev->result.reason, TW_TRADE_R_TIMEOUT);
    assert_int_equal(state_of(f, a.trade_id), TW_TRADE_NONE);
    assert_int_equal(state_of(f, t1), TW_TRADE_COMMITTING);
}

static void cancel_by_either_side(void **state)
{
    struct fixture *f = *state;
    for (uint64_t canceller = A; canceller <= B; canceller += B - A) {
        uint32_t t = open_ab(f);
        f->events_n = 0;
        assert_ok(tw_trade_cancel(f->m, canceller, next_rid++, t));
        assert_int_equal(f->events_n, 2);
        const struct tw_trade_event *ev =
            find_event(f, TW_TRADE_EV_RESULT, canceller == A ? B : A);
        assert_non_null(ev);
        assert_int_equal(ev->result.reason, TW_TRADE_R_CANCELLED);
        assert_int_equal(state_of(f, t), TW_TRADE_NONE);
    }
}

static void cancel_while_committing_rejected(void **state)
{
    struct fixture *f = *state;
    uint32_t t = committing_ab(f);
    assert_rejected(tw_trade_cancel(f->m, B, next_rid++, t),
                    TW_TRADE_R_WRONG_STATE);
    struct tw_trade_offer o = offer1(A * 100 + 2, 1);
    assert_rejected(tw_trade_offer(f->m, A, next_rid++, t, &o),
                    TW_TRADE_R_WRONG_STATE);
    assert_int_equal(state_of(f, t), TW_TRADE_COMMITTING);
}

static void repeated_request_id_not_reapplied(void **state)
{
    struct fixture *f = *state;
    struct tw_trade_answer first = tw_trade_request(f->m, A, 42, B);
    assert_ok(first);
    f->events_n = 0;
    struct tw_trade_answer again = tw_trade_request(f->m, A, 42, B);
    assert_memory_equal(&first, &again, sizeof first);
    assert_int_equal(f->events_n, 0);

    assert_ok(tw_trade_respond(f->m, B, 42, first.trade_id, true));
    struct tw_trade_offer o = offer1(A * 100 + 1, 2);
    assert_ok(tw_trade_offer(f->m, A, 43, first.trade_id, &o));
    uint32_t v = version_of(f, first.trade_id);
    /* A retry carrying a different offer still gets the first answer. */
    o.items[0].quantity = 9;
    assert_ok(tw_trade_offer(f->m, A, 43, first.trade_id, &o));
    assert_int_equal(version_of(f, first.trade_id), v);
    struct tw_msg_trade_update u;
    assert_true(tw_trade_get(f->m, first.trade_id, &u));
    assert_int_equal(u.offer_a.items[0].quantity, 2);

    /* A rejection is cached too. */
    struct tw_trade_answer r = tw_trade_request(f->m, C, 44, A);
    assert_rejected(r, TW_TRADE_R_PARTNER_BUSY);
    assert_ok(tw_trade_cancel(f->m, A, 45, first.trade_id));
    assert_rejected(tw_trade_request(f->m, C, 44, A),
                    TW_TRADE_R_PARTNER_BUSY);
    struct tw_trade_stats st;
    tw_trade_get_stats(f->m, &st);
    assert_int_equal(st.replayed, 3);
}

static void request_cache_is_bounded(void **state)
{
    struct fixture *f = *state;
    assert_rejected(tw_trade_request(f->m, A, 1, A), TW_TRADE_R_SELF_TRADE);
    for (uint32_t i = 0; i < TW_TRADE_REQUEST_CACHE; i++)
        assert_rejected(tw_trade_request(f->m, A, 100 + i, 999),
                        TW_TRADE_R_PARTNER_UNKNOWN);
    /* Id 1 fell out of the cache, so it is a new request now. */
    assert_ok(tw_trade_request(f->m, A, 1, B));
}

static void request_cache_cleared_on_leave(void **state)
{
    struct fixture *f = *state;
    assert_rejected(tw_trade_request(f->m, A, 1, A), TW_TRADE_R_SELF_TRADE);
    tw_trade_player_left(f->m, A);
    assert_int_equal(tw_trade_player_join(f->m, A), TW_OK);
    assert_ok(tw_trade_request(f->m, A, 1, B));
}

static void zero_request_id_or_unknown_actor_rejected(void **state)
{
    struct fixture *f = *state;
    assert_rejected(tw_trade_request(f->m, A, 0, B), TW_TRADE_R_BAD_REQUEST);
    assert_rejected(tw_trade_request(f->m, 777, 1, B),
                    TW_TRADE_R_BAD_REQUEST);
    assert_int_equal(tw_trade_of(f->m, B), 0);
}

static void join_rejects_duplicates_and_overflow(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tw_trade_player_join(f->m, A), -1);
    assert_int_equal(tw_trade_player_join(f->m, 0), -1);
    for (uint64_t id = 1; id <= 13; id++)
        assert_int_equal(tw_trade_player_join(f->m, id), TW_OK);
    assert_int_equal(tw_trade_player_join(f->m, 14), -1); /* 16 joined */
}

/* Random joins and leaves against a plain array, to exercise the index. */
static void player_index_survives_churn(void **state)
{
    (void)state;
    struct fixture f2;
    memset(&f2, 0, sizeof f2);
    struct tw_trade_params p = {
        .max_players = 512,
        .first_trade_id = 1,
        .inventory = {fake_held, fake_count, &f2},
        .emit = record,
        .emit_ctx = &f2,
    };
    struct tw_trade_mgr *m = tw_trade_create(&p);
    assert_non_null(m);
    static bool joined[2048];
    memset(joined, 0, sizeof joined);
    srand(7);
    for (int step = 0; step < 20000; step++) {
        /* Ids collide in the low bits on purpose to build probe runs. */
        uint64_t id = ((uint64_t)(rand() % 2048) << 20) + 1;
        size_t k = (size_t)(id >> 20);
        if (joined[k]) {
            tw_trade_player_left(m, id);
            joined[k] = false;
        } else if (tw_trade_player_join(m, id) == TW_OK) {
            joined[k] = true;
        }
        if (step % 1000 == 0) {
            for (size_t j = 0; j < 2048; j++) {
                uint64_t q = ((uint64_t)j << 20) + 1;
                struct tw_trade_answer a = tw_trade_request(m, q, 1, 0);
                /* Joined players get a real answer, others bad_request. */
                assert_int_equal(a.reason == TW_TRADE_R_BAD_REQUEST,
                                 !joined[j]);
                if (joined[j]) {
                    tw_trade_player_left(m, q);
                    assert_int_equal(tw_trade_player_join(m, q), TW_OK);
                }
            }
        }
    }
    tw_trade_destroy(m);
}

static void create_rejects_bad_params(void **state)
{
    (void)state;
    struct tw_trade_params p = {0};
    assert_null(tw_trade_create(&p));
    assert_null(tw_trade_create(NULL));
}

static void reason_names_are_stable(void **state)
{
    (void)state;
    assert_string_equal(tw_trade_reason_name(TW_TRADE_R_NOT_IN_TRADE),
                        "not_in_trade");
    assert_string_equal(tw_trade_reason_name(TW_TRADE_R_ITEM_LOCKED),
                        "item_locked");
    assert_string_equal(tw_trade_reason_name(TW_TRADE_R_COUNT), "unknown");
    for (uint32_t r = 0; r < TW_TRADE_R_COUNT; r++)
        assert_non_null(tw_trade_reason_name(r));
    assert_string_equal(tw_trade_state_name(TW_TRADE_COMMITTING),
                        "committing");
    assert_string_equal(tw_trade_status_name(TW_TRADE_S_REJECTED),
                        "rejected");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(request_sends_update_to_both),
        T(accept_opens_trade),
        T(decline_fails_trade_for_both),
        T(requester_cannot_respond),
        T(respond_twice_is_wrong_state),
        T(offer_before_accept_rejected),
        T(offer_bumps_version_and_updates),
        T(offer_change_clears_confirmations),
        T(confirm_of_old_version_rejected),
        T(both_confirm_emits_commit),
        T(commit_done_reports_committed),
        T(commit_done_failure_carries_reason),
        T(commit_callback_may_fail_at_once),
        T(actions_outside_trade_rejected),
        T(third_party_cannot_act_on_trade),
        T(request_to_busy_partner_rejected),
        T(request_while_in_trade_rejected),
        T(request_to_unknown_partner_rejected),
        T(request_to_self_rejected),
        T(offer_of_unowned_item_rejected),
        T(offer_above_quantity_rejected),
        T(malformed_offer_rejected),
        T(empty_trade_cannot_be_confirmed),
        T(partner_leaving_fails_trade),
        T(leave_while_committing_keeps_commit),
        T(item_in_committing_trade_locked),
        T(same_item_in_two_trades_commits_once),
        T(full_inventory_blocks_commit),
        T(timeout_fails_open_trades_only),
        T(cancel_by_either_side),
        T(cancel_while_committing_rejected),
        T(repeated_request_id_not_reapplied),
        T(request_cache_is_bounded),
        T(request_cache_cleared_on_leave),
        T(zero_request_id_or_unknown_actor_rejected),
        T(join_rejects_duplicates_and_overflow),
        cmocka_unit_test(player_index_survives_churn),
        cmocka_unit_test(create_rejects_bad_params),
        cmocka_unit_test(reason_names_are_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
