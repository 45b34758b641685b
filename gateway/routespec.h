/* routespec.h - what the fields of a route hash may hold (docs/redis.md).
 *
 * The checks shared by routesync (what the gateway accepts from Redis) and
 * gatewayctl (what it writes), so the two cannot drift apart. Pure
 * functions over byte strings (not NUL-terminated), no allocation.
 *
 * Why strict: namespace, deployment and service go unescaped into
 * Kubernetes API paths (activator/kube.c), so "../.." or "a/b" there would
 * reach other API objects; numbers parsed leniently (" 8080x", "-1") would
 * turn typos into wrong targets.
 */
#ifndef GW_ROUTESPEC_H
#define GW_ROUTESPEC_H

#include <stdbool.h>
#include <stddef.h>

#define ROUTESPEC_PROJECT_MAX 63    /* project id length */
#define ROUTESPEC_IDLE_MAX 2592000u /* idle_timeout: 30 days, in seconds */
#define ROUTESPEC_UPSTREAMS_MAX 64  /* addresses in one upstream field */

/* A project id: 1-63 of [a-z0-9_-] (a host's first label, which is what
 * the id defaults to). It names Redis keys and log fields. */
bool routespec_project(const char *s, size_t len);

/* A decimal number: digits only (no sign, space or leading '+'), at most
 * 10 of them, within [min, max]. */
bool routespec_uint(const char *s, size_t len, unsigned long min,
		    unsigned long max, unsigned long *out);

#endif
