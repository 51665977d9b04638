/* tickwire-client: a crowd of headless bots in one process. */
#include "backoff.h"
#include "bot.h"
#include "clock.h"
#include "crypto.h"
#include "log.h"
#include "report.h"

#include <enet/enet.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEAVE_GRACE_NS (1500ull * 1000000ull)
/* How long a leaving bot may wait for its trade to settle. */
#define SETTLE_GRACE_NS (1000ull * 1000000ull)
#define RECONNECT_BACKOFF_MIN_MS 250u
#define RECONNECT_BACKOFF_MAX_MS 4000u
/* ENet peer timeouts with --reconnect, so a dead server is noticed soon. */
#define RECONNECT_TIMEOUT_MIN_MS 1000u
#define RECONNECT_TIMEOUT_MAX_MS 2500u
#define PROGRESS_NS 1000000000ull

struct options {
    const char *server;
    uint32_t bots;
    double duration_s;
    const char *report_path;
    uint64_t seed;
    const char *key_path;
    const char *token_path;
    uint32_t match_id;
    uint64_t player_base;
    uint32_t tick_hz;
    uint32_t connect_burst;
    uint32_t token_ttl_s;
    double trade_rate;
    uint32_t trade_retry_ms;
    uint32_t trade_duplicate;
    int reconnect;
    int quiet;
    int verbose;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fputs(
        "usage: tickwire-client --server HOST:PORT (--key FILE | --token FILE)\n"
        "                       [--bots N] [--duration SECONDS] [--report FILE]\n"
        "                       [--seed S] [options]\n"
        "\n"
        "Connects N headless bots that log in, move in a seeded pattern,\n"
        "predict their own positions and reconcile them against snapshots.\n"
        "\n"
        "  -s, --server HOST:PORT   server address (IPv4)\n"
        "  -n, --bots N             bots in this process (default 1, max 4095)\n"
        "  -d, --duration SECONDS   how long the bots play (default 10)\n"
        "  -r, --report FILE        write a JSON report to FILE\n"
        "      --seed S             seed for movement (default 1)\n"
        "  -k, --key FILE           match key: mint a token per bot. A test\n"
        "                           convenience: real clients never hold it\n"
        "  -t, --token FILE         token from tickwire-token (one bot only)\n"
        "      --match ID           match id for minted tokens (default 1)\n"
        "      --player-base ID     first player id for minted tokens\n"
        "                           (default 1000; bot i gets base + i)\n"
        "      --token-ttl SECONDS  lifetime of minted tokens (default 3600)\n"
        "      --tick-hz HZ         input rate until the server tells its own\n"
        "                           (default 30)\n"
        "      --connect-burst N    connection attempts in flight (default 8)\n"
        "      --trade-rate R       trades each bot starts per minute, with\n"
        "                           random other bots of this crowd and\n"
        "                           random items (default 0: no trades)\n"
        "      --trade-retry-ms MS  resend a trade request unanswered for\n"
        "                           this long, same request id (default 1000)\n"
        "      --trade-duplicate P  test: send P percent of trade requests twice\n"
        "                           at once, as a retry after a lost answer\n"
        "      --reconnect          a bot that loses its server (timeout,\n"
        "                           shutdown, restart) reconnects with a new\n"
        "                           token and backoff; needs --key\n"
        "  -q, --quiet              no progress line\n"
        "  -v, --verbose            debug logging\n"
        "  -h, --help               show this help\n"
        "\n"
        "Exit status: 0 when every bot logged in and no error or timeout\n"
        "happened, 1 otherwise, 2 on bad usage.\n",
        out);
}

