/*
 * Impairment decisions of the network lab relay, free of sockets and clocks
 * so that tests can drive them packet by packet.
 *
 * One struct tw_impair_dir models one direction of a link: a Gilbert-Elliott
 * loss chain, uniform loss, a rate limiter with a bounded FIFO, then delay
 * with jitter, reordering, duplication and corruption. Every packet draws
 * the same set of numbers from the direction's own PRNG. So the same seed
 * and packet sequence give the same decisions, and changing one percentage
 * leaves the draws of the other impairments unchanged.
 *
 * Times are microseconds on any monotonic clock chosen by the caller.
 */
#ifndef TW_IMPAIR_H
#define TW_IMPAIR_H

#include <stddef.h>
#include <stdint.h>

#define TW_IMPAIR_MAX_PHASES 16u
/* Upper bound on queue_packets; each direction embeds a ring this long. */
#define TW_IMPAIR_QUEUE_MAX 4096u
#define TW_IMPAIR_DEFAULT_QUEUE 64u
#define TW_IMPAIR_DEFAULT_REORDER_EXTRA_US 10000u

enum tw_dir { TW_DIR_UP = 0, TW_DIR_DOWN = 1, TW_DIR_COUNT = 2 };

/* Returns "up" or "down". */
const char *tw_dir_name(enum tw_dir dir);

/* xoshiro256** generator state; seeded through splitmix64. */
struct tw_rng {
    uint64_t s[4];
};

void tw_rng_seed(struct tw_rng *rng, uint64_t seed);
uint64_t tw_rng_next(struct tw_rng *rng);
/* Returns a uniform double in [0, 1) with 53 random bits. */
double tw_rng_unit(struct tw_rng *rng);
/* Returns a uniform integer in [0, bound); bound 0 returns 0. */
uint64_t tw_rng_below(struct tw_rng *rng, uint64_t bound);

/* Gilbert-Elliott loss chain; every field is a percentage 0..100. */
struct tw_ge_params {
    double p_good_to_bad; /* per packet, chance to enter the bad state */
    double p_bad_to_good; /* per packet, chance to leave the bad state */
    double loss_in_good;
    double loss_in_bad;
};

/* Impairments of one direction while one phase (or the base) is in force. */
struct tw_impair_params {
    uint32_t delay_us;
    uint32_t jitter_us;       /* uniform in [-jitter, +jitter] */
    double loss_percent;      /* independent of the Gilbert-Elliott chain */
    int ge_enabled;
    struct tw_ge_params ge;
    double duplicate_percent;
    double reorder_percent;
    uint32_t reorder_extra_us; /* extra delay of a reordered packet */
    double corrupt_percent;
    uint32_t rate_kbit;      /* 1 kbit = 1000 bits of payload; 0 = no limit */
    uint32_t queue_packets;  /* FIFO bound of the rate limiter, 1..QUEUE_MAX */
};

struct tw_impair_phase {
    uint64_t duration_us;
    struct tw_impair_params dir[TW_DIR_COUNT];
};

/*
 * A parsed profile. Phases start when the relay starts and run in order.
 * With phases_repeat the sequence cycles forever. Otherwise the base
 * parameters apply once the last phase has ended.
 */
struct tw_impair_profile {
    char name[64];
    char source[512];
    struct tw_impair_params base[TW_DIR_COUNT];
    struct tw_impair_phase phases[TW_IMPAIR_MAX_PHASES];
    unsigned phase_count;
    int phases_repeat;
};

/* Sets every impairment off: no delay, no loss, no limit. */
void tw_impair_params_default(struct tw_impair_params *params);

/*
 * Returns the parameters in force for dir at elapsed_us after the start.
 * *phase_out (may be NULL) receives the phase index, or -1 for the base.
 */
const struct tw_impair_params *
tw_impair_params_at(const struct tw_impair_profile *profile, enum tw_dir dir,
                    uint64_t elapsed_us, int *phase_out);

struct tw_impair_counters {
    uint64_t received;
    uint64_t bytes_received;
    uint64_t dropped_loss;
    uint64_t dropped_queue;
    uint64_t duplicated;
    uint64_t reordered;
    uint64_t corrupted;
};

struct tw_impair_dir {
    const struct tw_impair_profile *profile;
    enum tw_dir dir;
    uint64_t start_us;
    struct tw_rng rng;
    int ge_bad;             /* current Gilbert-Elliott state */
    uint64_t link_free_us;  /* when the rate limiter finishes its backlog */
    uint64_t queue_done[TW_IMPAIR_QUEUE_MAX]; /* ring of departure times */
    unsigned queue_head;
    unsigned queue_len;
    struct tw_impair_counters counters;
};

/*
 * Prepares one direction. The PRNG stream is derived from seed and dir, so
 * the two directions of one relay never share random numbers. The profile
 * must outlive d.
 */
void tw_impair_dir_init(struct tw_impair_dir *d,
                        const struct tw_impair_profile *profile,
                        enum tw_dir dir, uint64_t seed, uint64_t start_us);

enum tw_impair_fate {
    TW_IMPAIR_PASS,
    TW_IMPAIR_DROP_LOSS,
    TW_IMPAIR_DROP_QUEUE,
};

struct tw_impair_copy {
    uint64_t due_us;     /* when the copy must be sent */
    int64_t corrupt_bit; /* bit index to flip, or -1 */
};

struct tw_impair_verdict {
    enum tw_impair_fate fate;
    unsigned copies; /* 0 when dropped, 2 with a duplicate */
    int reordered;
    int phase;       /* phase in force, -1 for the base */
    struct tw_impair_copy copy[2];
};

/*
 * Decides the fate of one packet of len bytes arriving at now_us, and
 * updates the counters. *flow_last_due is the caller's per-flow state,
 * zero at first. Each copy is due no earlier than the flow's previous one,
 * so packets keep their order. A packet picked for reordering is the
 * exception: it gets reorder_extra_us more and later packets may pass it.
 * now_us must not go backwards between calls.
 */
void tw_impair_decide(struct tw_impair_dir *d, uint64_t now_us, size_t len,
                      uint64_t *flow_last_due, struct tw_impair_verdict *v);

/* Flips bit `bit` (0 = least significant bit of buf[0]); ignores bit >= 8*len. */
void tw_impair_flip_bit(uint8_t *buf, size_t len, uint64_t bit);

#endif
