/* routes.h - which app a host name belongs to.
 *
 * For now the table is built from the config file's [routes] (and the
 * command line); the Redis-backed table (issue #3) plugs in behind the same
 * lookup. A struct route lives as long as the table that returned it; the
 * Redis version will hand out references instead.
 */
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include <stddef.h>

#include "core/addr.h"

struct config_route;

struct route {
	char *host;              /* normalised host name (routing key) */
	struct gw_addr *addrs;   /* upstream endpoints (>= 1) */
	size_t naddrs;
	size_t rr_next;          /* round-robin cursor */
};

struct routes;

/* Build a table from config routes (copied). Never NULL (aborts on OOM). */
struct routes *routes_create_static(const struct config_route *r, size_t n);

/* Look up a normalised host (as hostname_normalize writes it). Returns the
 * route, owned by the table, or NULL when no app has this host. */
struct route *routes_lookup(struct routes *rt, const char *host);

/* Next upstream endpoint of a route, round robin. */
const struct gw_addr *route_pick(struct route *r);

void routes_destroy(struct routes *rt);

#endif