static int parse_u64(const char *text, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option options[] = {
        {"server", required_argument, NULL, 's'},
        {"bots", required_argument, NULL, 'n'},
        {"duration", required_argument, NULL, 'd'},
        {"report", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 'S'},
        {"key", required_argument, NULL, 'k'},
        {"token", required_argument, NULL, 't'},
        {"match", required_argument, NULL, 'm'},
        {"player-base", required_argument, NULL, 'p'},
        {"token-ttl", required_argument, NULL, 'T'},
        {"tick-hz", required_argument, NULL, 'z'},
        {"connect-burst", required_argument, NULL, 'b'},
        {"trade-rate", required_argument, NULL, 'R'},
        {"trade-retry-ms", required_argument, NULL, 'Y'},
        {"reconnect", no_argument, NULL, 'C'},
        {"trade-duplicate", required_argument, NULL, 'D'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct options){.bots = 1, .duration_s = 10, .seed = 1,
                          .match_id = 1, .player_base = 1000, .tick_hz = 30,
                          .connect_burst = 8, .token_ttl_s = 3600,
                          .trade_retry_ms = 1000};
    int opt;
    uint64_t v;
    while ((opt = getopt_long(argc, argv, "s:n:d:r:k:t:qvh", options, NULL)) !=
           -1) {
        const char *bad = NULL;
        switch (opt) {
        case 's': o->server = optarg; break;
        case 'n':
            if (parse_u64(optarg, 4095, &v) || v == 0)
                bad = "--bots must be 1..4095";
            o->bots = (uint32_t)v;
            break;
        case 'd': {
            char *end;
            o->duration_s = strtod(optarg, &end);
            if (*end || end == optarg || !(o->duration_s > 0) ||
                o->duration_s > 86400)
                bad = "--duration must be above 0 and at most 86400 seconds";
            break;
        }
        case 'r': o->report_path = optarg; break;
        case 'S':
            if (parse_u64(optarg, UINT64_MAX, &o->seed))
                bad = "--seed must be a non-negative integer";
            break;
        case 'k': o->key_path = optarg; break;
        case 't': o->token_path = optarg; break;
        case 'm':
            if (parse_u64(optarg, UINT32_MAX, &v))
                bad = "--match must be 0..4294967295";
            o->match_id = (uint32_t)v;
            break;
        case 'p':
            if (parse_u64(optarg, (1ull << 53) - 4096, &o->player_base))
                bad = "--player-base must be 0..2^53-4096";
            break;
        case 'T':
            if (parse_u64(optarg, 86400 * 30, &v) || v == 0)
                bad = "--token-ttl must be 1..2592000 seconds";
            o->token_ttl_s = (uint32_t)v;
            break;
        case 'z':
            if (parse_u64(optarg, 240, &v) || v == 0)
                bad = "--tick-hz must be 1..240";
            o->tick_hz = (uint32_t)v;
            break;
        case 'b':
            if (parse_u64(optarg, 4095, &v) || v == 0)
                bad = "--connect-burst must be 1..4095";
            o->connect_burst = (uint32_t)v;
            break;
        case 'R': {
            char *end;
            o->trade_rate = strtod(optarg, &end);
            if (*end || end == optarg || !(o->trade_rate >= 0) ||
                o->trade_rate > 6000)
                bad = "--trade-rate must be 0..6000 per minute";
            break;
        }
        case 'Y':
            if (parse_u64(optarg, 600000, &v) || v < 10)
                bad = "--trade-retry-ms must be 10..600000";
            o->trade_retry_ms = (uint32_t)v;
            break;
        case 'C': o->reconnect = 1; break;
        case 'D':
            if (parse_u64(optarg, 100, &v))
                bad = "--trade-duplicate must be 0..100";
            o->trade_duplicate = (uint32_t)v;
            break;
        case 'q': o->quiet = 1; break;
        case 'v': o->verbose = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
        if (bad) {
            fprintf(stderr, "tickwire-client: %s (got %s)\n", bad, optarg);
            return -1;
        }
    }
    const char *problem = NULL;
    if (optind != argc)
        problem = "unexpected argument";
    else if (!o->server)
        problem = "missing --server HOST:PORT";
    else if (!o->key_path == !o->token_path)
        problem = "give exactly one of --key FILE or --token FILE";
    else if (o->token_path && o->bots != 1)
        problem = "--token serves one bot; use --key for a crowd";
    else if (o->reconnect && !o->key_path)
        problem = "--reconnect mints new tokens, so it needs --key";
    if (problem) {
        fprintf(stderr, "tickwire-client: %s\n", problem);
        usage(stderr);
        return -1;
    }
    return 0;
}

static int parse_address(const char *text, ENetAddress *out)
{
    char host[128];
    const char *colon = strrchr(text, ':');
    uint64_t port;
    if (!colon || (size_t)(colon - text) >= sizeof host ||
        parse_u64(colon + 1, 65535, &port) || port == 0)
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    out->port = (enet_uint16)port;
    return enet_address_set_host_ip(out, host);
}

static int mint_token(const struct options *o, const uint8_t *key,
                      uint32_t i, struct tw_token *out)
{
    char name[TW_NAME_MAX + 1];
    snprintf(name, sizeof name, "bot-%u", i);
    return tw_token_issue(key, o->player_base + i, name, o->match_id,
                          tw_clock_unix_s(), o->token_ttl_s, out);
}

/* With --key, the key stays in key[] for --reconnect; the caller wipes it. */
static int load_tokens(const struct options *o, struct tw_bot *bots,
                       uint8_t *key)
{
    char err[256];
    if (o->token_path) {
        FILE *f = fopen(o->token_path, "r");
        char text[4096];
        size_t n = f ? fread(text, 1, sizeof text, f) : 0;
        if (f)
            fclose(f);
        if (!f || n == 0 || n == sizeof text) {
            fprintf(stderr, "tickwire-client: cannot read token %s: %s\n",
                    o->token_path, f ? "empty or too large" : strerror(errno));
            sodium_memzero(text, sizeof text);
            return -1;
        }
        /* The text contains both session keys in base64. */
        int rc = tw_token_from_json(text, n, &bots[0].token, err, sizeof err);
        sodium_memzero(text, sizeof text);
        if (rc != TW_OK) {
            fprintf(stderr, "tickwire-client: %s: %s\n", o->token_path, err);
            return -1;
        }
        return 0;
    }

    if (tw_key_load(o->key_path, key, err, sizeof err) != TW_OK) {
        fprintf(stderr, "tickwire-client: %s\n", err);
        return -1;
    }
    int rc = 0;
    for (uint32_t i = 0; i < o->bots && rc == 0; i++)
        rc = mint_token(o, key, i, &bots[i].token);
    if (rc != TW_OK)
        fprintf(stderr, "tickwire-client: cannot mint tokens\n");
    return rc;
}

struct crowd {
    struct options opt;
    ENetHost *host;
    ENetAddress server;
    struct tw_bot *bots;
    uint32_t next_to_connect;
    uint32_t first_in_flight; /* no bot below it is still connecting */
    struct tw_crowd_stats stats;
    uint32_t tick_hz;
    uint64_t start_ns;
    struct tw_timeline timeline;
    uint8_t key[TW_KEY_BYTES];
    struct tw_trader_config trade;
    uint64_t rng;
};

static void service(struct crowd *c)
{
    ENetEvent ev;
    for (int i = 0; i < 8192; i++) {
        uint64_t now = tw_clock_mono_ns();
        enet_time_set((enet_uint32)(now / 1000000u));
        if (enet_host_service(c->host, &ev, 0) <= 0)
            break;
        struct tw_bot *b = ev.peer->data;
        if (b) {
            tw_bot_on_event(b, &ev, now, &c->stats);
            if (b->state == TW_BOT_PLAYING && b->sim.dt > 0)
                c->tick_hz = (uint32_t)(1.0f / b->sim.dt + 0.5f);
        }
        if (ev.type == ENET_EVENT_TYPE_RECEIVE)
            enet_packet_destroy(ev.packet);
    }
    tw_backoff_cap(c->host);
}

static bool in_flight(const struct tw_bot *b)
{
    return b->state == TW_BOT_CONNECTING || b->state == TW_BOT_LOGGING_IN;
}

/* Counts connection attempts in flight, skipping the settled bots. */
static uint32_t connecting(struct crowd *c)
{
    while (c->first_in_flight < c->next_to_connect &&
           !in_flight(&c->bots[c->first_in_flight]))
        c->first_in_flight++;
    uint32_t n = 0;
    for (uint32_t i = c->first_in_flight; i < c->next_to_connect; i++)
        if (in_flight(&c->bots[i]))
            n++;
    return n;
}

static void start_connection(struct crowd *c, struct tw_bot *b)
{
    if (tw_bot_connect(b, c->host, &c->server) != 0) {
        b->state = TW_BOT_GONE;
        b->n.errors++;
        return;
    }
    uint32_t index = (uint32_t)(b - c->bots);
    if (index < c->first_in_flight)
        c->first_in_flight = index; /* a reconnect: in flight again */
    if (c->opt.reconnect)
        enet_peer_timeout(b->peer, 0, RECONNECT_TIMEOUT_MIN_MS,
                          RECONNECT_TIMEOUT_MAX_MS);
}

/* Reasons a restarted or busy server gives that a new token can fix. */
static bool retryable(uint32_t reason)
{
    return reason == TW_REASON_SHUTDOWN || reason == TW_REASON_SERVER_FULL ||
           reason == TW_REASON_TOO_MANY_FROM_IP ||
           reason == TW_REASON_TOKEN_PREDATES_SERVER;
}

/* Returns true when --reconnect will bring this gone bot back. */
static bool will_reconnect(const struct crowd *c, const struct tw_bot *b)
{
    return c->opt.reconnect && b->state == TW_BOT_GONE && b->logged_in_once &&
           (b->timed_out || retryable(b->disconnect_reason));
}

/*
 * --reconnect: a bot whose server went away (timed out or shut down)
 * connects again after a growing, jittered backoff with a fresh token.
 * Reconnects share connect_burst with first connections.
 */
static void reconnect_lost(struct crowd *c, uint64_t now)
{
    if (!c->opt.reconnect)
        return;
    uint32_t in_flight_now = connecting(c);
    for (uint32_t i = 0; i < c->next_to_connect; i++) {
        struct tw_bot *b = &c->bots[i];
        if (b->state == TW_BOT_PLAYING)
            b->backoff_ms = 0;
        if (!will_reconnect(c, b))
            continue;
        if (b->reconnect_at_ns == 0) {
            uint32_t ms = b->backoff_ms ? b->backoff_ms * 2
                                        : RECONNECT_BACKOFF_MIN_MS;
            b->backoff_ms = ms < RECONNECT_BACKOFF_MAX_MS
                                ? ms : RECONNECT_BACKOFF_MAX_MS;
            c->rng = c->rng * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t jitter = (c->rng >> 33) % (b->backoff_ms / 2 + 1);
            b->reconnect_at_ns =
                now + (b->backoff_ms / 2 + jitter) * 1000000ull;
            continue;
        }
        if (now < b->reconnect_at_ns ||
            in_flight_now >= c->opt.connect_burst)
            continue;
        b->reconnect_at_ns = 0;
        if (mint_token(&c->opt, c->key, i, &b->token) != TW_OK) {
            b->n.errors++;
            continue;
        }
        tw_bot_prepare_reconnect(b);
        b->reconnects++;
        start_connection(c, b);
        in_flight_now++;
    }
}

/*
 * Starts new connections while fewer than connect_burst are in flight.
 * Bots below first_in_flight have all settled, so the scan covers only
 * the window of recent attempts, not the whole crowd.
 */
static void connect_more(struct crowd *c)
{
    uint32_t in_flight_now = connecting(c);
    while (in_flight_now < c->opt.connect_burst &&
           c->next_to_connect < c->opt.bots) {
        start_connection(c, &c->bots[c->next_to_connect++]);
        in_flight_now++;
    }
}

static void wait_until(struct crowd *c, uint64_t deadline)
{
    uint64_t now = tw_clock_mono_ns();
    if (now >= deadline)
        return;
    uint64_t left = deadline - now;
    struct timespec ts = {.tv_sec = (time_t)(left / 1000000000u),
                          .tv_nsec = (long)(left % 1000000000u)};
    struct pollfd pfd = {.fd = c->host->socket, .events = POLLIN};
    ppoll(&pfd, 1, &ts, NULL);
}

static void compute(const struct crowd *c, struct tw_report *r)
{
    struct tw_report_input in = {.bots = c->bots,
                                 .bot_count = c->opt.bots,
                                 .stats = &c->stats,
                                 .tick_hz = c->tick_hz,
                                 .now_ns = tw_clock_mono_ns()};
    tw_report_compute(&in, r);
}

/* Returns true once every bot has connected and gone away for good. */
static bool all_gone(const struct crowd *c)
{
    if (c->next_to_connect < c->opt.bots)
        return false;
    for (uint32_t i = 0; i < c->opt.bots; i++)
        if (c->bots[i].state != TW_BOT_GONE || will_reconnect(c, &c->bots[i]))
            return false;
    return true;
}

/*
 * Says on stderr why bots never logged in: no answer at all (nothing
 * listening, or a firewall), or the server's refusal reasons.
 */
static void explain_missing_logins(const struct crowd *c)
{
    uint32_t silent = 0, refused[TW_REASON_COUNT] = {0};
    for (uint32_t i = 0; i < c->opt.bots; i++) {
        const struct tw_bot *b = &c->bots[i];
        if (b->logged_in_once)
            continue;
        if (b->state != TW_BOT_GONE || b->disconnect_reason == TW_REASON_NONE)
            silent++;
        else if (b->disconnect_reason < TW_REASON_COUNT)
            refused[b->disconnect_reason]++;
    }
    if (silent)
        fprintf(stderr,
                "tickwire-client: %u bots got no answer from %s; is the "
                "server running there?\n",
                silent, c->opt.server);
    for (uint32_t i = 1; i < TW_REASON_COUNT; i++)
        if (refused[i])
            fprintf(stderr, "tickwire-client: %u bots were refused: %s\n",
                    refused[i], tw_reason_name(i));
}

static void play(struct crowd *c)
{
    struct tw_ticker ticker;
    c->start_ns = tw_clock_mono_ns();
    uint64_t end = c->start_ns + (uint64_t)(c->opt.duration_s * 1e9);
    uint64_t next_progress = c->start_ns + PROGRESS_NS;
    tw_ticker_init(&ticker, c->start_ns, c->tick_hz);

    while (!stop_requested) {
        uint64_t now = tw_clock_mono_ns();
        if (now >= end || all_gone(c))
            break;
        if (tw_ticker_due(&ticker, now, 5)) {
            service(c);
            connect_more(c);
            reconnect_lost(c, now);
            for (uint32_t i = 0; i < c->next_to_connect; i++)
                tw_bot_tick(&c->bots[i], now, c->tick_hz, &c->stats);
            enet_host_flush(c->host);
            if (ticker.period_ns != 1000000000u / c->tick_hz)
                tw_ticker_init(&ticker, now, c->tick_hz);
        }
        if (now >= next_progress) {
            next_progress += PROGRESS_NS;
            double t = (double)(now - c->start_ns) * 1e-9;
            tw_timeline_add(&c->timeline, c->bots, c->opt.bots, &c->stats, t);
            if (!c->opt.quiet) {
                struct tw_report r;
                compute(c, &r);
                tw_report_progress(stderr, &r, t);
            }
        }
        wait_until(c, tw_ticker_deadline(&ticker));
        service(c);
    }
}

/*
 * Lets every bot finish its trade: no new ones start, open ones are
 * cancelled, and committing ones wait for their result, up to a grace.
 */
static void settle_trades(struct crowd *c)
{
    uint64_t now = tw_clock_mono_ns();
    uint64_t until = now + SETTLE_GRACE_NS;
    for (uint32_t i = 0; i < c->next_to_connect; i++)
        tw_trader_quiesce(&c->bots[i].trade);
    while (now < until) {
        bool busy = false;
        for (uint32_t i = 0; i < c->next_to_connect; i++) {
            struct tw_bot *b = &c->bots[i];
            if (b->state == TW_BOT_PLAYING && !tw_trader_idle(&b->trade)) {
                busy = true;
                tw_trader_tick(b, now);
            }
        }
        if (!busy)
            break;
        enet_host_flush(c->host);
        wait_until(c, now + 5000000u);
        service(c);
        now = tw_clock_mono_ns();
    }
}

/*
 * Leaves gracefully: ENet delivers every queued reliable message and has
 * it acknowledged before the disconnect goes out.
 */
static void leave(struct crowd *c)
{
    settle_trades(c);
    uint64_t now = tw_clock_mono_ns();
    for (uint32_t i = 0; i < c->next_to_connect; i++)
        tw_bot_leave(&c->bots[i], now);
    enet_host_flush(c->host);

    uint64_t until = now + LEAVE_GRACE_NS;
    for (;;) {
        uint32_t left = 0;
        for (uint32_t i = 0; i < c->next_to_connect; i++)
            if (c->bots[i].state != TW_BOT_GONE)
                left++;
        if (left == 0 || tw_clock_mono_ns() >= until)
            break;
        wait_until(c, tw_clock_mono_ns() + 5000000u);
        service(c);
    }
}

int main(int argc, char **argv)
{
    struct crowd c;
    memset(&c, 0, sizeof c);
    if (parse_options(argc, argv, &c.opt) != 0)
        return 2;
    tw_log_open(c.opt.verbose ? TW_DEBUG : TW_WARN, TW_LOG_TEXT, NULL);
    if (tw_crypto_init() != TW_OK || enet_initialize() != 0) {
        fprintf(stderr, "tickwire-client: cannot initialize libsodium or ENet\n");
        return 1;
    }
    if (parse_address(c.opt.server, &c.server) != 0) {
        fprintf(stderr, "tickwire-client: invalid --server %s (want IPv4:PORT)\n",
                c.opt.server);
        return 2;
    }
    c.bots = calloc(c.opt.bots, sizeof *c.bots);
    if (!c.bots || load_tokens(&c.opt, c.bots, c.key) != 0)
        return 1;
    c.trade = (struct tw_trader_config){.rate_per_min = c.opt.trade_rate,
                                        .player_base = c.opt.player_base,
                                        .bots = c.opt.bots,
                                        .retry_ms = c.opt.trade_retry_ms,
                                        .duplicate_percent =
                                            c.opt.trade_duplicate};
    c.rng = c.opt.seed;
    for (uint32_t i = 0; i < c.opt.bots; i++) {
        tw_bot_init(&c.bots[i], i, c.opt.seed);
        tw_trader_init(&c.bots[i].trade, &c.trade, c.bots[i].token.player_id,
                       c.opt.seed);
    }

    c.host = enet_host_create(NULL, c.opt.bots, TW_CHANNEL_COUNT, 0, 0);
    if (!c.host) {
        fprintf(stderr, "tickwire-client: cannot create the ENet host\n");
        return 1;
    }
    c.tick_hz = c.opt.tick_hz;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    play(&c);
    leave(&c);

    struct tw_report r;
    compute(&c, &r);
    tw_report_summary(stdout, &r);
    int rc = 0;
    struct tw_report_input in = {.bots = c.bots, .bot_count = c.opt.bots};
    if (tw_report_collect(&in, &r) != 0) {
        fprintf(stderr, "tickwire-client: out of memory\n");
        rc = 1;
    }
    if (c.opt.report_path && tw_report_write_json(c.opt.report_path, &r, &c.timeline) != 0) {
        fprintf(stderr, "tickwire-client: cannot write report %s: %s\n",
                c.opt.report_path, strerror(errno));
        rc = 1;
    }
    if (r.logged_in != r.bots || r.errors || r.timeouts ||
        r.trades.answer_mismatches)
        rc = 1;
    explain_missing_logins(&c);

    for (uint32_t i = 0; i < c.opt.bots; i++) {
        tw_cipher_wipe(&c.bots[i].tx);
        tw_cipher_wipe(&c.bots[i].rx);
        sodium_memzero(&c.bots[i].token, sizeof c.bots[i].token);
        tw_trader_free(&c.bots[i].trade);
    }
    sodium_memzero(c.key, sizeof c.key);
    tw_report_free(&r);
    enet_host_destroy(c.host);
    enet_deinitialize();
    tw_timeline_free(&c.timeline);
    free(c.bots);
    return rc;
}
