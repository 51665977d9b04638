/*
 * tw-trade-probe: scripted trading players for the trade tests. Each
 * player has its own ENet host, so a relay maps it separately, and logs in
 * with a token minted from the match key. The probe follows one scenario
 * and prints what it observed as one JSON object on standard output. The
 * Python test checks that against the store.
 *
 * Scenarios:
 *   contend      players base, base+1, base+2 (X, Y, Z): X asks Y and Z
 *                in one flush, Y and Z both accept in one flush, X and Y
 *                trade X's sword, X offers the sword again to Z; outsiders
 *                and the wrong side try to act for the parties.
 *   confirm-leave  players base (X) and base+1 (Y), --rounds times: both
 *                offer, Y confirms, X confirms and drops its connection at
 *                once, in turn: the confirm sent with a disconnect right
 *                behind it; the peer reset with the confirm still queued;
 *                the peer reset as soon as the server acknowledged the
 *                confirm, before the result arrives. X then logs in again
 *                and collects its notices.
 *
 * Exit status: 0 when the scenario ran to the end, 1 when it could not
 * (the server did not answer in time), 2 on bad usage.
 */
#include "clock.h"
#include "crypto.h"
#include "protocol.h"
#include "trade_msgs.h"

#include <cjson/cJSON.h>
#include <enet/enet.h>
#include <getopt.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000ull
#define MAX_PLAYERS 3
#define MAX_RESULTS 256
#define WAIT_MS 5000u

struct player {
    uint64_t id;
    ENetHost *host;
    ENetPeer *peer;
    struct tw_cipher tx, rx;
    bool logged_in, gone;
    bool have_inventory;
    struct tw_inventory inv;
    struct tw_msg_trade_update update;
    bool have_update;
    struct tw_msg_trade_result results[MAX_RESULTS];
    size_t result_count;
    uint32_t next_request;
};

struct probe {
    ENetAddress server;
    uint8_t key[TW_KEY_BYTES];
    uint32_t match_id;
    uint64_t base;
    uint32_t rounds;
    struct player p[MAX_PLAYERS];
    cJSON *out;
};

static void fail(const char *what)
{
    fprintf(stderr, "tw-trade-probe: %s\n", what);
    exit(1);
}

static void handle_message(struct player *pl, const uint8_t *msg, size_t len)
{
    switch (msg[0]) {
    case TW_MSG_LOGIN_OK:
        pl->logged_in = true;
        break;
    case TW_MSG_INVENTORY:
        if (tw_decode_inventory(msg, len, &pl->inv) == TW_OK)
            pl->have_inventory = true;
        break;
    case TW_MSG_TRADE_UPDATE:
        if (tw_decode_trade_update(msg, len, &pl->update) == TW_OK)
            pl->have_update = true;
        break;
    case TW_MSG_TRADE_RESULT:
        if (pl->result_count < MAX_RESULTS &&
            tw_decode_trade_result(msg, len,
                                   &pl->results[pl->result_count]) == TW_OK)
            pl->result_count++;
        break;
    default:
        break;
    }
}

static void service_one(struct player *pl)
{
    ENetEvent ev;
    if (!pl->host)
        return;
    while (enet_host_service(pl->host, &ev, 0) > 0) {
        if (ev.type == ENET_EVENT_TYPE_RECEIVE) {
            uint8_t plain[TW_MAX_PAYLOAD];
            int n = tw_open(&pl->rx, ev.channelID, ev.packet->data,
                            ev.packet->dataLength, plain, sizeof plain);
            if (n > 0)
                handle_message(pl, plain, (size_t)n);
            enet_packet_destroy(ev.packet);
        } else if (ev.type == ENET_EVENT_TYPE_DISCONNECT) {
            pl->gone = true;
        }
    }
}

