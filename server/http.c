#include "http.h"

#include "clock.h"
#include "log.h"
#include "protocol.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MS UINT64_C(1000000)
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Scrapers and probes need few sockets; the cap bounds a connection flood. */
#define HTTP_CONNECTION_LIMIT 32u
#define HTTP_PER_IP_LIMIT 16u
#define HTTP_IDLE_TIMEOUT_S 10u

struct tw_http {
    struct MHD_Daemon *daemon;
    struct tw_publisher *pub;
    struct tw_http_options opt;
    char host[TW_HOST_MAX];
    uint16_t port;
    struct tw_ratelimit log_limit; /* MHD's own error messages */
    /* One request at a time: the daemon runs a single internal thread. */
    struct tw_published scratch;
};

void tw_http_options_from_config(struct tw_http_options *opt,
                                 const struct tw_config *cfg)
{
    memset(opt, 0, sizeof *opt);
    opt->host = cfg->http.host;
    opt->port = cfg->http.port;
    opt->overrun_degraded = cfg->http.overrun_degraded;
    opt->store_lag_degraded_ms = cfg->http.store_lag_degraded_ms;
    opt->stale_degraded_ms = TW_HTTP_STALE_DEGRADED_MS;
}

/* ---- Growable text buffer ---------------------------------------------- */

struct sbuf {
    char *data;
    size_t len, cap;
    bool failed; /* an allocation failed; the text is incomplete */
};

static bool sbuf_reserve(struct sbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->cap = cap;
    return true;
}

__attribute__((format(printf, 2, 3)))
static void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sbuf_reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Appends a label value escaped as the text format 0.0.4 requires. */
static void sbuf_label_value(struct sbuf *b, const char *value)
{
    for (const char *c = value; *c; c++) {
        if (*c == '\\')
            sbuf_printf(b, "\\\\");
        else if (*c == '"')
            sbuf_printf(b, "\\\"");
        else if (*c == '\n')
            sbuf_printf(b, "\\n");
        else
            sbuf_printf(b, "%c", *c);
    }
}

/* ---- /metrics ---------------------------------------------------------- */

