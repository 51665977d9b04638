#include "impair.h"

#include <string.h>

const char *tw_dir_name(enum tw_dir dir)
{
    return dir == TW_DIR_UP ? "up" : "down";
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void tw_rng_seed(struct tw_rng *rng, uint64_t seed)
{
    uint64_t state = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&state);
}

uint64_t tw_rng_next(struct tw_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tw_rng_unit(struct tw_rng *rng)
{
    return (double)(tw_rng_next(rng) >> 11) * 0x1.0p-53;
}

/*
 * Multiply-shift mapping with no rejection loop, so every call consumes
 * exactly one draw. The bias is below bound / 2^64.
 */
uint64_t tw_rng_below(struct tw_rng *rng, uint64_t bound)
{
    unsigned __int128 m = (unsigned __int128)tw_rng_next(rng) * bound;
    return (uint64_t)(m >> 64);
}

void tw_impair_params_default(struct tw_impair_params *params)
{
    memset(params, 0, sizeof(*params));
    params->reorder_extra_us = TW_IMPAIR_DEFAULT_REORDER_EXTRA_US;
    params->queue_packets = TW_IMPAIR_DEFAULT_QUEUE;
}

const struct tw_impair_params *
tw_impair_params_at(const struct tw_impair_profile *profile, enum tw_dir dir,
                    uint64_t elapsed_us, int *phase_out)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < profile->phase_count; i++)
        total += profile->phases[i].duration_us;

    int phase = -1;
    if (total > 0 && (profile->phases_repeat || elapsed_us < total)) {
        uint64_t t = elapsed_us % total;
        for (unsigned i = 0; i < profile->phase_count; i++) {
            if (t < profile->phases[i].duration_us) {
                phase = (int)i;
                break;
            }
            t -= profile->phases[i].duration_us;
        }
    }
    if (phase_out)
        *phase_out = phase;
    if (phase < 0)
        return &profile->base[dir];
    return &profile->phases[phase].dir[dir];
}

void tw_impair_dir_init(struct tw_impair_dir *d,
                        const struct tw_impair_profile *profile,
                        enum tw_dir dir, uint64_t seed, uint64_t start_us)
{
    memset(d, 0, sizeof(*d));
    d->profile = profile;
    d->dir = dir;
    d->start_us = start_us;
    /* Distinct odd constants give each direction its own stream. */
    uint64_t salt = dir == TW_DIR_UP ? 0x75700000000000b5ull
                                     : 0x646f776e000000c3ull;
    tw_rng_seed(&d->rng, seed ^ salt);
}

/* The random numbers one packet consumes, always all of them. */
struct draws {
    double ge_transition;
    double ge_loss;
    double loss;
    double duplicate;
    double reorder;
    uint64_t jitter[2];
    double corrupt[2];
    uint64_t bit[2];
};

static void draw_all(struct tw_rng *rng, const struct tw_impair_params *p,
                     size_t len, struct draws *r)
{
    r->ge_transition = tw_rng_unit(rng);
    r->ge_loss = tw_rng_unit(rng);
    r->loss = tw_rng_unit(rng);
    r->duplicate = tw_rng_unit(rng);
    r->reorder = tw_rng_unit(rng);
    for (int i = 0; i < 2; i++) {
        r->jitter[i] = tw_rng_below(rng, 2ull * p->jitter_us + 1);
        r->corrupt[i] = tw_rng_unit(rng);
        r->bit[i] = tw_rng_below(rng, (uint64_t)len * 8u);
    }
}

static int chance(double draw, double percent)
{
    return draw * 100.0 < percent;
}

/* Advances the chain one packet, then returns 1 when that packet is lost. */
static int ge_lost(struct tw_impair_dir *d, const struct tw_impair_params *p,
                   const struct draws *r)
{
    if (!p->ge_enabled)
        return 0;
    if (d->ge_bad) {
        if (chance(r->ge_transition, p->ge.p_bad_to_good))
            d->ge_bad = 0;
    } else if (chance(r->ge_transition, p->ge.p_good_to_bad)) {
        d->ge_bad = 1;
    }
    double loss = d->ge_bad ? p->ge.loss_in_bad : p->ge.loss_in_good;
    return chance(r->ge_loss, loss);
}

