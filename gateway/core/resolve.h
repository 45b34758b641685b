/* resolve.h - non-blocking host name resolution (libevent's evdns) for the
 * few outbound connections configured by name: Redis in Kubernetes is
 * "redis.gateway.svc:6379", not an IP.
 *
 * getaddrinfo() blocks and so does hiredis's own connect-by-name, so a
 * name is resolved here first and the connection is made to the numeric
 * result. /etc/resolv.conf (nameservers, search, ndots) and /etc/hosts are
 * read once, when the resolver is created (start-up, not the loop).
 * Callers resolve again before every reconnect, so a Service that moves
 * is followed.
 *
 * Phase B wiring (gateway/redis.c): create one resolver per worker next to
 * the Redis connections; in start_connect(), when the configured address is
 * a name, call resolve_start() and connect from the callback; cancel the
 * request in rconn_destroy(). Config: [redis] address then accepts
 * NAME:PORT (gw_addr_parse keeps refusing names everywhere else).
 */
#ifndef GW_CORE_RESOLVE_H
#define GW_CORE_RESOLVE_H

#include "core/addr.h"

struct event_base;
struct resolver;
struct resolve_req;

/* addr: the first address found (port filled in), or NULL with err (a
 * static string) on failure. Valid during the call only. */
typedef void (*resolve_cb)(void *arg, const struct gw_addr *addr,
			   const char *err);

/* timeout_ms bounds each query (one retry). Returns NULL with *err when
 * the resolver cannot be set up. */
struct resolver *resolver_create(struct event_base *base, unsigned timeout_ms,
				 const char **err);
/* Pending requests get their callback now, with "resolver shut down".
 * Only when the loop will not run again (worker shutdown): libevent would
 * otherwise still deliver those lookups. One resolver per worker, for the
 * worker's whole life. NULL is fine. */
void resolver_destroy(struct resolver *r);

/* Resolve host (a name, or a numeric address) for port. cb is called
 * exactly once unless resolve_cancel() comes first; it may be called
 * before resolve_start returns (numeric address, /etc/hosts), which then
 * returns NULL. Otherwise returns the handle for resolve_cancel. */
struct resolve_req *resolve_start(struct resolver *r, const char *host,
				  unsigned port, resolve_cb cb, void *arg);
/* cb will not be called. */
void resolve_cancel(struct resolve_req *q);

#endif