static void family(struct sbuf *b, const char *name, const char *type,
                   const char *help)
{
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void scalar_u64(struct sbuf *b, const char *name, const char *type,
                       const char *help, uint64_t value)
{
    family(b, name, type, help);
    sbuf_printf(b, "%s %" PRIu64 "\n", name, value);
}

static void scalar_f64(struct sbuf *b, const char *name, const char *type,
                       const char *help, double value)
{
    family(b, name, type, help);
    sbuf_printf(b, "%s %.9g\n", name, value);
}

/*
 * Label values for enum tw_reason. tw_reason_name returns prose meant for
 * players; label values should be short identifiers that stay stable.
 */
static const char *const reason_labels[] = {
    [TW_REASON_NONE] = "none",
    [TW_REASON_SHUTDOWN] = "shutdown",
    [TW_REASON_VERSION_MISMATCH] = "version_mismatch",
    [TW_REASON_BAD_TOKEN] = "bad_token",
    [TW_REASON_TOKEN_EXPIRED] = "token_expired",
    [TW_REASON_WRONG_MATCH] = "wrong_match",
    [TW_REASON_TOKEN_REUSED] = "token_reused",
    [TW_REASON_SERVER_FULL] = "server_full",
    [TW_REASON_LOGIN_TIMEOUT] = "login_timeout",
    [TW_REASON_RATE_LIMIT] = "rate_limit",
    [TW_REASON_REPLACED] = "replaced",
    [TW_REASON_MATCH_ENDED] = "match_ended",
    [TW_REASON_CLOCK_SKEW] = "clock_skew",
    [TW_REASON_PROTOCOL_ERROR] = "protocol_error",
    [TW_REASON_TOO_MANY_FROM_IP] = "too_many_from_ip",
    [TW_REASON_CLIENT_LEFT] = "client_left",
    [TW_REASON_TOKEN_PREDATES_SERVER] = "token_predates_server",
};
_Static_assert(sizeof reason_labels / sizeof reason_labels[0] ==
                   TW_REASON_COUNT,
               "every enum tw_reason value needs a metrics label");

/* One counter per reason, zeros included, so every series always exists. */
static void reason_counters(struct sbuf *b, const char *name,
                            const char *help, const uint64_t *counts,
                            unsigned count, bool drops)
{
    family(b, name, "counter", help);
    for (unsigned i = 1; i < count; i++) {
        const char *reason = drops ? tw_drop_name((int)i) : reason_labels[i];
        if (!reason)
            reason = "unknown";
        sbuf_printf(b, "%s{reason=\"", name);
        sbuf_label_value(b, reason);
        sbuf_printf(b, "\"} %" PRIu64 "\n", counts[i]);
    }
}

/* Bucket bounds in microseconds, with the same bound as a le label. */
static const struct {
    uint64_t us;
    const char *le;
} hist_bounds[] = {
    {50, "5e-05"},       {100, "0.0001"},  {250, "0.00025"},
    {500, "0.0005"},     {1000, "0.001"},  {2500, "0.0025"},
    {5000, "0.005"},     {10000, "0.01"},  {25000, "0.025"},
    {50000, "0.05"},     {100000, "0.1"},  {250000, "0.25"},
    {500000, "0.5"},     {1000000, "1"},   {2500000, "2.5"},
};

/*
 * Exports a microsecond tw_hist as a histogram in seconds. A tw_hist
 * bucket counts toward a le bound only when its whole range lies at or
 * below it, so a cumulative count can fall short by the samples of the one
 * tw_hist bucket (12.5 % wide) that straddles the bound.
 */
static void histogram(struct sbuf *b, const char *name, const char *help,
                      const struct tw_hist *h)
{
    family(b, name, "histogram", help);
    uint64_t cumulative = 0;
    unsigned next = 0;
    for (size_t k = 0; k < sizeof hist_bounds / sizeof hist_bounds[0]; k++) {
        while (next < TW_HIST_BUCKETS &&
               tw_hist_bucket_upper(next) <= hist_bounds[k].us)
            cumulative += h->buckets[next++];
        sbuf_printf(b, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name,
                    hist_bounds[k].le, cumulative);
    }
    while (next < TW_HIST_BUCKETS)
        cumulative += h->buckets[next++];
    /* The bucket total, not h->count, keeps +Inf and _count consistent. */
    sbuf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cumulative);
    sbuf_printf(b, "%s_sum %.6f\n", name, (double)h->sum / 1e6);
    sbuf_printf(b, "%s_count %" PRIu64 "\n", name, cumulative);
}

static void peer_metrics(struct sbuf *b, const struct tw_published *p)
{
    uint32_t listed = p->peers_listed < TW_PUBLISH_PEERS ? p->peers_listed
                                                         : TW_PUBLISH_PEERS;
    family(b, "tickwire_peer_rtt_seconds", "gauge",
           "ENet smoothed round-trip time of a peer (first 64 peers).");
    for (uint32_t i = 0; i < listed; i++)
        sbuf_printf(b, "tickwire_peer_rtt_seconds{peer=\"%" PRIu32 "\"} %.3f\n",
                    p->peers[i].id, p->peers[i].rtt_ms / 1e3);
    family(b, "tickwire_peer_packet_loss_ratio", "gauge",
           "ENet packet loss estimate of a peer, 0 to 1 (first 64 peers).");
    for (uint32_t i = 0; i < listed; i++)
        sbuf_printf(b,
                    "tickwire_peer_packet_loss_ratio{peer=\"%" PRIu32
                    "\"} %.6f\n",
                    p->peers[i].id, (double)p->peers[i].loss);

    scalar_u64(b, "tickwire_peers_sampled", "gauge",
               "Peers included in the peer RTT and loss aggregates.",
               p->peer_count);
    /* An aggregate over no peers is undefined, so it has no sample. */
    static const char *const rtt_names[] = {
        "tickwire_peers_rtt_min_seconds", "tickwire_peers_rtt_mean_seconds",
        "tickwire_peers_rtt_max_seconds"};
    static const char *const loss_names[] = {
        "tickwire_peers_packet_loss_min_ratio",
        "tickwire_peers_packet_loss_mean_ratio",
        "tickwire_peers_packet_loss_max_ratio"};
    static const char *const stat_help[] = {"Minimum", "Mean", "Maximum"};
    double n = p->peer_count ? (double)p->peer_count : 1.0;
    double rtt[3] = {p->rtt_min_ms / 1e3, p->rtt_sum_ms / n / 1e3,
                     p->rtt_max_ms / 1e3};
    double loss[3] = {p->loss_min, p->loss_sum / n, p->loss_max};
    for (int s = 0; s < 3; s++) {
        sbuf_printf(b, "# HELP %s %s ENet round-trip time over all peers.\n"
                       "# TYPE %s gauge\n",
                    rtt_names[s], stat_help[s], rtt_names[s]);
        if (p->peer_count)
            sbuf_printf(b, "%s %.3f\n", rtt_names[s], rtt[s]);
    }
    for (int s = 0; s < 3; s++) {
        sbuf_printf(b, "# HELP %s %s ENet packet loss over all peers.\n"
                       "# TYPE %s gauge\n",
                    loss_names[s], stat_help[s], loss_names[s]);
        if (p->peer_count)
            sbuf_printf(b, "%s %.6f\n", loss_names[s], loss[s]);
    }
}

