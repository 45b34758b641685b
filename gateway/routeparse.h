/* routeparse.h - a route hash from Redis (docs/redis.md) into a struct
 * route: what routesync accepts, as a pure function (no loop, no I/O, no
 * logging). Split out of routesync.c so that the fuzz target in
 * tests/fuzz/ drives exactly the code that reads Redis's replies.
 *
 * Checks (routespec.h, core/dnsname.h): the project id, the Kubernetes
 * names (namespace and service DNS-1123 labels, deployment a subdomain),
 * numbers in their ranges, every upstream address numeric with a port. A
 * field that fails refuses the whole route; unknown fields are ignored
 * (newer writers may add some). Without a visibility field, or with any
 * value but "public", the route is private (fail closed).
 */
#ifndef GW_ROUTEPARSE_H
#define GW_ROUTEPARSE_H

#include <stddef.h>

#include "core/str.h"

struct redisReply;
struct route;

/* A route for host (a normalised routing key) from nkv slices holding
 * field, value, field, value, ... (nkv even; a field that is not a string
 * in Redis is an empty slice, and never matches). Returns a new route the
 * caller owns (routes_put, or route_free), or NULL with the reason in err
 * (size errlen). */
struct route *routeparse(const char *host, const struct gw_str *kv, size_t nkv,
			 char *err, size_t errlen);

/* The same from an HGETALL reply (a flat field/value array; pairs whose
 * value is not a string are skipped). r must be an array. */
struct route *routeparse_hgetall(const char *host, const struct redisReply *r,
				 char *err, size_t errlen);

/* One message on the events channel (docs/redis.md): "<kind> <name>". */
enum routeparse_event_kind {
	ROUTEPARSE_EVENT_MALFORMED = 0, /* no space, empty or oversized parts, NUL */
	ROUTEPARSE_EVENT_ROUTE,         /* "route <host>": host as sent */
	ROUTEPARSE_EVENT_OTHER,         /* any other kind: kind and name copied */
};
struct routeparse_event {
	struct gw_str host; /* ROUTE: the bytes after "route " (into msg) */
	char kind[32];      /* OTHER: NUL-terminated, 1-31 bytes */
	char name[512];     /* OTHER: NUL-terminated, 1-511 bytes */
	char shown[32];     /* always: the kind, escaped and cut, for a log line */
};
enum routeparse_event_kind routeparse_event(const char *msg, size_t len,
					    struct routeparse_event *ev);

#endif
