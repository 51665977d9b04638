/*
 * Drives agones.c the way the server does: Ready once, heartbeats from a
 * fake tick loop, then Shutdown and stop. The SDK port comes from
 * AGONES_SDK_HTTP_PORT.
 *
 * usage: agones_driver HEALTH_MS RUN_MS RETRY_MS [STALL_AFTER_MS STALL_MS]
 *   With STALL_AFTER_MS, heartbeats stop after that many ms of the run and
 *   Health requests pause once they are STALL_MS old.
 */
#include "agones.h"
#include "clock.h"
#include "log.h"
#include "protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint32_t parse_ms(const char *text)
{
    char *end = NULL;
    unsigned long v = strtoul(text, &end, 10);
    if (*end || v > 600000) {
        fprintf(stderr, "agones_driver: invalid duration \"%s\" (ms)\n", text);
        exit(2);
    }
    return (uint32_t)v;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: agones_driver HEALTH_MS RUN_MS RETRY_MS "
                        "[STALL_AFTER_MS STALL_MS]\n");
        return 2;
    }
    struct tw_agones_options opt;
    int found = tw_agones_options_from_env(&opt);
    if (found != 1) {
        fprintf(stderr, "agones_driver: AGONES_SDK_HTTP_PORT unset or "
                        "invalid\n");
        return 2;
    }
    opt.health_interval_ms = parse_ms(argv[1]);
    uint32_t run_ms = parse_ms(argv[2]);
    opt.retry_ms = parse_ms(argv[3]);
    uint32_t stall_after_ms = run_ms;
    if (argc == 6) {
        stall_after_ms = parse_ms(argv[4]);
        opt.stall_ms = parse_ms(argv[5]);
    }

    struct tw_agones *agones = NULL;
    if (tw_agones_start(&opt, &agones) != TW_OK)
        return 1;
    tw_agones_ready(agones);

    /* A stand-in for the tick loop: 100 Hz heartbeats. */
    uint64_t start = tw_clock_mono_ns();
    for (;;) {
        uint64_t elapsed_ms = (tw_clock_mono_ns() - start) / 1000000u;
        if (elapsed_ms >= run_ms)
            break;
        if (elapsed_ms < stall_after_ms)
            tw_agones_heartbeat(agones);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    tw_agones_shutdown(agones);
    tw_agones_stop(agones);
    tw_log_close();
    return 0;
}