static void counter_metrics(struct sbuf *b, const struct tw_stats *s)
{
    scalar_u64(b, "tickwire_connects_total", "counter",
               "ENet connections accepted.", s->connects_total);
    scalar_u64(b, "tickwire_logins_total", "counter",
               "Logins that passed token checks.", s->logins_total);
    scalar_u64(b, "tickwire_received_messages_total", "counter",
               "Messages received from peers.", s->msgs_in);
    scalar_u64(b, "tickwire_sent_messages_total", "counter",
               "Messages sent to peers.", s->msgs_out);
    scalar_u64(b, "tickwire_received_bytes_total", "counter",
               "Payload bytes received from peers.", s->bytes_in);
    scalar_u64(b, "tickwire_sent_bytes_total", "counter",
               "Payload bytes sent to peers.", s->bytes_out);
    reason_counters(b, "tickwire_dropped_packets_total",
                    "Packets dropped, by reason.", s->drops, TW_DROP_COUNT,
                    true);
    reason_counters(b, "tickwire_refusals_total",
                    "Connections refused before login completed, by reason.",
                    s->refusals, TW_REASON_COUNT, false);
    reason_counters(b, "tickwire_disconnects_total",
                    "Peers disconnected, by reason.", s->disconnects,
                    TW_REASON_COUNT, false);
    scalar_u64(b, "tickwire_ticks_total", "counter",
               "Simulation ticks run.", s->ticks);
    scalar_u64(b, "tickwire_tick_overruns_total", "counter",
               "Ticks whose work took longer than one tick period.",
               s->tick_overruns);
    scalar_u64(b, "tickwire_ticks_skipped_total", "counter",
               "Tick deadlines skipped to catch up after a stall.",
               s->ticks_skipped);
    scalar_u64(b, "tickwire_snapshots_sent_total", "counter",
               "Snapshots sent to peers.", s->snapshots_sent);
    scalar_u64(b, "tickwire_snapshot_entities_cut_total", "counter",
               "Entities left out of snapshots to fit the MTU.",
               s->snapshot_entities_cut);
}

