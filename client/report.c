#include "report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static double ms_of_us(uint64_t us)
{
    return (double)us / 1000.0;
}

static void add_trades(struct tw_trader_counters *sum,
                       const struct tw_trader_counters *n)
{
    sum->started += n->started;
    sum->done += n->done;
    for (unsigned i = 0; i < TW_TRADE_R_COUNT; i++) {
        sum->refused[i] += n->refused[i];
        sum->failed[i] += n->failed[i];
    }
    sum->retries += n->retries;
    sum->duplicates += n->duplicates;
    sum->repeat_answers += n->repeat_answers;
    sum->answer_mismatches += n->answer_mismatches;
    sum->gave_up += n->gave_up;
    sum->unresolved += n->unresolved;
}

static int compare_ids(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

int tw_report_collect(const struct tw_report_input *in, struct tw_report *r)
{
    size_t total = 0;
    for (uint32_t i = 0; i < in->bot_count; i++)
        total += in->bots[i].trade.done_count;
    free(r->trade_ids);
    r->trade_ids = NULL;
    r->trade_id_count = 0;
    if (total == 0)
        return 0;
    uint32_t *ids = malloc(total * sizeof *ids);
    if (!ids)
        return -1;
    size_t n = 0;
    for (uint32_t i = 0; i < in->bot_count; i++) {
        const struct tw_trader *t = &in->bots[i].trade;
        memcpy(ids + n, t->done_ids, t->done_count * sizeof *ids);
        n += t->done_count;
    }
    qsort(ids, n, sizeof *ids, compare_ids);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (kept == 0 || ids[kept - 1] != ids[i])
            ids[kept++] = ids[i];
    r->trade_ids = ids;
    r->trade_id_count = kept;
    return 0;
}

void tw_report_free(struct tw_report *r)
{
    free(r->trade_ids);
    r->trade_ids = NULL;
    r->trade_id_count = 0;
}

void tw_report_compute(const struct tw_report_input *in, struct tw_report *r)
{
    memset(r, 0, sizeof *r);
    r->bots = in->bot_count;
    r->expected_snapshots_per_sec = in->tick_hz;

    double rate_sum = 0;
    uint64_t snapshots = 0, missed = 0;
    uint32_t rated = 0;
    for (uint32_t i = 0; i < in->bot_count; i++) {
        const struct tw_bot *b = &in->bots[i];
        if (b->state == TW_BOT_PLAYING)
            r->connected++;
        if (b->logged_in_once)
            r->logged_in++;
        r->errors += b->n.errors;
        r->corrections += b->n.corrections;
        r->event_gaps += b->n.event_gaps;
        r->event_duplicates += b->n.event_duplicates;
        r->event_out_of_order += b->n.event_out_of_order;
        snapshots += b->n.snapshots;
        missed += b->n.snapshots_missed;
        r->reconnects += b->reconnects;
        add_trades(&r->trades, &b->trade.n);
        if (b->state == TW_BOT_GONE && b->logged_in_once) {
            if (b->timed_out)
                r->timeouts++;
            else if (b->disconnect_reason < TW_REASON_COUNT)
                r->disconnects[b->disconnect_reason]++;
        } else if (b->state == TW_BOT_GONE) {
            r->disconnects[b->disconnect_reason < TW_REASON_COUNT
                               ? b->disconnect_reason
                               : TW_REASON_NONE]++;
        }

        uint64_t playing = b->playing_ns;
        if (b->state == TW_BOT_PLAYING && in->now_ns > b->playing_since_ns)
            playing += in->now_ns - b->playing_since_ns;
        /* Skip bots that played too briefly to give a meaningful rate. */
        if (playing >= 500000000ull) {
            double rate = (double)b->n.snapshots / ((double)playing * 1e-9);
            if (rated == 0 || rate < r->snapshots_per_sec_min)
                r->snapshots_per_sec_min = rate;
            rate_sum += rate;
            rated++;
        }
    }
    r->snapshots_per_sec = rated ? rate_sum / rated : 0.0;
    if (snapshots + missed)
        r->snapshot_loss_percent =
            100.0 * (double)missed / (double)(snapshots + missed);

    const struct tw_crowd_stats *cs = in->stats;
    r->rtt_p50_ms = (double)tw_hist_percentile(&cs->rtt_ms, 0.5);
    r->rtt_p99_ms = (double)tw_hist_percentile(&cs->rtt_ms, 0.99);
    r->ping_p50_ms = ms_of_us(tw_hist_percentile(&cs->ping_us, 0.5));
    r->ping_p99_ms = ms_of_us(tw_hist_percentile(&cs->ping_us, 0.99));
    r->jitter_p50_ms = ms_of_us(tw_hist_percentile(&cs->jitter_us, 0.5));
    r->jitter_p99_ms = ms_of_us(tw_hist_percentile(&cs->jitter_us, 0.99));
    r->prediction_p50 = (double)tw_hist_percentile(&cs->prediction_mu, 0.5) / 1e6;
    r->prediction_p99 =
        (double)tw_hist_percentile(&cs->prediction_mu, 0.99) / 1e6;
}

void tw_report_progress(FILE *out, const struct tw_report *r, double elapsed_s)
{
    fprintf(out,
            "[%5.1fs] bots %u/%u connected, snapshots/s %.1f, rtt p50 %.0fms "
            "p99 %.0fms, errors %llu\n",
            elapsed_s, r->connected, r->bots, r->snapshots_per_sec,
            r->rtt_p50_ms, r->rtt_p99_ms, (unsigned long long)r->errors);
}

void tw_report_summary(FILE *out, const struct tw_report *r)
{
    fprintf(out, "\n%-28s %s\n", "measure", "value");
    fprintf(out, "%-28s %u/%u\n", "bots logged in", r->logged_in, r->bots);
    fprintf(out, "%-28s %.2f (expected %.0f)\n", "snapshots/s per bot",
            r->snapshots_per_sec, r->expected_snapshots_per_sec);
    fprintf(out, "%-28s %.1f / %.1f ms\n", "ENet RTT p50 / p99",
            r->rtt_p50_ms, r->rtt_p99_ms);
    fprintf(out, "%-28s %.2f / %.2f ms\n", "reliable ping p50 / p99",
            r->ping_p50_ms, r->ping_p99_ms);
    fprintf(out, "%-28s %.2f / %.2f ms\n", "snapshot jitter p50 / p99",
            r->jitter_p50_ms, r->jitter_p99_ms);
    fprintf(out, "%-28s %.2f %%\n", "snapshots lost",
            r->snapshot_loss_percent);
    fprintf(out, "%-28s %.4f / %.4f units\n", "prediction error p50 / p99",
            r->prediction_p50, r->prediction_p99);
    fprintf(out, "%-28s %llu\n", "prediction corrections",
            (unsigned long long)r->corrections);
    fprintf(out, "%-28s %llu gaps, %llu duplicates, %llu out of order\n",
            "reliable event stream", (unsigned long long)r->event_gaps,
            (unsigned long long)r->event_duplicates,
            (unsigned long long)r->event_out_of_order);
    fprintf(out, "%-28s %llu\n", "timeouts", (unsigned long long)r->timeouts);
    for (unsigned i = 1; i < TW_REASON_COUNT; i++)
        if (r->disconnects[i])
            fprintf(out, "%-28s %llu (%s)\n", "disconnected by server",
                    (unsigned long long)r->disconnects[i], tw_reason_name(i));
    if (r->reconnects)
        fprintf(out, "%-28s %llu\n", "reconnects",
                (unsigned long long)r->reconnects);
    const struct tw_trader_counters *t = &r->trades;
    uint64_t refused = 0, failed = 0;
    for (unsigned i = 0; i < TW_TRADE_R_COUNT; i++) {
        refused += t->refused[i];
        failed += t->failed[i];
    }
    if (t->started || refused)
        fprintf(out, "%-28s %llu started, %llu done (once per side), "
                "%llu failed, %llu requests refused, %llu retries\n",
                "trades", (unsigned long long)t->started,
                (unsigned long long)t->done, (unsigned long long)failed,
                (unsigned long long)refused,
                (unsigned long long)t->retries);
    fprintf(out, "%-28s %llu\n", "errors", (unsigned long long)r->errors);
}

static cJSON *reasons_json(const uint64_t *counts)
{
    cJSON *o = cJSON_CreateObject();
    for (unsigned i = 0; i < TW_TRADE_R_COUNT; i++)
        if (counts[i])
            cJSON_AddNumberToObject(o, tw_trade_reason_name(i),
                                    (double)counts[i]);
    return o;
}

static cJSON *trades_json(const struct tw_report *r)
{
    const struct tw_trader_counters *t = &r->trades;
    cJSON *o = cJSON_CreateObject();
    /* Each committed trade once, however many of its parties saw it. */
    cJSON_AddNumberToObject(o, "done", (double)r->trade_id_count);
    cJSON_AddNumberToObject(o, "done_by_bots", (double)t->done);
    cJSON_AddNumberToObject(o, "started", (double)t->started);
    cJSON_AddItemToObject(o, "refused", reasons_json(t->refused));
    cJSON_AddItemToObject(o, "failed", reasons_json(t->failed));
    cJSON_AddNumberToObject(o, "retries", (double)t->retries);
    cJSON_AddNumberToObject(o, "duplicates", (double)t->duplicates);
    cJSON_AddNumberToObject(o, "repeat_answers", (double)t->repeat_answers);
    cJSON_AddNumberToObject(o, "answer_mismatches",
                            (double)t->answer_mismatches);
    cJSON_AddNumberToObject(o, "gave_up", (double)t->gave_up);
    cJSON_AddNumberToObject(o, "unresolved", (double)t->unresolved);
    cJSON *ids = cJSON_AddArrayToObject(o, "done_ids");
    for (size_t i = 0; i < r->trade_id_count; i++)
        cJSON_AddItemToArray(ids, cJSON_CreateNumber(r->trade_ids[i]));
    return o;
}

static cJSON *percentiles(double p50, double p99)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "p50", p50);
    cJSON_AddNumberToObject(o, "p99", p99);
    return o;
}

