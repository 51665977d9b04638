#include "trading.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A failed load is tried again after this long. */
#define LOAD_RETRY_MS 1000u
/* Outcomes sent and waiting for the client's acknowledgement. */
#define MAX_UNCONFIRMED 4096u

/* A notice sent on a session; acknowledged in the store once delivered. */
struct unconfirmed {
    uint64_t player_id;
    uint64_t serial;
    uint32_t trade_id;
};

enum mirror_state {
    MIRROR_LOADING = 1, /* load submitted; not yet in the trade manager */
    MIRROR_RETRY,       /* last load failed or the queue was full */
    MIRROR_READY,       /* inventory loaded; may trade */
};

struct mirror {
    uint64_t player_id; /* 0: free slot */
    enum mirror_state state;
    bool joined;          /* registered with the trade manager */
    uint64_t load_cookie; /* the load whose completion counts */
    uint64_t retry_at_ms;
    char name[TW_NAME_MAX + 1];
    struct tw_inventory inv;
};

struct tw_trading {
    struct tw_store *store; /* NULL once drained */
    struct tw_trade_mgr *trades;
    struct tw_trading_io io;
    uint64_t now_ms;
    uint64_t next_cookie;
    /* The trade whose store outcome is being applied, else 0. */
    uint32_t applying_trade;

    uint32_t capacity;
    struct mirror *mirrors;
    uint32_t *free_slots;
    uint32_t free_count;
    uint32_t *index; /* open addressing: slot + 1, 0 when empty */
    uint32_t index_mask;

    struct unconfirmed *unconfirmed;
    uint32_t unconfirmed_count;

    struct tw_trading_stats stats;
    struct tw_ratelimit warn_log;
};

