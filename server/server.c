#include "server.h"

#include "agones.h"
#include "backoff.h"
#include "clock.h"
#include "crypto.h"
#include "http.h"
#include "datagram.h"
#include "log.h"
#include "match.h"
#include "protocol.h"
#include "publish.h"
#include "snapshot.h"
#include "stats.h"
#include "trading.h"

#include <enet/enet.h>
#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATS_INTERVAL_NS (10ull * 1000000000ull)
#define PUBLISH_INTERVAL_NS 1000000000ull
#define MAX_EVENTS_PER_WAKE 4096
#define MAX_TICKS_BEHIND 5u
#define SHUTDOWN_GRACE_NS (500ull * 1000000ull)
#define USED_TOKEN_CAP 65536u
#define MAX_SERVERS 16 /* servers in one process, for the intercept hook */

enum session_state {
    SESSION_FREE = 0,
    SESSION_PENDING, /* connected, not logged in */
    SESSION_ACTIVE,  /* logged in, every message sealed */
    SESSION_CLOSING, /* disconnect sent, waiting for ENet to confirm */
};

struct session {
    enum session_state state;
    ENetPeer *peer;
    uint32_t id;        /* ENet's incoming peer id, also our index */
    uint32_t address;   /* IPv4 host, network byte order */
    uint64_t connected_ns;
    int slot;           /* match slot while active, else -1 */
    uint64_t player_id;
    struct tw_cipher rx; /* client to server */
    struct tw_cipher tx; /* server to client */
    uint32_t next_event_seq;

    /* Token bucket over every packet the peer sends. */
    double rate_tokens;
    uint64_t rate_last_ns;
    uint32_t rate_strikes; /* drops in the current second */
    uint64_t rate_window_ns;
};

struct used_token {
    uint8_t nonce[TW_TOKEN_NONCE_BYTES];
    uint64_t expires_at;
};

struct tw_server {
    struct tw_config cfg;
    ENetHost *host;
    uint8_t match_key[TW_KEY_BYTES];
    struct session *sessions;
    uint32_t session_count;
    uint32_t pending;
    struct tw_match match;
    struct tw_stats stats;
    struct tw_ticker ticker;
    uint64_t next_stats_ns;
    uint64_t next_event_ns;
    struct tw_ratelimit drop_log;
    struct tw_ratelimit refuse_log;
    struct tw_ratelimit tick_log;

    /* Added to monotonic ms to form ENet's clock (debug.enet_time_start_ms). */
    uint32_t enet_time_offset_ms;
    /*
     * When each ENet peer without a session was first seen by a tick (0:
     * not seen): half-open handshakes are reset at the login timeout.
     */
    uint64_t *unbound_since;

    /* Tick lateness tracking, and the test-only load of debug.tick_*. */
    uint64_t late_ticks;
    uint64_t late_since_ns;
    uint64_t load_start_ns, load_end_ns;
    bool stalled, load_ended;

    /* Operations: stats for the HTTP thread, the Agones sidecar. */
    struct tw_publisher *publisher;
    struct tw_published *published;
    uint64_t next_publish_ns;
    struct tw_http *http;
    struct tw_agones *agones;

    uint64_t start_unix; /* wall clock at startup, for token freshness */

    /* Inventories, trades and the store thread. */
    struct tw_trading *trading;

    /* Reason the match is ending; TW_REASON_NONE while it runs. */
    enum tw_reason ending;
    uint64_t empty_since_ns; /* when the last player left, 0 if any play */

    /* Nonces of tokens already used, kept until they expire. */
    struct used_token *used;
    size_t used_count;
};

typedef void (*handler_fn)(struct tw_server *s, struct session *ss,
                           const uint8_t *msg, size_t len, uint64_t now);

struct route {
    handler_fn handler;
    uint8_t channel;
};

static void handle_input(struct tw_server *s, struct session *ss,
                         const uint8_t *msg, size_t len, uint64_t now);
static void handle_ping(struct tw_server *s, struct session *ss,
                        const uint8_t *msg, size_t len, uint64_t now);
static void handle_trade(struct tw_server *s, struct session *ss,
                         const uint8_t *msg, size_t len, uint64_t now);

/* Messages a logged-in client may send, by id. Everything else is dropped. */
static const struct route routes[256] = {
    [TW_MSG_INPUT] = {handle_input, TW_CH_INPUT},
    [TW_MSG_PING] = {handle_ping, TW_CH_RELIABLE},
    [TW_MSG_TRADE_REQUEST] = {handle_trade, TW_CH_RELIABLE},
    [TW_MSG_TRADE_RESPOND] = {handle_trade, TW_CH_RELIABLE},
    [TW_MSG_TRADE_OFFER] = {handle_trade, TW_CH_RELIABLE},
    [TW_MSG_TRADE_CONFIRM] = {handle_trade, TW_CH_RELIABLE},
    [TW_MSG_TRADE_CANCEL] = {handle_trade, TW_CH_RELIABLE},
};

static long peer_log_id(const struct session *ss)
{
    return ss ? (long)ss->id : TW_NO_PEER;
}

/*
 * ENet's intercept hook receives only the host, so each server registers
 * its host here. The server runs on one thread; so do tests and fuzzers.
 */
static struct {
    ENetHost *host;
    struct tw_server *server;
} registry[MAX_SERVERS];

static bool register_host(struct tw_server *s)
{
    for (unsigned i = 0; i < MAX_SERVERS; i++) {
        if (!registry[i].host) {
            registry[i].host = s->host;
            registry[i].server = s;
            return true;
        }
    }
    return false;
}

static void unregister_host(const struct tw_server *s)
{
    for (unsigned i = 0; i < MAX_SERVERS; i++)
        if (registry[i].server == s)
            registry[i].host = NULL, registry[i].server = NULL;
}

static struct tw_server *server_of(const ENetHost *host)
{
    for (unsigned i = 0; i < MAX_SERVERS; i++)
        if (registry[i].host == host)
            return registry[i].server;
    return NULL;
}

/*
 * Sets ENet's clock before every ENet call that reads it. ENet 1.3.17 times
 * peers with gettimeofday, so a wall clock step would time out every peer;
 * the monotonic clock cannot step. The offset lets tests start the 32-bit
 * millisecond counter just before it wraps.
 */
static void sync_enet_clock(const struct tw_server *s, uint64_t now)
{
    enet_time_set((enet_uint32)(now / 1000000u) + s->enet_time_offset_ms);
}

/*
 * Counts a dropped packet by reason, logs it at debug, and warns at a
 * limited rate so a flood cannot fill the disk.
 */
static void drop_packet(struct tw_server *s, struct session *ss, int reason,
                        uint8_t channel, size_t len, uint64_t now)
{
    if (reason < 0)
        reason = -reason;
    if (reason <= 0 || reason >= TW_DROP_COUNT)
        reason = TW_DROP_MALFORMED;
    s->stats.drops[reason]++;
    TW_LOG(TW_DEBUG, "net", peer_log_id(ss), "dropped %zu bytes on channel %u: %s",
           len, channel, tw_drop_name(reason));

    uint64_t suppressed = 0;
    if (tw_ratelimit_allow(&s->drop_log, now, &suppressed))
        TW_LOG(TW_WARN, "net", peer_log_id(ss),
               "dropped packet (%s, %zu bytes, channel %u); %llu similar "
               "lines suppressed",
               tw_drop_name(reason), len, channel,
               (unsigned long long)suppressed);
}

