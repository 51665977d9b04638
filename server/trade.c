#include "trade.h"

#include <stdlib.h>
#include <string.h>

struct cached_answer {
    uint32_t request_id; /* 0: empty entry */
    struct tw_trade_answer answer;
};

struct player {
    uint64_t id;        /* 0: free slot */
    uint32_t trade;     /* index + 1 into trades, 0 when in none */
    uint32_t cache_next;
    struct cached_answer cache[TW_TRADE_REQUEST_CACHE];
};

struct trade {
    uint32_t id; /* 0: free slot */
    enum tw_trade_state state;
    uint64_t a, b;
    bool a_joined, b_joined; /* still attached to this trade */
    bool confirmed_a, confirmed_b;
    uint32_t version;
    uint64_t started_ms;
    struct tw_trade_offer offer_a, offer_b;
};

struct tw_trade_mgr {
    struct tw_trade_params p;
    uint64_t now_ms;
    uint32_t next_id;

    struct player *players;
    uint32_t *player_free; /* stack of free player slots */
    uint32_t player_free_n;
    /* Open addressing with linear probing: slot + 1, or 0 when empty. */
    uint32_t *index;
    uint32_t index_mask;

    struct trade *trades; /* max_players slots */
    uint32_t *trade_free;
    uint32_t trade_free_n;

    struct tw_trade_stats stats;
};