static void service_all(struct probe *pr, uint32_t ms)
{
    uint64_t until = tw_clock_mono_ns() + ms * MS;
    do {
        enet_time_set((enet_uint32)(tw_clock_mono_ns() / MS));
        for (int i = 0; i < MAX_PLAYERS; i++)
            service_one(&pr->p[i]);
        struct pollfd fds[MAX_PLAYERS];
        nfds_t n = 0;
        for (int i = 0; i < MAX_PLAYERS; i++)
            if (pr->p[i].host)
                fds[n++] = (struct pollfd){.fd = pr->p[i].host->socket,
                                           .events = POLLIN};
        poll(fds, n, 2);
    } while (tw_clock_mono_ns() < until);
}

/* Services until cond(pl, arg) holds; false on timeout. */
static bool wait_for(struct probe *pr, struct player *pl,
                     bool (*cond)(struct player *, uint64_t), uint64_t arg,
                     uint32_t ms)
{
    uint64_t until = tw_clock_mono_ns() + ms * MS;
    while (!cond(pl, arg)) {
        if (tw_clock_mono_ns() >= until)
            return false;
        service_all(pr, 2);
    }
    return true;
}

static bool is_ready(struct player *pl, uint64_t arg)
{
    (void)arg;
    return pl->logged_in && pl->have_inventory;
}

static const struct tw_msg_trade_result *find_result(struct player *pl,
                                                     uint32_t request_id,
                                                     uint32_t trade_id)
{
    for (size_t i = 0; i < pl->result_count; i++) {
        const struct tw_msg_trade_result *r = &pl->results[i];
        if (r->request_id == request_id &&
            (request_id != 0 || r->trade_id == trade_id))
            return r;
    }
    return NULL;
}

static bool has_answer(struct player *pl, uint64_t request_id)
{
    return find_result(pl, (uint32_t)request_id, 0) != NULL;
}

static bool has_end(struct player *pl, uint64_t trade_id)
{
    return find_result(pl, 0, (uint32_t)trade_id) != NULL;
}

static void connect_player(struct probe *pr, struct player *pl)
{
    memset(&pl->inv, 0, sizeof pl->inv);
    pl->logged_in = pl->gone = pl->have_inventory = pl->have_update = false;
    pl->host = enet_host_create(NULL, 1, TW_CHANNEL_COUNT, 0, 0);
    if (!pl->host)
        fail("cannot create an ENet host");
    pl->peer = enet_host_connect(pl->host, &pr->server, TW_CHANNEL_COUNT,
                                 TW_PROTOCOL_VERSION);
    uint64_t until = tw_clock_mono_ns() + WAIT_MS * MS;
    ENetEvent ev;
    bool connected = false;
    while (!connected && tw_clock_mono_ns() < until) {
        enet_time_set((enet_uint32)(tw_clock_mono_ns() / MS));
        if (enet_host_service(pl->host, &ev, 5) > 0 &&
            ev.type == ENET_EVENT_TYPE_CONNECT)
            connected = true;
        service_all(pr, 0);
    }
    if (!connected)
        fail("cannot connect");

    struct tw_token tok;
    char name[TW_NAME_MAX + 1];
    snprintf(name, sizeof name, "probe-%llu", (unsigned long long)pl->id);
    if (tw_token_issue(pr->key, pl->id, name, pr->match_id,
                       tw_clock_unix_s(), 600, &tok) != TW_OK)
        fail("cannot mint a token");
    struct tw_msg_login login;
    uint8_t buf[TW_MAX_PAYLOAD];
    tw_token_to_login(&tok, &login);
    int n = tw_encode_login(&login, buf, sizeof buf);
    ENetPacket *packet = enet_packet_create(buf, (size_t)n,
                                            ENET_PACKET_FLAG_RELIABLE);
    enet_peer_send(pl->peer, TW_CH_RELIABLE, packet);
    tw_cipher_init(&pl->rx, tok.s2c_key, tok.match_id, TW_DIR_S2C);
    tw_cipher_init(&pl->tx, tok.c2s_key, tok.match_id, TW_DIR_C2S);
    sodium_memzero(&tok, sizeof tok);
    enet_host_flush(pl->host);
    if (!wait_for(pr, pl, is_ready, 0, WAIT_MS))
        fail("no login reply or inventory");
}

