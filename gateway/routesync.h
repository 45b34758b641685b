/* routesync.h - mirror the Redis routing table into struct routes and keep
 * it current (schema: docs/redis.md).
 *
 * Two connections: commands, and a subscriber on gw:events. Once both are
 * up, a full resync (SMEMBERS gw:routes, then HGETALL per host) replaces
 * the dynamic layer; afterwards each "route <host>" event re-reads one
 * host. The subscription is made before the resync starts, so no change
 * made during the resync is missed; replies on one connection arrive in
 * order, so the last read wins.
 *
 * While either connection is down the table is kept as it was
 * (stale-if-error) and routesync_authoritative() is false: a host missing
 * from the table may exist, so the proxy answers 503, not 404. A resync
 * that Redis answers with an error (gw:routes not a set, LOADING, ...) is
 * retried every reconnect_max, the table kept meanwhile.
 *
 * What Redis holds is checked (routespec.h): a route hash with a field the
 * gateway must not act on, or a key that is not a hash, is refused: logged
 * and not served, exactly like a host without a route. Malformed events
 * are logged and ignored; warnings from both are rate-limited, since
 * anyone who may PUBLISH could otherwise fill the log.
 */
#ifndef GW_ROUTESYNC_H
#define GW_ROUTESYNC_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct gw_config;
struct routes;
struct rconn;
struct resolver;
struct stats;
struct routesync;

struct routesync_params {
	struct event_base *base;
	const struct gw_config *cfg; /* redis_addr must be set; read during
					routesync_create only */
	struct resolver *resolver;   /* for a redis_addr that is a name */
	struct routes *routes;       /* updated in place; not owned */
	/* Other events ("session <sid>", "members <project>"): kind and
	 * name, NUL-terminated, valid during the call. Returns false for an
	 * event it does not know (routesync logs it, rate-limited). */
	bool (*on_event)(void *arg, const char *kind, const char *name);
	/* The table became authoritative (true) or stopped being (false):
	 * while false, invalidations may be missed, so no cache is safe. */
	void (*on_sync)(void *arg, bool in_sync);
	void *arg;
};

struct routesync *routesync_create(const struct routesync_params *p);

/* True when the table is a complete, current copy of Redis's. */
bool routesync_authoritative(const struct routesync *rs);

/* The command connection, for other readers (authorization). */
struct rconn *routesync_conn(struct routesync *rs);

/* Register both connections' counters (redis.h) and the table's:
 * gateway_routes_redis (routes mirrored), gateway_routes_in_sync,
 * gateway_routes_resyncs_total, gateway_routes_refused_total. */
void routesync_stats_register(struct routesync *rs, struct stats *s);

void routesync_destroy(struct routesync *rs);

#endif
