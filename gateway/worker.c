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
#include "auth.h"
#include "fleet.h"
#include "kube.h"
#include "config.h"
#include "listener.h"
#include "proxy.h"
#include "routes.h"
#include "routesync.h"
#include "upstream.h"
#include "worker.h"
#include "core/log.h"
#include "core/compat.h"

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
};

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
	w->draining = true;
	gw_log(GW_LOG_INFO, "worker",
	       "%s: no longer accepting; draining open connections",
	       sig == SIGTERM ? "SIGTERM" : "SIGINT");
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
				       cfg->keepalive_idle_timeout_ms,
				       cfg->keepalive_trim_delay_ms);
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
		w->nlisteners++;
	}
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

int worker_run(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++)
		gw_log(GW_LOG_INFO, "worker", "listening on %s",
		       listener_addr(w->listeners[i])->text);
	event_base_dispatch(w->base);
	return w->exit_status;
}

void worker_destroy(struct worker *w)
{
	if (!w)
		return;
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
	if (w->base)
		event_base_free(w->base);
	free(w);
}
