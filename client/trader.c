#include "trader.h"

#include "bot.h"
#include "log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A request unanswered after this many sends is dropped. */
#define MAX_TRIES 8u
/* A trade not committing after this long is cancelled by the bot. */
#define TRADE_PATIENCE_NS (5ull * 1000000000ull)
/* Share of requests a bot declines, in percent. */
#define DECLINE_PERCENT 10u
/* Above this many items, a bot gives items whole to keep room. */
#define CROWDED_INVENTORY 12u

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t random_below(uint64_t *state, uint64_t n)
{
    return n ? next_random(state) % n : 0;
}

void tw_trader_init(struct tw_trader *t, const struct tw_trader_config *cfg,
                    uint64_t player_id, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->cfg = cfg;
    t->player_id = player_id;
    t->rng = seed ^ (player_id * 0xD1B54A32D192ED03ull);
    t->next_request_id = 1 + (uint32_t)random_below(&t->rng, 1u << 30);
}

void tw_trader_free(struct tw_trader *t)
{
    free(t->done_ids);
    t->done_ids = NULL;
    t->done_count = t->done_cap = 0;
}

/* Exponential gaps give starts at rate_per_min on average. */
static void schedule_start(struct tw_trader *t, uint64_t now)
{
    double u = ((double)(next_random(&t->rng) >> 11) + 0.5) * 0x1p-53;
    double gap_s = -log(u) * 60.0 / t->cfg->rate_per_min;
    t->next_start_ns = now + (uint64_t)(gap_s * 1e9);
}

static void clear_trade(struct tw_trader *t)
{
    t->trade_id = 0;
    t->have_update = false;
    t->offer_sent = t->offer_ok = false;
    t->confirm_sent_version = 0;
}

static void note_done(struct tw_trader *t, uint32_t trade_id)
{
    for (size_t i = 0; i < t->done_count; i++)
        if (t->done_ids[i] == trade_id)
            return; /* seen live, then again as a notice */
    if (t->done_count == t->done_cap) {
        size_t cap = t->done_cap ? t->done_cap * 2 : 16;
        uint32_t *grown = realloc(t->done_ids, cap * sizeof *grown);
        if (!grown)
            return;
        t->done_ids = grown;
        t->done_cap = cap;
    }
    t->done_ids[t->done_count++] = trade_id;
    t->n.done++;
}

/* Encodes and sends a request, keeping a copy for retries. */
static void send_request(struct tw_bot *b, uint8_t kind, int len,
                         const uint8_t *msg, uint32_t request_id, uint64_t now)
{
    struct tw_trader *t = &b->trade;
    if (len <= 0 || (size_t)len > sizeof t->pending.msg) {
        b->n.errors++;
        TW_LOG(TW_WARN, "bot", (long)b->index, "cannot encode trade message");
        return;
    }
    t->pending.request_id = request_id;
    t->pending.kind = kind;
    t->pending.len = (uint16_t)len;
    memcpy(t->pending.msg, msg, (size_t)len);
    t->pending.sent_ns = now;
    t->pending.tries = 1;
    tw_bot_send_reliable(b, msg, len);
    /* As a retry would after a lost answer: the server must not apply
     * the copy, and must answer it as it answered the first. */
    if (random_below(&t->rng, 100) < t->cfg->duplicate_percent) {
        tw_bot_send_reliable(b, msg, len);
        t->n.duplicates++;
    }
}

static uint32_t new_request_id(struct tw_trader *t)
{
    uint32_t id = t->next_request_id++;
    if (t->next_request_id == 0)
        t->next_request_id = 1;
    return id;
}

static void request_trade(struct tw_bot *b, uint64_t now)
{
    struct tw_trader *t = &b->trade;
    const struct tw_trader_config *cfg = t->cfg;
    uint32_t self = (uint32_t)(t->player_id - cfg->player_base);
    uint32_t other = (uint32_t)random_below(&t->rng, cfg->bots - 1);
    if (other >= self)
        other++;
    struct tw_msg_trade_request m = {.request_id = new_request_id(t),
                                     .partner = cfg->player_base + other};
    uint8_t buf[64];
    send_request(b, TW_MSG_TRADE_REQUEST,
                 tw_encode_trade_request(&m, buf, sizeof buf), buf,
                 m.request_id, now);
}

static void respond(struct tw_bot *b, uint64_t now)
{
    struct tw_trader *t = &b->trade;
    struct tw_msg_trade_respond m = {
        .request_id = new_request_id(t),
        .trade_id = t->trade_id,
        .accept = random_below(&t->rng, 100) >= DECLINE_PERCENT,
    };
    uint8_t buf[64];
    send_request(b, TW_MSG_TRADE_RESPOND,
                 tw_encode_trade_respond(&m, buf, sizeof buf), buf,
                 m.request_id, now);
}

