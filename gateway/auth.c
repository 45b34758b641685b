/* auth.c - session -> user -> membership, with a short decision cache. */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "auth.h"
#include "config.h"
#include "http1.h"
#include "redis.h"
#include "routes.h"
#include "core/log.h"
#include "core/compat.h"

#define SID_MAX 256
#define USER_MAX 256

/* A cached decision for (sid, project). */
struct entry {
	TAILQ_ENTRY(entry) age;   /* oldest first, for eviction */
	struct entry *next;       /* hash chain */
	uint64_t expires_ms;
	enum auth_result res;
	char project[ROUTE_PROJECT_MAX];
	char sid[];               /* NUL-terminated */
};
TAILQ_HEAD(entry_list, entry);

struct auth {
	const struct gw_config *cfg;
	struct rconn *conn;
	struct entry **bucket;
	size_t nbuckets;
	size_t count;
	struct entry_list by_age;
	bool cache_on;
	auth_allow_cb on_allow;   /* pre-wake's memory, or NULL */
	void *allow_arg;
};

struct auth_req {
	struct auth *a;
	struct rcmd *cmd;
	auth_cb cb;
	void *arg;
	uint64_t session_expires_ms; /* 0: no expiry field */
	char user[USER_MAX + 1];     /* once the session is read */
	size_t user_len;
	char project[ROUTE_PROJECT_MAX];
	char sid[SID_MAX + 1];
};

static uint64_t hash2(const char *a, const char *b)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *a; a++)
		h = (h ^ (unsigned char)*a) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (; *b; b++)
		h = (h ^ (unsigned char)*b) * 1099511628211ULL;
	return h;
}

static struct entry **slot(struct auth *a, const char *sid,
			   const char *project)
{
	struct entry **pp = &a->bucket[hash2(sid, project) & (a->nbuckets - 1)];
	while (*pp && (strcmp((*pp)->sid, sid) != 0 ||
		       strcmp((*pp)->project, project) != 0))
		pp = &(*pp)->next;
	return pp;
}

static void unlink_entry(struct auth *a, struct entry **pp)
{
	struct entry *e = *pp;
	*pp = e->next;
	TAILQ_REMOVE(&a->by_age, e, age);
	a->count--;
	explicit_bzero(e->sid, strlen(e->sid));
	free(e);
}

static void cache_put(struct auth *a, const char *sid, const char *project,
		      enum auth_result res, uint64_t session_expires_ms)
{
	if (a->cfg->auth_cache_ttl_ms == 0 || !a->cache_on)
		return;
	uint64_t now = gw_now_ms();
	uint64_t exp = now + a->cfg->auth_cache_ttl_ms;
	if (session_expires_ms && session_expires_ms < exp)
		exp = session_expires_ms;
	struct entry **pp = slot(a, sid, project);
	if (*pp)
		unlink_entry(a, pp);
	if (a->count >= a->cfg->auth_cache_max) {
		struct entry *old = TAILQ_FIRST(&a->by_age);
		unlink_entry(a, slot(a, old->sid, old->project));
	}
	size_t n = strlen(sid);
	struct entry *e = gw_xcalloc(1, sizeof(*e) + n + 1);
	memcpy(e->sid, sid, n + 1);
	snprintf(e->project, sizeof(e->project), "%s", project);
	e->res = res;
	e->expires_ms = exp;
	pp = slot(a, sid, project);
	e->next = *pp;
	*pp = e;
	TAILQ_INSERT_TAIL(&a->by_age, e, age);
	a->count++;
}

static bool cache_get(struct auth *a, const char *sid, const char *project,
		      enum auth_result *res)
{
	struct entry **pp = slot(a, sid, project);
	if (!*pp)
		return false;
	if ((*pp)->expires_ms <= gw_now_ms()) {
		unlink_entry(a, pp);
		return false;
	}
	*res = (*pp)->res;
	return true;
}

