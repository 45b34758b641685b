/* routesync.c - Redis -> route table replication. */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hostname.h"
#include "redis.h"
#include "routes.h"
#include "routeparse.h"
#include "routesync.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/str.h"
#include "core/compat.h"

#define EVENTS_CHANNEL "gw:events"
#define ROUTE_KEY "gw:route:"
#define ROUTES_SET "gw:routes"

/* ---- counters (core/stats.h) ---- */
struct routesync_stats {
	uint64_t routes;   /* gauge: routes mirrored from Redis now */
	uint64_t in_sync;  /* gauge: 1 while the table is authoritative */
	uint64_t resyncs;  /* full resyncs completed */
	uint64_t refused;  /* routes refused (bad fields), resyncs and events */
};

static void routesync_refresh(void *obj);

static const struct stats_metric routesync_metrics[] = {
	{"gateway_routes_redis", "Routes mirrored from Redis now.",
	 STATS_GAUGE, offsetof(struct routesync_stats, routes)},
	{"gateway_routes_in_sync",
	 "1 while the route table is a complete, current copy of Redis's.",
	 STATS_GAUGE, offsetof(struct routesync_stats, in_sync)},
	{"gateway_routes_resyncs", "Full route resyncs from Redis completed.",
	 STATS_COUNTER, offsetof(struct routesync_stats, resyncs)},
	{"gateway_routes_refused",
	 "Routes in Redis refused (a field the gateway must not act on).",
	 STATS_COUNTER, offsetof(struct routesync_stats, refused)},
};
static const struct stats_table routesync_table = {
	.metrics = routesync_metrics,
	.nmetrics = GW_ARRAY_LEN(routesync_metrics),
	.refresh = routesync_refresh,
};
/* ---- end of counters ---- */

struct routesync {
	struct routesync_params p;   /* p.cfg is NULL after create */
	unsigned retry_ms;    /* [redis] reconnect_max: resync retry pause */
	struct routesync_stats st;
	struct stats_reg *reg;
	struct rconn *cmd, *sub;
	struct event *retry;  /* re-runs a resync Redis could not answer */
	struct gw_ratelimit rl; /* warnings about what Redis holds or sends */
	unsigned epoch;       /* bumped on every (re)start of a resync */
	size_t outstanding;   /* HGETALLs of the running resync */
	size_t refused;       /* routes the running resync refused */
	bool resync_failed;   /* some reply of this resync was an error */
	bool authoritative;
};

/* One HGETALL in flight. */
struct fetch {
	struct routesync *rs;
	unsigned epoch;       /* 0: an event-driven read, not the resync */
	char host[HOSTNAME_MAX];
};

/* Warnings caused by data in Redis or on the events channel: anyone who
 * can PUBLISH could otherwise fill the log. */
static void rs_warn(struct routesync *rs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void rs_warn(struct routesync *rs, const char *fmt, ...)
{
	unsigned dropped = 0;
	if (GW_LOG_WARN > gw_log_threshold ||
	    !gw_ratelimit_allow(&rs->rl, gw_now_ms(), &dropped))
		return;
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (dropped)
		gw_log(GW_LOG_WARN, "routes", "%s (%u similar line(s) suppressed)",
		       line, dropped);
	else
		gw_log(GW_LOG_WARN, "routes", "%s", line);
}

static void set_authoritative(struct routesync *rs, bool on)
{
	if (rs->authoritative == on)
		return;
	rs->authoritative = on;
	if (rs->p.on_sync)
		rs->p.on_sync(rs->p.arg, on);
}

/* Try the full resync again later: Redis answered, but with an error. */
static void schedule_retry(struct routesync *rs)
{
	if (event_pending(rs->retry, EV_TIMEOUT, NULL))
		return;
	unsigned ms = rs->retry_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_add(rs->retry, &tv);
}

static void resync_step_done(struct routesync *rs)
{
	if (rs->outstanding > 0)
		return;
	if (rs->resync_failed) {
		schedule_retry(rs); /* a no-op until the connection is back */
		return;
	}
	/* Invalidations might have been missed since the subscriber fell;
	 * its reconnect starts another resync. */
	if (!rconn_up(rs->sub))
		return;
	size_t dropped = routes_sync_end(rs->p.routes);
	rs->st.resyncs++;
	set_authoritative(rs, true);
	gw_log(GW_LOG_INFO, "routes",
	       "in sync with Redis: %zu route(s), %zu dropped, %zu refused",
	       routes_dynamic_count(rs->p.routes), dropped, rs->refused);
}

/* A host's route is not served: removed (404, or 503 while not in sync,
 * as for a host with no route at all). */
static void refuse(struct routesync *rs, const struct fetch *f,
		   const char *why)
{
	rs_warn(rs, "route %s refused, not served: %s", f->host, why);
	rs->st.refused++;
	routes_remove(rs->p.routes, f->host);
	if (f->epoch)
		rs->refused++;
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
	if (!r) {
		/* The connection failed: its down handler takes authority
		 * away, and a resync follows the reconnect. */
		if (for_resync)
			rs->resync_failed = true;
	} else if (r->type == REDIS_REPLY_ERROR &&
		   strncmp(r->str, "WRONGTYPE", 9) != 0) {
		/* Redis could not say (LOADING, OOM, ACL...): this host's
		 * route is unknown, so the table is not complete. */
		rs_warn(rs, "reading route %s: %s", f->host, r->str);
		if (for_resync) {
			rs->resync_failed = true;
		} else {
			set_authoritative(rs, false);
			schedule_retry(rs);
		}
	} else if (r->type != REDIS_REPLY_ARRAY) {
		refuse(rs, f, ROUTE_KEY "<host> is not a hash");
	} else if (r->elements == 0) {
		routes_remove(rs->p.routes, f->host);
	} else {
		char why[256];
		struct route *rt =
			routeparse_hgetall(f->host, r, why, sizeof(why));
		if (rt)
			routes_put(rs->p.routes, rt);
		else
			refuse(rs, f, why);
	}
	bool step = for_resync;
	free(f);
	if (step)
		resync_step_done(rs);
}

enum fetch_res { FETCH_SENT, FETCH_BAD_HOST, FETCH_NOT_SENT };

/* Read one host's route; epoch 0 for event-driven reads. */
static enum fetch_res fetch(struct routesync *rs, const char *host, size_t len,
			    unsigned epoch)
{
	struct fetch *f = gw_xcalloc(1, sizeof(*f));
	const char *err = NULL;
	if (hostname_normalize(gw_str_make(host, len), f->host, &err) != 0) {
		char h[220];
		gw_log_escape(h, sizeof(h), host, len > 200 ? 200 : len);
		rs_warn(rs, "host '%s' in Redis ignored: %s", h, err);
		free(f);
		return FETCH_BAD_HOST;
	}
	f->rs = rs;
	f->epoch = epoch;
	char key[sizeof(ROUTE_KEY) + HOSTNAME_MAX];
	snprintf(key, sizeof(key), ROUTE_KEY "%s", f->host);
	if (!rconn_commandv(rs->cmd, fetch_cb, f, "HGETALL", key, NULL)) {
		free(f);
		return FETCH_NOT_SENT;
	}
	return FETCH_SENT;
}

static void members_cb(void *arg, redisReply *r)
{
	struct routesync *rs = arg;
	if (!r) {
		rs->resync_failed = true; /* resync again after the reconnect */
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY) {
		/* Not a set, or an error: keep the table as it is (not
		 * authoritative: unknown hosts get 503) and ask again. */
		rs_warn(rs, "SMEMBERS " ROUTES_SET ": %s; last known routes kept, "
			    "retrying in %u ms",
			r->type == REDIS_REPLY_ERROR ? r->str : "not a set",
			rs->retry_ms);
		schedule_retry(rs);
		return;
	}
	rs->epoch++;
	if (rs->epoch == 0)
		rs->epoch = 1;
	rs->outstanding = 0;
	rs->refused = 0;
	rs->resync_failed = false;
	routes_sync_begin(rs->p.routes);
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		if (e->type != REDIS_REPLY_STRING)
			continue;
		switch (fetch(rs, e->str, e->len, rs->epoch)) {
		case FETCH_SENT:
			rs->outstanding++;
			break;
		case FETCH_BAD_HOST:
			rs->refused++;
			break;
		case FETCH_NOT_SENT:
			rs->resync_failed = true;
			break;
		}
	}
	resync_step_done(rs);
}