/*
 * Ends a session's game state: counts the reason, frees the player's slot
 * (unless another peer took the player over) and wipes the keys. ENet's
 * side of the peer is left to the caller.
 */
static void end_session(struct tw_server *s, struct session *ss,
                        enum tw_reason reason)
{
    if (ss->state == SESSION_PENDING) {
        s->pending--;
        s->stats.refusals[reason]++;
    } else if (ss->state == SESSION_ACTIVE) {
        s->stats.disconnects[reason]++;
    }
    if (ss->slot >= 0) {
        struct tw_player *p = &s->match.players[ss->slot];
        if (p->session == (int)ss->id) {
            tw_trading_player_left(s->trading, ss->player_id);
            tw_match_remove(&s->match, ss->slot);
            s->stats.players_active = s->match.active_count;
        }
        ss->slot = -1;
    }
    tw_cipher_wipe(&ss->rx);
    tw_cipher_wipe(&ss->tx);
}

/*
 * Disconnects a peer with a reason the client can print. A graceful close
 * lets ENet deliver queued reliable data first; an immediate one frees the
 * slot now, for peers that may be spoofed or flooding.
 */
static void close_session(struct tw_server *s, struct session *ss,
                          enum tw_reason reason, bool immediately)
{
    if (ss->state != SESSION_PENDING && ss->state != SESSION_ACTIVE)
        return;
    TW_LOG(reason == TW_REASON_SHUTDOWN ? TW_DEBUG : TW_INFO, "session",
           (long)ss->id, "disconnecting: %s", tw_reason_name(reason));
    end_session(s, ss, reason);

    if (immediately) {
        sync_enet_clock(s, tw_clock_mono_ns());
        enet_peer_disconnect_now(ss->peer, reason);
        ss->peer->data = NULL;
        ss->state = SESSION_FREE;
        s->stats.connects_active--;
    } else {
        enet_peer_disconnect(ss->peer, reason);
        ss->state = SESSION_CLOSING;
    }
}

/* Seals one message for an active session and queues it on channel. */
static int send_sealed(struct tw_server *s, struct session *ss, uint8_t channel,
                       const uint8_t *plain, size_t len, uint32_t flags)
{
    uint8_t sealed[TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD];
    int n = tw_seal(&ss->tx, channel, plain, len, sealed, sizeof sealed);
    if (n < 0) {
        TW_LOG(TW_ERROR, "session", (long)ss->id,
               "cannot seal %zu bytes (%s); closing session", len,
               tw_drop_name(n));
        close_session(s, ss, TW_REASON_PROTOCOL_ERROR, false);
        return -1;
    }
    /*
     * ENet 1.3.17 turns an unreliable packet larger than one fragment into
     * reliable fragments: late snapshots would then block later ones.
     */
    if (!(flags & ENET_PACKET_FLAG_RELIABLE) &&
        (size_t)n > tw_fragment_length(ss->peer->mtu)) {
        s->stats.unreliable_over_mtu++;
        return -1;
    }
    ENetPacket *packet = enet_packet_create(sealed, (size_t)n, flags);
    if (!packet || enet_peer_send(ss->peer, channel, packet) < 0) {
        if (packet)
            enet_packet_destroy(packet);
        return -1;
    }
    s->stats.msgs_out++;
    s->stats.bytes_out += (uint64_t)n;
    return 0;
}

static void send_reliable(struct tw_server *s, struct session *ss,
                          const uint8_t *plain, int len)
{
    if (len > 0)
        send_sealed(s, ss, TW_CH_RELIABLE, plain, (size_t)len,
                    ENET_PACKET_FLAG_RELIABLE);
}

/* Remembers a token nonce; false when it was already used. */
static bool use_token_once(struct tw_server *s, const struct tw_msg_login *in,
                           uint64_t now_unix)
{
    size_t kept = 0;
    bool seen = false;

    /* Forget expired tokens while scanning: they can no longer log in. */
    for (size_t i = 0; i < s->used_count; i++) {
        if (s->used[i].expires_at <= now_unix)
            continue;
        if (sodium_memcmp(s->used[i].nonce, in->nonce, TW_TOKEN_NONCE_BYTES) ==
            0)
            seen = true;
        s->used[kept++] = s->used[i];
    }
    s->used_count = kept;
    if (seen)
        return false;
    if (s->used_count == USED_TOKEN_CAP) {
        /* NOTE: at the cap the oldest entry is forgotten, so its token
         * could be used once more before it expires. */
        memmove(s->used, s->used + 1, (USED_TOKEN_CAP - 1) * sizeof *s->used);
        s->used_count--;
    }
    memcpy(s->used[s->used_count].nonce, in->nonce, TW_TOKEN_NONCE_BYTES);
    s->used[s->used_count].expires_at = in->expires_at;
    s->used_count++;
    return true;
}

/* Checks a login; returns TW_REASON_NONE and fills tok when it is valid. */
static enum tw_reason check_login(struct tw_server *s,
                                  const struct tw_msg_login *login,
                                  struct tw_token_private *tok)
{
    if (login->protocol != TW_PROTOCOL_VERSION)
        return TW_REASON_VERSION_MISMATCH;
    if (tw_token_open(s->match_key, login, tok) != TW_OK)
        return TW_REASON_BAD_TOKEN;

    uint64_t now_unix = tw_clock_unix_s();
    enum tw_reason why = tw_token_validate(tok, login, s->cfg.match.match_id,
                                           now_unix, s->cfg.security.token_skew_s);
    if (why != TW_REASON_NONE)
        return why;

    /*
     * Used tokens are remembered in memory only, so a token created before
     * this process started may already have been used with a server that
     * crashed. Refusing it keeps every token single-use across restarts.
     */
    if (tok->created_at < s->start_unix)
        return TW_REASON_TOKEN_PREDATES_SERVER;

    bool returning = tw_match_find(&s->match, tok->player_id) >= 0;
    if (!returning && s->match.active_count >= s->match.capacity)
        return TW_REASON_SERVER_FULL;
    if (!use_token_once(s, login, now_unix))
        return TW_REASON_TOKEN_REUSED;
    return TW_REASON_NONE;
}

