/* auth.c - session -> user -> membership, with a short decision cache. */
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "auth.h"
#include "auth_int.h"
#include "authcache.h"
#include "config.h"
#include "http1.h"
#include "redis.h"
#include "routes.h"
#include "routespec.h"
#include "core/log.h"
#include "core/compat.h"

#define SID_MAX 256
#define USER_MAX AUTH_USER_MAX

struct auth {
	const struct gw_config *cfg;
	struct rconn *conn;
	struct authcache *cache;
	/* Bumped by every invalidation event and every switch of the cache:
	 * a decision whose Redis reads may predate one is not cached. */
	uint64_t epoch;
	struct gw_ratelimit rl; /* warnings caused by session data */
	bool cache_on;
	auth_allow_cb on_allow;   /* pre-wake's memory, or NULL */
	void *allow_arg;
};

struct auth_req {
	struct auth *a;
	struct rcmd *cmd;
	auth_cb cb;
	void *arg;
	uint64_t epoch;              /* auth.epoch when the check began */
	uint64_t session_expires_ms; /* monotonic */
	char user[USER_MAX + 1];     /* once the session is read */
	size_t user_len;
	char project[ROUTE_PROJECT_MAX];
	char sid[SID_MAX + 1];
};

static void auth_warn(struct auth *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void auth_warn(struct auth *a, const char *fmt, ...)
{
	unsigned dropped = 0;
	if (GW_LOG_WARN > gw_log_threshold ||
	    !gw_ratelimit_allow(&a->rl, gw_now_ms(), &dropped))
		return;
	char line[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	gw_log(GW_LOG_WARN, "auth", "%s%s", line,
	       dropped ? " (and similar lines suppressed)" : "");
}

static void cache_put(struct auth_req *r, enum auth_result res)
{
	struct auth *a = r->a;
	if (a->cfg->auth_cache_ttl_ms == 0 || !a->cache_on ||
	    r->epoch != a->epoch)
		return;
	uint64_t exp = gw_now_ms() + a->cfg->auth_cache_ttl_ms;
	if (r->session_expires_ms && r->session_expires_ms < exp)
		exp = r->session_expires_ms;
	authcache_put(a->cache, r->sid, r->project, (int)res, exp);
}

static uint64_t random_seed(void)
{
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = gw_wall_ms() ^ ((uint64_t)getpid() << 32) ^
		       (uint64_t)(uintptr_t)&seed;
	return seed;
}

void auth_set_config(struct auth *a, const struct gw_config *cfg)
{
	if (a)
		a->cfg = cfg;
}

struct auth *auth_create(const struct gw_config *cfg, struct rconn *conn)
{
	struct auth *a = gw_xcalloc(1, sizeof(*a));
	a->cfg = cfg;
	a->conn = conn;
	a->cache = authcache_create(cfg->auth_cache_max, random_seed());
	a->rl.interval_ms = 10000;
	a->rl.burst = 10;
	return a;
}

/* A session id worth asking Redis about: bounded, cookie-octet safe. */
static bool sid_ok(struct gw_str sid)
{
	if (sid.len == 0 || sid.len > SID_MAX)
		return false;
	for (size_t i = 0; i < sid.len; i++) {
		unsigned char ch = (unsigned char)sid.p[i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == ',' ||
		    ch == ';' || ch == '\\')
			return false;
	}
	return true;
}

static void finish(struct auth_req *r, enum auth_result res)
{
	if (res != AUTH_UNAVAILABLE)
		cache_put(r, res);
	auth_cb cb = r->cb;
	void *arg = r->arg;
	explicit_bzero(r->sid, sizeof(r->sid));
	free(r);
	cb(arg, res);
}

enum auth_result auth_member_reply(const redisReply *reply)
{
	if (!reply || reply->type != REDIS_REPLY_INTEGER)
		return AUTH_UNAVAILABLE;
	return reply->integer == 1 ? AUTH_ALLOW : AUTH_FORBIDDEN;
}

static void member_cb(void *arg, redisReply *reply)
{
	struct auth_req *r = arg;
	enum auth_result res = auth_member_reply(reply);
	if (res == AUTH_UNAVAILABLE) {
		if (reply && reply->type == REDIS_REPLY_ERROR)
			auth_warn(r->a, "membership of %s: %s", r->project,
				  reply->str);
		finish(r, AUTH_UNAVAILABLE);
		return;
	}
	if (res == AUTH_ALLOW && r->a->on_allow)
		r->a->on_allow(r->a->allow_arg, r->user, r->user_len, r->project);
	finish(r, res);
}

enum auth_session_verdict auth_session_reply(const redisReply *reply,
					     uint64_t now_s,
					     struct auth_session *out)
{
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
		return AUTH_SESSION_UNAVAILABLE;
	const redisReply *user = reply->element[0], *exp = reply->element[1];
	if (user->type != REDIS_REPLY_STRING || user->len == 0 ||
	    user->len > USER_MAX)
		return AUTH_SESSION_NONE;
	/* expires (unix seconds) is required: a hash without it would be
	 * good for as long as its key lives, which may be forever (no TTL,
	 * or a PERSIST by mistake). A session past it is over even if the
	 * key's TTL has not fired yet. */
	unsigned long secs = 0;
	if (exp->type != REDIS_REPLY_STRING ||
	    !routespec_uint(exp->str, exp->len, 1, 9999999999ul, &secs))
		return AUTH_SESSION_BAD_EXPIRES;
	if (secs <= now_s)
		return AUTH_SESSION_NONE;
	out->user = user->str;
	out->user_len = user->len;
	out->expires_s = secs;
	return AUTH_SESSION_VALID;
}

static void session_cb(void *arg, redisReply *reply)
{
	struct auth_req *r = arg;
	uint64_t now_s = gw_wall_ms() / 1000;
	struct auth_session ses;
	switch (auth_session_reply(reply, now_s, &ses)) {
	case AUTH_SESSION_UNAVAILABLE:
		if (reply && reply->type == REDIS_REPLY_ERROR)
			auth_warn(r->a, "session lookup: %s", reply->str);
		finish(r, AUTH_UNAVAILABLE);
		return;
	case AUTH_SESSION_BAD_EXPIRES:
		auth_warn(r->a, "a session without a valid 'expires' field "
				"was refused (docs/redis.md)");
		finish(r, AUTH_NO_SESSION);
		return;
	case AUTH_SESSION_NONE:
		finish(r, AUTH_NO_SESSION);
		return;
	case AUTH_SESSION_VALID:
		break;
	}
	r->session_expires_ms = gw_now_ms() + (ses.expires_s - now_s) * 1000;
	memcpy(r->user, ses.user, ses.user_len);
	r->user_len = ses.user_len;
	char key[32 + ROUTE_PROJECT_MAX];
	snprintf(key, sizeof(key), "gw:members:%s", r->project);
	const char *argv[] = {"SISMEMBER", key, r->user};
	size_t lens[] = {9, strlen(key), r->user_len};
	r->cmd = rconn_command(r->a->conn, member_cb, r, 3, argv, lens);
	if (!r->cmd)
		finish(r, AUTH_UNAVAILABLE);
}

enum auth_result auth_check(struct auth *a, struct gw_str sid,
			    const char *project, auth_cb cb, void *arg,
			    struct auth_req **out)
{
	*out = NULL;
	if (!sid_ok(sid))
		return AUTH_NO_SESSION;
	/* Redis down: fail closed, cache or not (a revocation published
	 * meanwhile would be missed). */
	if (!rconn_up(a->conn))
		return AUTH_UNAVAILABLE;
	char sidz[SID_MAX + 1];
	memcpy(sidz, sid.p, sid.len);
	sidz[sid.len] = '\0';
	int res;
	if (a->cache_on &&
	    authcache_get(a->cache, sidz, project, gw_now_ms(), &res)) {
		explicit_bzero(sidz, sizeof(sidz));
		return (enum auth_result)res;
	}
	struct auth_req *r = gw_xcalloc(1, sizeof(*r));
	r->a = a;
	r->epoch = a->epoch;
	r->cb = cb;
	r->arg = arg;
	memcpy(r->sid, sidz, sid.len + 1);
	explicit_bzero(sidz, sizeof(sidz));
	snprintf(r->project, sizeof(r->project), "%s", project);
	char key[16 + SID_MAX];
	snprintf(key, sizeof(key), "gw:session:%s", r->sid);
	r->cmd = rconn_commandv(a->conn, session_cb, r, "HMGET", key, "user",
				"expires", NULL);
	explicit_bzero(key, sizeof(key));
	if (!r->cmd) {
		free(r);
		return AUTH_UNAVAILABLE;
	}
	*out = r;
	return AUTH_PENDING;
}

void auth_cancel(struct auth_req *r)
{
	if (!r)
		return;
	rcmd_cancel(r->cmd);
	explicit_bzero(r->sid, sizeof(r->sid));
	free(r);
}

void auth_set_allow_cb(struct auth *a, auth_allow_cb cb, void *arg)
{
	a->on_allow = cb;
	a->allow_arg = arg;
}

void auth_set_cache(struct auth *a, bool on)
{
	a->epoch++;
	a->cache_on = on;
	if (!on)
		authcache_clear(a->cache);
}

bool auth_event(struct auth *a, const char *kind, const char *name)
{
	size_t n;
	if (strcmp(kind, "session") == 0)
		n = authcache_drop_session(a->cache, name);
	else if (strcmp(kind, "members") == 0)
		n = authcache_drop_project(a->cache, name);
	else
		return false;
	/* Even with nothing cached: a check in flight may have read Redis
	 * before the change, and must not cache what it read. */
	a->epoch++;
	gw_log(GW_LOG_DEBUG, "auth", "%s event: %zu cached decision(s) dropped",
	       kind, n);
	return true;
}

struct gw_str auth_cookie_value(const struct http1_head *req, const char *name)
{
	size_t nlen = strlen(name);
	for (size_t i = 0; i < req->nhdrs; i++) {
		const struct http1_header *h = &req->hdrs[i];
		if (!gw_str_ieq_cstr(h->name, "Cookie"))
			continue;
		const char *p = h->value.p, *end = p + h->value.len;
		while (p < end) {
			const char *semi = memchr(p, ';', (size_t)(end - p));
			const char *stop = semi ? semi : end;
			struct gw_str pair =
				gw_str_trim(gw_str_make(p, (size_t)(stop - p)));
			const char *eq =
				pair.len ? memchr(pair.p, '=', pair.len) : NULL;
			if (eq) {
				struct gw_str k = gw_str_trim(gw_str_make(
					pair.p, (size_t)(eq - pair.p)));
				struct gw_str v = gw_str_trim(gw_str_make(
					eq + 1,
					(size_t)(pair.p + pair.len - eq - 1)));
				/* RFC 6265: an optionally quoted value. */
				if (v.len >= 2 && v.p[0] == '"' &&
				    v.p[v.len - 1] == '"')
					v = gw_str_make(v.p + 1, v.len - 2);
				if (k.len == nlen && memcmp(k.p, name, nlen) == 0)
					return v;
			}
			p = semi ? semi + 1 : end;
		}
	}
	return GW_STR_NULL;
}

void auth_destroy(struct auth *a)
{
	if (!a)
		return;
	authcache_destroy(a->cache);
	free(a);
}
