#include "trade_msgs.h"

#include "bits.h"
#include "codec.h"

#include <string.h>

static const char *const reason_names[TW_TRADE_R_COUNT] = {
    [TW_TRADE_R_NONE] = "none",
    [TW_TRADE_R_NOT_IN_TRADE] = "not_in_trade",
    [TW_TRADE_R_PARTNER_BUSY] = "partner_busy",
    [TW_TRADE_R_PARTNER_LEFT] = "partner_left",
    [TW_TRADE_R_PARTNER_UNKNOWN] = "partner_unknown",
    [TW_TRADE_R_SELF_TRADE] = "self_trade",
    [TW_TRADE_R_ITEM_NOT_OWNED] = "item_not_owned",
    [TW_TRADE_R_QUANTITY_TOO_LARGE] = "quantity_too_large",
    [TW_TRADE_R_OFFER_CHANGED] = "offer_changed",
    [TW_TRADE_R_ITEM_LOCKED] = "item_locked",
    [TW_TRADE_R_NOT_YOUR_TURN] = "not_your_turn",
    [TW_TRADE_R_WRONG_STATE] = "wrong_state",
    [TW_TRADE_R_BAD_REQUEST] = "bad_request",
    [TW_TRADE_R_DECLINED] = "declined",
    [TW_TRADE_R_CANCELLED] = "cancelled",
    [TW_TRADE_R_TIMEOUT] = "timeout",
    [TW_TRADE_R_INVENTORY_FULL] = "inventory_full",
    [TW_TRADE_R_BUSY] = "busy",
    [TW_TRADE_R_STORE_FAILED] = "store_failed",
};

static const char *const state_names[TW_TRADE_STATE_COUNT] = {
    [TW_TRADE_NONE] = "none",
    [TW_TRADE_REQUESTED] = "requested",
    [TW_TRADE_OPEN] = "open",
    [TW_TRADE_COMMITTING] = "committing",
    [TW_TRADE_COMMITTED] = "committed",
    [TW_TRADE_FAILED] = "failed",
};

static const char *const status_names[TW_TRADE_S_COUNT] = {
    [TW_TRADE_S_OK] = "ok",
    [TW_TRADE_S_REJECTED] = "rejected",
    [TW_TRADE_S_COMMITTED] = "committed",
    [TW_TRADE_S_FAILED] = "failed",
};

const char *tw_trade_reason_name(uint32_t reason)
{
    return reason < TW_TRADE_R_COUNT ? reason_names[reason] : "unknown";
}

const char *tw_trade_state_name(uint32_t state)
{
    return state < TW_TRADE_STATE_COUNT ? state_names[state] : "unknown";
}

const char *tw_trade_status_name(uint32_t status)
{
    return status < TW_TRADE_S_COUNT ? status_names[status] : "unknown";
}

bool tw_item_kind_valid(const char *kind, size_t len)
{
    if (len == 0 || len > TW_ITEM_KIND_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (kind[i] < 0x21 || kind[i] > 0x7e)
            return false;
    return true;
}

bool tw_trade_offer_valid(const struct tw_trade_offer *o)
{
    if (o->count > TW_TRADE_MAX_OFFER)
        return false;
    for (unsigned i = 0; i < o->count; i++) {
        if (o->items[i].item_id == 0 || o->items[i].quantity == 0)
            return false;
        for (unsigned j = 0; j < i; j++)
            if (o->items[j].item_id == o->items[i].item_id)
                return false;
    }
    return true;
}

static void write_offer(struct tw_bitwriter *w, const struct tw_trade_offer *o)
{
    tw_bw_u8(w, o->count);
    for (unsigned i = 0; i < o->count; i++) {
        tw_bw_u64(w, o->items[i].item_id);
        tw_bw_u32(w, o->items[i].quantity);
    }
}

/* Reads an offer; the count is checked before any entry is stored. */
static bool read_offer(struct tw_bitreader *r, struct tw_trade_offer *o)
{
    o->count = tw_br_u8(r);
    if (r->error || o->count > TW_TRADE_MAX_OFFER) {
        o->count = 0;
        return false;
    }
    for (unsigned i = 0; i < o->count; i++) {
        o->items[i].item_id = tw_br_u64(r);
        o->items[i].quantity = tw_br_u32(r);
    }
    return true;
}

int tw_encode_trade_request(const struct tw_msg_trade_request *m,
                            uint8_t *out, size_t cap)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_TRADE_REQUEST);
    tw_bw_u32(&w, m->request_id);
    tw_bw_u64(&w, m->partner);
    return tw_codec_finish_write(&w);
}

int tw_decode_trade_request(const uint8_t *p, size_t len,
                            struct tw_msg_trade_request *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_TRADE_REQUEST);
    if (rc != TW_OK)
        return rc;
    m->request_id = tw_br_u32(&r);
    m->partner = tw_br_u64(&r);
    rc = tw_codec_finish_read(&r);
    if (rc == TW_OK && m->request_id == 0)
        return -TW_DROP_MALFORMED;
    return rc;
}

