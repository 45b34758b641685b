/* routesync.c - Redis -> route table replication. */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hostname.h"
#include "redis.h"
#include "routes.h"
#include "routesync.h"
#include "core/log.h"
#include "core/str.h"
#include "core/compat.h"

#define EVENTS_CHANNEL "gw:events"
#define ROUTE_KEY "gw:route:"
#define ROUTES_SET "gw:routes"

struct routesync {
	struct routesync_params p;
	struct rconn *cmd, *sub;
	unsigned epoch;       /* bumped on every (re)start of a resync */
	size_t outstanding;   /* HGETALLs of the running resync */
	bool resync_failed;
	bool authoritative;
};

/* One HGETALL in flight. */
struct fetch {
	struct routesync *rs;
	unsigned epoch;       /* 0: an event-driven read, not the resync */
	char host[HOSTNAME_MAX];
};

static bool field_is(const redisReply *r, const char *name)
{
	return r->type == REDIS_REPLY_STRING && strlen(name) == r->len &&
	       memcmp(r->str, name, r->len) == 0;
}

static char *dup_reply(const redisReply *r)
{
	return r->len ? gw_xstrndup(r->str, r->len) : NULL;
}

/* A route from an HGETALL reply (flat field/value array). */
static struct route *parse_route(const char *host, const redisReply *r)
{
	struct route *rt = route_new(host);
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *k = r->element[i], *v = r->element[i + 1];
		if (v->type != REDIS_REPLY_STRING)
			continue;
		if (field_is(k, "project") && v->len &&
		    v->len < sizeof(rt->project)) {
			memcpy(rt->project, v->str, v->len);
			rt->project[v->len] = '\0';
		} else if (field_is(k, "visibility")) {
			/* Anything but an explicit "public" is private: a
			 * typo must not open a project. */
			rt->private_ = !(v->len == 6 &&
					 memcmp(v->str, "public", 6) == 0);
		} else if (field_is(k, "upstream")) {
			char *list = dup_reply(v), *save = NULL;
			for (char *t = list ? strtok_r(list, ", ", &save) : NULL;
			     t; t = strtok_r(NULL, ", ", &save)) {
				struct gw_addr a;
				const char *err = NULL;
				if (gw_addr_parse(t, &a, &err) != 0) {
					gw_log(GW_LOG_WARN, "routes",
					       "%s: upstream '%s' ignored: %s",
					       host, t, err);
					continue;
				}
				rt->addrs = gw_xrealloc(
					rt->addrs, (rt->naddrs + 1) * sizeof(a));
				rt->addrs[rt->naddrs++] = a;
			}
			free(list);
		} else if (field_is(k, "namespace")) {
			free(rt->namespace_);
			rt->namespace_ = dup_reply(v);
		} else if (field_is(k, "deployment")) {
			free(rt->deployment);
			rt->deployment = dup_reply(v);
		} else if (field_is(k, "service")) {
			free(rt->service);
			rt->service = dup_reply(v);
		} else if (field_is(k, "port")) {
			rt->port = (unsigned)strtoul(v->str, NULL, 10);
		} else if (field_is(k, "idle_timeout")) {
			rt->idle_timeout_s = (unsigned)strtoul(v->str, NULL, 10);
		}
	}
	/* A hash without a visibility field is private too (fail closed). */
	bool has_vis = false;
	for (size_t i = 0; i + 1 < r->elements; i += 2)
		if (field_is(r->element[i], "visibility"))
			has_vis = true;
	if (!has_vis)
		rt->private_ = true;
	return rt;
}

static void set_authoritative(struct routesync *rs, bool on)
{
	if (rs->authoritative == on)
		return;
	rs->authoritative = on;
	if (rs->p.on_sync)
		rs->p.on_sync(rs->p.arg, on);
}

static void resync_step_done(struct routesync *rs)
{
	if (rs->outstanding > 0 || rs->resync_failed)
		return;
	size_t dropped = routes_sync_end(rs->p.routes);
	set_authoritative(rs, true);
	gw_log(GW_LOG_INFO, "routes",
	       "in sync with Redis: %zu route(s), %zu dropped",
	       routes_dynamic_count(rs->p.routes), dropped);
}

static void fetch_cb(void *arg, redisReply *r)
{
	struct fetch *f = arg;
	struct routesync *rs = f->rs;
	bool for_resync = f->epoch != 0;
	if (for_resync && f->epoch != rs->epoch) {
		free(f); /* a superseded resync */
		return;
	}
	if (for_resync)
		rs->outstanding--;
	if (!r || r->type != REDIS_REPLY_ARRAY) {
		/* The connection failed (its down handler restarts the
		 * resync) or the key has a wrong type: skip it. */
		if (!r && for_resync)
			rs->resync_failed = true;
		else if (r)
			gw_log(GW_LOG_WARN, "routes",
			       "%s%s is not a hash; ignored", ROUTE_KEY, f->host);
		free(f);
		return;
	}
	if (r->elements == 0)
		routes_remove(rs->p.routes, f->host);
	else
		routes_put(rs->p.routes, parse_route(f->host, r));
	free(f);
	if (for_resync)
		resync_step_done(rs);
}

