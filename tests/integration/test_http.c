/*
 * Health and metrics endpoint: the publisher hand-off, the rendered bodies,
 * and a live server on 127.0.0.1 fetched with libcurl. With --promtool,
 * the binary instead checks /metrics with Prometheus's own parser and
 * exits 77 (skipped) when promtool is not installed.
 */
#include "clock.h"
#include "http.h"
#include "log.h"
#include "publish.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define NS_PER_S UINT64_C(1000000000)
#define SKIP_EXIT_CODE 77

/* ---- fixtures ---------------------------------------------------------- */

static struct tw_published *fake_published(void)
{
    struct tw_published *p = calloc(1, sizeof *p);
    assert_non_null(p);
    tw_published_init(p, 4242);
    struct tw_stats *s = &p->stats;
    s->connects_total = 7;
    s->connects_active = 3;
    s->logins_total = 6;
    s->players_active = 2;
    s->msgs_in = 1000;
    s->msgs_out = 2000;
    s->bytes_in = 30000;
    s->bytes_out = 90000;
    s->drops[TW_DROP_TRUNCATED] = 4;
    s->drops[TW_DROP_RATE_LIMITED] = 5;
    s->refusals[TW_REASON_BAD_TOKEN] = 2;
    s->disconnects[TW_REASON_CLIENT_LEFT] = 1;
    s->ticks = 600;
    s->tick_overruns = 3;
    for (int i = 0; i < 590; i++)
        tw_hist_add(&s->tick_work_us, 400);
    for (int i = 0; i < 10; i++)
        tw_hist_add(&s->tick_work_us, 20000);
    tw_hist_add(&s->tick_late_us, 30);
    tw_hist_add(&s->input_latency_us, 35000);
    p->uptime_ms = 12500;
    p->resident_bytes = 8u << 20;
    p->store_lag_ms = 40;
    tw_peer_sample_add(p, 0, 20, 0.0f);
    tw_peer_sample_add(p, 5, 60, 0.25f);
    return p;
}

static struct tw_http_options limits(void)
{
    struct tw_http_options opt = {
        .host = "127.0.0.1",
        .port = 0,
        .overrun_degraded = 10,
        .store_lag_degraded_ms = 500,
        .stale_degraded_ms = 10000,
    };
    return opt;
}

static cJSON *render_health(const struct tw_published *p, bool published,
                            const struct tw_http_options *opt, uint64_t now_ns,
                            int *status)
{
    size_t len = 0;
    char *text = tw_http_render_health(p, published, opt, now_ns, status,
                                       &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    cJSON *json = cJSON_Parse(text);
    free(text);
    assert_non_null(json);
    return json;
}

static double json_number(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    assert_non_null(item);
    assert_true(cJSON_IsNumber(item));
    return item->valuedouble;
}

static const char *json_string(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    assert_non_null(item);
    assert_true(cJSON_IsString(item));
    return item->valuestring;
}

static bool has_reason(const cJSON *obj, const char *reason)
{
    const cJSON *reasons = cJSON_GetObjectItemCaseSensitive(obj, "reasons");
    assert_true(cJSON_IsArray(reasons));
    const cJSON *r;
    cJSON_ArrayForEach(r, reasons)
        if (cJSON_IsString(r) && strcmp(r->valuestring, reason) == 0)
            return true;
    return false;
}

/* ---- publisher --------------------------------------------------------- */

static void publisher_read_fails_before_first_publish(void **state)
{
    (void)state;
    struct tw_publisher *pub = tw_publisher_create();
    assert_non_null(pub);
    struct tw_published *out = calloc(1, sizeof *out);
    assert_non_null(out);
    out->match_id = 99;
    assert_false(tw_publisher_read(pub, out));
    assert_int_equal(out->match_id, 99);
    free(out);
    tw_publisher_destroy(pub);
}

static void publisher_read_returns_newest(void **state)
{
    (void)state;
    struct tw_publisher *pub = tw_publisher_create();
    assert_non_null(pub);
    struct tw_published *p = fake_published();
    struct tw_published *out = calloc(1, sizeof *out);
    assert_non_null(out);
    for (uint64_t i = 1; i <= 3; i++) {
        p->stats.ticks = i;
        assert_true(tw_publish_at(pub, p, i * NS_PER_S));
    }
    assert_true(tw_publisher_read(pub, out));
    assert_int_equal(out->stats.ticks, 3);
    assert_int_equal(out->published_ns, 3 * NS_PER_S);
    assert_string_equal(out->version, TW_VERSION);
    assert_int_equal(out->match_id, 4242);
    assert_int_equal(tw_publish_skipped(pub), 0);
    free(out);
    free(p);
    tw_publisher_destroy(pub);
}

struct reader_args {
    struct tw_publisher *pub;
    int stop;            /* atomic */
    unsigned long reads; /* atomic */
    unsigned long torn;
};

static void *reader_loop(void *arg)
{
    struct reader_args *r = arg;
    struct tw_published *out = calloc(1, sizeof *out);
    if (!out)
        return NULL;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        if (!tw_publisher_read(r->pub, out))
            continue;
        __atomic_add_fetch(&r->reads, 1, __ATOMIC_RELAXED);
        /* The writer keeps these fields in a fixed relation. */
        if (out->stats.msgs_in != out->stats.ticks * 2 ||
            out->uptime_ms != out->stats.ticks * 3)
            r->torn++;
    }
    free(out);
    return NULL;
}