/* Binds the player to this session, replacing an older session if any. */
static int join_match(struct tw_server *s, struct session *ss,
                      const struct tw_token_private *tok)
{
    int slot = tw_match_find(&s->match, tok->player_id);
    if (slot >= 0) {
        struct tw_player *p = &s->match.players[slot];
        if (p->session >= 0) {
            struct session *old = &s->sessions[p->session];
            TW_LOG(TW_INFO, "session", (long)ss->id,
                   "player %llu logged in again; replacing peer %u",
                   (unsigned long long)tok->player_id, old->id);
            old->slot = -1; /* keep the player: it moves to the new peer */
            close_session(s, old, TW_REASON_REPLACED, false);
        }
    } else {
        slot = tw_match_add(&s->match, tok->player_id, tok->name);
        if (slot < 0)
            return -1;
    }
    s->match.players[slot].session = (int)ss->id;
    ss->slot = slot;
    ss->player_id = tok->player_id;
    s->stats.players_active = s->match.active_count;
    return slot;
}

static void handle_login(struct tw_server *s, struct session *ss,
                         const uint8_t *data, size_t len, uint64_t now)
{
    struct tw_msg_login login;
    int rc = tw_decode_login(data, len, &login);
    if (rc != TW_OK) {
        drop_packet(s, ss, rc, TW_CH_RELIABLE, len, now);
        close_session(s, ss, TW_REASON_BAD_TOKEN, false);
        return;
    }

    struct tw_token_private tok;
    enum tw_reason why = check_login(s, &login, &tok);
    if (why != TW_REASON_NONE) {
        TW_LOG(TW_INFO, "session", (long)ss->id, "login refused: %s",
               tw_reason_name(why));
        sodium_memzero(&tok, sizeof tok);
        close_session(s, ss, why, false);
        return;
    }

    int slot = join_match(s, ss, &tok);
    if (slot < 0) {
        sodium_memzero(&tok, sizeof tok);
        close_session(s, ss, TW_REASON_SERVER_FULL, false);
        return;
    }
    tw_cipher_init(&ss->rx, tok.c2s_key, s->cfg.match.match_id, TW_DIR_C2S);
    tw_cipher_init(&ss->tx, tok.s2c_key, s->cfg.match.match_id, TW_DIR_S2C);
    tw_cipher_random_start(&ss->tx);
    ss->state = SESSION_ACTIVE;
    s->pending--;
    s->stats.logins_total++;
    TW_LOG(TW_INFO, "session", (long)ss->id, "player %llu (%s) joined slot %d",
           (unsigned long long)tok.player_id, tok.name, slot);
    sodium_memzero(&tok, sizeof tok);

    const struct tw_player *p = &s->match.players[slot];
    struct tw_msg_login_ok ok = {
        .slot = (uint16_t)slot,
        .player_id = p->player_id,
        .tick_hz = (uint16_t)s->cfg.match.tick_hz,
        .server_tick = s->match.tick,
        .spawn = p->pos,
        .world = s->match.sim.world,
        .max_speed = s->match.sim.max_speed,
    };
    uint8_t buf[TW_MAX_PAYLOAD];
    send_reliable(s, ss, buf, tw_encode_login_ok(&ok, buf, sizeof buf));
    /* INVENTORY follows once the store has loaded it. */
    tw_trading_player_joined(s->trading, p->player_id, p->name);
}

static void handle_input(struct tw_server *s, struct session *ss,
                         const uint8_t *msg, size_t len, uint64_t now)
{
    struct tw_msg_input in;
    int rc = tw_decode_input(msg, len, &in);
    if (rc != TW_OK) {
        drop_packet(s, ss, rc, TW_CH_INPUT, len, now);
        return;
    }
    tw_match_queue_inputs(&s->match, ss->slot, &in, now);
}

static void handle_ping(struct tw_server *s, struct session *ss,
                        const uint8_t *msg, size_t len, uint64_t now)
{
    struct tw_msg_ping ping;
    int rc = tw_decode_ping(TW_MSG_PING, msg, len, &ping);
    if (rc != TW_OK) {
        drop_packet(s, ss, rc, TW_CH_RELIABLE, len, now);
        return;
    }
    uint8_t buf[32];
    send_reliable(s, ss, buf, tw_encode_ping(TW_MSG_PONG, &ping, buf, sizeof buf));
}

/* Trade messages act for the session's player, whatever the payload contains. */
static void handle_trade(struct tw_server *s, struct session *ss,
                         const uint8_t *msg, size_t len, uint64_t now)
{
    int rc = tw_trading_handle(s->trading, ss->player_id, msg, len);
    if (rc != TW_OK)
        drop_packet(s, ss, rc, TW_CH_RELIABLE, len, now);
}

static struct session *session_of(struct tw_server *s, uint64_t player_id)
{
    int slot = tw_match_find(&s->match, player_id);
    if (slot < 0 || s->match.players[slot].session < 0)
        return NULL;
    struct session *ss = &s->sessions[s->match.players[slot].session];
    if (ss->state != SESSION_ACTIVE || ss->player_id != player_id)
        return NULL;
    return ss;
}

/*
 * Sends a trade message to whichever session plays player_id now; the
 * session's connect time serves as its serial.
 */
static uint64_t send_to_player(void *ctx, uint64_t player_id,
                               const uint8_t *msg, size_t len)
{
    struct tw_server *s = ctx;
    struct session *ss = session_of(s, player_id);
    if (!ss || send_sealed(s, ss, TW_CH_RELIABLE, msg, len,
                           ENET_PACKET_FLAG_RELIABLE) != 0)
        return 0;
    return ss->connected_ns;
}

/* Nothing reliable queued or unacknowledged means all of it arrived. */
static int delivered_to_player(void *ctx, uint64_t player_id,
                               uint64_t serial)
{
    struct session *ss = session_of(ctx, player_id);
    if (!ss || ss->connected_ns != serial)
        return -1;
    return enet_list_empty(&ss->peer->sentReliableCommands) &&
           enet_list_empty(&ss->peer->outgoingCommands);
}

/*
 * Applies the per-peer token bucket. Returns false when the packet must be
 * dropped; a peer that keeps exceeding for a second is disconnected.
 */
static bool within_rate(struct tw_server *s, struct session *ss, uint64_t now)
{
    const double rate = s->cfg.security.rate_limit;
    const double burst = s->cfg.security.rate_burst;

    double elapsed = (double)(now - ss->rate_last_ns) * 1e-9;
    ss->rate_last_ns = now;
    ss->rate_tokens += elapsed * rate;
    if (ss->rate_tokens > burst)
        ss->rate_tokens = burst;
    if (ss->rate_tokens >= 1.0) {
        ss->rate_tokens -= 1.0;
        return true;
    }

    if (now - ss->rate_window_ns > 1000000000ull) {
        ss->rate_window_ns = now;
        ss->rate_strikes = 0;
    }
    if (++ss->rate_strikes > s->cfg.security.rate_limit) {
        TW_LOG(TW_WARN, "session", (long)ss->id,
               "over %u messages/s for a second; disconnecting",
               s->cfg.security.rate_limit);
        close_session(s, ss, TW_REASON_RATE_LIMIT, false);
    }
    return false;
}

