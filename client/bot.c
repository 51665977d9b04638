#include "bot.h"

#include "log.h"

#include <math.h>
#include <string.h>

#define PING_INTERVAL_NS 1000000000ull

/* splitmix64: a small, well-mixed generator for seeded movement. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void tw_bot_init(struct tw_bot *b, uint32_t index, uint64_t seed)
{
    struct tw_token token = b->token;
    memset(b, 0, sizeof *b);
    b->token = token;
    b->index = index;
    b->rng = seed * 1000003u + index;
    b->next_seq = 1;
    b->next_event_seq = 1;
}

int tw_bot_connect(struct tw_bot *b, ENetHost *host, const ENetAddress *to)
{
    b->peer = enet_host_connect(host, to, TW_CHANNEL_COUNT,
                                TW_PROTOCOL_VERSION);
    if (!b->peer)
        return -1;
    b->peer->data = b;
    b->state = TW_BOT_CONNECTING;
    return 0;
}

static void bot_error(struct tw_bot *b, const char *what, int code)
{
    b->n.errors++;
    TW_LOG(TW_WARN, "bot", (long)b->index, "%s (%s)", what, tw_drop_name(code));
}

static void send_sealed(struct tw_bot *b, uint8_t channel, const uint8_t *plain,
                        int len, uint32_t flags)
{
    if (len <= 0 || b->state != TW_BOT_PLAYING)
        return;
    uint8_t sealed[TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD];
    int n = tw_seal(&b->tx, channel, plain, (size_t)len, sealed, sizeof sealed);
    if (n < 0) {
        bot_error(b, "cannot seal a message", n);
        return;
    }
    ENetPacket *packet = enet_packet_create(sealed, (size_t)n, flags);
    if (packet && enet_peer_send(b->peer, channel, packet) < 0)
        enet_packet_destroy(packet);
}

void tw_bot_send_reliable(struct tw_bot *b, const uint8_t *plain, int len)
{
    send_sealed(b, TW_CH_RELIABLE, plain, len, ENET_PACKET_FLAG_RELIABLE);
}

static void on_connected(struct tw_bot *b)
{
    struct tw_msg_login login;
    uint8_t buf[TW_MAX_PAYLOAD];
    tw_token_to_login(&b->token, &login);
    int n = tw_encode_login(&login, buf, sizeof buf);
    if (n < 0) {
        bot_error(b, "cannot encode login", n);
        return;
    }
    ENetPacket *packet =
        enet_packet_create(buf, (size_t)n, ENET_PACKET_FLAG_RELIABLE);
    if (packet && enet_peer_send(b->peer, TW_CH_RELIABLE, packet) < 0)
        enet_packet_destroy(packet);
    b->state = TW_BOT_LOGGING_IN;

    /* The session keys come with the token, so even the reply is sealed. */
    tw_cipher_init(&b->rx, b->token.s2c_key, b->token.match_id, TW_DIR_S2C);
    tw_cipher_init(&b->tx, b->token.c2s_key, b->token.match_id, TW_DIR_C2S);
    tw_cipher_random_start(&b->tx);
}

static void on_login_ok(struct tw_bot *b, const uint8_t *msg, size_t len,
                        uint64_t now)
{
    struct tw_msg_login_ok ok;
    int rc = tw_decode_login_ok(msg, len, &ok);
    if (rc != TW_OK) {
        bot_error(b, "invalid login reply", rc);
        return;
    }
    b->slot = ok.slot;
    b->pos = ok.spawn;
    b->sim.world = ok.world;
    b->sim.max_speed = ok.max_speed;
    b->sim.dt = 1.0f / (float)ok.tick_hz;
    tw_quant_init(&b->quant, ok.world);
    b->state = TW_BOT_PLAYING;
    b->playing_since_ns = now;
    b->logged_in_once = true;
    TW_LOG(TW_DEBUG, "bot", (long)b->index, "logged in, slot %u", ok.slot);
}