/* One or two random items; whole ones when the inventory is crowded. */
static void offer(struct tw_bot *b, uint64_t now)
{
    struct tw_trader *t = &b->trade;
    struct tw_msg_trade_offer m = {.request_id = new_request_id(t),
                                   .trade_id = t->trade_id};
    unsigned want = 1 + (unsigned)random_below(&t->rng, 2);
    for (unsigned k = 0; k < want && k < t->inv.count; k++) {
        const struct tw_item *it =
            &t->inv.items[random_below(&t->rng, t->inv.count)];
        bool dup = false;
        for (unsigned j = 0; j < m.offer.count; j++)
            dup |= m.offer.items[j].item_id == it->item_id;
        if (dup)
            continue;
        bool whole = t->inv.count > CROWDED_INVENTORY ||
                     random_below(&t->rng, 2) == 0;
        uint32_t q = whole ? it->quantity
                           : 1 + (uint32_t)random_below(&t->rng, it->quantity);
        m.offer.items[m.offer.count++] =
            (struct tw_offer_item){.item_id = it->item_id, .quantity = q};
    }
    uint8_t buf[256];
    send_request(b, TW_MSG_TRADE_OFFER,
                 tw_encode_trade_offer(&m, buf, sizeof buf), buf, m.request_id,
                 now);
    t->offer_sent = true;
}

static void confirm(struct tw_bot *b, uint64_t now)
{
    struct tw_trader *t = &b->trade;
    struct tw_msg_trade_confirm m = {.request_id = new_request_id(t),
                                     .trade_id = t->trade_id,
                                     .offer_version = t->update.offer_version};
    uint8_t buf[64];
    send_request(b, TW_MSG_TRADE_CONFIRM,
                 tw_encode_trade_confirm(&m, buf, sizeof buf), buf,
                 m.request_id, now);
    t->confirm_sent_version = m.offer_version + 1;
}

static void cancel(struct tw_bot *b, uint64_t now)
{
    struct tw_trader *t = &b->trade;
    struct tw_msg_trade_cancel m = {.request_id = new_request_id(t),
                                    .trade_id = t->trade_id};
    uint8_t buf[64];
    send_request(b, TW_MSG_TRADE_CANCEL,
                 tw_encode_trade_cancel(&m, buf, sizeof buf), buf,
                 m.request_id, now);
}

/* Takes the next step of the current trade, if it is this bot's turn. */
static void step_trade(struct tw_bot *b, uint64_t now)
{
    struct tw_trader *t = &b->trade;
    const struct tw_msg_trade_update *u = &t->update;
    bool is_b = u->b == t->player_id;
    bool confirmed = is_b ? u->confirmed_b : u->confirmed_a;

    if (u->state == TW_TRADE_COMMITTING)
        return; /* the store decides; patience does not apply */
    if (t->leaving || now - t->trade_since_ns > TRADE_PATIENCE_NS) {
        cancel(b, now);
        return;
    }
    if (u->state == TW_TRADE_REQUESTED) {
        if (is_b)
            respond(b, now);
        return;
    }
    if (u->state != TW_TRADE_OPEN)
        return;
    if (!t->offer_sent) {
        offer(b, now);
        return;
    }
    /* Each side offers once, so version 2 holds both offers. */
    if (t->offer_ok && u->offer_version >= 2 && !confirmed &&
        t->confirm_sent_version != u->offer_version + 1 &&
        (u->offer_a.count > 0 || u->offer_b.count > 0))
        confirm(b, now);
}

void tw_trader_tick(struct tw_bot *b, uint64_t now)
{
    struct tw_trader *t = &b->trade;
    if (b->state != TW_BOT_PLAYING)
        return;
    struct tw_trader_pending *p = &t->pending;
    if (p->request_id) {
        if (now - p->sent_ns < (uint64_t)t->cfg->retry_ms * 1000000u)
            return;
        if (p->tries >= MAX_TRIES) {
            t->n.gave_up++;
            p->request_id = 0;
            clear_trade(t);
            return;
        }
        p->tries++;
        p->sent_ns = now;
        t->n.retries++;
        tw_bot_send_reliable(b, p->msg, p->len);
        return;
    }
    if (t->trade_id && t->have_update) {
        step_trade(b, now);
        return;
    }
    if (t->trade_id || t->leaving || !t->have_inventory ||
        t->cfg->rate_per_min <= 0 || t->cfg->bots < 2)
        return;
    if (t->next_start_ns == 0)
        schedule_start(t, now);
    if (now < t->next_start_ns)
        return;
    schedule_start(t, now);
    request_trade(b, now);
}

