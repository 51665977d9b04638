#include "publish.h"

#include "clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S UINT64_C(1000000000)
#define OVERRUN_WINDOW_NS (60 * NS_PER_S)
/* Samples are at least a second apart, so 128 of them cover the window. */
#define OVERRUN_SAMPLES 128u

struct overrun_sample {
    uint64_t ns;
    uint64_t overruns;
};

struct tw_publisher {
    pthread_mutex_t lock;
    struct tw_published *front; /* guarded by lock */
    struct tw_published *back;  /* tick thread only */
    bool has_front;             /* guarded by lock */
    uint64_t skipped;
    struct overrun_sample ring[OVERRUN_SAMPLES];
    unsigned ring_head; /* next slot to write */
    unsigned ring_len;
    struct tw_published buffers[2];
};

struct tw_publisher *tw_publisher_create(void)
{
    struct tw_publisher *pub = calloc(1, sizeof *pub);
    if (!pub)
        return NULL;
    if (pthread_mutex_init(&pub->lock, NULL) != 0) {
        free(pub);
        return NULL;
    }
    pub->front = &pub->buffers[0];
    pub->back = &pub->buffers[1];
    return pub;
}

void tw_publisher_destroy(struct tw_publisher *pub)
{
    if (!pub)
        return;
    pthread_mutex_destroy(&pub->lock);
    free(pub);
}

void tw_published_init(struct tw_published *p, uint32_t match_id)
{
    memset(p, 0, sizeof *p);
    strncpy(p->version, TW_VERSION, sizeof p->version - 1);
    p->match_id = match_id;
}

void tw_peer_samples_clear(struct tw_published *p)
{
    p->peer_count = 0;
    p->peers_listed = 0;
    p->rtt_min_ms = 0;
    p->rtt_max_ms = 0;
    p->rtt_sum_ms = 0;
    p->loss_min = 0;
    p->loss_max = 0;
    p->loss_sum = 0;
}

void tw_peer_sample_add(struct tw_published *p, uint32_t id, uint32_t rtt_ms,
                        float loss)
{
    if (!(loss >= 0.0f)) /* also catches NaN */
        loss = 0.0f;
    if (loss > 1.0f)
        loss = 1.0f;

    if (p->peer_count == 0 || rtt_ms < p->rtt_min_ms)
        p->rtt_min_ms = rtt_ms;
    if (rtt_ms > p->rtt_max_ms)
        p->rtt_max_ms = rtt_ms;
    if (p->peer_count == 0 || loss < p->loss_min)
        p->loss_min = loss;
    if (loss > p->loss_max)
        p->loss_max = loss;
    p->rtt_sum_ms += rtt_ms;
    p->loss_sum += loss;
    p->peer_count++;

    if (p->peers_listed < TW_PUBLISH_PEERS) {
        struct tw_peer_sample *s = &p->peers[p->peers_listed++];
        s->id = id;
        s->rtt_ms = rtt_ms;
        s->loss = loss;
    }
}

/*
 * Returns the overruns counted since the newest sample at least a minute
 * old. Until such a sample exists the process is young, so every overrun
 * since start counts.
 */
static uint64_t overruns_in_window(struct tw_publisher *pub, uint64_t now_ns,
                                   uint64_t overruns)
{
    unsigned newest = (pub->ring_head + OVERRUN_SAMPLES - 1) % OVERRUN_SAMPLES;
    if (pub->ring_len == 0 || now_ns >= pub->ring[newest].ns + NS_PER_S) {
        pub->ring[pub->ring_head].ns = now_ns;
        pub->ring[pub->ring_head].overruns = overruns;
        pub->ring_head = (pub->ring_head + 1) % OVERRUN_SAMPLES;
        if (pub->ring_len < OVERRUN_SAMPLES)
            pub->ring_len++;
    }

    uint64_t baseline = 0;
    for (unsigned k = 0; k < pub->ring_len; k++) {
        unsigned i = (pub->ring_head + OVERRUN_SAMPLES - 1 - k) %
                     OVERRUN_SAMPLES;
        if (pub->ring[i].ns + OVERRUN_WINDOW_NS <= now_ns) {
            baseline = pub->ring[i].overruns;
            break;
        }
    }
    return overruns >= baseline ? overruns - baseline : 0;
}

bool tw_publish(struct tw_publisher *pub, const struct tw_published *p)
{
    return tw_publish_at(pub, p, tw_clock_mono_ns());
}

bool tw_publish_at(struct tw_publisher *pub, const struct tw_published *p,
                   uint64_t now_ns)
{
    uint64_t window = overruns_in_window(pub, now_ns, p->stats.tick_overruns);

    /* The back buffer belongs to this thread, so the copy needs no lock. */
    memcpy(pub->back, p, sizeof *p);
    pub->back->published_ns = now_ns;
    pub->back->overruns_last_minute = window;

    if (pthread_mutex_trylock(&pub->lock) != 0) {
        pub->skipped++;
        return false;
    }
    struct tw_published *old = pub->front;
    pub->front = pub->back;
    pub->has_front = true;
    pthread_mutex_unlock(&pub->lock);
    pub->back = old;
    return true;
}

uint64_t tw_publish_skipped(const struct tw_publisher *pub)
{
    return pub->skipped;
}

bool tw_publisher_read(struct tw_publisher *pub, struct tw_published *out)
{
    pthread_mutex_lock(&pub->lock);
    bool has = pub->has_front;
    if (has)
        memcpy(out, pub->front, sizeof *out);
    pthread_mutex_unlock(&pub->lock);
    return has;
}