static void drop_player(struct player *pl)
{
    if (pl->host)
        enet_host_destroy(pl->host);
    pl->host = NULL;
    pl->peer = NULL;
}

static void send_plain(struct player *pl, const uint8_t *msg, int len)
{
    uint8_t sealed[TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD];
    int n = tw_seal(&pl->tx, TW_CH_RELIABLE, msg, (size_t)len, sealed,
                    sizeof sealed);
    if (len <= 0 || n <= 0)
        fail("cannot encode or seal");
    ENetPacket *p = enet_packet_create(sealed, (size_t)n,
                                       ENET_PACKET_FLAG_RELIABLE);
    enet_peer_send(pl->peer, TW_CH_RELIABLE, p);
}

static uint32_t send_request(struct player *pl, uint64_t partner)
{
    struct tw_msg_trade_request m = {.request_id = ++pl->next_request,
                                     .partner = partner};
    uint8_t buf[64];
    send_plain(pl, buf, tw_encode_trade_request(&m, buf, sizeof buf));
    return m.request_id;
}

static uint32_t send_respond(struct player *pl, uint32_t trade, bool accept)
{
    struct tw_msg_trade_respond m = {.request_id = ++pl->next_request,
                                     .trade_id = trade, .accept = accept};
    uint8_t buf[64];
    send_plain(pl, buf, tw_encode_trade_respond(&m, buf, sizeof buf));
    return m.request_id;
}

static uint32_t send_offer(struct player *pl, uint32_t trade,
                           uint64_t item_id, uint32_t quantity)
{
    struct tw_msg_trade_offer m = {.request_id = ++pl->next_request,
                                   .trade_id = trade};
    m.offer.count = 1;
    m.offer.items[0].item_id = item_id;
    m.offer.items[0].quantity = quantity;
    uint8_t buf[256];
    send_plain(pl, buf, tw_encode_trade_offer(&m, buf, sizeof buf));
    return m.request_id;
}

static uint32_t send_confirm(struct player *pl, uint32_t trade,
                             uint32_t version)
{
    struct tw_msg_trade_confirm m = {.request_id = ++pl->next_request,
                                     .trade_id = trade,
                                     .offer_version = version};
    uint8_t buf[64];
    send_plain(pl, buf, tw_encode_trade_confirm(&m, buf, sizeof buf));
    return m.request_id;
}

static void flush(struct player *pl)
{
    enet_host_flush(pl->host);
}

/* Waits for the answer to request_id and returns it. */
static struct tw_msg_trade_result answer(struct probe *pr, struct player *pl,
                                         uint32_t request_id)
{
    if (!wait_for(pr, pl, has_answer, request_id, WAIT_MS))
        fail("no answer to a trade request");
    return *find_result(pl, request_id, 0);
}

static cJSON *result_json(const struct tw_msg_trade_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "trade_id", r->trade_id);
    cJSON_AddStringToObject(o, "status", tw_trade_status_name(r->status));
    cJSON_AddStringToObject(o, "reason", tw_trade_reason_name(r->reason));
    return o;
}

static const struct tw_item *find_kind(const struct player *pl,
                                       const char *kind)
{
    for (unsigned i = 0; i < pl->inv.count; i++)
        if (strcmp(pl->inv.items[i].kind, kind) == 0)
            return &pl->inv.items[i];
    return NULL;
}

static bool has_version(struct player *pl, uint64_t version)
{
    return pl->have_update && pl->update.offer_version >= version;
}

static bool has_state(struct player *pl, uint64_t state)
{
    return pl->have_update && pl->update.state == state;
}

