/*
 * Health and metrics endpoint, served by libmicrohttpd on its own thread
 * from the newest tw_publish snapshot. It never touches the tick thread's
 * state directly.
 *
 *   GET /healthz  JSON summary; 200 when ok, 503 when degraded
 *   GET /metrics  Prometheus text format 0.0.4
 *
 * HEAD is accepted wherever GET is; other methods get 405, other paths 404.
 */
#ifndef TW_HTTP_H
#define TW_HTTP_H

#include "config.h"
#include "publish.h"

#include <stddef.h>
#include <stdint.h>

struct tw_http_options {
    const char *host;  /* numeric IPv4 or IPv6 address to bind */
    uint16_t port;     /* 0: the kernel picks a free port */
    uint32_t overrun_degraded;      /* 0: overruns never degrade health */
    uint32_t store_lag_degraded_ms; /* 0: store lag never degrades health */
    uint32_t stale_degraded_ms;     /* 0: a stale snapshot never degrades */
};

/* Default stale limit: ten missed publications at one per second. */
#define TW_HTTP_STALE_DEGRADED_MS 10000u

/*
 * Fills opt from cfg->http. opt->host points into cfg, which must outlive
 * the server. cfg->http.port == 0 means the endpoint is off: the caller
 * should not start it.
 */
void tw_http_options_from_config(struct tw_http_options *opt,
                                 const struct tw_config *cfg);

struct tw_http;

/*
 * Binds and starts serving. pub must outlive the server. Returns TW_OK
 * with *out set, or -1 after logging why (bad address, bind failure).
 */
int tw_http_start(const struct tw_http_options *opt, struct tw_publisher *pub,
                  struct tw_http **out) __attribute__((warn_unused_result));

/* Returns the bound TCP port, useful when opt->port was 0. */
uint16_t tw_http_port(const struct tw_http *http);

/* Stops the thread, closes the socket and frees http; NULL is a no-op. */
void tw_http_stop(struct tw_http *http);

/*
 * Renders the bodies from one snapshot; exposed for tests. Each returns a
 * malloc'd NUL-terminated string (length in *len), or NULL when out of
 * memory. now_ns is tw_clock_mono_ns() at the time of the request.
 */
char *tw_http_render_metrics(const struct tw_published *p, uint64_t now_ns,
                             size_t *len) __attribute__((warn_unused_result));
char *tw_http_render_health(const struct tw_published *p, bool published,
                            const struct tw_http_options *opt, uint64_t now_ns,
                            int *status, size_t *len)
    __attribute__((warn_unused_result));

#endif