static void on_receive(struct tw_server *s, struct session *ss, uint8_t channel,
                       const uint8_t *data, size_t len, uint64_t now)
{
    s->stats.msgs_in++;
    s->stats.bytes_in += len;

    if (!ss || ss->state == SESSION_CLOSING || ss->state == SESSION_FREE) {
        drop_packet(s, ss, TW_DROP_WRONG_STATE, channel, len, now);
        return;
    }
    if (!within_rate(s, ss, now)) {
        drop_packet(s, ss, TW_DROP_RATE_LIMITED, channel, len, now);
        return;
    }
    if (ss->state == SESSION_PENDING) {
        if (len == 0 || data[0] != TW_MSG_LOGIN || channel != TW_CH_RELIABLE) {
            drop_packet(s, ss, len == 0 ? TW_DROP_EMPTY : TW_DROP_WRONG_STATE,
                        channel, len, now);
            return;
        }
        handle_login(s, ss, data, len, now);
        return;
    }

    uint8_t plain[TW_MAX_PAYLOAD];
    int n = tw_open(&ss->rx, channel, data, len, plain, sizeof plain);
    if (n < 0) {
        drop_packet(s, ss, n, channel, len, now);
        return;
    }
    if (n == 0) {
        drop_packet(s, ss, TW_DROP_EMPTY, channel, len, now);
        return;
    }
    const struct route *r = &routes[plain[0]];
    if (!r->handler) {
        drop_packet(s, ss, TW_DROP_UNKNOWN_ID, channel, len, now);
        return;
    }
    if (r->channel != channel) {
        drop_packet(s, ss, TW_DROP_WRONG_CHANNEL, channel, len, now);
        return;
    }
    r->handler(s, ss, plain, (size_t)n, now);
}

/* Returns how many sessions from this address have not logged in yet. */
static uint32_t pending_from(const struct tw_server *s, uint32_t address)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->session_count; i++)
        if (s->sessions[i].state == SESSION_PENDING &&
            s->sessions[i].address == address)
            n++;
    return n;
}

static void on_connect(struct tw_server *s, ENetEvent *ev, uint64_t now)
{
    ENetPeer *peer = ev->peer;
    uint32_t id = peer->incomingPeerID;
    struct session *ss = &s->sessions[id];
    char addr[64] = "?";
    enet_address_get_host_ip(&peer->address, addr, sizeof addr);

    memset(ss, 0, sizeof *ss);
    ss->peer = peer;
    ss->id = id;
    ss->address = peer->address.host;
    ss->connected_ns = now;
    ss->slot = -1;
    ss->state = SESSION_PENDING;
    ss->rate_tokens = s->cfg.security.rate_burst;
    ss->rate_last_ns = now;
    ss->rate_window_ns = now;
    ss->next_event_seq = 1;
    peer->data = ss;
    /*
     * The client's CONNECT sets how ENet throttles what we send. Snapshots
     * are already bounded at one per tick, and ENet's throttle would drop
     * them on a link whose round trip merely jitters, so never decelerate.
     * The fields are set directly: enet_peer_throttle_configure would also
     * reconfigure the client's own sending, which is its business.
     */
    peer->packetThrottleInterval = ENET_PEER_PACKET_THROTTLE_INTERVAL;
    peer->packetThrottleAcceleration = ENET_PEER_PACKET_THROTTLE_SCALE;
    peer->packetThrottleDeceleration = 0;
    enet_peer_timeout(peer, 0, s->cfg.server.peer_timeout_min_ms,
                      s->cfg.server.peer_timeout_ms);
    s->pending++;
    s->stats.connects_total++;
    s->stats.connects_active++;
    TW_LOG(TW_DEBUG, "session", (long)id, "connect from %s:%u", addr,
           peer->address.port);

    if (ev->data != TW_PROTOCOL_VERSION) {
        TW_LOG(TW_INFO, "session", (long)id,
               "refused %s: protocol version %u, server speaks %u", addr,
               ev->data, TW_PROTOCOL_VERSION);
        close_session(s, ss, TW_REASON_VERSION_MISMATCH, false);
    } else if (s->pending > s->cfg.security.max_connections) {
        close_session(s, ss, TW_REASON_SERVER_FULL, true);
    } else if (pending_from(s, ss->address) > s->cfg.security.max_per_ip) {
        close_session(s, ss, TW_REASON_TOO_MANY_FROM_IP, true);
    }
}

static void on_disconnect(struct tw_server *s, ENetEvent *ev)
{
    struct session *ss = ev->peer->data;
    if (!ss)
        return;
    if (ss->state == SESSION_PENDING || ss->state == SESSION_ACTIVE) {
        bool left = ev->data == TW_REASON_CLIENT_LEFT;
        TW_LOG(TW_INFO, "session", (long)ss->id, "peer %s",
               left ? "left" : "timed out");
        end_session(s, ss, left ? TW_REASON_CLIENT_LEFT : TW_REASON_NONE);
    }
    ev->peer->data = NULL;
    ss->state = SESSION_FREE;
    s->stats.connects_active--;
}

/* Counts a refused connection attempt and warns at a limited rate. */
static void refuse_connect(struct tw_server *s, enum tw_reason reason,
                           uint64_t now)
{
    s->stats.refusals[reason]++;
    uint64_t suppressed = 0;
    if (tw_ratelimit_allow(&s->refuse_log, now, &suppressed)) {
        char addr[64] = "?";
        enet_address_get_host_ip(&s->host->receivedAddress, addr, sizeof addr);
        TW_LOG(TW_WARN, "net", TW_NO_PEER,
               "refused a connect from %s:%u: %s; %llu similar lines "
               "suppressed",
               addr, s->host->receivedAddress.port, tw_reason_name(reason),
               (unsigned long long)suppressed);
    }
}

/*
 * Applies the connection limits to a CONNECT before ENet gives it a peer
 * slot. Every peer that is not logged in counts, including handshakes
 * that never completed, which our sessions never see.
 */
static bool admit_connect(struct tw_server *s, uint64_t now)
{
    const ENetHost *host = s->host;
    uint32_t from = host->receivedAddress.host;
    uint32_t unverified = 0, same_address = 0;
    bool free_slot = false;

    for (size_t i = 0; i < host->peerCount; i++) {
        const ENetPeer *p = &host->peers[i];
        if (p->state == ENET_PEER_STATE_DISCONNECTED) {
            free_slot = true;
            continue;
        }
        const struct session *ss = p->data;
        if (ss && ss->state == SESSION_ACTIVE)
            continue;
        unverified++;
        if (p->address.host == from)
            same_address++;
    }
    enum tw_reason why = TW_REASON_NONE;
    if (!free_slot || unverified >= s->cfg.security.max_connections)
        why = TW_REASON_SERVER_FULL;
    else if (same_address >= s->cfg.security.max_per_ip)
        why = TW_REASON_TOO_MANY_FROM_IP;
    if (why == TW_REASON_NONE)
        return true;
    refuse_connect(s, why, now);
    return false;
}

/*
 * Counts what ENet 1.3.17 would drop silently: fragments of a peer whose
 * partly received packets already hold security.max_waiting_data bytes.
 * Our messages fit in one datagram, so only a hostile peer gets here.
 */