static void on_inventory(struct tw_bot *b, const uint8_t *msg, size_t len)
{
    struct tw_trader *t = &b->trade;
    struct tw_inventory inv;
    int rc = tw_decode_inventory(msg, len, &inv);
    if (rc != TW_OK) {
        b->n.errors++;
        TW_LOG(TW_WARN, "bot", (long)b->index, "invalid inventory (%s)",
               tw_drop_name(rc));
        return;
    }
    t->inv = inv;
    t->have_inventory = true;
}

static void on_update(struct tw_bot *b, const uint8_t *msg, size_t len,
                      uint64_t now)
{
    struct tw_trader *t = &b->trade;
    struct tw_msg_trade_update u;
    int rc = tw_decode_trade_update(msg, len, &u);
    if (rc != TW_OK || (u.a != t->player_id && u.b != t->player_id)) {
        b->n.errors++;
        TW_LOG(TW_WARN, "bot", (long)b->index, "invalid trade update (%s)",
               rc != TW_OK ? tw_drop_name(rc) : "not a party");
        return;
    }
    if (u.trade_id != t->trade_id) {
        clear_trade(t);
        t->trade_id = u.trade_id;
        t->trade_since_ns = now;
    }
    t->update = u;
    t->have_update = true;
}

/* Applies the answer to the request in flight. */
static void on_answer(struct tw_bot *b, const struct tw_msg_trade_result *r)
{
    struct tw_trader *t = &b->trade;
    uint8_t kind = t->pending.kind;
    t->pending.request_id = 0;
    t->answered_id = r->request_id;
    t->answered = *r;
    if (r->status == TW_TRADE_S_OK) {
        if (kind == TW_MSG_TRADE_REQUEST)
            t->n.started++;
        if (kind == TW_MSG_TRADE_OFFER && r->trade_id == t->trade_id)
            t->offer_ok = true;
        return;
    }
    t->n.refused[r->reason < TW_TRADE_R_COUNT ? r->reason : 0]++;
    if (r->trade_id == 0 || r->trade_id != t->trade_id)
        return;
    if (r->reason == TW_TRADE_R_NOT_IN_TRADE || kind == TW_MSG_TRADE_RESPOND)
        clear_trade(t); /* the trade is over; its result says how */
    else if (kind == TW_MSG_TRADE_CONFIRM &&
             r->reason == TW_TRADE_R_OFFER_CHANGED)
        t->confirm_sent_version = 0; /* confirm the new version instead */
    else if (kind == TW_MSG_TRADE_OFFER || kind == TW_MSG_TRADE_CONFIRM)
        t->trade_since_ns = 0; /* out of patience: cancel at the next step */
}

static void on_result(struct tw_bot *b, const uint8_t *msg, size_t len)
{
    struct tw_trader *t = &b->trade;
    struct tw_msg_trade_result r;
    int rc = tw_decode_trade_result(msg, len, &r);
    if (rc != TW_OK) {
        b->n.errors++;
        TW_LOG(TW_WARN, "bot", (long)b->index, "invalid trade result (%s)",
               tw_drop_name(rc));
        return;
    }
    if (r.request_id != 0) {
        if (r.request_id == t->pending.request_id) {
            on_answer(b, &r);
        } else if (r.request_id == t->answered_id) {
            t->n.repeat_answers++;
            if (memcmp(&r, &t->answered, sizeof r) != 0) {
                t->n.answer_mismatches++;
                TW_LOG(TW_WARN, "bot", (long)b->index,
                       "request %u answered twice, differently",
                       r.request_id);
            }
        } else {
            t->n.repeat_answers++;
        }
        return;
    }
    if (r.status == TW_TRADE_S_COMMITTED)
        note_done(t, r.trade_id);
    else
        t->n.failed[r.reason < TW_TRADE_R_COUNT ? r.reason : 0]++;
    if (r.trade_id == t->trade_id)
        clear_trade(t);
}

bool tw_trader_on_message(struct tw_bot *b, const uint8_t *msg, size_t len,
                          uint64_t now)
{
    switch (msg[0]) {
    case TW_MSG_INVENTORY:
        on_inventory(b, msg, len);
        return true;
    case TW_MSG_TRADE_UPDATE:
        on_update(b, msg, len, now);
        return true;
    case TW_MSG_TRADE_RESULT:
        on_result(b, msg, len);
        return true;
    default:
        return false;
    }
}

void tw_trader_on_disconnect(struct tw_trader *t)
{
    if (t->trade_id && t->have_update &&
        t->update.state == TW_TRADE_COMMITTING)
        t->n.unresolved++;
    clear_trade(t);
    t->pending.request_id = 0;
    t->answered_id = 0;
    t->have_inventory = false;
}

void tw_trader_quiesce(struct tw_trader *t)
{
    t->leaving = true;
}

bool tw_trader_idle(const struct tw_trader *t)
{
    return t->pending.request_id == 0 && t->trade_id == 0;
}