static void record_prediction(struct tw_bot *b, const struct tw_msg_snapshot *s,
                              struct tw_crowd_stats *cs)
{
    if (s->count == 0 || s->entities[0].slot != b->slot || s->ack_input_seq == 0)
        return;
    struct tw_vec2 server = {tw_dequantize(s->entities[0].qx),
                             tw_dequantize(s->entities[0].qy)};
    uint32_t ack = s->ack_input_seq;
    unsigned at = ack % TW_BOT_HISTORY;
    if (b->history_seq[at] != ack || ack >= b->next_seq)
        return;

    struct tw_vec2 predicted = b->history_pos[at];
    float error = hypotf(predicted.x - server.x, predicted.y - server.y);
    tw_hist_add(&cs->prediction_mu, (uint64_t)(error * 1e6f));

    /*
     * Within one quantization step the prediction already matches the
     * server's exact position; snapping to the rounded value would only
     * add rounding error to every later prediction.
     */
    if (error <= 1.0f / TW_POS_SCALE)
        return;
    b->n.corrections++;

    /* Reconcile: restart from the server's state and replay newer inputs. */
    struct tw_vec2 pos = server;
    for (uint32_t seq = ack + 1; seq < b->next_seq; seq++) {
        unsigned i = seq % TW_BOT_HISTORY;
        if (b->history_seq[i] != seq)
            break;
        tw_sim_step(&b->sim, &pos, b->history_input[i]);
        b->history_pos[i] = pos;
    }
    b->pos = pos;
}

/* Tracks snapshot timing and ticks missed, for the network lab. */
static void note_arrival(struct tw_bot *b, uint32_t tick, uint64_t now,
                         struct tw_crowd_stats *cs)
{
    if (b->have_snapshot) {
        uint32_t ticks = tick - b->last_snapshot_tick;
        b->n.snapshots_missed += ticks - 1;
        uint64_t expected = (uint64_t)ticks * (uint64_t)(b->sim.dt * 1e9f);
        uint64_t gap = now - b->last_arrival_ns;
        uint64_t jitter = gap > expected ? gap - expected : expected - gap;
        tw_hist_add(&cs->jitter_us, jitter / 1000u);
        cs->interval_jitter_sum_us += jitter / 1000u;
        cs->interval_arrivals++;
    }
    b->last_arrival_ns = now;
}

/*
 * Decodes a snapshot straight into the ring of baselines, against the
 * baseline it names. One coded against a snapshot this bot does not hold
 * is dropped: a well-behaved server only uses acknowledged baselines.
 */
static void on_snapshot(struct tw_bot *b, const uint8_t *msg, size_t len,
                        uint64_t now, struct tw_crowd_stats *cs)
{
    struct tw_snap_header h;
    int rc = tw_snapshot_peek(msg, len, &h);
    if (rc != TW_OK) {
        bot_error(b, "invalid snapshot", rc);
        return;
    }
    if (b->have_snapshot && h.tick <= b->last_snapshot_tick)
        return;
    const struct tw_msg_snapshot *base = NULL;
    struct tw_msg_snapshot *snap = NULL;
    if (h.base_tick)
        base = tw_snap_ring_find(&b->snaps, h.base_tick);
    if (!h.base_tick || base)
        snap = tw_snap_ring_claim(&b->snaps, h.tick, base);
    if (!snap) {
        b->n.snapshot_no_baseline++;
        bot_error(b, "snapshot against an unknown baseline",
                  TW_DROP_WRONG_STATE);
        return;
    }
    rc = tw_decode_snapshot(&b->quant, base, msg, len, snap);
    if (rc != TW_OK) {
        bot_error(b, "invalid snapshot", rc);
        return;
    }
    tw_snap_ring_commit(&b->snaps, h.tick);
    note_arrival(b, h.tick, now, cs);
    b->n.snapshots++;
    b->n.snapshots_full += h.base_tick == 0;
    b->n.snapshot_bytes += len;
    b->have_snapshot = true;
    b->last_snapshot_tick = h.tick;
    record_prediction(b, snap, cs);
}