static void run_contend(struct probe *pr)
{
    struct player *x = &pr->p[0], *y = &pr->p[1], *z = &pr->p[2];
    for (int i = 0; i < 3; i++)
        connect_player(pr, &pr->p[i]);

    /* X asks both partners in one flush: one trade at a time. */
    uint32_t rq_y = send_request(x, y->id);
    uint32_t rq_z = send_request(x, z->id);
    flush(x);
    struct tw_msg_trade_result a_y = answer(pr, x, rq_y);
    struct tw_msg_trade_result a_z = answer(pr, x, rq_z);
    cJSON_AddItemToObject(pr->out, "request_y", result_json(&a_y));
    cJSON_AddItemToObject(pr->out, "request_z", result_json(&a_z));
    uint32_t trade = a_y.trade_id;

    /* X accepting its own request on Y's behalf. */
    struct tw_msg_trade_result r_x =
        answer(pr, x, (send_respond(x, trade, true), flush(x),
                       x->next_request));
    cJSON_AddItemToObject(pr->out, "accept_by_requester", result_json(&r_x));

    /* Both accept in the same tick; only the named partner may. */
    uint32_t ac_y = send_respond(y, trade, true);
    uint32_t ac_z = send_respond(z, trade, true);
    flush(y);
    flush(z);
    struct tw_msg_trade_result r_y = answer(pr, y, ac_y);
    struct tw_msg_trade_result r_z = answer(pr, z, ac_z);
    cJSON_AddItemToObject(pr->out, "accept_y", result_json(&r_y));
    cJSON_AddItemToObject(pr->out, "accept_z", result_json(&r_z));

    const struct tw_item *sword = find_kind(x, "sword");
    const struct tw_item *gold = find_kind(y, "gold");
    if (!sword || !gold)
        fail("starter items missing");
    uint64_t sword_id = sword->item_id;
    cJSON_AddNumberToObject(pr->out, "sword_id", (double)sword_id);
    answer(pr, x, (send_offer(x, trade, sword_id, 1), flush(x),
                   x->next_request));
    answer(pr, y, (send_offer(y, trade, gold->item_id, 10), flush(y),
                   y->next_request));
    if (!wait_for(pr, x, has_version, 2, WAIT_MS))
        fail("no update with both offers");
    uint32_t version = x->update.offer_version;

    /* Outsider Z confirms and cancels the trade of X and Y. */
    struct tw_msg_trade_result oz =
        answer(pr, z, (send_confirm(z, trade, version), flush(z),
                       z->next_request));
    cJSON_AddItemToObject(pr->out, "confirm_by_outsider", result_json(&oz));
    /* A confirm with Y's player id appended is too long: no answer. */
    {
        struct tw_msg_trade_confirm m = {.request_id = ++x->next_request,
                                         .trade_id = trade,
                                         .offer_version = version};
        uint8_t buf[64];
        int n = tw_encode_trade_confirm(&m, buf, sizeof buf);
        memcpy(buf + n, &y->id, sizeof y->id);
        send_plain(x, buf, n + (int)sizeof y->id);
        flush(x);
        service_all(pr, 300);
        cJSON_AddBoolToObject(pr->out, "padded_confirm_answered",
                              find_result(x, m.request_id, 0) != NULL);
    }
    /* X confirms; Y's confirmation must still be its own to give. */
    answer(pr, x, (send_confirm(x, trade, version), flush(x),
                   x->next_request));
    service_all(pr, 200);
    cJSON_AddBoolToObject(pr->out, "b_confirmed_after_a",
                          y->update.confirmed_b);
    cJSON_AddStringToObject(pr->out, "state_after_a",
                            tw_trade_state_name(y->update.state));
    answer(pr, y, (send_confirm(y, trade, version), flush(y),
                   y->next_request));
    if (!wait_for(pr, x, has_end, trade, WAIT_MS))
        fail("trade did not end");
    cJSON_AddItemToObject(pr->out, "trade",
                          result_json(find_result(x, 0, trade)));
    cJSON_AddNumberToObject(pr->out, "trade_id", trade);
    service_all(pr, 200);

    /* The sword is Y's now: X cannot offer it to Z. */
    uint32_t rq = send_request(x, z->id);
    flush(x);
    uint32_t trade2 = answer(pr, x, rq).trade_id;
    answer(pr, z, (send_respond(z, trade2, true), flush(z), z->next_request));
    if (!wait_for(pr, x, has_state, TW_TRADE_OPEN, WAIT_MS))
        fail("second trade did not open");
    struct tw_msg_trade_result again =
        answer(pr, x, (send_offer(x, trade2, sword_id, 1), flush(x),
                       x->next_request));
    cJSON_AddItemToObject(pr->out, "offer_sword_again", result_json(&again));
    bool x_has = false, y_has = false;
    for (unsigned i = 0; i < x->inv.count; i++)
        x_has |= x->inv.items[i].item_id == sword_id;
    for (unsigned i = 0; i < y->inv.count; i++)
        y_has |= y->inv.items[i].item_id == sword_id;
    cJSON_AddBoolToObject(pr->out, "x_holds_sword", x_has);
    cJSON_AddBoolToObject(pr->out, "y_holds_sword", y_has);
}

