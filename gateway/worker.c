/* worker.c - the per-process loop context and graceful shutdown.
 *
 * SIGTERM/SIGINT: close the listening sockets (new connections go to other
 * workers or are refused), let every open exchange finish with
 * "Connection: close", and leave the loop when the last connection is gone
 * or drain_timeout has passed. A second signal stops at once.
 */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activator.h"
#include "admin.h"
#include "admin_chan.h"
#include "auth.h"
#include "fleet.h"
#include "kube.h"
#include "config.h"
#include "listener.h"
#include "notify.h"
#include "proxy.h"
#include "routes.h"
#include "routesync.h"
#include "upstream.h"
#include "worker.h"
#include "core/log.h"
#include "core/procstats.h"
#include "core/stats.h"
#include "core/compat.h"

/* ---- ops: counters of the worker itself, readiness, admin ---- */
struct worker_stats {
	uint64_t open;     /* client connections open now */
	uint64_t draining; /* 1 after SIGTERM/SIGINT */
};

static void worker_stats_refresh(void *obj);

static const struct stats_metric worker_metrics[] = {
	{"gateway_connections_open", "Client connections open now.",
	 STATS_GAUGE, offsetof(struct worker_stats, open)},
	{"gateway_draining", "1 while stopping: no longer accepting.",
	 STATS_GAUGE, offsetof(struct worker_stats, draining)},
};
static const struct stats_table worker_table = {
	.metrics = worker_metrics,
	.nmetrics = GW_ARRAY_LEN(worker_metrics),
	.refresh = worker_stats_refresh,
};

struct worker_ops {
	struct worker_stats st;   /* first: the refresh callback's object */
	struct worker *w;
	bool whole;               /* no supervisor: admin + notify are ours */
	struct stats_reg *reg;
	struct procstats *proc;
	struct admin *admin;      /* whole gateway only */
	struct admin_link *link;  /* under a supervisor only */
	struct admin_facts facts;
};
/* ---- end of ops ---- */

struct worker {
	struct event_base *base;
	const struct gw_config *cfg;
	struct routes *routes;
	struct routesync *rsync; /* NULL without Redis */
	struct auth *auth;       /* NULL without Redis */
	struct activator *act;   /* scale to zero */
	struct kube *kube;       /* Kubernetes provider, or NULL */
	struct fleet *fleet;     /* shared activity (Redis + Kubernetes) */
	struct upstream_pool *pool;
	struct proxy *proxy;
	struct listener **listeners;
	size_t nlisteners;
	struct event *sig_term, *sig_int;
	struct event *drain_timer;
	bool draining;
	int exit_status;
	struct stats *stats;      /* this process's counters */
	struct worker_ops ops;
};

static void start_drain(struct worker *w, const char *why);

static void worker_stats_refresh(void *obj)
{
	struct worker_ops *o =
		gw_container_of((struct worker_stats *)obj, struct worker_ops, st);
	struct proxy_stats ps;
	proxy_get_stats(o->w->proxy, &ps);
	o->st.open = ps.open;
	o->st.draining = o->w->draining;
}

/* Readiness facts changed: tell the supervisor (if any). */
static void facts_changed(struct worker *w)
{
	if (w->ops.link)
		admin_link_facts(w->ops.link, &w->ops.facts);
}

static const char *whole_not_ready(void *arg)
{
	struct worker *w = arg;
	return admin_facts_not_ready(&w->ops.facts, w->cfg->readyz_redis);
}

static void supervisor_lost(void *arg)
{
	start_drain(arg, "supervisor gone");
}

/* Invalidations other than routes, from the events channel. */
static void event_cb(void *arg, const char *kind, const char *name)
{
	struct worker *w = arg;
	if (w->auth)
		auth_event(w->auth, kind, name);
}

static void sync_cb(void *arg, bool in_sync)
{
	struct worker *w = arg;
	if (w->auth)
		auth_set_cache(w->auth, in_sync);
	w->ops.facts.redis_in_sync = in_sync;
	w->ops.facts.redis_loaded |= in_sync;
	facts_changed(w);
}

static void close_listeners(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_destroy(w->listeners[i]);
	w->nlisteners = 0;
}

