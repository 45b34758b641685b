/* auth.h - may this session open this private project?
 *
 * The platform's session cookie names a session in Redis
 * (gw:session:<sid>: user, expires); the user may open a private project
 * when they are in gw:members:<project> (docs/redis.md). A session without
 * a valid `expires` (unix seconds) is no session. Decisions are cached per
 * (session, project) for at most cache_ttl, never past the session's
 * expiry, and dropped at once by "session <sid>" and "members <project>"
 * events (authcache.h: O(decisions dropped)). A check that was in flight
 * when any invalidation arrived, or when the cache was switched, answers
 * its request but is not cached: its Redis reads may predate the change.
 * Redis unreachable means AUTH_UNAVAILABLE: private projects fail closed.
 *
 * Session ids are secrets: they are never logged, and never leave this
 * module except as Redis keys.
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

struct gw_config;
struct http1_head;
struct rconn;
struct auth;
struct auth_req;

enum auth_result {
	AUTH_ALLOW,       /* member of the project */
	AUTH_NO_SESSION,  /* no cookie, unknown or expired session */
	AUTH_FORBIDDEN,   /* a valid user, not a member */
	AUTH_UNAVAILABLE, /* Redis cannot be asked */
	AUTH_PENDING,     /* asked Redis; the callback will tell */
};

typedef void (*auth_cb)(void *arg, enum auth_result res);

/* conn: the Redis command connection (may be down); not owned. */
struct auth *auth_create(const struct gw_config *cfg, struct rconn *conn);

/* Decide for session id sid (empty slice: no cookie) and project. Returns
 * the decision, or AUTH_PENDING with *req set: cb is then called exactly
 * once, later, unless auth_cancel(*req) comes first. */
enum auth_result auth_check(struct auth *a, struct gw_str sid,
			    const char *project, auth_cb cb, void *arg,
			    struct auth_req **req);

/* Forget a pending check: its callback will not run. NULL is fine. */
void auth_cancel(struct auth_req *req);

/* Caching is safe only while invalidations arrive: off drops every
 * cached decision and caches nothing until switched on again. */
void auth_set_cache(struct auth *a, bool on);

/* Invalidation events from the events channel ("session", "members").
 * Returns false for any other kind. */
bool auth_event(struct auth *a, const char *kind, const char *name);

/* The value of the first cookie called `name` in the request's Cookie
 * fields (a slice into the head), or an empty slice. */
struct gw_str auth_cookie_value(const struct http1_head *req,
				const char *name);

/* Told of every membership check that allowed user (len bytes) into
 * project (at most once per cache_ttl per session and project): the
 * fleet remembers a user's last project for pre-wake. NULL: nobody. */
typedef void (*auth_allow_cb)(void *arg, const char *user, size_t len,
			      const char *project);
void auth_set_allow_cb(struct auth *a, auth_allow_cb cb, void *arg);

/* Reload: decisions from now on use cfg ([auth] cache_ttl; cache_max
 * needs a restart). cfg must outlive its use: until the next call or
 * auth_destroy. NULL a is fine. */
void auth_set_config(struct auth *a, const struct gw_config *cfg);

void auth_destroy(struct auth *a);

#endif