static void on_event(struct tw_bot *b, const uint8_t *msg, size_t len)
{
    struct tw_msg_event ev;
    int rc = tw_decode_event(msg, len, &ev);
    if (rc != TW_OK) {
        bot_error(b, "invalid event", rc);
        return;
    }
    b->n.events++;
    if (ev.seq == b->next_event_seq) {
        b->next_event_seq++;
    } else if (ev.seq > b->next_event_seq) {
        b->n.event_gaps += ev.seq - b->next_event_seq;
        b->next_event_seq = ev.seq + 1;
    } else if (ev.seq == b->next_event_seq - 1) {
        b->n.event_duplicates++;
    } else {
        b->n.event_out_of_order++;
    }
}

static void on_pong(struct tw_bot *b, const uint8_t *msg, size_t len,
                    uint64_t now, struct tw_crowd_stats *cs)
{
    struct tw_msg_ping pong;
    int rc = tw_decode_ping(TW_MSG_PONG, msg, len, &pong);
    if (rc != TW_OK) {
        bot_error(b, "invalid pong", rc);
        return;
    }
    b->n.pongs++;
    if (now > pong.client_ns) {
        uint64_t us = (now - pong.client_ns) / 1000u;
        tw_hist_add(&cs->ping_us, us);
        cs->interval_ping_sum_us += us;
        cs->interval_pings++;
    }
}

static void on_receive(struct tw_bot *b, const ENetEvent *ev, uint64_t now,
                       struct tw_crowd_stats *cs)
{
    if (b->state != TW_BOT_LOGGING_IN && b->state != TW_BOT_PLAYING) {
        b->n.bad_packets++;
        return;
    }
    uint8_t plain[TW_MAX_PAYLOAD];
    int n = tw_open(&b->rx, ev->channelID, ev->packet->data,
                    ev->packet->dataLength, plain, sizeof plain);
    if (n <= 0) {
        bot_error(b, "cannot open a packet from the server", n);
        return;
    }
    switch (plain[0]) {
    case TW_MSG_LOGIN_OK:
        if (b->state == TW_BOT_LOGGING_IN)
            on_login_ok(b, plain, (size_t)n, now);
        else
            bot_error(b, "second login reply", TW_DROP_WRONG_STATE);
        break;
    case TW_MSG_SNAPSHOT:
        /*
         * Snapshots travel unreliably, so on a lossy link they can overtake
         * a retransmitted LOGIN_OK; until it arrives there is no world to
         * decode them against.
         */
        if (b->state == TW_BOT_PLAYING)
            on_snapshot(b, plain, (size_t)n, now, cs);
        break;
    case TW_MSG_EVENT:
        on_event(b, plain, (size_t)n);
        break;
    case TW_MSG_PONG:
        on_pong(b, plain, (size_t)n, now, cs);
        break;
    case TW_MSG_MATCH_END: {
        struct tw_msg_match_end end;
        int rc = tw_decode_match_end(plain, (size_t)n, &end);
        if (rc != TW_OK)
            bot_error(b, "invalid match end", rc);
        else
            TW_LOG(TW_DEBUG, "bot", (long)b->index, "match over: %s",
                   tw_reason_name(end.reason));
        break;
    }
    default:
        if (!tw_trader_on_message(b, plain, (size_t)n, now))
            bot_error(b, "unexpected message", TW_DROP_UNKNOWN_ID);
        break;
    }
}

void tw_bot_on_event(struct tw_bot *b, const ENetEvent *ev, uint64_t now,
                     struct tw_crowd_stats *cs)
{
    switch (ev->type) {
    case ENET_EVENT_TYPE_CONNECT:
        on_connected(b);
        break;
    case ENET_EVENT_TYPE_RECEIVE:
        on_receive(b, ev, now, cs);
        break;
    case ENET_EVENT_TYPE_DISCONNECT:
        if (b->state == TW_BOT_PLAYING)
            b->playing_ns += now - b->playing_since_ns;
        if (b->state != TW_BOT_LEAVING) {
            b->disconnect_reason = ev->data;
            b->timed_out = ev->data == TW_REASON_NONE;
            bool expected = ev->data == TW_REASON_SHUTDOWN ||
                            ev->data == TW_REASON_MATCH_ENDED;
            TW_LOG(expected ? TW_DEBUG : TW_WARN, "bot",
                   (long)b->index, "disconnected by the server: %s",
                   b->timed_out ? "timed out" : tw_reason_name(ev->data));
        }
        b->state = TW_BOT_GONE;
        b->peer = NULL;
        tw_trader_on_disconnect(&b->trade);
        tw_cipher_wipe(&b->tx);
        tw_cipher_wipe(&b->rx);
        break;
    case ENET_EVENT_TYPE_NONE:
        break;
    }
}