char *tw_http_render_metrics(const struct tw_published *p, uint64_t now_ns,
                             size_t *len)
{
    struct sbuf b = {0};
    const struct tw_stats *s = &p->stats;

    family(&b, "tickwire_build_info", "gauge",
           "Always 1; the labels carry the version and match id.");
    sbuf_printf(&b, "tickwire_build_info{version=\"");
    sbuf_label_value(&b, p->version);
    sbuf_printf(&b, "\",match_id=\"%" PRIu32 "\"} 1\n", p->match_id);

    counter_metrics(&b, s);

    scalar_u64(&b, "tickwire_connections_active", "gauge",
               "ENet peers connected now, logged in or not.",
               s->connects_active);
    scalar_u64(&b, "tickwire_players_active", "gauge",
               "Logged-in players now.", s->players_active);
    scalar_u64(&b, "tickwire_resident_memory_bytes", "gauge",
               "Resident set size of the server process.", p->resident_bytes);
    scalar_f64(&b, "tickwire_uptime_seconds", "gauge",
               "Time since the server started.", p->uptime_ms / 1e3);
    scalar_f64(&b, "tickwire_store_lag_seconds", "gauge",
               "Age of the oldest store write not yet committed.",
               p->store_lag_ms / 1e3);
    uint64_t age_ns = now_ns > p->published_ns ? now_ns - p->published_ns : 0;
    scalar_f64(&b, "tickwire_stats_age_seconds", "gauge",
               "Time since the tick thread last published these numbers.",
               (double)age_ns / 1e9);
    peer_metrics(&b, p);

    histogram(&b, "tickwire_tick_duration_seconds",
              "Work time of one tick.", &s->tick_work_us);
    histogram(&b, "tickwire_tick_lateness_seconds",
              "Start of a tick minus its deadline.", &s->tick_late_us);
    histogram(&b, "tickwire_input_latency_seconds",
              "Input arrival to the next snapshot sent.",
              &s->input_latency_us);

    if (b.failed) {
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

/* ---- /healthz ---------------------------------------------------------- */

static bool add_number(cJSON *obj, const char *name, double value)
{
    return cJSON_AddNumberToObject(obj, name, value) != NULL;
}

char *tw_http_render_health(const struct tw_published *p, bool published,
                            const struct tw_http_options *opt, uint64_t now_ns,
                            int *status, size_t *len)
{
    const struct tw_stats *s = &p->stats;
    uint64_t age_ms = 0;
    if (published && now_ns > p->published_ns)
        age_ms = (now_ns - p->published_ns) / NS_PER_MS;

    cJSON *root = cJSON_CreateObject();
    cJSON *reasons = cJSON_CreateArray();
    if (!root || !reasons) {
        cJSON_Delete(root);
        cJSON_Delete(reasons);
        return NULL;
    }
    bool ok = true;
    if (!published)
        ok &= cJSON_AddItemToArray(reasons, cJSON_CreateString("no_stats"));
    if (published && opt->overrun_degraded &&
        p->overruns_last_minute > opt->overrun_degraded)
        ok &= cJSON_AddItemToArray(reasons,
                                   cJSON_CreateString("tick_overruns"));
    if (published && opt->store_lag_degraded_ms &&
        p->store_lag_ms > opt->store_lag_degraded_ms)
        ok &= cJSON_AddItemToArray(reasons, cJSON_CreateString("store_lag"));
    if (published && opt->stale_degraded_ms &&
        age_ms > opt->stale_degraded_ms)
        ok &= cJSON_AddItemToArray(reasons,
                                   cJSON_CreateString("stale_stats"));
    bool healthy = ok && cJSON_GetArraySize(reasons) == 0;

    ok &= cJSON_AddStringToObject(root, "status",
                                  healthy ? "ok" : "degraded") != NULL;
    if (!cJSON_AddItemToObject(root, "reasons", reasons)) {
        cJSON_Delete(reasons);
        ok = false;
    }
    ok &= cJSON_AddStringToObject(root, "version",
                                  published ? p->version : TW_VERSION) != NULL;
    ok &= add_number(root, "match_id", p->match_id);
    ok &= add_number(root, "uptime_s", (double)(p->uptime_ms / 1000));
    ok &= add_number(root, "connects_total", (double)s->connects_total);
    ok &= add_number(root, "connects_active", (double)s->connects_active);
    ok &= add_number(root, "players_active", (double)s->players_active);
    ok &= add_number(root, "messages_in", (double)s->msgs_in);
    ok &= add_number(root, "messages_out", (double)s->msgs_out);
    ok &= add_number(root, "bytes_in", (double)s->bytes_in);
    ok &= add_number(root, "bytes_out", (double)s->bytes_out);
    ok &= add_number(root, "errors", (double)tw_stats_drops_total(s));
    ok &= add_number(root, "resident_bytes", (double)p->resident_bytes);
    ok &= add_number(root, "tick_p50_us",
                     (double)tw_hist_percentile(&s->tick_work_us, 0.50));
    ok &= add_number(root, "tick_p99_us",
                     (double)tw_hist_percentile(&s->tick_work_us, 0.99));
    ok &= add_number(root, "overruns_last_minute",
                     (double)p->overruns_last_minute);
    ok &= add_number(root, "store_lag_ms", (double)p->store_lag_ms);
    ok &= add_number(root, "stats_age_ms", (double)age_ms);

    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return NULL;
    *status = healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
    *len = strlen(text);
    return text;
}

/* ---- libmicrohttpd glue ------------------------------------------------ */

__attribute__((format(printf, 2, 0)))
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct tw_http *http = cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    uint64_t suppressed = 0;
    if (!tw_ratelimit_allow(&http->log_limit, tw_clock_mono_ns(), &suppressed))
        return;
    if (suppressed)
        TW_LOG(TW_WARN, "http", TW_NO_PEER,
               "%s (%" PRIu64 " similar lines suppressed)", msg, suppressed);
    else
        TW_LOG(TW_WARN, "http", TW_NO_PEER, "%s", msg);
}

static enum MHD_Result send_static(struct MHD_Connection *conn,
                                   unsigned status, const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Takes ownership of the malloc'd body. */
static enum MHD_Result send_owned(struct MHD_Connection *conn,
                                  unsigned status, const char *content_type,
                                  char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn,
                                      const char *url, const char *method,
                                      const char *version,
                                      const char *upload_data,
                                      size_t *upload_data_size, void **state)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)state;
    struct tw_http *http = cls;

    bool is_health = strcmp(url, "/healthz") == 0;
    bool is_metrics = strcmp(url, "/metrics") == 0;
    if (!is_health && !is_metrics)
        return send_static(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return send_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                           "method not allowed\n");

    struct tw_published *p = &http->scratch;
    bool published = tw_publisher_read(http->pub, p);
    if (!published)
        tw_published_init(p, 0);
    uint64_t now_ns = tw_clock_mono_ns();

    char *body;
    size_t len = 0;
    int status = MHD_HTTP_OK;
    const char *type;
    if (is_health) {
        body = tw_http_render_health(p, published, &http->opt, now_ns,
                                     &status, &len);
        type = "application/json";
    } else {
        body = tw_http_render_metrics(p, now_ns, &len);
        type = METRICS_CONTENT_TYPE;
    }
    if (!body)
        return send_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "out of memory\n");
    return send_owned(conn, (unsigned)status, type, body, len);
}