static uint32_t hash_id(const struct tw_trade_mgr *m, uint64_t id)
{
    return (uint32_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & m->index_mask;
}

static struct player *find_player(const struct tw_trade_mgr *m, uint64_t id)
{
    if (id == 0)
        return NULL;
    for (uint32_t h = hash_id(m, id);; h = (h + 1) & m->index_mask) {
        uint32_t e = m->index[h];
        if (e == 0)
            return NULL;
        if (m->players[e - 1].id == id)
            return &m->players[e - 1];
    }
}

/* Deletes by shifting later entries of the probe run back into the hole. */
static void index_remove(struct tw_trade_mgr *m, uint64_t id)
{
    uint32_t h = hash_id(m, id);
    while (m->index[h] != 0 && m->players[m->index[h] - 1].id != id)
        h = (h + 1) & m->index_mask;
    if (m->index[h] == 0)
        return;
    uint32_t hole = h;
    for (uint32_t j = (hole + 1) & m->index_mask; m->index[j] != 0;
         j = (j + 1) & m->index_mask) {
        uint32_t home = hash_id(m, m->players[m->index[j] - 1].id);
        /* Move j into the hole unless its home lies in (hole, j]. */
        bool stays = hole <= j ? (home > hole && home <= j)
                               : (home > hole || home <= j);
        if (!stays) {
            m->index[hole] = m->index[j];
            hole = j;
        }
    }
    m->index[hole] = 0;
}

struct tw_trade_mgr *tw_trade_create(const struct tw_trade_params *p)
{
    if (!p || p->max_players == 0 || p->max_players > 65536 ||
        p->first_trade_id == 0 || !p->inventory.held ||
        !p->inventory.item_count || !p->emit)
        return NULL;
    struct tw_trade_mgr *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->p = *p;
    m->next_id = p->first_trade_id;
    uint32_t n = p->max_players;
    uint32_t index_size = 1;
    while (index_size < 2 * n)
        index_size <<= 1;
    m->index_mask = index_size - 1;
    m->players = calloc(n, sizeof *m->players);
    m->player_free = calloc(n, sizeof *m->player_free);
    m->index = calloc(index_size, sizeof *m->index);
    m->trades = calloc(n, sizeof *m->trades);
    m->trade_free = calloc(n, sizeof *m->trade_free);
    if (!m->players || !m->player_free || !m->index || !m->trades ||
        !m->trade_free) {
        tw_trade_destroy(m);
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        m->player_free[i] = n - 1 - i;
        m->trade_free[i] = n - 1 - i;
    }
    m->player_free_n = n;
    m->trade_free_n = n;
    return m;
}

void tw_trade_destroy(struct tw_trade_mgr *m)
{
    if (!m)
        return;
    free(m->players);
    free(m->player_free);
    free(m->index);
    free(m->trades);
    free(m->trade_free);
    free(m);
}

int tw_trade_player_join(struct tw_trade_mgr *m, uint64_t player_id)
{
    if (player_id == 0 || find_player(m, player_id) ||
        m->player_free_n == 0)
        return -1;
    uint32_t slot = m->player_free[--m->player_free_n];
    struct player *pl = &m->players[slot];
    memset(pl, 0, sizeof *pl);
    pl->id = player_id;
    uint32_t h = hash_id(m, player_id);
    while (m->index[h] != 0)
        h = (h + 1) & m->index_mask;
    m->index[h] = slot + 1;
    m->stats.players++;
    return TW_OK;
}

static struct trade *trade_of_player(const struct tw_trade_mgr *m,
                                     const struct player *pl)
{
    return pl->trade ? &m->trades[pl->trade - 1] : NULL;
}

static void fill_update(const struct trade *t, struct tw_msg_trade_update *u)
{
    memset(u, 0, sizeof *u);
    u->trade_id = t->id;
    u->state = (uint8_t)t->state;
    u->a = t->a;
    u->b = t->b;
    u->offer_version = t->version;
    u->confirmed_a = t->confirmed_a;
    u->confirmed_b = t->confirmed_b;
    u->offer_a = t->offer_a;
    u->offer_b = t->offer_b;
}

static void emit_updates(struct tw_trade_mgr *m, const struct trade *t)
{
    struct tw_trade_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = TW_TRADE_EV_UPDATE;
    fill_update(t, &ev.update);
    if (t->a_joined) {
        ev.to = t->a;
        m->p.emit(m->p.emit_ctx, &ev);
    }
    if (t->b_joined) {
        ev.to = t->b;
        m->p.emit(m->p.emit_ctx, &ev);
    }
}

/* Detaches a party from its trade without ending the trade. */
static void detach(struct tw_trade_mgr *m, struct trade *t, uint64_t id)
{
    struct player *pl = find_player(m, id);
    if (pl && pl->trade && &m->trades[pl->trade - 1] == t)
        pl->trade = 0;
    if (id == t->a)
        t->a_joined = false;
    if (id == t->b)
        t->b_joined = false;
}

/* Ends a trade: sends RESULT to the parties still joined, frees the slot. */
static void end_trade(struct tw_trade_mgr *m, struct trade *t,
                      enum tw_trade_state state, enum tw_trade_reason reason)
{
    t->state = state;
    struct tw_trade_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = TW_TRADE_EV_RESULT;
    ev.result.trade_id = t->id;
    ev.result.status = (uint8_t)(state == TW_TRADE_COMMITTED
                                     ? TW_TRADE_S_COMMITTED
                                     : TW_TRADE_S_FAILED);
    ev.result.reason = (uint8_t)reason;
    bool to_a = t->a_joined, to_b = t->b_joined;
    uint64_t a = t->a, b = t->b;
    detach(m, t, t->a);
    detach(m, t, t->b);
    if (state == TW_TRADE_COMMITTED)
        m->stats.committed++;
    else
        m->stats.failed++;
    m->stats.active--;
    t->id = 0;
    m->trade_free[m->trade_free_n++] = (uint32_t)(t - m->trades);
    /* The slot is free before the callbacks run, so they may start more. */
    if (to_a) {
        ev.to = a;
        m->p.emit(m->p.emit_ctx, &ev);
    }
    if (to_b) {
        ev.to = b;
        m->p.emit(m->p.emit_ctx, &ev);
    }
}

void tw_trade_player_left(struct tw_trade_mgr *m, uint64_t player_id)
{
    struct player *pl = find_player(m, player_id);
    if (!pl)
        return;
    struct trade *t = trade_of_player(m, pl);
    if (t) {
        detach(m, t, player_id);
        if (t->state != TW_TRADE_COMMITTING)
            end_trade(m, t, TW_TRADE_FAILED, TW_TRADE_R_PARTNER_LEFT);
    }
    index_remove(m, player_id);
    pl->id = 0;
    m->player_free[m->player_free_n++] = (uint32_t)(pl - m->players);
    m->stats.players--;
}

void tw_trade_tick(struct tw_trade_mgr *m, uint64_t now_ms)
{
    m->now_ms = now_ms;
    if (m->p.timeout_ms == 0 || m->stats.active == m->stats.committing)
        return;
    for (uint32_t i = 0; i < m->p.max_players; i++) {
        struct trade *t = &m->trades[i];
        if (t->id == 0 || t->state == TW_TRADE_COMMITTING)
            continue;
        if (now_ms >= t->started_ms &&
            now_ms - t->started_ms >= m->p.timeout_ms)
            end_trade(m, t, TW_TRADE_FAILED, TW_TRADE_R_TIMEOUT);
    }
}

bool tw_trade_item_locked(const struct tw_trade_mgr *m, uint64_t item_id)
{
    if (m->stats.committing == 0)
        return false;
    for (uint32_t i = 0; i < m->p.max_players; i++) {
        const struct trade *t = &m->trades[i];
        if (t->id == 0 || t->state != TW_TRADE_COMMITTING)
            continue;
        for (unsigned k = 0; k < t->offer_a.count; k++)
            if (t->offer_a.items[k].item_id == item_id)
                return true;
        for (unsigned k = 0; k < t->offer_b.count; k++)
            if (t->offer_b.items[k].item_id == item_id)
                return true;
    }
    return false;
}

/* Checks one side's offer against what the giver holds now. */
static enum tw_trade_reason check_offer(const struct tw_trade_mgr *m,
                                        uint64_t giver,
                                        const struct tw_trade_offer *o)
{
    if (!tw_trade_offer_valid(o))
        return TW_TRADE_R_BAD_REQUEST;
    const struct tw_trade_inventory *inv = &m->p.inventory;
    for (unsigned i = 0; i < o->count; i++) {
        uint32_t held = inv->held(inv->ctx, giver, o->items[i].item_id);
        if (held == 0)
            return TW_TRADE_R_ITEM_NOT_OWNED;
        if (o->items[i].quantity > held)
            return TW_TRADE_R_QUANTITY_TOO_LARGE;
        if (tw_trade_item_locked(m, o->items[i].item_id))
            return TW_TRADE_R_ITEM_LOCKED;
    }
    return TW_TRADE_R_NONE;
}

/*
 * Every item received becomes one item of the receiver (moved whole or
 * split off), and every item given whole leaves the giver.
 */
static uint32_t count_after(const struct tw_trade_mgr *m, uint64_t player,
                            const struct tw_trade_offer *gives,
                            const struct tw_trade_offer *receives)
{
    const struct tw_trade_inventory *inv = &m->p.inventory;
    uint32_t n = inv->item_count(inv->ctx, player) + receives->count;
    for (unsigned i = 0; i < gives->count; i++)
        if (inv->held(inv->ctx, player, gives->items[i].item_id) ==
            gives->items[i].quantity)
            n--;
    return n;
}

static enum tw_trade_reason check_commit(const struct tw_trade_mgr *m,
                                         const struct trade *t)
{
    enum tw_trade_reason r = check_offer(m, t->a, &t->offer_a);
    if (r == TW_TRADE_R_NONE)
        r = check_offer(m, t->b, &t->offer_b);
    if (r != TW_TRADE_R_NONE)
        return r;
    if (count_after(m, t->a, &t->offer_a, &t->offer_b) > TW_INVENTORY_MAX ||
        count_after(m, t->b, &t->offer_b, &t->offer_a) > TW_INVENTORY_MAX)
        return TW_TRADE_R_INVENTORY_FULL;
    return TW_TRADE_R_NONE;
}

static struct tw_trade_answer answer(uint32_t request_id, uint32_t trade_id,
                                     enum tw_trade_reason reason)
{
    struct tw_trade_answer a = {
        .request_id = request_id,
        .trade_id = trade_id,
        .status = reason == TW_TRADE_R_NONE ? TW_TRADE_S_OK
                                            : TW_TRADE_S_REJECTED,
        .reason = reason,
    };
    return a;
}

/*
 * Looks up the actor and the request-id cache. Returns true with *out set
 * when the request is answered already (a repeat, or unusable ids).
 */
static bool prologue(struct tw_trade_mgr *m, uint64_t actor,
                     uint32_t request_id, uint32_t trade_id,
                     struct player **pl, struct tw_trade_answer *out)
{
    *pl = find_player(m, actor);
    if (!*pl || request_id == 0) {
        *out = answer(request_id, trade_id, TW_TRADE_R_BAD_REQUEST);
        m->stats.rejected[TW_TRADE_R_BAD_REQUEST]++;
        return true;
    }
    for (unsigned i = 0; i < TW_TRADE_REQUEST_CACHE; i++) {
        if ((*pl)->cache[i].request_id == request_id) {
            *out = (*pl)->cache[i].answer;
            m->stats.replayed++;
            return true;
        }
    }
    return false;
}

static struct tw_trade_answer epilogue(struct tw_trade_mgr *m,
                                       struct player *pl,
                                       struct tw_trade_answer a)
{
    struct cached_answer *c = &pl->cache[pl->cache_next];
    pl->cache_next = (pl->cache_next + 1) % TW_TRADE_REQUEST_CACHE;
    c->request_id = a.request_id;
    c->answer = a;
    if (a.status == TW_TRADE_S_REJECTED)
        m->stats.rejected[a.reason]++;
    return a;
}

/* Finds the actor's trade when it is the one the request names. */
static struct trade *named_trade(struct tw_trade_mgr *m,
                                 const struct player *pl, uint32_t trade_id)
{
    struct trade *t = trade_of_player(m, pl);
    if (!t || trade_id == 0 || t->id != trade_id)
        return NULL;
    return t;
}

/*
 * Finds the actor's trade by id in the state the action needs. Returns
 * TW_TRADE_R_NONE with *out set, or the reason to reject the action.
 */
static enum tw_trade_reason trade_in_state(struct tw_trade_mgr *m,
                                           const struct player *pl,
                                           uint32_t trade_id,
                                           enum tw_trade_state want,
                                           struct trade **out)
{
    *out = named_trade(m, pl, trade_id);
    if (!*out)
        return TW_TRADE_R_NOT_IN_TRADE;
    if ((*out)->state != want)
        return TW_TRADE_R_WRONG_STATE;
    return TW_TRADE_R_NONE;
}

struct tw_trade_answer tw_trade_request(struct tw_trade_mgr *m,
                                        uint64_t actor, uint32_t request_id,
                                        uint64_t partner)
{
    struct player *pl;
    struct tw_trade_answer a;
    if (prologue(m, actor, request_id, 0, &pl, &a))
        return a;
    struct player *other = find_player(m, partner);
    if (partner == actor)
        return epilogue(m, pl, answer(request_id, 0, TW_TRADE_R_SELF_TRADE));
    if (pl->trade)
        return epilogue(m, pl, answer(request_id, 0, TW_TRADE_R_WRONG_STATE));
    if (!other)
        return epilogue(m, pl,
                        answer(request_id, 0, TW_TRADE_R_PARTNER_UNKNOWN));
    if (other->trade)
        return epilogue(m, pl,
                        answer(request_id, 0, TW_TRADE_R_PARTNER_BUSY));
    if (m->trade_free_n == 0)
        return epilogue(m, pl, answer(request_id, 0, TW_TRADE_R_BUSY));

    uint32_t slot = m->trade_free[--m->trade_free_n];
    struct trade *t = &m->trades[slot];
    memset(t, 0, sizeof *t);
    t->id = m->next_id++;
    if (m->next_id == 0)
        m->next_id = 1;
    t->state = TW_TRADE_REQUESTED;
    t->a = actor;
    t->b = partner;
    t->a_joined = t->b_joined = true;
    t->started_ms = m->now_ms;
    pl->trade = other->trade = slot + 1;
    m->stats.active++;
    m->stats.started++;
    a = epilogue(m, pl, answer(request_id, t->id, TW_TRADE_R_NONE));
    emit_updates(m, t);
    return a;
}

struct tw_trade_answer tw_trade_respond(struct tw_trade_mgr *m,
                                        uint64_t actor, uint32_t request_id,
                                        uint32_t trade_id, bool accept)
{
    struct player *pl;
    struct tw_trade_answer a;
    if (prologue(m, actor, request_id, trade_id, &pl, &a))
        return a;
    struct trade *t;
    enum tw_trade_reason r =
        trade_in_state(m, pl, trade_id, TW_TRADE_REQUESTED, &t);
    if (r == TW_TRADE_R_NONE && actor != t->b)
        r = TW_TRADE_R_NOT_YOUR_TURN;
    a = epilogue(m, pl, answer(request_id, trade_id, r));
    if (r != TW_TRADE_R_NONE)
        return a;
    if (accept) {
        t->state = TW_TRADE_OPEN;
        emit_updates(m, t);
    } else {
        end_trade(m, t, TW_TRADE_FAILED, TW_TRADE_R_DECLINED);
    }
    return a;
}

struct tw_trade_answer tw_trade_offer(struct tw_trade_mgr *m, uint64_t actor,
                                      uint32_t request_id, uint32_t trade_id,
                                      const struct tw_trade_offer *offer)
{
    struct player *pl;
    struct tw_trade_answer a;
    if (prologue(m, actor, request_id, trade_id, &pl, &a))
        return a;
    struct trade *t;
    enum tw_trade_reason r =
        trade_in_state(m, pl, trade_id, TW_TRADE_OPEN, &t);
    if (r == TW_TRADE_R_NONE)
        r = check_offer(m, actor, offer);
    a = epilogue(m, pl, answer(request_id, trade_id, r));
    if (r != TW_TRADE_R_NONE)
        return a;
    if (actor == t->a)
        t->offer_a = *offer;
    else
        t->offer_b = *offer;
    t->version++;
    t->confirmed_a = t->confirmed_b = false;
    emit_updates(m, t);
    return a;
}

struct tw_trade_answer tw_trade_confirm(struct tw_trade_mgr *m,
                                        uint64_t actor, uint32_t request_id,
                                        uint32_t trade_id,
                                        uint32_t offer_version)
{
    struct player *pl;
    struct tw_trade_answer a;
    if (prologue(m, actor, request_id, trade_id, &pl, &a))
        return a;
    struct trade *t;
    enum tw_trade_reason r =
        trade_in_state(m, pl, trade_id, TW_TRADE_OPEN, &t);
    if (r == TW_TRADE_R_NONE && offer_version != t->version)
        r = TW_TRADE_R_OFFER_CHANGED;
    if (r == TW_TRADE_R_NONE && t->offer_a.count == 0 &&
        t->offer_b.count == 0)
        r = TW_TRADE_R_BAD_REQUEST;
    if (r != TW_TRADE_R_NONE)
        return epilogue(m, pl, answer(request_id, trade_id, r));

    if (actor == t->a)
        t->confirmed_a = true;
    else
        t->confirmed_b = true;
    if (!(t->confirmed_a && t->confirmed_b)) {
        a = epilogue(m, pl, answer(request_id, trade_id, TW_TRADE_R_NONE));
        emit_updates(m, t);
        return a;
    }

    r = check_commit(m, t);
    if (r != TW_TRADE_R_NONE) {
        t->confirmed_a = t->confirmed_b = false;
        a = epilogue(m, pl, answer(request_id, trade_id, r));
        emit_updates(m, t);
        return a;
    }
    t->state = TW_TRADE_COMMITTING;
    m->stats.committing++;
    a = epilogue(m, pl, answer(request_id, trade_id, TW_TRADE_R_NONE));
    emit_updates(m, t);
    /* Last, because the callback may end the trade at once. */
    struct tw_trade_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = TW_TRADE_EV_COMMIT;
    fill_update(t, &ev.update);
    m->p.emit(m->p.emit_ctx, &ev);
    return a;
}

struct tw_trade_answer tw_trade_cancel(struct tw_trade_mgr *m, uint64_t actor,
                                       uint32_t request_id,
                                       uint32_t trade_id)
{
    struct player *pl;
    struct tw_trade_answer a;
    if (prologue(m, actor, request_id, trade_id, &pl, &a))
        return a;
    struct trade *t = named_trade(m, pl, trade_id);
    enum tw_trade_reason r = TW_TRADE_R_NONE;
    if (!t)
        r = TW_TRADE_R_NOT_IN_TRADE;
    else if (t->state == TW_TRADE_COMMITTING)
        r = TW_TRADE_R_WRONG_STATE;
    a = epilogue(m, pl, answer(request_id, trade_id, r));
    if (r == TW_TRADE_R_NONE)
        end_trade(m, t, TW_TRADE_FAILED, TW_TRADE_R_CANCELLED);
    return a;
}

static struct trade *find_trade(const struct tw_trade_mgr *m,
                                uint32_t trade_id)
{
    if (trade_id == 0)
        return NULL;
    for (uint32_t i = 0; i < m->p.max_players; i++)
        if (m->trades[i].id == trade_id)
            return &m->trades[i];
    return NULL;
}

int tw_trade_commit_done(struct tw_trade_mgr *m, uint32_t trade_id, bool ok,
                         enum tw_trade_reason reason)
{
    struct trade *t = find_trade(m, trade_id);
    if (!t || t->state != TW_TRADE_COMMITTING)
        return -1;
    m->stats.committing--;
    if (ok)
        end_trade(m, t, TW_TRADE_COMMITTED, TW_TRADE_R_NONE);
    else
        end_trade(m, t, TW_TRADE_FAILED,
                  reason == TW_TRADE_R_NONE || reason >= TW_TRADE_R_COUNT
                      ? TW_TRADE_R_STORE_FAILED
                      : reason);
    return TW_OK;
}

uint32_t tw_trade_of(const struct tw_trade_mgr *m, uint64_t player_id)
{
    const struct player *pl = find_player(m, player_id);
    const struct trade *t = pl ? trade_of_player(m, pl) : NULL;
    return t ? t->id : 0;
}

bool tw_trade_get(const struct tw_trade_mgr *m, uint32_t trade_id,
                  struct tw_msg_trade_update *out)
{
    const struct trade *t = find_trade(m, trade_id);
    if (!t)
        return false;
    fill_update(t, out);
    return true;
}

void tw_trade_get_stats(const struct tw_trade_mgr *m,
                        struct tw_trade_stats *out)
{
    *out = m->stats;
}
