/* auth_int.h - what auth.c reads from Redis's replies, as pure functions:
 * private to auth.c and the fuzz target in tests/fuzz/ that drives them
 * with hostile replies. */
#ifndef GW_AUTH_INT_H
#define GW_AUTH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"

struct redisReply;

#define AUTH_USER_MAX 256 /* bytes of a user id */

enum auth_session_verdict {
	AUTH_SESSION_VALID = 0,   /* a user and an expiry in the future */
	AUTH_SESSION_NONE,        /* unknown session, or one that is over */
	AUTH_SESSION_BAD_EXPIRES, /* a user, but no valid expires (warned) */
	AUTH_SESSION_UNAVAILABLE, /* not an answer to HMGET user expires */
};

struct auth_session {
	const char *user;   /* into the reply: user_len bytes, 1-AUTH_USER_MAX */
	size_t user_len;
	uint64_t expires_s; /* unix seconds, > now_s */
};

/* The reply to HMGET gw:session:<sid> user expires (NULL: no reply), at
 * wall time now_s. *out is set for AUTH_SESSION_VALID only. */
enum auth_session_verdict auth_session_reply(const struct redisReply *reply,
					     uint64_t now_s,
					     struct auth_session *out);

/* The reply to SISMEMBER gw:members:<project> <user>: AUTH_ALLOW,
 * AUTH_FORBIDDEN or AUTH_UNAVAILABLE. */
enum auth_result auth_member_reply(const struct redisReply *reply);

#endif