/* Read one host's route; epoch 0 for event-driven reads. */
static bool fetch(struct routesync *rs, const char *host, size_t len,
		  unsigned epoch)
{
	struct fetch *f = gw_xcalloc(1, sizeof(*f));
	const char *err = NULL;
	if (hostname_normalize(gw_str_make(host, len), f->host, &err) != 0) {
		gw_log(GW_LOG_WARN, "routes", "host '%.*s' in Redis ignored: %s",
		       (int)(len > 200 ? 200 : len), host, err);
		free(f);
		return false;
	}
	f->rs = rs;
	f->epoch = epoch;
	char key[sizeof(ROUTE_KEY) + HOSTNAME_MAX];
	snprintf(key, sizeof(key), ROUTE_KEY "%s", f->host);
	if (!rconn_commandv(rs->cmd, fetch_cb, f, "HGETALL", key, NULL)) {
		free(f);
		return false;
	}
	return true;
}

static void members_cb(void *arg, redisReply *r)
{
	struct routesync *rs = arg;
	if (!r || r->type != REDIS_REPLY_ARRAY) {
		rs->resync_failed = true;
		return;
	}
	rs->epoch++;
	if (rs->epoch == 0)
		rs->epoch = 1;
	rs->outstanding = 0;
	routes_sync_begin(rs->p.routes);
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		if (e->type == REDIS_REPLY_STRING &&
		    fetch(rs, e->str, e->len, rs->epoch))
			rs->outstanding++;
	}
	resync_step_done(rs);
}

static void start_resync(struct routesync *rs)
{
	if (!rconn_up(rs->cmd) || !rconn_up(rs->sub))
		return;
	rs->resync_failed = false;
	rconn_commandv(rs->cmd, members_cb, rs, "SMEMBERS", ROUTES_SET, NULL);
}

static void state_cb(void *arg, bool up)
{
	struct routesync *rs = arg;
	if (!up) {
		if (rs->authoritative)
			gw_log(GW_LOG_WARN, "routes",
			       "Redis lost: serving the last known routes; "
			       "unknown hosts get 503");
		set_authoritative(rs, false);
		rs->epoch++; /* outstanding resync replies are stale */
		return;
	}
	start_resync(rs);
}

static void message_cb(void *arg, const char *msg, size_t len)
{
	struct routesync *rs = arg;
	const char *sp = memchr(msg, ' ', len);
	if (!sp)
		return;
	size_t klen = (size_t)(sp - msg), nlen = len - klen - 1;
	if (klen == 5 && memcmp(msg, "route", 5) == 0) {
		if (!fetch(rs, sp + 1, nlen, 0)) {
			/* We could not ask: the table may now be wrong until
			 * the next resync. */
			set_authoritative(rs, false);
		}
		return;
	}
	if (rs->p.on_event && klen < 32 && nlen < 512) {
		char kind[32], name[512];
		memcpy(kind, msg, klen);
		kind[klen] = '\0';
		memcpy(name, sp + 1, nlen);
		name[nlen] = '\0';
		rs->p.on_event(rs->p.arg, kind, name);
	}
}

struct routesync *routesync_create(const struct routesync_params *p)
{
	struct routesync *rs = gw_xcalloc(1, sizeof(*rs));
	rs->p = *p;
	const struct gw_config *cfg = p->cfg;
	struct rconn_params rp = {
		.base = p->base,
		.addr = cfg->redis_addr,
		.password = cfg->redis_password,
		.db = cfg->redis_db,
		.connect_timeout_ms = cfg->redis_connect_timeout_ms,
		.command_timeout_ms = cfg->redis_command_timeout_ms,
		.reconnect_max_ms = cfg->redis_reconnect_max_ms,
		.ping_interval_ms = cfg->redis_ping_interval_ms,
		.name = "commands",
		.on_state = state_cb,
		.arg = rs,
	};
	rs->cmd = rconn_create(&rp);
	rp.name = "events";
	rp.channel = EVENTS_CHANNEL;
	rp.on_message = message_cb;
	rs->sub = rconn_create(&rp);
	return rs;
}

bool routesync_authoritative(const struct routesync *rs)
{
	return rs && rs->authoritative;
}

struct rconn *routesync_conn(struct routesync *rs)
{
	return rs->cmd;
}

void routesync_destroy(struct routesync *rs)
{
	if (!rs)
		return;
	rconn_destroy(rs->sub);
	rconn_destroy(rs->cmd);
	free(rs);
}