void tw_timeline_add(struct tw_timeline *tl, const struct tw_bot *bots,
                     uint32_t bot_count, struct tw_crowd_stats *cs,
                     double t)
{
    if (tl->count == tl->cap) {
        size_t cap = tl->cap ? tl->cap * 2 : 64;
        void *grown = realloc(tl->samples, cap * sizeof *tl->samples);
        if (!grown)
            return;
        tl->samples = grown;
        tl->cap = cap;
    }
    struct tw_timeline_sample *s = &tl->samples[tl->count++];
    memset(s, 0, sizeof *s);
    s->t = t;

    uint64_t snapshots = 0, missed = 0, corrections = 0, rtt_sum = 0;
    for (uint32_t i = 0; i < bot_count; i++) {
        const struct tw_bot *b = &bots[i];
        snapshots += b->n.snapshots;
        missed += b->n.snapshots_missed;
        corrections += b->n.corrections;
        if (b->state == TW_BOT_PLAYING && b->peer) {
            s->connected++;
            rtt_sum += b->peer->roundTripTime;
        }
    }
    double span = t - tl->last_t;
    uint64_t got = snapshots - tl->last_snapshots;
    uint64_t lost = missed - tl->last_missed;
    if (s->connected) {
        s->rtt_ms = (double)rtt_sum / s->connected;
        if (span > 0)
            s->snapshots_per_sec = (double)got / span / s->connected;
    }
    if (got + lost)
        s->loss_percent = 100.0 * (double)lost / (double)(got + lost);
    if (cs->interval_arrivals)
        s->jitter_ms = ms_of_us(cs->interval_jitter_sum_us /
                                cs->interval_arrivals);
    if (cs->interval_pings)
        s->ping_ms = ms_of_us(cs->interval_ping_sum_us / cs->interval_pings);
    s->corrections = corrections - tl->last_corrections;

    tl->last_t = t;
    tl->last_snapshots = snapshots;
    tl->last_missed = missed;
    tl->last_corrections = corrections;
    cs->interval_jitter_sum_us = cs->interval_arrivals = 0;
    cs->interval_ping_sum_us = cs->interval_pings = 0;
}