static uint32_t hash_id(const struct tw_trading *t, uint64_t id)
{
    return (uint32_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & t->index_mask;
}

static struct mirror *find(const struct tw_trading *t, uint64_t id)
{
    if (id == 0)
        return NULL;
    for (uint32_t h = hash_id(t, id);; h = (h + 1) & t->index_mask) {
        uint32_t e = t->index[h];
        if (e == 0)
            return NULL;
        if (t->mirrors[e - 1].player_id == id)
            return &t->mirrors[e - 1];
    }
}

static struct mirror *add(struct tw_trading *t, uint64_t id)
{
    if (t->free_count == 0)
        return NULL;
    uint32_t slot = t->free_slots[--t->free_count];
    struct mirror *m = &t->mirrors[slot];
    memset(m, 0, sizeof *m);
    m->player_id = id;
    uint32_t h = hash_id(t, id);
    while (t->index[h] != 0)
        h = (h + 1) & t->index_mask;
    t->index[h] = slot + 1;
    return m;
}

/* Deletes by shifting later entries of the probe run back into the hole. */
static void remove_mirror(struct tw_trading *t, struct mirror *m)
{
    uint32_t slot = (uint32_t)(m - t->mirrors);
    uint32_t h = hash_id(t, m->player_id);
    while (t->index[h] != slot + 1)
        h = (h + 1) & t->index_mask;
    uint32_t hole = h;
    for (uint32_t j = (hole + 1) & t->index_mask; t->index[j] != 0;
         j = (j + 1) & t->index_mask) {
        uint32_t home = hash_id(t, t->mirrors[t->index[j] - 1].player_id);
        bool stays = hole <= j ? (home > hole && home <= j)
                               : (home > hole || home <= j);
        if (!stays) {
            t->index[hole] = t->index[j];
            hole = j;
        }
    }
    t->index[hole] = 0;
    m->player_id = 0;
    t->free_slots[t->free_count++] = slot;
}

static void warn(struct tw_trading *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Logs a warning that a flood of players or a sick disk could repeat. */
static void warn(struct tw_trading *t, const char *fmt, ...)
{
    uint64_t suppressed = 0;
    if (!tw_ratelimit_allow(&t->warn_log, tw_clock_mono_ns(), &suppressed))
        return;
    char text[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    TW_LOG(TW_WARN, "trade", TW_NO_PEER, "%s; %llu similar lines suppressed",
           text, (unsigned long long)suppressed);
}

/* The trade manager's view of the mirror. */
static uint32_t held(void *ctx, uint64_t player_id, uint64_t item_id)
{
    const struct mirror *m = find(ctx, player_id);
    if (!m || m->state != MIRROR_READY)
        return 0;
    for (unsigned i = 0; i < m->inv.count; i++)
        if (m->inv.items[i].item_id == item_id)
            return m->inv.items[i].quantity;
    return 0;
}

static uint32_t item_count(void *ctx, uint64_t player_id)
{
    const struct mirror *m = find(ctx, player_id);
    return m && m->state == MIRROR_READY ? m->inv.count : 0;
}

/* Returns the serial of the session that got the message, or 0. */
static uint64_t send_msg(struct tw_trading *t, uint64_t to,
                         const uint8_t *buf, int len)
{
    if (len <= 0) {
        TW_LOG(TW_ERROR, "trade", TW_NO_PEER,
               "cannot encode a message for player %llu",
               (unsigned long long)to);
        return 0;
    }
    return t->io.send(t->io.ctx, to, buf, (size_t)len);
}

static void send_inventory(struct tw_trading *t, const struct mirror *m)
{
    uint8_t buf[TW_MAX_PAYLOAD];
    send_msg(t, m->player_id, buf,
             tw_encode_inventory(&m->inv, buf, sizeof buf));
}

static uint64_t send_result(struct tw_trading *t, uint64_t to,
                            const struct tw_msg_trade_result *r)
{
    uint8_t buf[32];
    return send_msg(t, to, buf, tw_encode_trade_result(r, buf, sizeof buf));
}

/* The notice reached the player: the store may forget it. */
static void ack_notice(struct tw_trading *t, uint64_t player_id,
                       uint32_t trade_id)
{
    if (!t->store ||
        tw_store_ack_notice(t->store, player_id, trade_id, 0) != TW_OK) {
        /* The player sees the outcome once more at the next login. */
        t->stats.notice_acks_lost++;
    }
}

/* The notice goes once the client acknowledges the message that carried
 * it; until then a lost session must leave it for the next login. */
static void ack_when_delivered(struct tw_trading *t, uint64_t player_id,
                               uint32_t trade_id, uint64_t serial)
{
    if (t->unconfirmed_count == MAX_UNCONFIRMED) {
        t->stats.notice_acks_lost++; /* kept: shown again at next login */
        return;
    }
    t->unconfirmed[t->unconfirmed_count++] = (struct unconfirmed){
        .player_id = player_id, .serial = serial, .trade_id = trade_id};
}

static void ack_delivered(struct tw_trading *t)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < t->unconfirmed_count; i++) {
        struct unconfirmed *u = &t->unconfirmed[i];
        int d = t->io.delivered(t->io.ctx, u->player_id, u->serial);
        if (d > 0)
            ack_notice(t, u->player_id, u->trade_id);
        else if (d < 0)
            t->stats.deliveries_lost++;
        else
            t->unconfirmed[kept++] = *u;
    }
    t->unconfirmed_count = kept;
}

static void submit_commit(struct tw_trading *t,
                          const struct tw_msg_trade_update *u)
{
    struct tw_store_commit c = {
        .trade_id = u->trade_id,
        .a = u->a,
        .b = u->b,
        .give_a = u->offer_a,
        .give_b = u->offer_b,
    };
    int rc = t->store ? tw_store_commit(t->store, &c, u->trade_id)
                      : -ESHUTDOWN;
    if (rc == TW_OK)
        return;
    t->stats.commit_submit_failures++;
    warn(t, "cannot submit trade %u to the store: %s", u->trade_id,
         strerror(-rc));
    /* Nothing reached the store, so failing the trade loses nothing. */
    if (tw_trade_commit_done(t->trades, u->trade_id, false,
                             TW_TRADE_R_BUSY) != TW_OK)
        TW_LOG(TW_ERROR, "trade", TW_NO_PEER,
               "trade %u was not committing", u->trade_id);
}

static void on_trade_event(void *ctx, const struct tw_trade_event *ev)
{
    struct tw_trading *t = ctx;
    uint8_t buf[TW_MAX_PAYLOAD];
    switch (ev->kind) {
    case TW_TRADE_EV_UPDATE:
        send_msg(t, ev->to, buf,
                 tw_encode_trade_update(&ev->update, buf, sizeof buf));
        break;
    case TW_TRADE_EV_RESULT: {
        uint64_t serial = send_result(t, ev->to, &ev->result);
        if (serial && ev->result.trade_id == t->applying_trade)
            ack_when_delivered(t, ev->to, ev->result.trade_id, serial);
        break;
    }
    case TW_TRADE_EV_COMMIT:
        submit_commit(t, &ev->update);
        break;
    }
}

static void submit_load(struct tw_trading *t, struct mirror *m)
{
    m->load_cookie = ++t->next_cookie;
    int rc = t->store ? tw_store_load_player(t->store, m->player_id, m->name,
                                             m->load_cookie)
                      : -ESHUTDOWN;
    if (rc == TW_OK) {
        m->state = m->state == MIRROR_READY ? MIRROR_READY : MIRROR_LOADING;
        t->stats.loads++;
        return;
    }
    t->stats.load_failures++;
    warn(t, "cannot submit the load of player %llu: %s",
         (unsigned long long)m->player_id, strerror(-rc));
    if (m->state != MIRROR_READY) {
        m->state = MIRROR_RETRY;
        m->retry_at_ms = t->now_ms + LOAD_RETRY_MS;
    }
}

static void on_load(struct tw_trading *t, const struct tw_store_result *r)
{
    struct mirror *m = find(t, r->player_id);
    /* A player who left, or an older load superseded by a newer one. */
    if (!m || m->load_cookie != r->cookie)
        return;
    if (r->status != TW_STORE_OK) {
        t->stats.load_failures++;
        warn(t, "loading player %llu failed; retrying",
             (unsigned long long)r->player_id);
        if (m->state != MIRROR_READY) {
            m->state = MIRROR_RETRY;
            m->retry_at_ms = t->now_ms + LOAD_RETRY_MS;
        }
        return;
    }
    m->inv = r->inv[0];
    m->inv.player_id = m->player_id;
    m->state = MIRROR_READY;
    if (!m->joined) {
        if (tw_trade_player_join(t->trades, m->player_id) == TW_OK)
            m->joined = true;
        else
            TW_LOG(TW_ERROR, "trade", TW_NO_PEER,
                   "cannot register player %llu for trading",
                   (unsigned long long)m->player_id);
    }
    send_inventory(t, m);
    for (unsigned i = 0; i < r->notice_count; i++) {
        const struct tw_trade_notice *n = &r->notices[i];
        struct tw_msg_trade_result res = {
            .trade_id = n->trade_id,
            .status = n->status,
            .reason = n->reason,
        };
        uint64_t serial = send_result(t, m->player_id, &res);
        if (!serial)
            return; /* gone again; the next login gets them */
        t->stats.notices_sent++;
        ack_when_delivered(t, m->player_id, n->trade_id, serial);
    }
    /* NOTE: more than TW_STORE_MAX_NOTICES waiting: the rest come with
     * the next login, as a reload now would return the same batch. */
}

/*
 * Whether an aborted commit carries the inventories as stored: the store
 * reads them back only after checking the items.
 */
static bool aborted_with_inventories(enum tw_trade_reason why)
{
    return why == TW_TRADE_R_ITEM_NOT_OWNED ||
           why == TW_TRADE_R_QUANTITY_TOO_LARGE ||
           why == TW_TRADE_R_INVENTORY_FULL;
}

static void on_commit(struct tw_trading *t, const struct tw_store_result *r)
{
    bool ok = r->status == TW_STORE_OK;
    enum tw_trade_reason why = ok ? TW_TRADE_R_NONE : r->reason;
    if (r->status == TW_STORE_ERROR)
        why = TW_TRADE_R_STORE_FAILED;

    if (ok || (r->status == TW_STORE_ABORTED &&
               aborted_with_inventories(why))) {
        for (int i = 0; i < 2; i++) {
            struct mirror *m = find(t, r->inv[i].player_id);
            /* A player still loading gets a newer copy from that load. */
            if (!m || m->state != MIRROR_READY)
                continue;
            m->inv = r->inv[i];
            send_inventory(t, m);
        }
    }
    if (!ok)
        warn(t, "trade %u failed in the store: %s", r->trade_id,
             tw_trade_reason_name(why));
    /* Parties still here get the result now; the rest from a notice. */
    t->applying_trade = r->status == TW_STORE_ERROR ? 0 : r->trade_id;
    if (tw_trade_commit_done(t->trades, r->trade_id, ok, why) != TW_OK)
        TW_LOG(TW_ERROR, "trade", TW_NO_PEER,
               "store finished trade %u, which was not committing",
               r->trade_id);
    t->applying_trade = 0;
}

/* Counts a completion delivered while draining, after the last stats. */
static void count_drained(struct tw_store_stats *st,
                          const struct tw_store_result *r)
{
    st->completed++;
    if (r->status == TW_STORE_ERROR)
        st->errors++;
    else if (r->op == TW_STORE_OP_COMMIT && r->status == TW_STORE_ABORTED)
        st->aborted++;
    else if (r->op == TW_STORE_OP_COMMIT && r->replayed)
        st->replayed++;
    else if (r->op == TW_STORE_OP_COMMIT)
        st->commits++;
}

static void on_store_done(void *ctx, const struct tw_store_result *r)
{
    struct tw_trading *t = ctx;
    if (!t->store)
        count_drained(&t->stats.store, r);
    switch (r->op) {
    case TW_STORE_OP_LOAD:
        on_load(t, r);
        break;
    case TW_STORE_OP_COMMIT:
        on_commit(t, r);
        break;
    case TW_STORE_OP_ACK:
        if (r->status != TW_STORE_OK)
            t->stats.notice_acks_lost++;
        break;
    }
}

int tw_trading_create(const struct tw_config *cfg,
                      const struct tw_trading_io *io, struct tw_trading **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    struct tw_trading *t = calloc(1, sizeof *t);
    uint32_t n = cfg->match.max_players;
    uint32_t index_size = 1;
    while (index_size < 2 * n)
        index_size <<= 1;
    if (t) {
        t->capacity = n;
        t->mirrors = calloc(n, sizeof *t->mirrors);
        t->free_slots = calloc(n, sizeof *t->free_slots);
        t->index = calloc(index_size, sizeof *t->index);
        t->unconfirmed = calloc(MAX_UNCONFIRMED, sizeof *t->unconfirmed);
    }
    if (!t || !t->mirrors || !t->free_slots || !t->index ||
        !t->unconfirmed) {
        snprintf(err, errlen, "out of memory");
        tw_trading_destroy(t);
        return -1;
    }
    t->index_mask = index_size - 1;
    for (uint32_t i = 0; i < n; i++)
        t->free_slots[i] = n - 1 - i;
    t->free_count = n;
    t->io = *io;
    t->now_ms = tw_clock_mono_ns() / 1000000u;
    tw_ratelimit_init(&t->warn_log, 2.0, 10.0);

    if (tw_store_open(cfg, &t->store, err, errlen) != TW_OK) {
        tw_trading_destroy(t);
        return -1;
    }
    struct tw_trade_params p = {
        .max_players = n,
        .timeout_ms = cfg->trade.timeout_ms,
        .first_trade_id = tw_store_next_trade_id(t->store),
        .inventory = {.held = held, .item_count = item_count, .ctx = t},
        .emit = on_trade_event,
        .emit_ctx = t,
    };
    t->trades = tw_trade_create(&p);
    if (!t->trades) {
        snprintf(err, errlen, "cannot create the trade manager");
        tw_trading_destroy(t);
        return -1;
    }
    tw_trade_tick(t->trades, t->now_ms);
    TW_LOG(TW_INFO, "trade", TW_NO_PEER,
           "store %s open; next trade id %u", cfg->store.path,
           p.first_trade_id);
    *out = t;
    return TW_OK;
}

void tw_trading_drain(struct tw_trading *t)
{
    if (!t || !t->store) {
        return;
    }
    struct tw_store *s = t->store;
    struct tw_store_stats st;
    tw_store_get_stats(s, &st);
    TW_LOG(TW_INFO, "trade", TW_NO_PEER,
           "draining the store: %u requests pending", st.pending);
    /* Completions run during the close; nothing new may be submitted. */
    tw_store_get_stats(s, &t->stats.store);
    t->store = NULL;
    tw_store_close(s, on_store_done, t);
    t->stats.store.pending = 0;
    t->stats.store.oldest_pending_ms = 0;
}

void tw_trading_destroy(struct tw_trading *t)
{
    if (!t)
        return;
    tw_trading_drain(t);
    tw_trade_destroy(t->trades);
    free(t->mirrors);
    free(t->free_slots);
    free(t->index);
    free(t->unconfirmed);
    free(t);
}

int tw_trading_fd(const struct tw_trading *t)
{
    return t->store ? tw_store_fd(t->store) : -1;
}

void tw_trading_poll(struct tw_trading *t)
{
    if (t->store)
        tw_store_poll(t->store, on_store_done, t);
}

void tw_trading_tick(struct tw_trading *t, uint64_t now_ms)
{
    t->now_ms = now_ms;
    tw_trade_tick(t->trades, now_ms);
    ack_delivered(t);
    for (uint32_t i = 0; i < t->capacity; i++) {
        struct mirror *m = &t->mirrors[i];
        if (m->player_id && m->state == MIRROR_RETRY &&
            now_ms >= m->retry_at_ms)
            submit_load(t, m);
    }
}

void tw_trading_player_joined(struct tw_trading *t, uint64_t player_id,
                              const char *name)
{
    struct mirror *m = find(t, player_id);
    if (m && m->state == MIRROR_READY) {
        /*
         * Same player on a new session: resend the trade in progress, and
         * reload for INVENTORY and the notices the old session may not
         * have received.
         */
        struct tw_msg_trade_update u;
        uint32_t trade = tw_trade_of(t->trades, player_id);
        uint8_t buf[TW_MAX_PAYLOAD];
        if (trade && tw_trade_get(t->trades, trade, &u))
            send_msg(t, player_id, buf,
                     tw_encode_trade_update(&u, buf, sizeof buf));
        submit_load(t, m);
        return;
    }
    if (!m) {
        m = add(t, player_id);
        if (!m) {
            TW_LOG(TW_ERROR, "trade", TW_NO_PEER,
                   "no room to load player %llu",
                   (unsigned long long)player_id);
            return;
        }
        snprintf(m->name, sizeof m->name, "%s", name ? name : "");
        m->state = MIRROR_LOADING;
    }
    submit_load(t, m);
}

void tw_trading_player_left(struct tw_trading *t, uint64_t player_id)
{
    struct mirror *m = find(t, player_id);
    if (!m)
        return;
    if (m->joined)
        tw_trade_player_left(t->trades, player_id);
    remove_mirror(t, m);
}

static int handle(struct tw_trading *t, uint64_t actor, const uint8_t *msg,
                  size_t len, struct tw_trade_answer *a)
{
    int rc = -TW_DROP_UNKNOWN_ID;
    switch (msg[0]) {
    case TW_MSG_TRADE_REQUEST: {
        struct tw_msg_trade_request m;
        rc = tw_decode_trade_request(msg, len, &m);
        if (rc == TW_OK)
            *a = tw_trade_request(t->trades, actor, m.request_id, m.partner);
        break;
    }
    case TW_MSG_TRADE_RESPOND: {
        struct tw_msg_trade_respond m;
        rc = tw_decode_trade_respond(msg, len, &m);
        if (rc == TW_OK)
            *a = tw_trade_respond(t->trades, actor, m.request_id, m.trade_id,
                                  m.accept);
        break;
    }
    case TW_MSG_TRADE_OFFER: {
        struct tw_msg_trade_offer m;
        rc = tw_decode_trade_offer(msg, len, &m);
        if (rc == TW_OK)
            *a = tw_trade_offer(t->trades, actor, m.request_id, m.trade_id,
                                &m.offer);
        break;
    }
    case TW_MSG_TRADE_CONFIRM: {
        struct tw_msg_trade_confirm m;
        rc = tw_decode_trade_confirm(msg, len, &m);
        if (rc == TW_OK)
            *a = tw_trade_confirm(t->trades, actor, m.request_id, m.trade_id,
                                  m.offer_version);
        break;
    }
    case TW_MSG_TRADE_CANCEL: {
        struct tw_msg_trade_cancel m;
        rc = tw_decode_trade_cancel(msg, len, &m);
        if (rc == TW_OK)
            *a = tw_trade_cancel(t->trades, actor, m.request_id, m.trade_id);
        break;
    }
    }
    return rc;
}

int tw_trading_handle(struct tw_trading *t, uint64_t actor,
                      const uint8_t *msg, size_t len)
{
    if (len == 0)
        return -TW_DROP_EMPTY;
    struct tw_trade_answer a;
    int rc = handle(t, actor, msg, len, &a);
    if (rc != TW_OK)
        return rc;
    struct tw_msg_trade_result res = {
        .request_id = a.request_id,
        .trade_id = a.trade_id,
        .status = (uint8_t)a.status,
        .reason = (uint8_t)a.reason,
    };
    send_result(t, actor, &res);
    return TW_OK;
}

uint64_t tw_trading_store_lag_ms(struct tw_trading *t)
{
    if (!t->store)
        return 0;
    struct tw_store_stats st;
    tw_store_get_stats(t->store, &st);
    return st.oldest_pending_ms;
}

void tw_trading_get_stats(struct tw_trading *t, struct tw_trading_stats *out)
{
    *out = t->stats;
    tw_trade_get_stats(t->trades, &out->trade);
    if (t->store)
        tw_store_get_stats(t->store, &out->store);
}

void tw_trading_log_stats(struct tw_trading *t, const char *what)
{
    struct tw_trading_stats st;
    tw_trading_get_stats(t, &st);
    uint64_t rejected = 0;
    for (unsigned i = 0; i < TW_TRADE_R_COUNT; i++)
        rejected += st.trade.rejected[i];
    TW_LOG(TW_INFO, "stats", TW_NO_PEER,
           "%s: trades started %llu committed %llu failed %llu active %u "
           "requests rejected %llu replayed %llu; store commits %llu "
           "aborted %llu replayed %llu errors %llu pending %u max latency "
           "%lluus; notices sent %llu",
           what, (unsigned long long)st.trade.started,
           (unsigned long long)st.trade.committed,
           (unsigned long long)st.trade.failed, st.trade.active,
           (unsigned long long)rejected,
           (unsigned long long)st.trade.replayed,
           (unsigned long long)st.store.commits,
           (unsigned long long)st.store.aborted,
           (unsigned long long)st.store.replayed,
           (unsigned long long)st.store.errors, st.store.pending,
           (unsigned long long)st.store.max_latency_us,
           (unsigned long long)st.notices_sent);
    for (unsigned i = 1; i < TW_TRADE_R_COUNT; i++)
        if (st.trade.rejected[i])
            TW_LOG(TW_INFO, "stats", TW_NO_PEER,
                   "%s: trade requests rejected %s: %llu", what,
                   tw_trade_reason_name(i),
                   (unsigned long long)st.trade.rejected[i]);
}
