/* upstream.h - connections to apps: non-blocking connect and a keep-alive
 * pool per upstream address.
 *
 * Ownership: a bufferevent returned by upstream_connect() or
 * upstream_pool_take() belongs to the caller, who either frees it or gives
 * it back with upstream_pool_put(). The pool owns idle connections; it
 * closes one when the app closes it or sends unsolicited bytes, after the
 * idle timeout, or when the address has more than max_idle idle ones:
 * at once when trim_delay is 0, otherwise the least recently used excess
 * is closed trim_delay after it appeared (HAProxy's pool-purge-delay).
 * The grace keeps a burst's connections for the next burst: with more
 * requests in flight than max_idle, closing at once made a new connection
 * for up to half of all requests. The excess is bounded by the
 * connections that were in use, i.e. by the client connections.
 */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include <stdint.h>

#include "core/addr.h"

struct event_base;
struct bufferevent;
struct upstream_pool;

struct upstream_stats {
	uint64_t connects; /* new connections started */
	uint64_t reuses;   /* requests sent on a pooled connection */
	uint64_t idle;     /* idle connections in the pool now */
	uint64_t trimmed;  /* idle connections closed as excess */
};

/* max_idle: idle connections kept per address (0 disables pooling);
 * trim_delay_ms: how long an excess over max_idle may stay (0: none). */
struct upstream_pool *upstream_pool_create(struct event_base *base,
					   unsigned max_idle,
					   unsigned idle_timeout_ms,
					   unsigned trim_delay_ms);

/* An idle connection to addr, or NULL. Callbacks are cleared; the pool's
 * idle read timeout is still set, so the caller sets its own timeouts
 * before it returns to the loop. Reading and writing are enabled (EV_WRITE
 * armed only once output is queued); watermarks are as its last user set
 * them. */
struct bufferevent *upstream_pool_take(struct upstream_pool *pool,
				       const struct gw_addr *addr);

/* Give back a connection whose last exchange finished cleanly (nothing
 * pending in either direction). Takes ownership in every case. */
void upstream_pool_put(struct upstream_pool *pool, const struct gw_addr *addr,
		       struct bufferevent *bev);

/* Start a non-blocking connect (TCP_NODELAY). Returns a bufferevent that
 * reports BEV_EVENT_CONNECTED or an error through the callbacks the caller
 * sets next, or NULL with *err. *local tells whose failure that was: true
 * when this process ran out (EMFILE, ENFILE, ENOBUFS, ENOMEM: no socket
 * could be made, nothing reached the app), false when the connect itself
 * failed at once (ENETUNREACH...). */
struct bufferevent *upstream_connect(struct upstream_pool *pool,
				     const struct gw_addr *addr,
				     const char **err, bool *local);

void upstream_pool_stats(const struct upstream_pool *pool,
			 struct upstream_stats *out);

/* Close every idle connection and free the pool; NULL is fine. */
void upstream_pool_destroy(struct upstream_pool *pool);

#endif