static void publisher_reads_are_never_torn(void **state)
{
    (void)state;
    struct tw_publisher *pub = tw_publisher_create();
    assert_non_null(pub);
    struct tw_published *p = fake_published();
    struct reader_args r = {.pub = pub};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, reader_loop, &r), 0);

    /* Publish until the reader has overlapped many rounds, within 5 s. */
    uint64_t rounds = 0, published = 0;
    uint64_t deadline = tw_clock_mono_ns() + 5 * NS_PER_S;
    while (rounds < 20000 ||
           (__atomic_load_n(&r.reads, __ATOMIC_RELAXED) < 1000 &&
            tw_clock_mono_ns() < deadline)) {
        rounds++;
        p->stats.ticks = rounds;
        p->stats.msgs_in = rounds * 2;
        p->uptime_ms = rounds * 3;
        published += tw_publish(pub, p);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    pthread_join(thread, NULL);

    assert_int_equal(r.torn, 0);
    assert_true(r.reads >= 1000);
    assert_int_equal(published + tw_publish_skipped(pub), rounds);
    free(p);
    tw_publisher_destroy(pub);
}

static void overrun_window_counts_last_minute(void **state)
{
    (void)state;
    struct tw_publisher *pub = tw_publisher_create();
    assert_non_null(pub);
    struct tw_published *p = fake_published();
    struct tw_published *out = calloc(1, sizeof *out);
    assert_non_null(out);

    /* Two overruns per second for the first minute, none afterwards. */
    uint64_t t0 = 1000 * NS_PER_S;
    for (uint64_t sec = 0; sec <= 150; sec++) {
        p->stats.tick_overruns = sec <= 60 ? sec * 2 : 120;
        assert_true(tw_publish_at(pub, p, t0 + sec * NS_PER_S));
        assert_true(tw_publisher_read(pub, out));
        if (sec == 30)
            assert_int_equal(out->overruns_last_minute, 60);
        if (sec == 90)
            assert_int_equal(out->overruns_last_minute, 60);
        if (sec == 150)
            assert_int_equal(out->overruns_last_minute, 0);
    }
    free(out);
    free(p);
    tw_publisher_destroy(pub);
}

static void peer_samples_aggregate_and_cap(void **state)
{
    (void)state;
    struct tw_published *p = calloc(1, sizeof *p);
    assert_non_null(p);
    tw_published_init(p, 1);
    for (uint32_t i = 0; i < 100; i++)
        tw_peer_sample_add(p, i, 10 + i, i == 99 ? 2.0f : 0.1f);
    assert_int_equal(p->peer_count, 100);
    assert_int_equal(p->peers_listed, TW_PUBLISH_PEERS);
    assert_int_equal(p->peers[63].id, 63);
    assert_int_equal(p->rtt_min_ms, 10);
    assert_int_equal(p->rtt_max_ms, 109);
    assert_true(p->loss_max == 1.0f); /* clamped from 2.0 */
    assert_true(p->loss_min > 0.09f && p->loss_min < 0.11f);

    tw_peer_samples_clear(p);
    assert_int_equal(p->peer_count, 0);
    assert_int_equal(p->peers_listed, 0);
    free(p);
}