/* One confirm-and-drop round; returns its record. */
static cJSON *confirm_leave_round(struct probe *pr, uint32_t round)
{
    struct player *x = &pr->p[0], *y = &pr->p[1];
    cJSON *o = cJSON_CreateObject();
    uint32_t rq = send_request(x, y->id);
    flush(x);
    struct tw_msg_trade_result a = answer(pr, x, rq);
    if (a.status != TW_TRADE_S_OK)
        fail("request refused");
    uint32_t trade = a.trade_id;
    cJSON_AddNumberToObject(o, "trade_id", trade);
    answer(pr, y, (send_respond(y, trade, true), flush(y), y->next_request));

    /*
     * Run both store paths: partial gold in most rounds, the whole gold
     * item where the confirm never leaves (round % 3 == 1) and in the
     * last round. A committed whole item would leave X no gold for later
     * rounds, so it is never offered where the trade may commit early.
     */
    const struct tw_item *gx = find_kind(x, "gold");
    const struct tw_item *py = find_kind(y, "potion");
    if (!gx || !py)
        fail("starter items missing");
    bool whole = round % 3 == 1 || round + 1 == pr->rounds;
    uint32_t qx = whole ? gx->quantity : 1;
    cJSON_AddNumberToObject(o, "x_item", (double)gx->item_id);
    cJSON_AddNumberToObject(o, "x_quantity", qx);
    cJSON_AddNumberToObject(o, "y_item", (double)py->item_id);
    cJSON_AddNumberToObject(o, "y_quantity", 1);
    answer(pr, x, (send_offer(x, trade, gx->item_id, qx), flush(x),
                   x->next_request));
    answer(pr, y, (send_offer(y, trade, py->item_id, 1), flush(y),
                   y->next_request));
    if (!wait_for(pr, y, has_version, 2, WAIT_MS))
        fail("no update with both offers");
    uint32_t version = y->update.offer_version;
    answer(pr, y, (send_confirm(y, trade, version), flush(y),
                   y->next_request));

    send_confirm(x, trade, version);
    if (round % 3 == 0) {
        /* The confirm leaves with a disconnect right behind it; ENet
         * drops data not yet handed to the server when the disconnect
         * arrives with it (disconnect_now alone would not even send). */
        flush(x);
        enet_peer_disconnect_now(x->peer, TW_REASON_CLIENT_LEFT);
        cJSON_AddStringToObject(o, "drop", "disconnect");
    } else if (round % 3 == 1) {
        /* Gone without a word: the confirm never leaves the host. */
        enet_peer_reset(x->peer);
        cJSON_AddStringToObject(o, "drop", "reset");
    } else {
        /* The server has the confirm; X vanishes before the result. */
        flush(x);
        uint64_t until = tw_clock_mono_ns() + WAIT_MS * MS;
        while ((!enet_list_empty(&x->peer->sentReliableCommands) ||
                !enet_list_empty(&x->peer->outgoingCommands)) &&
               tw_clock_mono_ns() < until) {
            ENetEvent ev;
            enet_time_set((enet_uint32)(tw_clock_mono_ns() / MS));
            if (enet_host_service(x->host, &ev, 1) > 0 &&
                ev.type == ENET_EVENT_TYPE_RECEIVE)
                enet_packet_destroy(ev.packet);
        }
        enet_peer_reset(x->peer);
        cJSON_AddStringToObject(o, "drop", "reset_after_ack");
    }
    drop_player(x);

    if (!wait_for(pr, y, has_end, trade, 3 * WAIT_MS))
        fail("the partner never saw the trade end");
    cJSON_AddItemToObject(o, "partner_saw",
                          result_json(find_result(y, 0, trade)));

    /* Back again: the outcome arrives as a notice if it was committed. */
    x->result_count = 0;
    connect_player(pr, x);
    service_all(pr, 300);
    const struct tw_msg_trade_result *notice = find_result(x, 0, trade);
    if (notice)
        cJSON_AddItemToObject(o, "notice", result_json(notice));
    y->have_update = false;
    return o;
}

