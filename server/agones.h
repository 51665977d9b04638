/*
 * Agones SDK client over the sidecar's REST gateway on 127.0.0.1: POST
 * /ready once the server listens, POST /health on an interval, POST
 * /shutdown when the match ends, each with the body "{}". The requests run
 * on a thread of this module, so the tick thread only flips flags and
 * never waits on HTTP. Failed requests are logged with a rate limit and
 * retried: Ready until it succeeds, Health at the next interval, Shutdown
 * up to TW_AGONES_SHUTDOWN_ATTEMPTS times.
 *
 * Every call below accepts NULL and then does nothing, so a server run
 * outside Agones can call them unconditionally.
 */
#ifndef TW_AGONES_H
#define TW_AGONES_H

#include <stdint.h>

#define TW_AGONES_HEALTH_INTERVAL_MS 5000u
#define TW_AGONES_TIMEOUT_MS 1000u
#define TW_AGONES_RETRY_MS 1000u
#define TW_AGONES_SHUTDOWN_ATTEMPTS 3u

struct tw_agones_options {
    uint16_t port;               /* SDK REST port on 127.0.0.1 */
    uint32_t health_interval_ms; /* between Health requests, > 0 */
    uint32_t timeout_ms;         /* per request, connect included, > 0 */
    uint32_t retry_ms;           /* before retrying Ready or Shutdown */
    /*
     * 0: off. Otherwise Health requests pause while the last
     * tw_agones_heartbeat is older than this, so a stalled tick loop
     * lets Agones mark the game server Unhealthy.
     */
    uint32_t stall_ms;
};

/*
 * Fills opt with the defaults and the port from AGONES_SDK_HTTP_PORT.
 * Returns 1 when the variable contains a valid port, 0 when it is unset or empty
 * (not running under Agones), -1 after logging when it is not 1..65535.
 */
int tw_agones_options_from_env(struct tw_agones_options *opt)
    __attribute__((warn_unused_result));

struct tw_agones;

/*
 * Starts the request thread. Call from the main thread before other
 * threads use libcurl, because it runs curl_global_init. Returns TW_OK
 * with *out set, or -1 after logging.
 */
int tw_agones_start(const struct tw_agones_options *opt,
                    struct tw_agones **out) __attribute__((warn_unused_result));

/* Requests POST /ready; later calls do nothing. Never blocks. */
void tw_agones_ready(struct tw_agones *a);

/* Records that the tick loop is alive, for stall_ms. Never blocks. */
void tw_agones_heartbeat(struct tw_agones *a);

/* Requests POST /shutdown and stops Health requests. Never blocks. */
void tw_agones_shutdown(struct tw_agones *a);

/*
 * Joins the thread and frees a. A requested shutdown is sent first, which
 * can take up to TW_AGONES_SHUTDOWN_ATTEMPTS * (timeout_ms + retry_ms).
 */
void tw_agones_stop(struct tw_agones *a);

#endif