/*
 * Runs the rate limiter: a FIFO link that serialises len bytes at
 * rate_kbit. Returns 0 and the departure time, or -1 when the FIFO
 * already contains queue_packets packets.
 */
static int rate_admit(struct tw_impair_dir *d,
                      const struct tw_impair_params *p, uint64_t now_us,
                      size_t len, uint64_t *depart_us)
{
    if (p->rate_kbit == 0) {
        *depart_us = now_us;
        return 0;
    }
    while (d->queue_len > 0 && d->queue_done[d->queue_head] <= now_us) {
        d->queue_head = (d->queue_head + 1) % TW_IMPAIR_QUEUE_MAX;
        d->queue_len--;
    }
    unsigned limit = p->queue_packets;
    if (limit == 0 || limit > TW_IMPAIR_QUEUE_MAX)
        limit = TW_IMPAIR_QUEUE_MAX;
    if (d->queue_len >= limit)
        return -1;

    /* len * 8 bits at rate_kbit * 1000 bit/s, rounded up to a microsecond. */
    uint64_t bits_scaled = (uint64_t)len * 8000u;
    uint64_t tx_us = (bits_scaled + p->rate_kbit - 1) / p->rate_kbit;
    uint64_t start = d->link_free_us > now_us ? d->link_free_us : now_us;
    d->link_free_us = start + tx_us;

    unsigned tail = (d->queue_head + d->queue_len) % TW_IMPAIR_QUEUE_MAX;
    d->queue_done[tail] = d->link_free_us;
    d->queue_len++;
    *depart_us = d->link_free_us;
    return 0;
}

static uint64_t delayed(const struct tw_impair_params *p, uint64_t base_us,
                        uint64_t jitter_draw)
{
    int64_t offset = (int64_t)p->delay_us + (int64_t)jitter_draw -
                     (int64_t)p->jitter_us;
    if (offset < 0)
        offset = 0;
    return base_us + (uint64_t)offset;
}

void tw_impair_decide(struct tw_impair_dir *d, uint64_t now_us, size_t len,
                      uint64_t *flow_last_due, struct tw_impair_verdict *v)
{
    uint64_t elapsed = now_us > d->start_us ? now_us - d->start_us : 0;
    const struct tw_impair_params *p =
        tw_impair_params_at(d->profile, d->dir, elapsed, &v->phase);
    struct draws r;
    draw_all(&d->rng, p, len, &r);

    d->counters.received++;
    d->counters.bytes_received += len;
    v->copies = 0;
    v->reordered = 0;

    int lost = ge_lost(d, p, &r);
    if (chance(r.loss, p->loss_percent))
        lost = 1;
    if (lost) {
        v->fate = TW_IMPAIR_DROP_LOSS;
        d->counters.dropped_loss++;
        return;
    }

    uint64_t depart;
    if (rate_admit(d, p, now_us, len, &depart) < 0) {
        v->fate = TW_IMPAIR_DROP_QUEUE;
        d->counters.dropped_queue++;
        return;
    }

    v->fate = TW_IMPAIR_PASS;
    v->copies = chance(r.duplicate, p->duplicate_percent) ? 2 : 1;
    v->reordered = chance(r.reorder, p->reorder_percent);
    if (v->copies == 2)
        d->counters.duplicated++;
    if (v->reordered)
        d->counters.reordered++;

    for (unsigned i = 0; i < v->copies; i++) {
        uint64_t due = delayed(p, depart, r.jitter[i]);
        if (v->reordered) {
            /* Left out of the flow's order so that later packets pass it. */
            due += p->reorder_extra_us;
        } else {
            if (due < *flow_last_due)
                due = *flow_last_due;
            *flow_last_due = due;
        }
        v->copy[i].due_us = due;
        v->copy[i].corrupt_bit = -1;
        if (len > 0 && chance(r.corrupt[i], p->corrupt_percent)) {
            v->copy[i].corrupt_bit = (int64_t)r.bit[i];
            d->counters.corrupted++;
        }
    }
}

void tw_impair_flip_bit(uint8_t *buf, size_t len, uint64_t bit)
{
    if (bit / 8 >= len)
        return;
    buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}