/* ---- rendered bodies --------------------------------------------------- */

static void health_ok_below_limits(void **state)
{
    (void)state;
    struct tw_published *p = fake_published();
    struct tw_http_options opt = limits();
    p->published_ns = 50 * NS_PER_S;
    p->overruns_last_minute = 10; /* at the limit, not over it */
    int status = 0;
    cJSON *json = render_health(p, true, &opt, 51 * NS_PER_S, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string(json, "status"), "ok");
    assert_false(has_reason(json, "tick_overruns"));
    assert_string_equal(json_string(json, "version"), TW_VERSION);
    assert_int_equal(json_number(json, "match_id"), 4242);
    assert_int_equal(json_number(json, "uptime_s"), 12);
    assert_int_equal(json_number(json, "connects_total"), 7);
    assert_int_equal(json_number(json, "connects_active"), 3);
    assert_int_equal(json_number(json, "players_active"), 2);
    assert_int_equal(json_number(json, "messages_in"), 1000);
    assert_int_equal(json_number(json, "messages_out"), 2000);
    assert_int_equal(json_number(json, "bytes_in"), 30000);
    assert_int_equal(json_number(json, "bytes_out"), 90000);
    assert_int_equal(json_number(json, "errors"), 9);
    assert_int_equal(json_number(json, "resident_bytes"), 8u << 20);
    /* 400 us lies in the tw_hist bucket 384..415. */
    assert_in_range(json_number(json, "tick_p50_us"), 384, 415);
    assert_in_range(json_number(json, "tick_p99_us"), 16384, 20480);
    assert_int_equal(json_number(json, "stats_age_ms"), 1000);
    cJSON_Delete(json);
    free(p);
}

static void health_degraded_on_overruns(void **state)
{
    (void)state;
    struct tw_published *p = fake_published();
    struct tw_http_options opt = limits();
    p->overruns_last_minute = 11;
    int status = 0;
    cJSON *json = render_health(p, true, &opt, 0, &status);
    assert_int_equal(status, 503);
    assert_string_equal(json_string(json, "status"), "degraded");
    assert_true(has_reason(json, "tick_overruns"));
    assert_false(has_reason(json, "store_lag"));
    cJSON_Delete(json);
    free(p);
}

static void health_degraded_on_store_lag(void **state)
{
    (void)state;
    struct tw_published *p = fake_published();
    struct tw_http_options opt = limits();
    p->store_lag_ms = 501;
    int status = 0;
    cJSON *json = render_health(p, true, &opt, 0, &status);
    assert_int_equal(status, 503);
    assert_true(has_reason(json, "store_lag"));
    assert_false(has_reason(json, "tick_overruns"));
    cJSON_Delete(json);
    free(p);
}

static void health_degraded_when_stats_stale(void **state)
{
    (void)state;
    struct tw_published *p = fake_published();
    struct tw_http_options opt = limits();
    p->published_ns = NS_PER_S;
    int status = 0;
    cJSON *json = render_health(p, true, &opt, 12 * NS_PER_S, &status);
    assert_int_equal(status, 503);
    assert_true(has_reason(json, "stale_stats"));
    cJSON_Delete(json);
    free(p);
}

static void health_degraded_before_first_publish(void **state)
{
    (void)state;
    struct tw_published *p = calloc(1, sizeof *p);
    assert_non_null(p);
    tw_published_init(p, 0);
    struct tw_http_options opt = limits();
    int status = 0;
    cJSON *json = render_health(p, false, &opt, 0, &status);
    assert_int_equal(status, 503);
    assert_true(has_reason(json, "no_stats"));
    assert_string_equal(json_string(json, "version"), TW_VERSION);
    cJSON_Delete(json);
    free(p);
}

