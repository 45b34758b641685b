/* probe.h - readiness by TCP connect: try a set of candidate addresses
 * every interval, report the first that accepts.
 *
 * Each candidate has at most one connect in flight (given up after
 * PROBE_CONNECT_TIMEOUT_MS: a SYN nobody answers); a new round starts
 * every interval, the first one at once. The callback runs from the loop,
 * never inside probe_start(); it may call probe_stop() or probe_start().
 */
#ifndef GW_PROBE_H
#define GW_PROBE_H

#include <stddef.h>

#include "core/addr.h"

#define PROBE_CONNECT_TIMEOUT_MS 1000
#define PROBE_CANDIDATES_MAX 32 /* more are not probed (the first ones are) */

struct event_base;
struct probe;

/* addr accepted a connection (the probe goes on until stopped). */
typedef void (*probe_cb)(void *arg, const struct gw_addr *addr);

struct probe *probe_create(struct event_base *base, probe_cb cb, void *arg);

/* (Re)start probing these addresses (copied) every interval_ms. */
void probe_start(struct probe *pr, const struct gw_addr *addrs, size_t n,
		 unsigned interval_ms);

/* Stop: close every connect in flight; no callback after this. */
void probe_stop(struct probe *pr);

/* Connects attempted since probe_create. */
unsigned probe_attempts(const struct probe *pr);

/* NULL is fine. */
void probe_destroy(struct probe *pr);

#endif
