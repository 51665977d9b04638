/*
 * tickwire-server's network loop: the ENet host, sessions, dispatch of
 * messages to handlers, and the fixed tick that drives the match. Runs on
 * one thread; nothing here blocks except the wait for the next packet or
 * deadline.
 */
#ifndef TW_SERVER_H
#define TW_SERVER_H

#include "config.h"
#include "stats.h"

#include <enet/enet.h>
#include <stdint.h>

#include <signal.h>

struct tw_server;

/*
 * Creates the server: loads the match key, binds the ENet host. Returns
 * NULL after logging one line naming what failed and what to do.
 */
struct tw_server *tw_server_create(const struct tw_config *cfg);

/*
 * Runs ticks until *stop becomes non-zero, then disconnects every peer
 * with reason "shutdown" and flushes. *reopen_log requests a log reopen.
 * Returns 0 on a clean stop.
 */
int tw_server_run(struct tw_server *s, volatile sig_atomic_t *stop,
                  volatile sig_atomic_t *reopen_log);

void tw_server_destroy(struct tw_server *s);

/*
 * Hooks for tests and fuzzers, which drive the server without a network:
 * tw_server_dispatch handles one ENet event as if ENet had returned it
 * (a RECEIVE event's packet is destroyed), and tw_server_tick runs one
 * tick whose deadline was `deadline` (monotonic ns).
 */
ENetHost *tw_server_host(struct tw_server *s);
void tw_server_dispatch(struct tw_server *s, ENetEvent *ev, uint64_t now);
void tw_server_tick(struct tw_server *s, uint64_t deadline);

/* Returns the server's counters, owned and updated by the server. */
const struct tw_stats *tw_server_stats(const struct tw_server *s);

#endif