/* Picks a new heading every one to three seconds. */
static struct tw_input next_heading(struct tw_bot *b, uint32_t tick_hz)
{
    if (b->heading_ticks_left == 0) {
        uint64_t r = next_random(&b->rng);
        float angle = (float)(r & 0xFFFF) / 65536.0f * 6.2831853f;
        bool idle = ((r >> 16) & 7) == 0;
        b->heading.dx = idle ? 0 : (int8_t)lrintf(cosf(angle) * 127.0f);
        b->heading.dy = idle ? 0 : (int8_t)lrintf(sinf(angle) * 127.0f);
        b->heading_ticks_left = tick_hz + (uint32_t)((r >> 20) % (2 * tick_hz));
    }
    b->heading_ticks_left--;
    return b->heading;
}

void tw_bot_tick(struct tw_bot *b, uint64_t now, uint32_t tick_hz,
                 struct tw_crowd_stats *cs)
{
    if (b->state != TW_BOT_PLAYING)
        return;
    (void)cs;

    struct tw_input in = next_heading(b, tick_hz);
    uint32_t seq = b->next_seq++;
    unsigned at = seq % TW_BOT_HISTORY;
    tw_sim_step(&b->sim, &b->pos, in);
    b->history_seq[at] = seq;
    b->history_input[at] = in;
    b->history_pos[at] = b->pos;

    struct tw_msg_input msg = {.newest_seq = seq,
                               .ack_snapshot = b->last_snapshot_tick};
    for (uint32_t i = 0; i < TW_INPUT_REDUNDANCY && i < seq; i++) {
        unsigned h = (seq - i) % TW_BOT_HISTORY;
        msg.inputs[msg.count++] = b->history_input[h];
    }
    uint8_t buf[64];
    send_sealed(b, TW_CH_INPUT, buf, tw_encode_input(&msg, buf, sizeof buf),
                ENET_PACKET_FLAG_UNSEQUENCED);

    uint64_t ping_due = b->playing_since_ns +
                        (uint64_t)(b->n.pings_sent + 1) * PING_INTERVAL_NS;
    if (now >= ping_due) {
        struct tw_msg_ping ping = {.id = ++b->ping_id, .client_ns = now};
        send_sealed(b, TW_CH_RELIABLE, buf,
                    tw_encode_ping(TW_MSG_PING, &ping, buf, sizeof buf),
                    ENET_PACKET_FLAG_RELIABLE);
        b->n.pings_sent++;
        tw_hist_add(&cs->rtt_ms, b->peer->roundTripTime);
    }
    tw_trader_tick(b, now);
}

void tw_bot_prepare_reconnect(struct tw_bot *b)
{
    b->state = TW_BOT_IDLE;
    b->peer = NULL;
    b->have_snapshot = false;
    b->next_event_seq = 1;
    b->disconnect_reason = 0;
    b->timed_out = false;
    /* A new server counts pings from the new login. */
    b->n.pings_sent = 0;
}

void tw_bot_leave(struct tw_bot *b, uint64_t now)
{
    if (!b->peer || b->state == TW_BOT_GONE || b->state == TW_BOT_LEAVING)
        return;
    if (b->state == TW_BOT_PLAYING)
        b->playing_ns += now - b->playing_since_ns;
    b->state = TW_BOT_LEAVING;
    enet_peer_disconnect_later(b->peer, TW_REASON_CLIENT_LEFT);
}