static bool over_waiting_cap(struct tw_server *s,
                             const struct tw_datagram_info *info, uint64_t now)
{
    const ENetPeer *p = &s->host->peers[info->peer_id];
    if (p->totalWaitingData + info->fragment_total <=
        s->host->maximumWaitingData)
        return false;
    drop_packet(s, p->data, TW_DROP_OVERSIZED, 0, info->fragment_total, now);
    return true;
}

/*
 * ENet's intercept hook, called with every datagram before ENet parses it.
 * Returns 1 to discard the datagram, 0 to let ENet handle it.
 */
static int ENET_CALLBACK intercept_datagram(ENetHost *host, ENetEvent *ev)
{
    (void)ev;
    struct tw_server *s = server_of(host);
    if (!s)
        return 0;
    uint64_t now = tw_clock_mono_ns();
    struct tw_datagram_info info;
    if (tw_datagram_check(host, host->receivedData, host->receivedDataLength,
                          s->cfg.security.max_packet_size, &info) != TW_OK) {
        s->stats.drops[TW_DROP_BAD_DATAGRAM]++;
        uint64_t suppressed = 0;
        if (tw_ratelimit_allow(&s->drop_log, now, &suppressed)) {
            char addr[64] = "?";
            enet_address_get_host_ip(&host->receivedAddress, addr,
                                     sizeof addr);
            TW_LOG(TW_WARN, "net", TW_NO_PEER,
                   "dropped an invalid ENet datagram of %zu bytes from "
                   "%s:%u; %llu similar lines suppressed",
                   host->receivedDataLength, addr, host->receivedAddress.port,
                   (unsigned long long)suppressed);
        }
        return 1;
    }
    if (info.connects > 0 && !admit_connect(s, now))
        return 1;
    if (info.fragments > 0 && over_waiting_cap(s, &info, now))
        return 1;
    return 0;
}

void tw_server_dispatch(struct tw_server *s, ENetEvent *ev, uint64_t now)
{
    switch (ev->type) {
    case ENET_EVENT_TYPE_CONNECT:
        on_connect(s, ev, now);
        break;
    case ENET_EVENT_TYPE_RECEIVE:
        on_receive(s, ev->peer->data, ev->channelID, ev->packet->data,
                   ev->packet->dataLength, now);
        enet_packet_destroy(ev->packet);
        break;
    case ENET_EVENT_TYPE_DISCONNECT:
        on_disconnect(s, ev);
        break;
    case ENET_EVENT_TYPE_NONE:
        break;
    }
}

/*
 * Runs ENet and handles the events already waiting, without blocking,
 * until none is left or the clock reaches `until`.
 */
static void service_network(struct tw_server *s, uint64_t until)
{
    ENetEvent ev;
    for (int i = 0; i < MAX_EVENTS_PER_WAKE; i++) {
        /* ENet 1.3.17 times peers with the wall clock; feed it ours. */
        uint64_t now = tw_clock_mono_ns();
        if (now >= until)
            break; /* the next tick is due: events wait until after it */
        sync_enet_clock(s, now);
        if (enet_host_service(s->host, &ev, 0) <= 0)
            break;
        tw_server_dispatch(s, &ev, now);
    }
    tw_backoff_cap(s->host);
}

/*
 * Sends every active player its snapshot, coded against the newest one it
 * acknowledged, and flushes them at once so the input latency measured
 * ends when the snapshots leave.
 */
static void send_snapshots(struct tw_server *s)
{
    static struct tw_msg_snapshot snap, base;
    static uint64_t arrivals[TW_MAX_SLOTS];
    uint32_t arrived = 0;
    uint8_t buf[TW_MAX_PAYLOAD];

    for (uint32_t i = 0; i < s->session_count; i++) {
        struct session *ss = &s->sessions[i];
        if (ss->state != SESSION_ACTIVE)
            continue;
        /* Sealed, a snapshot must fit in one ENet command for this MTU. */
        size_t budget = tw_fragment_length(ss->peer->mtu);
        budget = budget > TW_SEAL_OVERHEAD ? budget - TW_SEAL_OVERHEAD : 0;
        if (budget > TW_MAX_PAYLOAD)
            budget = TW_MAX_PAYLOAD;
        unsigned capacity = tw_snapshot_capacity(&s->match.quant, budget);
        if (capacity > s->cfg.match.max_visible)
            capacity = s->cfg.match.max_visible;
        s->stats.snapshot_entities_cut +=
            tw_match_build_snapshot(&s->match, ss->slot, &snap, capacity);
        const struct tw_msg_snapshot *b =
            tw_match_baseline(&s->match, ss->slot, &base);
        int n = tw_encode_snapshot(&s->match.quant, b, &snap, buf, budget);
        if (n < 0)
            continue;
        if (send_sealed(s, ss, TW_CH_SNAPSHOT, buf, (size_t)n, 0) != 0)
            continue;
        tw_match_record_sent(&s->match, ss->slot, &snap);
        s->stats.snapshots_sent++;
        s->stats.snapshots_full += snap.base_tick == 0;
        s->stats.snapshot_bytes += (uint64_t)n;
        s->stats.snapshot_entities += snap.count;

        struct tw_player *p = &s->match.players[ss->slot];
        if (p->unreported_arrival_ns && arrived < TW_MAX_SLOTS) {
            arrivals[arrived++] = p->unreported_arrival_ns;
            p->unreported_arrival_ns = 0;
        }
    }
    sync_enet_clock(s, tw_clock_mono_ns());
    enet_host_flush(s->host);
    uint64_t sent = tw_clock_mono_ns();
    for (uint32_t i = 0; i < arrived; i++)
        tw_hist_add(&s->stats.input_latency_us, (sent - arrivals[i]) / 1000u);
}

static void send_events(struct tw_server *s, uint64_t now)
{
    if (now < s->next_event_ns)
        return;
    s->next_event_ns = now + (uint64_t)s->cfg.match.event_interval_ms * 1000000u;

    uint8_t buf[32];
    for (uint32_t i = 0; i < s->session_count; i++) {
        struct session *ss = &s->sessions[i];
        if (ss->state != SESSION_ACTIVE)
            continue;
        struct tw_msg_event ev = {.seq = ss->next_event_seq++,
                                  .server_ms = now / 1000000u};
        send_reliable(s, ss, buf, tw_encode_event(&ev, buf, sizeof buf));
    }
}

static void expire_logins(struct tw_server *s, uint64_t now)
{
    uint64_t limit = (uint64_t)s->cfg.security.login_timeout_ms * 1000000u;
    for (uint32_t i = 0; i < s->session_count; i++) {
        struct session *ss = &s->sessions[i];
        if (ss->state == SESSION_PENDING && now - ss->connected_ns > limit)
            close_session(s, ss, TW_REASON_LOGIN_TIMEOUT, true);
    }

    /*
     * A handshake that never completes occupies an ENet slot without a
     * session, and ENet alone would keep it until its own peer timeout.
     */
    for (size_t i = 0; i < s->host->peerCount; i++) {
        ENetPeer *p = &s->host->peers[i];
        if (p->state == ENET_PEER_STATE_DISCONNECTED || p->data) {
            s->unbound_since[i] = 0;
        } else if (s->unbound_since[i] == 0) {
            s->unbound_since[i] = now;
        } else if (now - s->unbound_since[i] > limit) {
            TW_LOG(TW_DEBUG, "session", (long)i,
                   "handshake not completed in time; slot reset");
            enet_peer_reset(p);
            s->unbound_since[i] = 0;
            s->stats.refusals[TW_REASON_LOGIN_TIMEOUT]++;
        }
    }
}

