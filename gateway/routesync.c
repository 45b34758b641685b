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
#include "routespec.h"
#include "core/dnsname.h"
#include "routesync.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/str.h"
#include "core/compat.h"

#define EVENTS_CHANNEL "gw:events"
#define ROUTE_KEY "gw:route:"
#define ROUTES_SET "gw:routes"

_Static_assert(ROUTESPEC_PROJECT_MAX < ROUTE_PROJECT_MAX,
	       "a valid project id fits struct route");

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

static bool field_is(const redisReply *r, const char *name)
{
	return r->type == REDIS_REPLY_STRING && strlen(name) == r->len &&
	       memcmp(r->str, name, r->len) == 0;
}

static char *dup_reply(const redisReply *r)
{
	return gw_xstrndup(r->str, r->len);
}

/* "field 'value'" for a refusal line, the value escaped and cut short. */
static void why_value(char *err, size_t errlen, const char *field,
		      const redisReply *v, const char *rule)
{
	char val[80];
	gw_log_escape(val, sizeof(val), v->str, v->len > 64 ? 64 : v->len);
	snprintf(err, errlen, "%s '%s%s' %s", field, val,
		 v->len > 64 ? "..." : "", rule);
}

/* A Kubernetes name field: a DNS-1123 label, or the route is refused. */
/* A Kubernetes name: a DNS-1123 label, or (Deployments) a subdomain. */
static bool name_field(char **dst, const redisReply *v, const char *field,
		       bool subdomain, char *err, size_t errlen)
{
	if (subdomain ? !gw_dns_subdomain(v->str, v->len)
		      : !gw_dns_label(v->str, v->len)) {
		why_value(err, errlen, field, v,
			  subdomain ? "is not a DNS-1123 subdomain"
				    : "is not a DNS-1123 label");
		return false;
	}
	free(*dst);
	*dst = dup_reply(v);
	return true;
}

static bool upstream_field(struct route *rt, const redisReply *v, char *err,
			   size_t errlen)
{
	char *list = dup_reply(v), *save = NULL;
	bool ok = true;
	for (char *t = strtok_r(list, ", ", &save); t && ok;
	     t = strtok_r(NULL, ", ", &save)) {
		struct gw_addr a;
		const char *aerr = NULL;
		if (rt->naddrs == ROUTESPEC_UPSTREAMS_MAX) {
			snprintf(err, errlen, "upstream has more than %d addresses",
				 ROUTESPEC_UPSTREAMS_MAX);
			ok = false;
		} else if (gw_addr_parse(t, &a, &aerr) != 0) {
			char val[80];
			gw_log_escape(val, sizeof(val), t, strlen(t));
			snprintf(err, errlen, "upstream '%s': %s", val, aerr);
			ok = false;
		} else {
			rt->addrs = gw_xrealloc(rt->addrs,
						(rt->naddrs + 1) * sizeof(a));
			rt->addrs[rt->naddrs++] = a;
		}
	}
	free(list);
	return ok;
}

/* A route from an HGETALL reply (flat field/value array), or NULL with the
 * reason in err when a field holds something the gateway must not act on.
 * Unknown fields are ignored (newer writers may add some). */
static struct route *parse_route(const char *host, const redisReply *r,
				 char *err, size_t errlen)
{
	struct route *rt = route_new(host);
	bool ok = true, has_project = false, has_vis = false;
	unsigned long n;
	for (size_t i = 0; ok && i + 1 < r->elements; i += 2) {
		const redisReply *k = r->element[i], *v = r->element[i + 1];
		if (v->type != REDIS_REPLY_STRING)
			continue;
		if (field_is(k, "project")) {
			has_project = true;
			if (!routespec_project(v->str, v->len)) {
				why_value(err, errlen, "project", v,
					  "is not 1-63 of [a-z0-9_-]");
				ok = false;
				break;
			}
			memcpy(rt->project, v->str, v->len);
			rt->project[v->len] = '\0';
		} else if (field_is(k, "visibility")) {
			/* Anything but an explicit "public" is private: a
			 * typo must not open a project. */
			has_vis = true;
			rt->private_ = !(v->len == 6 &&
					 memcmp(v->str, "public", 6) == 0);
		} else if (field_is(k, "upstream")) {
			ok = upstream_field(rt, v, err, errlen);
		} else if (field_is(k, "namespace")) {
			ok = name_field(&rt->namespace_, v, "namespace", false, err,
					 errlen);
		} else if (field_is(k, "deployment")) {
			ok = name_field(&rt->deployment, v, "deployment", true, err,
					 errlen);
		} else if (field_is(k, "service")) {
			ok = name_field(&rt->service, v, "service", false, err,
					 errlen);
		} else if (field_is(k, "port")) {
			ok = routespec_uint(v->str, v->len, 1, 65535, &n);
			if (ok)
				rt->port = (unsigned)n;
			else
				why_value(err, errlen, "port", v, "is not 1-65535");
		} else if (field_is(k, "idle_timeout")) {
			ok = routespec_uint(v->str, v->len, 0,
					    ROUTESPEC_IDLE_MAX, &n);
			if (ok)
				rt->idle_timeout_s = (unsigned)n;
			else
				why_value(err, errlen, "idle_timeout", v,
					  "is not 0-2592000 (seconds)");
		} else if (field_is(k, "max_replicas")) {
			ok = routespec_uint(v->str, v->len, 1, 1000, &n);
			if (ok)
				rt->max_replicas = (unsigned)n;
			else
				why_value(err, errlen, "max_replicas", v,
					  "is not 1-1000");
		}
	}
	/* Without a project field the id is the host's first label, which
	 * must then be a valid id itself: never a silently cut one. */
	if (ok && !has_project &&
	    !routespec_project(host, strcspn(host, "."))) {
		snprintf(err, errlen, "no project field, and the first label "
				      "is not a valid project id");
		ok = false;
	}
	/* The Service defaults to the Deployment's name, which can then only
	 * be one with no dots (Service names are labels). */
	if (ok && rt->deployment && !rt->service &&
	    !gw_dns_label(rt->deployment, strlen(rt->deployment))) {
		snprintf(err, errlen, "deployment '%s' cannot name the Service: "
				      "set the service field", rt->deployment);
		ok = false;
	}
	if (!ok) {
		route_free(rt);
		return NULL;
	}
	/* A hash without a visibility field is private too (fail closed). */
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
		struct route *rt = parse_route(f->host, r, why, sizeof(why));
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
	const char *sp = memchr(msg, ' ', len);
	size_t klen = sp ? (size_t)(sp - msg) : len;
	size_t nlen = sp ? len - klen - 1 : 0;
	if (sp && klen == 5 && memcmp(msg, "route", 5) == 0) {
		if (fetch(rs, sp + 1, nlen, 0) == FETCH_NOT_SENT) {
			/* The table may now be wrong until a resync. */
			set_authoritative(rs, false);
			schedule_retry(rs);
		}
		return;
	}
	char kind[32];
	gw_log_escape(kind, sizeof(kind), msg, klen > 24 ? 24 : klen);
	if (sp && nlen > 0 && klen < sizeof(kind) && nlen < 512 &&
	    rs->p.on_event) {
		char k[32], name[512];
		memcpy(k, msg, klen);
		k[klen] = '\0';
		memcpy(name, sp + 1, nlen);
		name[nlen] = '\0';
		if (rs->p.on_event(rs->p.arg, k, name))
			return;
	}
	/* The name is not logged: it may be a session id. */
	rs_warn(rs, "event '%s' (%zu bytes) on " EVENTS_CHANNEL " ignored: "
		    "expected 'route|session|members <name>'", kind, len);
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