static void count_cb(void *arg, unsigned count)
{
	struct worker *w = arg;
	bool full = count >= w->cfg->max_connections;
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_set_full(w->listeners[i], full);
	if (w->draining && count == 0)
		event_base_loopexit(w->base, NULL);
}

static void accept_cb(void *arg, evutil_socket_t fd, const struct sockaddr *sa,
		      int salen)
{
	struct worker *w = arg;
	proxy_accept(w->proxy, fd, sa, salen);
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct proxy_stats st;
	proxy_get_stats(w->proxy, &st);
	gw_log(GW_LOG_WARN, "worker",
	       "drain timeout: closing %u connection(s) still open", st.open);
	event_base_loopexit(w->base, NULL);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	if (w->draining) {
		gw_log(GW_LOG_WARN, "worker", "second signal: stopping now");
		event_base_loopexit(w->base, NULL);
		return;
	}
	start_drain(w, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void start_drain(struct worker *w, const char *why)
{
	if (w->draining)
		return;
	w->draining = true;
	gw_log(GW_LOG_INFO, "worker",
	       "%s: no longer accepting; draining open connections", why);
	w->ops.facts.draining = true;
	w->ops.facts.listening = false;
	facts_changed(w);
	if (w->ops.whole)
		notify_stopping("%s: draining", why);
	close_listeners(w);
	proxy_shutdown(w->proxy);
	struct proxy_stats st;
	proxy_get_stats(w->proxy, &st);
	if (st.open == 0) {
		event_base_loopexit(w->base, NULL);
		return;
	}
	struct timeval tv = {w->cfg->drain_timeout_ms / 1000,
			     (w->cfg->drain_timeout_ms % 1000) * 1000};
	event_add(w->drain_timer, &tv);
}

struct worker *worker_create(const struct gw_config *cfg, char *err,
			     size_t errlen)
{
	struct worker *w = gw_xcalloc(1, sizeof(*w));
	w->cfg = cfg;
	w->base = event_base_new();
	if (!w->base) {
		snprintf(err, errlen, "cannot create the event loop");
		goto fail_base;
	}
	w->stats = stats_create(cfg->metrics_max_projects);
	w->ops.w = w;
	w->ops.facts.redis = cfg->redis_addr != NULL;
	w->routes = routes_create_static(cfg->routes, cfg->nroutes);
	if (cfg->redis_addr) {
		struct routesync_params rp = {
			.base = w->base,
			.cfg = cfg,
			.routes = w->routes,
			.on_event = event_cb,
			.on_sync = sync_cb,
			.arg = w,
		};
		w->rsync = routesync_create(&rp);
		w->auth = auth_create(cfg, routesync_conn(w->rsync));
	}
	if (cfg->kube_api_url || getenv("KUBERNETES_SERVICE_HOST")) {
		struct kube_params kp = {
			.base = w->base,
			.api_url = cfg->kube_api_url,
			.token_file = cfg->kube_token_file,
			.ca_file = cfg->kube_ca_file,
			.token_reload_ms = cfg->kube_token_reload_ms,
			.request_timeout_ms = cfg->kube_request_timeout_ms,
			.watch_timeout_s = cfg->kube_watch_timeout_ms / 1000,
		};
		const char *kerr = NULL;
		w->kube = kube_create(&kp, &kerr);
		if (!w->kube) {
			snprintf(err, errlen, "kubernetes: %s", kerr);
			goto fail_listen;
		}
	}
	if (w->kube && w->rsync)
		w->fleet = fleet_create(routesync_conn(w->rsync));
	struct act_params ap = {
		.base = w->base,
		.hold_timeout_ms = cfg->hold_timeout_ms,
		.hold_max_per_project = cfg->hold_max_per_project,
		.hold_max = cfg->hold_max,
		.idle_timeout_ms = cfg->idle_timeout_ms,
		.probe_interval_ms = cfg->probe_interval_ms,
		.stop_grace_ms = cfg->stop_grace_ms,
		.release_concurrency = cfg->release_concurrency,
		.kube = w->kube,
		.fleet = w->fleet ? fleet_hooks(w->fleet) : NULL,
	};
	w->act = activator_create(&ap);
	w->pool = upstream_pool_create(w->base, cfg->keepalive_max_idle,
				       cfg->keepalive_idle_timeout_ms);
	struct proxy_params pp = {
		.base = w->base,
		.cfg = cfg,
		.routes = w->routes,
		.rsync = w->rsync,
		.auth = w->auth,
		.act = w->act,
		.pool = w->pool,
		.count_cb = count_cb,
		.count_arg = w,
	};
	w->proxy = proxy_create(&pp);

	w->listeners = gw_xcalloc(cfg->nlisten, sizeof(*w->listeners));
	for (size_t i = 0; i < cfg->nlisten; i++) {
		w->listeners[i] = listener_create(w->base, &cfg->listen[i],
						  accept_cb, w, err, errlen);
		if (!w->listeners[i])
			goto fail_listen;
		listener_stats_register(w->listeners[i], w->stats);
		w->nlisteners++;
	}
	w->ops.reg = stats_register(w->stats, &worker_table, &w->ops.st, NULL);
	w->sig_term = evsignal_new(w->base, SIGTERM, signal_cb, w);
	w->sig_int = evsignal_new(w->base, SIGINT, signal_cb, w);
	w->drain_timer = evtimer_new(w->base, drain_timeout_cb, w);
	if (!w->sig_term || !w->sig_int || !w->drain_timer) {
		snprintf(err, errlen, "cannot set up signal handling");
		goto fail_listen;
	}
	event_add(w->sig_term, NULL);
	event_add(w->sig_int, NULL);
	return w;

fail_listen:
	worker_destroy(w);
	return NULL;
fail_base:
	free(w);
	return NULL;
}

int worker_set_role(struct worker *w, const struct worker_role *role,
		    char *err, size_t errlen)
{
	char label[16];
	snprintf(label, sizeof(label), "%u", role->index);
	w->ops.whole = role->ctl_fd < 0;
	w->ops.proc = procstats_create(w->stats, label, w->ops.whole);
	if (!w->ops.whole) {
		w->ops.link = admin_link_create(w->base, role->ctl_fd, w->stats,
						supervisor_lost, w);
		return 0;
	}
	if (!w->cfg->admin_listen)
		return 0;
	struct admin_params ap = {
		.base = w->base,
		.cfg = w->cfg,
		.stats = w->stats,
		.src = {.not_ready = whole_not_ready, .arg = w},
	};
	w->ops.admin = admin_create(&ap, err, errlen);
	return w->ops.admin ? 0 : -1;
}

int worker_run(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++)
		gw_log(GW_LOG_INFO, "worker", "listening on %s",
		       listener_addr(w->listeners[i])->text);
	w->ops.facts.listening = w->nlisteners > 0;
	facts_changed(w);
	if (w->ops.admin)
		gw_log(GW_LOG_INFO, "worker", "admin listener on %s",
		       admin_addr_text(w->ops.admin));
	if (w->ops.whole)
		notify_ready("listening on %zu address(es)%s%s", w->nlisteners,
			     w->ops.admin ? "; admin on " : "",
			     w->ops.admin ? admin_addr_text(w->ops.admin) : "");
	event_base_dispatch(w->base);
	return w->exit_status;
}

void worker_destroy(struct worker *w)
{
	if (!w)
		return;
	admin_destroy(w->ops.admin);
	admin_link_destroy(w->ops.link);
	procstats_destroy(w->ops.proc);
	stats_unregister(w->ops.reg);
	close_listeners(w);
	free(w->listeners);
	proxy_destroy(w->proxy); /* cancels pending authorizations, holds */
	fleet_destroy(w->fleet); /* before the projects it answers for */
	activator_destroy(w->act); /* stops the apps it started */
	kube_destroy(w->kube);
	upstream_pool_destroy(w->pool);
	auth_destroy(w->auth);
	routesync_destroy(w->rsync); /* fails its own outstanding reads */
	routes_destroy(w->routes);
	if (w->sig_term)
		event_free(w->sig_term);
	if (w->sig_int)
		event_free(w->sig_int);
	if (w->drain_timer)
		event_free(w->drain_timer);
	stats_destroy(w->stats); /* after every module that registered */
	if (w->base)
		event_base_free(w->base);
	free(w);
}