struct auth *auth_create(const struct gw_config *cfg, struct rconn *conn)
{
	struct auth *a = gw_xcalloc(1, sizeof(*a));
	a->cfg = cfg;
	a->conn = conn;
	a->nbuckets = 1;
	while (a->nbuckets < cfg->auth_cache_max)
		a->nbuckets <<= 1;
	a->bucket = gw_xcalloc(a->nbuckets, sizeof(*a->bucket));
	TAILQ_INIT(&a->by_age);
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
		cache_put(r->a, r->sid, r->project, res, r->session_expires_ms);
	auth_cb cb = r->cb;
	void *arg = r->arg;
	explicit_bzero(r->sid, sizeof(r->sid));
	free(r);
	cb(arg, res);
}

static void member_cb(void *arg, redisReply *reply)
{
	struct auth_req *r = arg;
	if (!reply || reply->type != REDIS_REPLY_INTEGER) {
		if (reply && reply->type == REDIS_REPLY_ERROR)
			gw_log(GW_LOG_WARN, "auth", "membership of %s: %s",
			       r->project, reply->str);
		finish(r, AUTH_UNAVAILABLE);
		return;
	}
	if (reply->integer == 1 && r->a->on_allow)
		r->a->on_allow(r->a->allow_arg, r->user, r->user_len, r->project);
	finish(r, reply->integer == 1 ? AUTH_ALLOW : AUTH_FORBIDDEN);
}

static void session_cb(void *arg, redisReply *reply)
{
	struct auth_req *r = arg;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
		if (reply && reply->type == REDIS_REPLY_ERROR)
			gw_log(GW_LOG_WARN, "auth", "session lookup: %s",
			       reply->str);
		finish(r, AUTH_UNAVAILABLE);
		return;
	}
	const redisReply *user = reply->element[0], *exp = reply->element[1];
	if (user->type != REDIS_REPLY_STRING || user->len == 0 ||
	    user->len > USER_MAX) {
		finish(r, AUTH_NO_SESSION);
		return;
	}
	if (exp->type == REDIS_REPLY_STRING) {
		/* expires: unix seconds. A session past it is over even if
		 * its key's TTL has not fired yet. */
		uint64_t secs = strtoull(exp->str, NULL, 10);
		uint64_t now_s = gw_wall_ms() / 1000;
		if (secs <= now_s) {
			finish(r, AUTH_NO_SESSION);
			return;
		}
		r->session_expires_ms = gw_now_ms() + (secs - now_s) * 1000;
	}
	memcpy(r->user, user->str, user->len);
	r->user_len = user->len;
	char key[32 + ROUTE_PROJECT_MAX];
	snprintf(key, sizeof(key), "gw:members:%s", r->project);
	const char *argv[] = {"SISMEMBER", key, user->str};
	size_t lens[] = {9, strlen(key), user->len};
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
	enum auth_result res;
	if (cache_get(a, sidz, project, &res)) {
		explicit_bzero(sidz, sizeof(sidz));
		return res;
	}
	struct auth_req *r = gw_xcalloc(1, sizeof(*r));
	r->a = a;
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

static void cache_clear(struct auth *a)
{
	while (!TAILQ_EMPTY(&a->by_age)) {
		struct entry *e = TAILQ_FIRST(&a->by_age);
		unlink_entry(a, slot(a, e->sid, e->project));
	}
}

void auth_set_allow_cb(struct auth *a, auth_allow_cb cb, void *arg)
{
	a->on_allow = cb;
	a->allow_arg = arg;
}

void auth_set_cache(struct auth *a, bool on)
{
	a->cache_on = on;
	if (!on)
		cache_clear(a);
}

void auth_event(struct auth *a, const char *kind, const char *name)
{
	bool by_sid = strcmp(kind, "session") == 0;
	if (!by_sid && strcmp(kind, "members") != 0)
		return;
	struct entry *e, *next;
	for (e = TAILQ_FIRST(&a->by_age); e; e = next) {
		next = TAILQ_NEXT(e, age);
		if (strcmp(by_sid ? e->sid : e->project, name) == 0)
			unlink_entry(a, slot(a, e->sid, e->project));
	}
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
	cache_clear(a);
	free(a->bucket);
	free(a);
}