static void log_stats(struct tw_server *s, const char *what)
{
    const struct tw_stats *st = &s->stats;
    double up = (double)(tw_clock_mono_ns() - st->start_ns) * 1e-9;
    TW_LOG(TW_INFO, "stats", TW_NO_PEER,
           "%s: up %.0fs players %llu connects %llu total %llu active msgs in %llu "
           "out %llu bytes in %llu out %llu drops %llu tick p50 %lluus p99 "
           "%lluus max %lluus overruns %llu skipped %llu unreliable over "
           "mtu %llu rss %.1fMiB",
           what, up, (unsigned long long)st->players_active,
           (unsigned long long)st->connects_total,
           (unsigned long long)st->connects_active,
           (unsigned long long)st->msgs_in, (unsigned long long)st->msgs_out,
           (unsigned long long)st->bytes_in, (unsigned long long)st->bytes_out,
           (unsigned long long)tw_stats_drops_total(st),
           (unsigned long long)tw_hist_percentile(&st->tick_work_us, 0.5),
           (unsigned long long)tw_hist_percentile(&st->tick_work_us, 0.99),
           (unsigned long long)st->tick_work_us.max,
           (unsigned long long)st->tick_overruns,
           (unsigned long long)st->ticks_skipped,
           (unsigned long long)st->unreliable_over_mtu,
           (double)tw_stats_rss_bytes() / (1024.0 * 1024.0));
    TW_LOG(TW_INFO, "stats", TW_NO_PEER,
           "%s: snapshots %llu full %llu bytes %llu entities %llu cut %llu "
           "late p50 %lluus p99 %lluus max %lluus work p99 %lluus input "
           "latency p50 %lluus p99 %lluus max %lluus ticks %llu",
           what, (unsigned long long)st->snapshots_sent,
           (unsigned long long)st->snapshots_full,
           (unsigned long long)st->snapshot_bytes,
           (unsigned long long)st->snapshot_entities,
           (unsigned long long)st->snapshot_entities_cut,
           (unsigned long long)tw_hist_percentile(&st->tick_late_us, 0.5),
           (unsigned long long)tw_hist_percentile(&st->tick_late_us, 0.99),
           (unsigned long long)st->tick_late_us.max,
           (unsigned long long)tw_hist_percentile(&st->tick_work_us, 0.99),
           (unsigned long long)tw_hist_percentile(&st->input_latency_us, 0.5),
           (unsigned long long)tw_hist_percentile(&st->input_latency_us, 0.99),
           (unsigned long long)st->input_latency_us.max,
           (unsigned long long)st->ticks);
    for (int i = 1; i < TW_DROP_COUNT; i++)
        if (st->drops[i])
            TW_LOG(TW_INFO, "stats", TW_NO_PEER, "%s: dropped %s: %llu", what,
                   tw_drop_name(i), (unsigned long long)st->drops[i]);
    for (uint32_t i = 0; i < TW_REASON_COUNT; i++)
        if (st->refusals[i])
            TW_LOG(TW_INFO, "stats", TW_NO_PEER, "%s: refused %s: %llu", what,
                   tw_reason_name(i), (unsigned long long)st->refusals[i]);
    tw_trading_log_stats(s->trading, what);
}

/* Hands a copy of the counters to the HTTP thread; never blocks. */
static void publish_stats(struct tw_server *s, uint64_t now)
{
    if (now < s->next_publish_ns)
        return;
    s->next_publish_ns = now + PUBLISH_INTERVAL_NS;

    struct tw_published *p = s->published;
    p->stats = s->stats;
    p->uptime_ms = (now - s->stats.start_ns) / 1000000u;
    p->resident_bytes = tw_stats_rss_bytes();
    p->store_lag_ms = tw_trading_store_lag_ms(s->trading);
    tw_peer_samples_clear(p);
    for (uint32_t i = 0; i < s->session_count; i++) {
        const struct session *ss = &s->sessions[i];
        if (ss->state != SESSION_ACTIVE)
            continue;
        tw_peer_sample_add(p, ss->id, ss->peer->roundTripTime,
                           (float)ss->peer->packetLoss /
                               (float)ENET_PEER_PACKET_LOSS_SCALE);
    }
    tw_publish(s->publisher, p);
}

/* Ends the match when it has run its duration or stayed empty too long. */
static void check_lifecycle(struct tw_server *s, uint64_t now)
{
    const uint64_t second = 1000000000ull;
    uint32_t duration = s->cfg.match.duration_s;
    uint32_t empty_timeout = s->cfg.match.empty_timeout_s;

    if (s->match.active_count > 0)
        s->empty_since_ns = 0;
    else if (s->empty_since_ns == 0)
        s->empty_since_ns = now;

    if (duration && now - s->stats.start_ns >= duration * second) {
        s->ending = TW_REASON_MATCH_ENDED;
        TW_LOG(TW_INFO, "match", TW_NO_PEER, "match ran its %u s; ending",
               duration);
    } else if (empty_timeout && s->empty_since_ns &&
               now - s->empty_since_ns >= empty_timeout * second) {
        s->ending = TW_REASON_MATCH_ENDED;
        TW_LOG(TW_INFO, "match", TW_NO_PEER,
               "match empty for %u s; ending", empty_timeout);
    }
}

/* Spins until the monotonic clock reaches until; simulated CPU work. */
static void busy_until(uint64_t until)
{
    while (tw_clock_mono_ns() < until)
        ;
}

/*
 * Test-only load from debug.tick_*: one stall of tick_stall_ms once the
 * server has run for a second, then tick_work_us of extra work in every
 * tick for tick_work_ms.
 */
static void apply_debug_load(struct tw_server *s, uint64_t start)
{
    const uint64_t ms = 1000000u;
    if (s->cfg.debug.tick_stall_ms == 0 && s->cfg.debug.tick_work_us == 0)
        return;
    if (!s->stalled) {
        if (start < s->stats.start_ns + 1000 * ms)
            return;
        s->stalled = true;
        s->load_start_ns = start;
        s->load_end_ns = start + s->cfg.debug.tick_stall_ms * ms +
                         s->cfg.debug.tick_work_ms * ms;
        TW_LOG(TW_INFO, "tick", TW_NO_PEER,
               "debug load: stalling %u ms, then %u us per tick for %u ms",
               s->cfg.debug.tick_stall_ms, s->cfg.debug.tick_work_us,
               s->cfg.debug.tick_work_ms);
        busy_until(start + s->cfg.debug.tick_stall_ms * ms);
        return;
    }
    if (s->load_ended)
        return;
    if (start >= s->load_end_ns) {
        s->load_ended = true;
        TW_LOG(TW_INFO, "tick", TW_NO_PEER, "debug load ended");
        return;
    }
    busy_until(start + (uint64_t)s->cfg.debug.tick_work_us * 1000u);
}