/* Parses a numeric address; returns the sockaddr length or 0. */
static socklen_t parse_address(const char *host, uint16_t port,
                               struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return sizeof *v4;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return sizeof *v6;
    }
    return 0;
}

int tw_http_start(const struct tw_http_options *opt, struct tw_publisher *pub,
                  struct tw_http **out)
{
    *out = NULL;
    const char *host = opt->host ? opt->host : "";
    struct sockaddr_storage ss;
    if (parse_address(host, opt->port, &ss) == 0) {
        TW_LOG(TW_ERROR, "http", TW_NO_PEER,
               "http.host \"%s\" is not a numeric IPv4 or IPv6 address", host);
        return -1;
    }

    struct tw_http *http = calloc(1, sizeof *http);
    if (!http) {
        TW_LOG(TW_ERROR, "http", TW_NO_PEER, "out of memory");
        return -1;
    }
    http->pub = pub;
    http->opt = *opt;
    snprintf(http->host, sizeof http->host, "%s", host);
    http->opt.host = http->host;
    tw_ratelimit_init(&http->log_limit, 1.0, 5.0);

    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    http->daemon = MHD_start_daemon(
        flags, opt->port, NULL, NULL, handle_request, http,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, http,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTION_LIMIT,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_PER_IP_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
        MHD_OPTION_END);
    if (!http->daemon) {
        TW_LOG(TW_ERROR, "http", TW_NO_PEER,
               "cannot listen on %s port %u (address in use or not local?)",
               host, (unsigned)opt->port);
        free(http);
        return -1;
    }

    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_BIND_PORT);
    http->port = info ? info->port : opt->port;
    TW_LOG(TW_INFO, "http", TW_NO_PEER,
           "serving /healthz and /metrics on %s port %u", host,
           (unsigned)http->port);
    *out = http;
    return TW_OK;
}

uint16_t tw_http_port(const struct tw_http *http)
{
    return http->port;
}

void tw_http_stop(struct tw_http *http)
{
    if (!http)
        return;
    MHD_stop_daemon(http->daemon);
    TW_LOG(TW_INFO, "http", TW_NO_PEER, "stopped");
    free(http);
}