static void health_zero_limits_are_off(void **state)
{
    (void)state;
    struct tw_published *p = fake_published();
    struct tw_http_options opt = limits();
    opt.overrun_degraded = 0;
    opt.store_lag_degraded_ms = 0;
    opt.stale_degraded_ms = 0;
    p->overruns_last_minute = 1000000;
    p->store_lag_ms = 1000000;
    int status = 0;
    cJSON *json = render_health(p, true, &opt, 3600 * NS_PER_S, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string(json, "status"), "ok");
    cJSON_Delete(json);
    free(p);
}

static char *render_metrics(const struct tw_published *p)
{
    size_t len = 0;
    char *text = tw_http_render_metrics(p, p->published_ns, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static void metrics_histogram_is_cumulative(void **state)
{
    (void)state;
    struct tw_published *p = fake_published();
    char *text = render_metrics(p);
    /* 590 samples at 400 us, 10 at 20 ms. */
    assert_non_null(strstr(text,
        "tickwire_tick_duration_seconds_bucket{le=\"0.00025\"} 0\n"));
    assert_non_null(strstr(text,
        "tickwire_tick_duration_seconds_bucket{le=\"0.0005\"} 590\n"));
    assert_non_null(strstr(text,
        "tickwire_tick_duration_seconds_bucket{le=\"0.01\"} 590\n"));
    assert_non_null(strstr(text,
        "tickwire_tick_duration_seconds_bucket{le=\"0.025\"} 600\n"));
    assert_non_null(strstr(text,
        "tickwire_tick_duration_seconds_bucket{le=\"+Inf\"} 600\n"));
    assert_non_null(strstr(text, "tickwire_tick_duration_seconds_count 600\n"));
    assert_non_null(strstr(text,
        "tickwire_tick_duration_seconds_sum 0.436000\n"));
    free(text);
    free(p);
}

static void metrics_counters_carry_reasons(void **state)
{
    (void)state;
    struct tw_published *p = fake_published();
    char *text = render_metrics(p);
    assert_non_null(strstr(text, "# TYPE tickwire_connects_total counter\n"));
    assert_non_null(strstr(text, "\ntickwire_connects_total 7\n"));
    assert_non_null(strstr(text,
        "tickwire_dropped_packets_total{reason=\"truncated\"} 4\n"));
    assert_non_null(strstr(text,
        "tickwire_dropped_packets_total{reason=\"rate_limited\"} 5\n"));
    assert_non_null(strstr(text,
        "tickwire_refusals_total{reason=\"bad_token\"} 2\n"));
    assert_non_null(strstr(text,
        "tickwire_disconnects_total{reason=\"client_left\"} 1\n"));
    assert_non_null(strstr(text, "tickwire_players_active 2\n"));
    assert_non_null(strstr(text, "tickwire_peer_rtt_seconds{peer=\"5\"} 0.060\n"));
    assert_non_null(strstr(text, "tickwire_peers_rtt_max_seconds 0.060\n"));
    assert_non_null(strstr(text, "tickwire_peers_rtt_mean_seconds 0.040\n"));
    /* Reason 0 means "none" and is not a series. */
    assert_null(strstr(text, "reason=\"none\""));
    free(text);
    free(p);
}

static void metrics_label_values_escaped(void **state)
{
    (void)state;
    struct tw_published *p = fake_published();
    snprintf(p->version, sizeof p->version, "1.0\"q\\b\nn");
    char *text = render_metrics(p);
    assert_non_null(strstr(text,
        "tickwire_build_info{version=\"1.0\\\"q\\\\b\\nn\",match_id=\"4242\"} 1\n"));
    free(text);
    free(p);
}

static void metrics_without_peers_omit_aggregates(void **state)
{
    (void)state;
    struct tw_published *p = fake_published();
    tw_peer_samples_clear(p);
    char *text = render_metrics(p);
    assert_non_null(strstr(text, "# TYPE tickwire_peers_rtt_max_seconds gauge\n"));
    assert_null(strstr(text, "\ntickwire_peers_rtt_max_seconds "));
    assert_null(strstr(text, "\ntickwire_peer_rtt_seconds{"));
    free(text);
    free(p);
}

/* ---- live server ------------------------------------------------------- */

struct fetched {
    long status;
    char content_type[96];
    char *body;
    size_t len;
};

static size_t collect(char *data, size_t size, size_t count, void *cls)
{
    struct fetched *f = cls;
    size_t n = size * count;
    char *grown = realloc(f->body, f->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + f->len, data, n);
    f->body = grown;
    f->len += n;
    f->body[f->len] = '\0';
    return n;
}

/* Fetches url from the test server; method NULL means GET. */
static struct fetched fetch(uint16_t port, const char *path,
                            const char *method)
{
    struct fetched f = {0};
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
    if (method && strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (method)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        fail_msg("GET %s failed: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f.status);
    char *type = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
    if (type)
        snprintf(f.content_type, sizeof f.content_type, "%s", type);
    curl_easy_cleanup(c);
    return f;
}

struct live {
    struct tw_publisher *pub;
    struct tw_http *http;
    struct tw_published *p;
};

static int live_setup(void **state)
{
    struct live *l = calloc(1, sizeof *l);
    assert_non_null(l);
    l->pub = tw_publisher_create();
    assert_non_null(l->pub);
    l->p = fake_published();
    struct tw_http_options opt = limits();
    assert_int_equal(tw_http_start(&opt, l->pub, &l->http), TW_OK);
    assert_true(tw_http_port(l->http) != 0);
    *state = l;
    return 0;
}

static int live_teardown(void **state)
{
    struct live *l = *state;
    tw_http_stop(l->http);
    tw_publisher_destroy(l->pub);
    free(l->p);
    free(l);
    return 0;
}

static void live_healthz_reports_published_stats(void **state)
{
    struct live *l = *state;
    uint16_t port = tw_http_port(l->http);

    struct fetched f = fetch(port, "/healthz", NULL);
    assert_int_equal(f.status, 503); /* nothing published yet */
    free(f.body);

    assert_true(tw_publish(l->pub, l->p));
    f = fetch(port, "/healthz", NULL);
    assert_int_equal(f.status, 200);
    assert_string_equal(f.content_type, "application/json");
    cJSON *json = cJSON_Parse(f.body);
    assert_non_null(json);
    assert_string_equal(json_string(json, "status"), "ok");
    assert_int_equal(json_number(json, "match_id"), 4242);
    assert_int_equal(json_number(json, "connects_total"), 7);
    assert_int_equal(json_number(json, "errors"), 9);
    cJSON_Delete(json);
    free(f.body);

    l->p->store_lag_ms = 10000;
    assert_true(tw_publish(l->pub, l->p));
    f = fetch(port, "/healthz", NULL);
    assert_int_equal(f.status, 503);
    assert_non_null(strstr(f.body, "\"store_lag\""));
    free(f.body);
}

static void live_metrics_served_as_text_format(void **state)
{
    struct live *l = *state;
    assert_true(tw_publish(l->pub, l->p));
    struct fetched f = fetch(tw_http_port(l->http), "/metrics", NULL);
    assert_int_equal(f.status, 200);
    assert_string_equal(f.content_type,
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(f.body, "\ntickwire_connects_total 7\n"));
    free(f.body);
}

static void live_rejects_other_paths_and_methods(void **state)
{
    struct live *l = *state;
    uint16_t port = tw_http_port(l->http);
    struct fetched f = fetch(port, "/", NULL);
    assert_int_equal(f.status, 404);
    free(f.body);
    f = fetch(port, "/healthz/extra", NULL);
    assert_int_equal(f.status, 404);
    free(f.body);
    f = fetch(port, "/metrics", "POST");
    assert_int_equal(f.status, 405);
    free(f.body);
    f = fetch(port, "/healthz", "DELETE");
    assert_int_equal(f.status, 405);
    free(f.body);
}

static void live_head_has_no_body(void **state)
{
    struct live *l = *state;
    assert_true(tw_publish(l->pub, l->p));
    struct fetched f = fetch(tw_http_port(l->http), "/metrics", "HEAD");
    assert_int_equal(f.status, 200);
    assert_int_equal(f.len, 0);
    free(f.body);
}

static void start_rejects_hostname(void **state)
{
    (void)state;
    struct tw_publisher *pub = tw_publisher_create();
    assert_non_null(pub);
    struct tw_http_options opt = limits();
    opt.host = "localhost";
    struct tw_http *http = NULL;
    assert_int_equal(tw_http_start(&opt, pub, &http), -1);
    assert_null(http);
    tw_publisher_destroy(pub);
}

/* ---- promtool ---------------------------------------------------------- */

static bool promtool_installed(void)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        char candidate[4200];
        snprintf(candidate, sizeof candidate, "%s/promtool", dir);
        if (access(candidate, X_OK) == 0)
            return true;
    }
    return false;
}

static void promtool_accepts_metrics(void **state)
{
    struct live *l = *state;
    /* Exercise every optional part: peers, escapes, all histograms. */
    snprintf(l->p->version, sizeof l->p->version, "0.1\"x\\y\nz");
    for (uint32_t i = 0; i < 80; i++)
        tw_peer_sample_add(l->p, 100 + i, 5 + i, 0.01f * (float)(i % 7));
    assert_true(tw_publish(l->pub, l->p));
    struct fetched f = fetch(tw_http_port(l->http), "/metrics", NULL);
    assert_int_equal(f.status, 200);

    char path[] = "/tmp/tickwire-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, f.body, f.len), (ssize_t)f.len);
    close(fd);
    free(f.body);

    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *out = popen(cmd, "r");
    assert_non_null(out);
    char line[512];
    while (fgets(line, sizeof line, out))
        fprintf(stderr, "promtool: %s", line);
    int status = pclose(out);
    unlink(path);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
    /* Info lines from the server would clutter the test output. */
    tw_log_open(TW_WARN, TW_LOG_TEXT, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed;
    if (argc > 1 && strcmp(argv[1], "--promtool") == 0) {
        if (!promtool_installed()) {
            fprintf(stderr, "promtool not found in PATH; skipping "
                            "(install Debian's prometheus package)\n");
            return SKIP_EXIT_CODE;
        }
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(promtool_accepts_metrics,
                                            live_setup, live_teardown),
        };
        failed = cmocka_run_group_tests_name("http_promtool", tests, NULL,
                                             NULL);
    } else {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(publisher_read_fails_before_first_publish),
            cmocka_unit_test(publisher_read_returns_newest),
            cmocka_unit_test(publisher_reads_are_never_torn),
            cmocka_unit_test(overrun_window_counts_last_minute),
            cmocka_unit_test(peer_samples_aggregate_and_cap),
            cmocka_unit_test(health_ok_below_limits),
            cmocka_unit_test(health_degraded_on_overruns),
            cmocka_unit_test(health_degraded_on_store_lag),
            cmocka_unit_test(health_degraded_when_stats_stale),
            cmocka_unit_test(health_degraded_before_first_publish),
            cmocka_unit_test(health_zero_limits_are_off),
            cmocka_unit_test(metrics_histogram_is_cumulative),
            cmocka_unit_test(metrics_counters_carry_reasons),
            cmocka_unit_test(metrics_label_values_escaped),
            cmocka_unit_test(metrics_without_peers_omit_aggregates),
            cmocka_unit_test_setup_teardown(
                live_healthz_reports_published_stats, live_setup,
                live_teardown),
            cmocka_unit_test_setup_teardown(live_metrics_served_as_text_format,
                                            live_setup, live_teardown),
            cmocka_unit_test_setup_teardown(
                live_rejects_other_paths_and_methods, live_setup,
                live_teardown),
            cmocka_unit_test_setup_teardown(live_head_has_no_body, live_setup,
                                            live_teardown),
            cmocka_unit_test(start_rejects_hostname),
        };
        failed = cmocka_run_group_tests_name("http", tests, NULL, NULL);
    }
    curl_global_cleanup();
    return failed;
}