void tw_server_tick(struct tw_server *s, uint64_t deadline)
{
    uint64_t start = tw_clock_mono_ns();
    tw_hist_add(&s->stats.tick_late_us, (start - deadline) / 1000u);

    apply_debug_load(s, start);
    tw_match_step(&s->match);
    tw_trading_poll(s->trading);
    tw_trading_tick(s->trading, start / 1000000u);
    send_snapshots(s);
    send_events(s, start);
    expire_logins(s, start);
    check_lifecycle(s, start);
    publish_stats(s, start);
    tw_agones_heartbeat(s->agones);
    sync_enet_clock(s, tw_clock_mono_ns());
    enet_host_flush(s->host);

    uint64_t end = tw_clock_mono_ns();
    tw_hist_add(&s->stats.tick_work_us, (end - start) / 1000u);
    s->stats.ticks++;
    if (end - start > s->ticker.period_ns)
        s->stats.tick_overruns++;
    if (end >= s->next_stats_ns) {
        s->next_stats_ns = end + STATS_INTERVAL_NS;
        log_stats(s, "running");
    }
}

/* Sleeps until a packet arrives or the deadline passes. */
static void wait_for_work(struct tw_server *s, uint64_t deadline,
                          const sigset_t *unblocked)
{
    uint64_t now = tw_clock_mono_ns();
    if (now >= deadline)
        return;
    uint64_t left = deadline - now;
    struct timespec ts = {.tv_sec = (time_t)(left / 1000000000u),
                          .tv_nsec = (long)(left % 1000000000u)};
    struct pollfd pfd[2] = {
        {.fd = s->host->socket, .events = POLLIN},
        {.fd = tw_trading_fd(s->trading), .events = POLLIN},
    };
    ppoll(pfd, pfd[1].fd >= 0 ? 2 : 1, &ts, unblocked);
}

/* Logs the match's outcome: a total line, then one line per player. */
static void log_results(struct tw_server *s, enum tw_reason reason)
{
    TW_LOG(TW_INFO, "match", TW_NO_PEER,
           "match %u over (%s) after %u ticks with %u players",
           s->cfg.match.match_id, tw_reason_name(reason), s->match.tick,
           s->match.active_count);
    for (uint32_t i = 0; i < s->match.capacity; i++) {
        const struct tw_player *p = &s->match.players[i];
        if (p->active)
            TW_LOG(TW_INFO, "match", TW_NO_PEER,
                   "result: player %llu (%s) at %.1f,%.1f, %llu inputs",
                   (unsigned long long)p->player_id, p->name, p->pos.x,
                   p->pos.y, (unsigned long long)p->inputs_applied);
    }
}

/*
 * Tells every player why the match is over, disconnects them with that
 * reason and waits briefly for the disconnects to be acknowledged.
 */
static void shutdown_peers(struct tw_server *s, enum tw_reason reason)
{
    uint8_t buf[8];
    struct tw_msg_match_end end = {.reason = (uint8_t)reason};
    int len = tw_encode_match_end(&end, buf, sizeof buf);
    for (uint32_t i = 0; i < s->session_count; i++) {
        struct session *ss = &s->sessions[i];
        if (ss->state == SESSION_ACTIVE)
            send_reliable(s, ss, buf, len);
        close_session(s, ss, reason, false);
    }
    sync_enet_clock(s, tw_clock_mono_ns());
    enet_host_flush(s->host);

    uint64_t until = tw_clock_mono_ns() + SHUTDOWN_GRACE_NS;
    while (s->stats.connects_active > 0 && tw_clock_mono_ns() < until) {
        service_network(s, until);
        uint64_t next = tw_clock_mono_ns() + 5000000u;
        wait_for_work(s, next < until ? next : until, NULL);
    }
    for (uint32_t i = 0; i < s->session_count; i++)
        if (s->sessions[i].state != SESSION_FREE)
            enet_peer_reset(s->sessions[i].peer);
}

static void note_skipped(struct tw_server *s, uint64_t count, uint64_t now)
{
    uint64_t suppressed = 0;
    if (tw_ratelimit_allow(&s->tick_log, now, &suppressed))
        TW_LOG(TW_WARN, "tick", TW_NO_PEER,
               "fell %llu ticks behind; skipped them to catch up (%llu "
               "similar lines suppressed)",
               (unsigned long long)count, (unsigned long long)suppressed);
}

/* Logs when ticks start on time again after running late. */
static void note_lateness(struct tw_server *s, uint64_t late_ns, uint64_t now)
{
    if (late_ns > s->ticker.period_ns) {
        if (s->late_ticks++ == 0)
            s->late_since_ns = now;
        return;
    }
    if (s->late_ticks == 0)
        return;
    char after_load[64] = "";
    if (s->load_ended)
        snprintf(after_load, sizeof after_load,
                 "; %llu ms after the debug load ended",
                 (unsigned long long)((now - s->load_end_ns) / 1000000u));
    TW_LOG(TW_INFO, "tick", TW_NO_PEER,
           "back on schedule after %llu late ticks over %llu ms%s",
           (unsigned long long)s->late_ticks,
           (unsigned long long)((now - s->late_since_ns) / 1000000u),
           after_load);
    s->late_ticks = 0;
}