int tw_encode_trade_respond(const struct tw_msg_trade_respond *m,
                            uint8_t *out, size_t cap)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_TRADE_RESPOND);
    tw_bw_u32(&w, m->request_id);
    tw_bw_u32(&w, m->trade_id);
    tw_bw_u8(&w, m->accept ? 1 : 0);
    return tw_codec_finish_write(&w);
}

int tw_decode_trade_respond(const uint8_t *p, size_t len,
                            struct tw_msg_trade_respond *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_TRADE_RESPOND);
    if (rc != TW_OK)
        return rc;
    m->request_id = tw_br_u32(&r);
    m->trade_id = tw_br_u32(&r);
    uint8_t accept = tw_br_u8(&r);
    m->accept = accept == 1;
    rc = tw_codec_finish_read(&r);
    if (rc != TW_OK)
        return rc;
    if (m->request_id == 0 || m->trade_id == 0 || accept > 1)
        return -TW_DROP_MALFORMED;
    return TW_OK;
}

int tw_encode_trade_offer(const struct tw_msg_trade_offer *m, uint8_t *out,
                          size_t cap)
{
    if (!tw_trade_offer_valid(&m->offer))
        return -TW_DROP_MALFORMED;
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_TRADE_OFFER);
    tw_bw_u32(&w, m->request_id);
    tw_bw_u32(&w, m->trade_id);
    write_offer(&w, &m->offer);
    return tw_codec_finish_write(&w);
}

int tw_decode_trade_offer(const uint8_t *p, size_t len,
                          struct tw_msg_trade_offer *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_TRADE_OFFER);
    if (rc != TW_OK)
        return rc;
    m->request_id = tw_br_u32(&r);
    m->trade_id = tw_br_u32(&r);
    bool count_ok = read_offer(&r, &m->offer);
    if (r.error)
        return -TW_DROP_TRUNCATED;
    if (!count_ok)
        return -TW_DROP_MALFORMED;
    rc = tw_codec_finish_read(&r);
    if (rc != TW_OK)
        return rc;
    if (m->request_id == 0 || m->trade_id == 0 ||
        !tw_trade_offer_valid(&m->offer))
        return -TW_DROP_MALFORMED;
    return TW_OK;
}

int tw_encode_trade_confirm(const struct tw_msg_trade_confirm *m,
                            uint8_t *out, size_t cap)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_TRADE_CONFIRM);
    tw_bw_u32(&w, m->request_id);
    tw_bw_u32(&w, m->trade_id);
    tw_bw_u32(&w, m->offer_version);
    return tw_codec_finish_write(&w);
}

int tw_decode_trade_confirm(const uint8_t *p, size_t len,
                            struct tw_msg_trade_confirm *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_TRADE_CONFIRM);
    if (rc != TW_OK)
        return rc;
    m->request_id = tw_br_u32(&r);
    m->trade_id = tw_br_u32(&r);
    m->offer_version = tw_br_u32(&r);
    rc = tw_codec_finish_read(&r);
    if (rc == TW_OK && (m->request_id == 0 || m->trade_id == 0))
        return -TW_DROP_MALFORMED;
    return rc;
}

int tw_encode_trade_cancel(const struct tw_msg_trade_cancel *m, uint8_t *out,
                           size_t cap)
{
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_TRADE_CANCEL);
    tw_bw_u32(&w, m->request_id);
    tw_bw_u32(&w, m->trade_id);
    return tw_codec_finish_write(&w);
}

int tw_decode_trade_cancel(const uint8_t *p, size_t len,
                           struct tw_msg_trade_cancel *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_TRADE_CANCEL);
    if (rc != TW_OK)
        return rc;
    m->request_id = tw_br_u32(&r);
    m->trade_id = tw_br_u32(&r);
    rc = tw_codec_finish_read(&r);
    if (rc == TW_OK && (m->request_id == 0 || m->trade_id == 0))
        return -TW_DROP_MALFORMED;
    return rc;
}

int tw_encode_trade_update(const struct tw_msg_trade_update *m, uint8_t *out,
                           size_t cap)
{
    if (m->state == TW_TRADE_NONE || m->state >= TW_TRADE_STATE_COUNT ||
        !tw_trade_offer_valid(&m->offer_a) ||
        !tw_trade_offer_valid(&m->offer_b))
        return -TW_DROP_MALFORMED;
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_TRADE_UPDATE);
    tw_bw_u32(&w, m->trade_id);
    tw_bw_u8(&w, m->state);
    tw_bw_u64(&w, m->a);
    tw_bw_u64(&w, m->b);
    tw_bw_u32(&w, m->offer_version);
    tw_bw_u8(&w, (uint8_t)((m->confirmed_a ? 1u : 0u) |
                           (m->confirmed_b ? 2u : 0u)));
    write_offer(&w, &m->offer_a);
    write_offer(&w, &m->offer_b);
    return tw_codec_finish_write(&w);
}