static void run_confirm_leave(struct probe *pr)
{
    struct player *x = &pr->p[0], *y = &pr->p[1];
    connect_player(pr, x);
    connect_player(pr, y);
    cJSON *rounds = cJSON_AddArrayToObject(pr->out, "rounds");
    for (uint32_t i = 0; i < pr->rounds; i++)
        cJSON_AddItemToArray(rounds, confirm_leave_round(pr, i));
}

static void usage(FILE *out)
{
    fputs("usage: tw-trade-probe --server HOST:PORT --key FILE "
          "--scenario contend|confirm-leave\n"
          "                      [--match ID] [--player-base ID] "
          "[--rounds N]\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"server", required_argument, NULL, 's'},
        {"key", required_argument, NULL, 'k'},
        {"scenario", required_argument, NULL, 'c'},
        {"match", required_argument, NULL, 'm'},
        {"player-base", required_argument, NULL, 'p'},
        {"rounds", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    struct probe pr;
    memset(&pr, 0, sizeof pr);
    pr.match_id = 1;
    pr.base = 5000;
    pr.rounds = 6;
    const char *server = NULL, *key = NULL, *scenario = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 's': server = optarg; break;
        case 'k': key = optarg; break;
        case 'c': scenario = optarg; break;
        case 'm': pr.match_id = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'p': pr.base = strtoull(optarg, NULL, 10); break;
        case 'r': pr.rounds = (uint32_t)strtoul(optarg, NULL, 10); break;
        default: usage(stderr); return 2;
        }
    }
    char err[256];
    const char *colon = server ? strrchr(server, ':') : NULL;
    if (!colon || !key || !scenario || pr.rounds == 0 || pr.rounds > 100) {
        usage(stderr);
        return 2;
    }
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(colon - server), server);
    pr.server.port = (enet_uint16)strtoul(colon + 1, NULL, 10);
    if (tw_crypto_init() != TW_OK || enet_initialize() != 0 ||
        enet_address_set_host_ip(&pr.server, host) != 0 ||
        tw_key_load(key, pr.key, err, sizeof err) != TW_OK) {
        fprintf(stderr, "tw-trade-probe: bad --server or --key\n");
        return 2;
    }
    for (int i = 0; i < MAX_PLAYERS; i++)
        pr.p[i].id = pr.base + (uint64_t)i;
    pr.out = cJSON_CreateObject();
    cJSON_AddStringToObject(pr.out, "scenario", scenario);
    if (strcmp(scenario, "contend") == 0) {
        run_contend(&pr);
    } else if (strcmp(scenario, "confirm-leave") == 0) {
        run_confirm_leave(&pr);
    } else {
        usage(stderr);
        return 2;
    }
    for (int i = 0; i < MAX_PLAYERS; i++) {
        if (pr.p[i].peer) {
            enet_peer_disconnect_now(pr.p[i].peer, TW_REASON_CLIENT_LEFT);
        }
        drop_player(&pr.p[i]);
    }
    char *text = cJSON_PrintUnformatted(pr.out);
    puts(text);
    free(text);
    cJSON_Delete(pr.out);
    sodium_memzero(pr.key, sizeof pr.key);
    enet_deinitialize();
    return 0;
}