int tw_server_run(struct tw_server *s, volatile sig_atomic_t *stop,
                  volatile sig_atomic_t *reopen_log)
{
    /* Signals stay blocked except inside ppoll, so none is missed. */
    sigset_t blocked, unblocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &blocked, &unblocked);

    uint64_t start = tw_clock_mono_ns();
    s->stats.start_ns = start;
    s->next_stats_ns = start + STATS_INTERVAL_NS;
    s->next_event_ns = start;
    tw_ticker_init(&s->ticker, start, s->cfg.match.tick_hz);
    TW_LOG(TW_INFO, "server", TW_NO_PEER,
           "match %u listening on %s:%u, %u Hz, up to %u players",
           s->cfg.match.match_id, s->cfg.server.host, s->cfg.server.port,
           s->cfg.match.tick_hz, s->match.capacity);
    if (s->http)
        TW_LOG(TW_INFO, "http", TW_NO_PEER,
               "health and metrics on http://%s:%u/healthz and /metrics",
               s->cfg.http.host, tw_http_port(s->http));
    tw_agones_ready(s->agones);
    if (s->cfg.debug.enet_time_start_ms != 0)
        TW_LOG(TW_WARN, "server", TW_NO_PEER,
               "debug.enet_time_start_ms: ENet's clock starts at %u ms",
               (unsigned)(start / 1000000u) + s->enet_time_offset_ms);

    while (!*stop && s->ending == TW_REASON_NONE) {
        if (*reopen_log) {
            *reopen_log = 0;
            if (tw_log_reopen() != 0)
                TW_LOG(TW_ERROR, "log", TW_NO_PEER, "cannot reopen %s: %s",
                       s->cfg.log.path, strerror(errno));
        }
        uint64_t deadline = tw_ticker_deadline(&s->ticker);
        uint64_t skipped = s->ticker.skipped;
        uint64_t now = tw_clock_mono_ns();
        if (tw_ticker_due(&s->ticker, now, MAX_TICKS_BEHIND)) {
            if (s->ticker.skipped != skipped) {
                s->stats.ticks_skipped = s->ticker.skipped;
                note_skipped(s, s->ticker.skipped - skipped, now);
                deadline = tw_ticker_deadline(&s->ticker) - s->ticker.period_ns;
            }
            /* Packets that arrived while waiting were handled on wake-up;
             * handling more here would only delay the tick's start. */
            note_lateness(s, now - deadline, now);
            tw_server_tick(s, deadline);
            continue;
        }
        wait_for_work(s, deadline, &unblocked);
        service_network(s, deadline);
        tw_trading_poll(s->trading);
    }

    enum tw_reason reason =
        s->ending != TW_REASON_NONE ? s->ending : TW_REASON_SHUTDOWN;
    TW_LOG(TW_INFO, "server", TW_NO_PEER, "shutting down (%s): disconnecting "
           "%llu peers", tw_reason_name(reason),
           (unsigned long long)s->stats.connects_active);
    log_results(s, reason);
    tw_agones_shutdown(s->agones);
    /* Finish the trades the store has queued while players are still connected. */
    tw_trading_drain(s->trading);
    shutdown_peers(s, reason);
    log_stats(s, "summary");
    pthread_sigmask(SIG_SETMASK, &unblocked, NULL);
    return 0;
}

/*
 * Starts the stats publisher, the HTTP endpoint when http.port is set, and
 * the Agones client when AGONES_SDK_HTTP_PORT is set. Returns TW_OK or -1
 * after logging why.
 */
static int start_operations(struct tw_server *s)
{
    s->publisher = tw_publisher_create();
    s->published = calloc(1, sizeof *s->published);
    if (!s->publisher || !s->published) {
        TW_LOG(TW_ERROR, "server", TW_NO_PEER, "out of memory");
        return -1;
    }
    tw_published_init(s->published, s->cfg.match.match_id);

    if (s->cfg.http.port != 0) {
        struct tw_http_options opt;
        tw_http_options_from_config(&opt, &s->cfg);
        if (tw_http_start(&opt, s->publisher, &s->http) != TW_OK)
            return -1;
    }

    struct tw_agones_options agones;
    int rc = tw_agones_options_from_env(&agones);
    if (rc < 0)
        return -1;
    agones.health_interval_ms = s->cfg.agones.health_interval_ms;
    agones.stall_ms = s->cfg.agones.stall_ms;
    if (rc == 1 && tw_agones_start(&agones, &s->agones) != TW_OK)
        return -1;
    return TW_OK;
}

struct tw_server *tw_server_create(const struct tw_config *cfg)
{
    struct tw_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->start_unix = tw_clock_unix_s();
    tw_ratelimit_init(&s->drop_log, 5.0, 20.0);
    tw_ratelimit_init(&s->refuse_log, 5.0, 20.0);
    tw_ratelimit_init(&s->tick_log, 1.0, 5.0);
    if (cfg->debug.enet_time_start_ms != 0)
        s->enet_time_offset_ms =
            cfg->debug.enet_time_start_ms -
            (uint32_t)(tw_clock_mono_ns() / 1000000u);

    char err[512];
    if (tw_key_load(cfg->security.key_file, s->match_key, err, sizeof err) !=
        TW_OK) {
        TW_LOG(TW_ERROR, "server", TW_NO_PEER,
               "cannot load match key: %s (create one with: tickwire-token "
               "keygen --out %s)",
               err, cfg->security.key_file[0] ? cfg->security.key_file
                                               : "match.key");
        goto fail;
    }

    ENetAddress address = {.port = cfg->server.port};
    if (enet_address_set_host_ip(&address, cfg->server.host) != 0) {
        TW_LOG(TW_ERROR, "server", TW_NO_PEER,
               "server.host %s is not an IPv4 address", cfg->server.host);
        goto fail;
    }
    s->session_count = cfg->server.max_connections;
    s->host = enet_host_create(&address, s->session_count, TW_CHANNEL_COUNT,
                               0, 0);
    if (!s->host) {
        TW_LOG(TW_ERROR, "server", TW_NO_PEER,
               "cannot listen on %s:%u (port in use, or not allowed)",
               cfg->server.host, cfg->server.port);
        goto fail;
    }
    s->host->maximumPacketSize = cfg->security.max_packet_size;
    s->host->maximumWaitingData = cfg->security.max_waiting_data;
    if (!register_host(s)) {
        TW_LOG(TW_ERROR, "server", TW_NO_PEER,
               "more than %d servers in one process", MAX_SERVERS);
        goto fail;
    }
    s->host->intercept = intercept_datagram;

    s->sessions = calloc(s->session_count, sizeof *s->sessions);
    s->unbound_since = calloc(s->host->peerCount, sizeof *s->unbound_since);
    s->used = calloc(USED_TOKEN_CAP, sizeof *s->used);
    if (!s->sessions || !s->used || !s->unbound_since ||
        tw_match_init(&s->match, cfg, cfg->match.max_players) != TW_OK) {
        TW_LOG(TW_ERROR, "server", TW_NO_PEER, "out of memory");
        goto fail;
    }
    struct tw_trading_io io = {.send = send_to_player,
                               .delivered = delivered_to_player,
                               .ctx = s};
    if (tw_trading_create(cfg, &io, &s->trading, err, sizeof err) != TW_OK) {
        TW_LOG(TW_ERROR, "server", TW_NO_PEER, "cannot open the store: %s",
               err);
        goto fail;
    }
    if (start_operations(s) != TW_OK)
        goto fail;
    return s;

fail:
    tw_server_destroy(s);
    return NULL;
}

ENetHost *tw_server_host(struct tw_server *s)
{
    return s->host;
}

const struct tw_stats *tw_server_stats(const struct tw_server *s)
{
    return &s->stats;
}

void tw_server_destroy(struct tw_server *s)
{
    if (!s)
        return;
    tw_agones_stop(s->agones);
    tw_http_stop(s->http);
    tw_trading_destroy(s->trading);
    tw_publisher_destroy(s->publisher);
    free(s->published);
    unregister_host(s);
    if (s->host)
        enet_host_destroy(s->host);
    if (s->sessions) {
        for (uint32_t i = 0; i < s->session_count; i++) {
            tw_cipher_wipe(&s->sessions[i].rx);
            tw_cipher_wipe(&s->sessions[i].tx);
        }
    }
    free(s->sessions);
    free(s->unbound_since);
    free(s->used);
    tw_match_free(&s->match);
    sodium_memzero(s->match_key, sizeof s->match_key);
    free(s);
}
