/* routes.h - which app a host name belongs to.
 *
 * Two layers: static routes from the config file (fixed for the process's
 * life) and dynamic ones mirrored from Redis by routesync. A lookup tries
 * the dynamic layer first. Lookups are synchronous and local: the table is
 * a full replica, kept current by pub/sub invalidation.
 *
 * A struct route is owned by the table and may be replaced or freed by the
 * next event-loop callback: callers copy what they need (the chosen
 * address, the project) before going asynchronous.
 */
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"

struct config_route;

#define ROUTE_PROJECT_MAX 64

struct route {
	char *host;              /* normalised host name (routing key) */
	char project[ROUTE_PROJECT_MAX]; /* project id (first host label) */
	bool private_;           /* needs an authorized session */
	struct gw_addr *addrs;   /* static upstream endpoints (may be 0) */
	size_t naddrs;
	size_t rr_next;          /* round-robin cursor */
	/* Kubernetes target, for the activator (empty when unset). */
	char *namespace_, *deployment, *service;
	unsigned port;
	unsigned idle_timeout_s;
	unsigned max_replicas;   /* Kubernetes: cap on scale-ups; 0 = default */
	char *exec_command;      /* [exec] app started on demand, or NULL */
	uint64_t gen;            /* resync generation that last saw it */
	void *stats_row;         /* the proxy's counters for project, cached
				    by proxy_stats.c (owned by the stats
				    registry, not the route) */
	struct route *next;      /* hash chain */
};

struct routes;

/* Build a table holding the config routes (copied), public, no dynamic
 * layer yet. Never NULL (aborts on OOM). */
struct routes *routes_create_static(const struct config_route *r, size_t n);

/* Reload: the config routes become r (copied); the dynamic layer is not
 * touched. Routes of the old static layer are freed (see above: nobody
 * keeps one past a callback). */
void routes_replace_static(struct routes *rt, const struct config_route *r,
			   size_t n);

/* Look up a normalised host (as hostname_normalize writes it): dynamic
 * layer first, then static. NULL when no app has this host. */
struct route *routes_lookup(struct routes *rt, const char *host);

/* The first route naming project (dynamic layer first), or NULL. A scan
 * of the whole table: for rare questions (a scale-down, a pre-wake),
 * never on the request path. */
struct route *routes_find_project(struct routes *rt, const char *project);

/* Next upstream endpoint of a route, round robin; NULL if it has none. */
const struct gw_addr *route_pick(struct route *r);

/* A new, empty dynamic route for host (public, no addresses). */
struct route *route_new(const char *host);
void route_free(struct route *r);

/* Insert or replace the dynamic route for r->host; takes ownership. The
 * route is stamped with the current generation. */
void routes_put(struct routes *rt, struct route *r);
/* Remove the dynamic route for host, if any. */
void routes_remove(struct routes *rt, const char *host);

/* Full resync: routes_sync_begin() starts a generation; routes put after it
 * are kept, and routes_sync_end() drops every dynamic route the resync did
 * not see. Returns the number dropped. */
void routes_sync_begin(struct routes *rt);
size_t routes_sync_end(struct routes *rt);
size_t routes_dynamic_count(const struct routes *rt);

void routes_destroy(struct routes *rt);

#endif