int tw_decode_trade_update(const uint8_t *p, size_t len,
                           struct tw_msg_trade_update *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_TRADE_UPDATE);
    if (rc != TW_OK)
        return rc;
    m->trade_id = tw_br_u32(&r);
    m->state = tw_br_u8(&r);
    m->a = tw_br_u64(&r);
    m->b = tw_br_u64(&r);
    m->offer_version = tw_br_u32(&r);
    uint8_t flags = tw_br_u8(&r);
    m->confirmed_a = (flags & 1u) != 0;
    m->confirmed_b = (flags & 2u) != 0;
    bool counts_ok = read_offer(&r, &m->offer_a);
    counts_ok = read_offer(&r, &m->offer_b) && counts_ok;
    if (r.error)
        return -TW_DROP_TRUNCATED;
    if (!counts_ok)
        return -TW_DROP_MALFORMED;
    rc = tw_codec_finish_read(&r);
    if (rc != TW_OK)
        return rc;
    if (m->trade_id == 0 || m->state == TW_TRADE_NONE ||
        m->state >= TW_TRADE_STATE_COUNT || flags > 3u || m->a == m->b ||
        !tw_trade_offer_valid(&m->offer_a) ||
        !tw_trade_offer_valid(&m->offer_b))
        return -TW_DROP_MALFORMED;
    return TW_OK;
}

int tw_encode_trade_result(const struct tw_msg_trade_result *m, uint8_t *out,
                           size_t cap)
{
    if (m->status >= TW_TRADE_S_COUNT || m->reason >= TW_TRADE_R_COUNT)
        return -TW_DROP_MALFORMED;
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_TRADE_RESULT);
    tw_bw_u32(&w, m->request_id);
    tw_bw_u32(&w, m->trade_id);
    tw_bw_u8(&w, m->status);
    tw_bw_u8(&w, m->reason);
    return tw_codec_finish_write(&w);
}

int tw_decode_trade_result(const uint8_t *p, size_t len,
                           struct tw_msg_trade_result *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_TRADE_RESULT);
    if (rc != TW_OK)
        return rc;
    m->request_id = tw_br_u32(&r);
    m->trade_id = tw_br_u32(&r);
    m->status = tw_br_u8(&r);
    m->reason = tw_br_u8(&r);
    rc = tw_codec_finish_read(&r);
    if (rc != TW_OK)
        return rc;
    if (m->status >= TW_TRADE_S_COUNT || m->reason >= TW_TRADE_R_COUNT)
        return -TW_DROP_MALFORMED;
    return TW_OK;
}

int tw_encode_inventory(const struct tw_inventory *m, uint8_t *out,
                        size_t cap)
{
    if (m->count > TW_INVENTORY_MAX)
        return -TW_DROP_MALFORMED;
    struct tw_bitwriter w;
    tw_bw_init(&w, out, cap);
    tw_bw_u8(&w, TW_MSG_INVENTORY);
    tw_bw_u8(&w, m->count);
    for (unsigned i = 0; i < m->count; i++) {
        const struct tw_item *it = &m->items[i];
        size_t kind_len = strnlen(it->kind, sizeof it->kind);
        if (!tw_item_kind_valid(it->kind, kind_len) || it->item_id == 0 ||
            it->quantity == 0)
            return -TW_DROP_MALFORMED;
        tw_bw_u64(&w, it->item_id);
        tw_bw_u32(&w, it->quantity);
        tw_bw_u8(&w, (uint8_t)kind_len);
        tw_bw_bytes(&w, it->kind, kind_len);
    }
    return tw_codec_finish_write(&w);
}

int tw_decode_inventory(const uint8_t *p, size_t len, struct tw_inventory *m)
{
    struct tw_bitreader r;
    int rc = tw_codec_start_read(&r, p, len, TW_MSG_INVENTORY);
    if (rc != TW_OK)
        return rc;
    m->player_id = 0;
    m->count = tw_br_u8(&r);
    if (r.error)
        return -TW_DROP_TRUNCATED;
    if (m->count > TW_INVENTORY_MAX) {
        m->count = 0;
        return -TW_DROP_MALFORMED;
    }
    for (unsigned i = 0; i < m->count; i++) {
        struct tw_item *it = &m->items[i];
        it->item_id = tw_br_u64(&r);
        it->quantity = tw_br_u32(&r);
        uint8_t kind_len = tw_br_u8(&r);
        if (r.error)
            return -TW_DROP_TRUNCATED;
        if (kind_len == 0 || kind_len > TW_ITEM_KIND_MAX)
            return -TW_DROP_MALFORMED;
        tw_br_bytes(&r, it->kind, kind_len);
        it->kind[kind_len] = '\0';
        if (r.error)
            return -TW_DROP_TRUNCATED;
        if (!tw_item_kind_valid(it->kind, kind_len) || it->item_id == 0 ||
            it->quantity == 0)
            return -TW_DROP_MALFORMED;
    }
    return tw_codec_finish_read(&r);
}
