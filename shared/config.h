/*
 * Match configuration loaded from JSON. Loading is all or nothing: any
 * error leaves the caller with a one-line message naming the file and the
 * key (as a dotted path such as "match.tick_hz") and no partial config.
 * Missing keys take the defaults documented in README.md.
 */
#ifndef TW_CONFIG_H
#define TW_CONFIG_H

#include "log.h"

#include <stddef.h>
#include <stdint.h>

#define TW_PATH_MAX 256
#define TW_HOST_MAX 64
#define TW_MAX_STARTER_ITEMS 16
#define TW_ITEM_KIND_MAX 23

struct tw_item_grant {
    char kind[TW_ITEM_KIND_MAX + 1];
    uint32_t quantity;
};

struct tw_config {
    struct {
        char host[TW_HOST_MAX];
        uint16_t port;
        uint32_t max_connections;   /* ENet peer slots, <= 4095 */
        uint32_t peer_timeout_ms;   /* silence before a peer is dropped */
        uint32_t peer_timeout_min_ms;
    } server;
    struct {
        uint32_t match_id;
        uint32_t tick_hz;
        uint32_t max_players; /* logins beyond it get "server full" */
        float world_width, world_height;
        float max_speed; /* units per second */
        float spawn_x, spawn_y, spawn_width, spawn_height;
        float view_radius;
        uint32_t max_visible;
        uint32_t duration_s;      /* 0: the match never ends by time */
        uint32_t empty_timeout_s; /* 0: an empty match never ends */
        uint32_t event_interval_ms;
    } match;
    struct {
        char key_file[TW_PATH_MAX];
        uint32_t rate_limit;       /* messages per second per peer */
        uint32_t rate_burst;       /* token bucket depth */
        uint32_t max_connections;  /* peers not yet logged in */
        uint32_t max_per_ip;       /* peers from one address */
        uint32_t login_timeout_ms;
        uint32_t token_skew_s;     /* issuer clock allowed ahead of ours */
        uint32_t max_packet_size;  /* ENet receive cap, bytes */
        uint32_t max_waiting_data; /* ENet per-peer reassembly cap, bytes */
    } security;
    struct {
        enum tw_log_level level;
        enum tw_log_format format;
        char path[TW_PATH_MAX];
    } log;
    struct {
        char path[TW_PATH_MAX];
        uint32_t test_commit_delay_ms; /* test only: slows every commit */
        size_t starter_count;
        struct tw_item_grant starter[TW_MAX_STARTER_ITEMS];
    } store;
    struct {
        uint32_t timeout_ms; /* a trade not committed by then is cancelled */
    } trade;
    struct {
        char host[TW_HOST_MAX];
        uint16_t port; /* 0 turns the HTTP endpoint off */
        uint32_t overrun_degraded;   /* overruns per minute for "degraded" */
        uint32_t store_lag_degraded_ms;
    } http;
    struct {
        uint32_t health_interval_ms; /* between Health calls to the SDK */
        uint32_t stall_ms; /* Health pauses when the tick stalls; 0: off */
    } agones;
    struct {
        /* Test only: ENet's millisecond clock at startup (0: monotonic). */
        uint32_t enet_time_start_ms;
        uint32_t tick_stall_ms; /* test only: one stall after 1 s of uptime */
        uint32_t tick_work_us;  /* test only: busy work added to each tick */
        uint32_t tick_work_ms;  /* test only: how long that work lasts */
    } debug;
};

/* Fills cfg with the defaults. */
void tw_config_defaults(struct tw_config *cfg);

/*
 * Loads path over the defaults. Returns TW_OK, or -1 with a one-line
 * message in err ("FILE: KEY: problem (allowed range)") and cfg untouched.
 */
int tw_config_load(const char *path, struct tw_config *cfg, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

/* Same as tw_config_load on an in-memory buffer that need not end in NUL. */
int tw_config_parse(const char *name, const char *text, size_t len,
                    struct tw_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
