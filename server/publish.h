/*
 * Hand-off of server statistics from the tick thread to the HTTP thread.
 * The tick thread fills a struct tw_published about once a second and
 * calls tw_publish, which never blocks: it copies into a private back
 * buffer and swaps it with the front buffer only when a trylock succeeds.
 * When the HTTP thread holds the lock, that round is skipped and the next
 * one carries newer numbers anyway.
 */
#ifndef TW_PUBLISH_H
#define TW_PUBLISH_H

#include "stats.h"

#include <stdbool.h>
#include <stdint.h>

#define TW_PUBLISH_VERSION_MAX 32
/* Peers listed one by one; every peer still counts in the aggregates. */
#define TW_PUBLISH_PEERS 64

struct tw_peer_sample {
    uint32_t id;     /* ENet incoming peer id, the slot */
    uint32_t rtt_ms; /* ENet smoothed round-trip time */
    float loss;      /* ENet packet loss as a fraction, 0..1 */
};

struct tw_published {
    struct tw_stats stats;
    char version[TW_PUBLISH_VERSION_MAX];
    uint32_t match_id;
    uint64_t uptime_ms;
    uint64_t resident_bytes; /* tw_stats_rss_bytes() */
    uint64_t store_lag_ms;   /* age of the oldest uncommitted store write */

    /* Filled by tw_peer_sample_add. */
    uint32_t peer_count; /* every peer sampled, listed or not */
    uint32_t peers_listed;
    struct tw_peer_sample peers[TW_PUBLISH_PEERS];
    uint32_t rtt_min_ms, rtt_max_ms;
    double rtt_sum_ms;
    float loss_min, loss_max;
    double loss_sum;

    /* Filled by tw_publish; the caller's values are ignored. */
    uint64_t published_ns;         /* tw_clock_mono_ns() at publication */
    uint64_t overruns_last_minute; /* tick overruns in the last 60 s */
};

struct tw_publisher;

/* Allocates a publisher; returns NULL when out of memory. */
struct tw_publisher *tw_publisher_create(void)
    __attribute__((warn_unused_result));

/* Frees the publisher; no thread may use it any more. */
void tw_publisher_destroy(struct tw_publisher *pub);

/*
 * Clears p and sets the version to TW_VERSION and the match id. Call once,
 * then refresh the other fields before each tw_publish.
 */
void tw_published_init(struct tw_published *p, uint32_t match_id);

/* Clears the peer list and aggregates before a new round of samples. */
void tw_peer_samples_clear(struct tw_published *p);

/*
 * Adds one peer to the aggregates and, while fewer than TW_PUBLISH_PEERS
 * are listed, to the list. A loss outside 0..1 is clamped.
 */
void tw_peer_sample_add(struct tw_published *p, uint32_t id, uint32_t rtt_ms,
                        float loss);

/*
 * Publishes a copy of *p. Tick thread only; never blocks.
 * Returns true when the copy became visible, false when the
 * reader held the lock and this round was skipped.
 */
bool tw_publish(struct tw_publisher *pub, const struct tw_published *p);

/* Same as tw_publish with the monotonic time supplied, for tests. */
bool tw_publish_at(struct tw_publisher *pub, const struct tw_published *p,
                   uint64_t now_ns);

/* Counts rounds that tw_publish skipped. Tick thread only. */
uint64_t tw_publish_skipped(const struct tw_publisher *pub);

/*
 * Copies the newest publication into *out. Reader thread only; may wait
 * for the lock, which tw_publish holds only for a pointer swap. Returns
 * false, leaving *out untouched, when nothing has been published yet.
 */
bool tw_publisher_read(struct tw_publisher *pub, struct tw_published *out);

#endif