void tw_timeline_free(struct tw_timeline *tl)
{
    free(tl->samples);
    memset(tl, 0, sizeof *tl);
}

static cJSON *timeline_json(const struct tw_timeline *tl)
{
    cJSON *array = cJSON_CreateArray();
    for (size_t i = 0; i < tl->count; i++) {
        const struct tw_timeline_sample *s = &tl->samples[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "t", s->t);
        cJSON_AddNumberToObject(o, "connected", s->connected);
        cJSON_AddNumberToObject(o, "rtt_ms", s->rtt_ms);
        cJSON_AddNumberToObject(o, "snapshots_per_sec", s->snapshots_per_sec);
        cJSON_AddNumberToObject(o, "loss_percent", s->loss_percent);
        cJSON_AddNumberToObject(o, "jitter_ms", s->jitter_ms);
        cJSON_AddNumberToObject(o, "reliable_rtt_ms", s->ping_ms);
        cJSON_AddNumberToObject(o, "corrections", (double)s->corrections);
        cJSON_AddItemToArray(array, o);
    }
    return array;
}

int tw_report_write_json(const char *path, const struct tw_report *r,
                         const struct tw_timeline *tl)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "bots", r->bots);
    cJSON_AddNumberToObject(root, "logged_in", r->logged_in);
    cJSON_AddNumberToObject(root, "connected_at_end", r->connected);
    cJSON_AddNumberToObject(root, "snapshots_per_sec", r->snapshots_per_sec);
    cJSON_AddNumberToObject(root, "snapshots_per_sec_min",
                            r->snapshots_per_sec_min);
    cJSON_AddNumberToObject(root, "expected_snapshots_per_sec",
                            r->expected_snapshots_per_sec);
    cJSON_AddItemToObject(root, "rtt_ms", percentiles(r->rtt_p50_ms,
                                                      r->rtt_p99_ms));
    cJSON_AddItemToObject(root, "reliable_rtt_ms",
                          percentiles(r->ping_p50_ms, r->ping_p99_ms));
    cJSON_AddItemToObject(root, "snapshot_jitter_ms",
                          percentiles(r->jitter_p50_ms, r->jitter_p99_ms));
    cJSON_AddNumberToObject(root, "snapshot_loss_percent",
                            r->snapshot_loss_percent);
    cJSON_AddItemToObject(root, "prediction_error",
                          percentiles(r->prediction_p50, r->prediction_p99));
    cJSON_AddNumberToObject(root, "corrections", (double)r->corrections);
    cJSON *events = cJSON_AddObjectToObject(root, "events");
    cJSON_AddNumberToObject(events, "gaps", (double)r->event_gaps);
    cJSON_AddNumberToObject(events, "duplicates", (double)r->event_duplicates);
    cJSON_AddNumberToObject(events, "out_of_order",
                            (double)r->event_out_of_order);
    cJSON_AddNumberToObject(root, "errors", (double)r->errors);
    cJSON_AddNumberToObject(root, "timeouts", (double)r->timeouts);
    cJSON *disconnects = cJSON_AddObjectToObject(root, "disconnects");
    for (unsigned i = 1; i < TW_REASON_COUNT; i++)
        if (r->disconnects[i])
            cJSON_AddNumberToObject(disconnects, tw_reason_name(i),
                                    (double)r->disconnects[i]);
    cJSON_AddNumberToObject(root, "reconnects", (double)r->reconnects);
    cJSON_AddItemToObject(root, "trades", trades_json(r));

    if (tl)
        cJSON_AddItemToObject(root, "timeline", timeline_json(tl));

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        errno = ENOMEM;
        return -1;
    }
    FILE *f = fopen(path, "w");
    int rc = -1;
    if (f) {
        rc = fputs(text, f) >= 0 && fputc('\n', f) != EOF ? 0 : -1;
        if (fclose(f) != 0)
            rc = -1;
    }
    free(text);
    return rc;
}