static void start_resync(struct routesync *rs)
{
	if (!rconn_up(rs->cmd) || !rconn_up(rs->sub))
		return;
	event_del(rs->retry);
	rs->resync_failed = false;
	if (!rconn_commandv(rs->cmd, members_cb, rs, "SMEMBERS", ROUTES_SET,
			    NULL))
		schedule_retry(rs);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start_resync(arg);
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

/* One message on the events channel. Malformed messages are logged
 * (rate-limited) and ignored: they say nothing about the table, so they
 * cost no authority. Only a re-read we could not send does. */
static void message_cb(void *arg, const char *msg, size_t len)
{
	struct routesync *rs = arg;
	struct routeparse_event ev;
	switch (routeparse_event(msg, len, &ev)) {
	case ROUTEPARSE_EVENT_ROUTE:
		if (fetch(rs, ev.host.p, ev.host.len, 0) == FETCH_NOT_SENT) {
			/* The table may now be wrong until a resync. */
			set_authoritative(rs, false);
			schedule_retry(rs);
		}
		return;
	case ROUTEPARSE_EVENT_OTHER:
		if (rs->p.on_event && rs->p.on_event(rs->p.arg, ev.kind, ev.name))
			return;
		break;
	case ROUTEPARSE_EVENT_MALFORMED:
		break;
	}
	/* The name is not logged: it may be a session id. */
	rs_warn(rs, "event '%s' (%zu bytes) on " EVENTS_CHANNEL " ignored: "
		    "expected 'route|session|members <name>'", ev.shown, len);
}

struct routesync *routesync_create(const struct routesync_params *p)
{
	struct routesync *rs = gw_xcalloc(1, sizeof(*rs));
	rs->p = *p;
	rs->rl.interval_ms = 10000;
	rs->rl.burst = 10;
	rs->retry = evtimer_new(p->base, retry_cb, rs);
	if (!rs->retry)
		gw_oom(0);
	const struct gw_config *cfg = p->cfg;
	rs->retry_ms = cfg->redis_reconnect_max_ms;
	rs->p.cfg = NULL; /* restart-only keys: copied, the snapshot not kept */
	struct rconn_params rp = {
		.base = p->base,
		.addr = cfg->redis_addr,
		.resolver = p->resolver,
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

static void routesync_refresh(void *obj)
{
	struct routesync *rs = gw_container_of((struct routesync_stats *)obj,
					       struct routesync, st);
	rs->st.routes = routes_dynamic_count(rs->p.routes);
	rs->st.in_sync = rs->authoritative;
}

void routesync_stats_register(struct routesync *rs, struct stats *s)
{
	rs->reg = stats_register(s, &routesync_table, &rs->st, NULL);
	rconn_stats_register(rs->cmd, s);
	rconn_stats_register(rs->sub, s);
}

void routesync_destroy(struct routesync *rs)
{
	if (!rs)
		return;
	stats_unregister(rs->reg);
	rconn_destroy(rs->sub);
	rconn_destroy(rs->cmd);
	event_free(rs->retry);
	free(rs);
}
