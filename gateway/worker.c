/* worker.c - the per-process loop context, reload and graceful shutdown.
 *
 * SIGTERM/SIGINT: close the listening sockets (new connections go to other
 * workers or are refused), drop TLS handshakes in progress, let every open
 * exchange finish with "Connection: close", and leave the loop when the
 * last connection is gone or drain_timeout has passed. A second signal
 * stops at once.
 *
 * SIGHUP: worker_reload() - today the TLS certificates (tls_reload); open
 * connections are not touched.
 */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activator.h"
#include "auth.h"
#include "fleet.h"
#include "kubeapi.h"
#include "config.h"
#include "listener.h"
#include "proxy.h"
#include "routes.h"
#include "routesync.h"
#include "tls.h"
#include "upstream.h"
#include "worker.h"
#include "worker_admin.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/compat.h"

struct worker {
	struct event_base *base;
	const struct gw_config *cfg;
	struct routes *routes;
	struct routesync *rsync; /* NULL without Redis */
	struct auth *auth;       /* NULL without Redis */
	struct activator *act;   /* scale to zero */
	struct kubeapi *kube;    /* Kubernetes API, or NULL */
	struct fleet *fleet;     /* the other gateway processes (Redis +
				    Kubernetes), or NULL */
	struct upstream_pool *pool;
	struct proxy *proxy;
	struct tls *tls;         /* NULL without [tls] listen */
	struct listener **listeners;
	bool *listener_tls;      /* per listener: accepts TLS clients */
	size_t nlisteners;
	unsigned nconns;         /* client connections open (proxy) */
	unsigned nhandshakes;    /* TLS handshakes in progress */
	struct event *sig_term, *sig_int, *sig_hup;
	struct event *drain_timer;
	bool draining;
	int exit_status;
	struct stats *stats;         /* this process's counters */
	struct worker_admin *wadmin; /* readiness, admin/supervisor, notify */
};

static void start_drain(struct worker *w, const char *why);

static void supervisor_lost(void *arg)
{
	start_drain(arg, "supervisor gone");
}

/* Invalidations other than routes, and the fleet's news, from the
 * events channel. Returns whether the kind is a known one. */
static bool event_cb(void *arg, const char *kind, const char *name)
{
	struct worker *w = arg;
	if (w->auth && auth_event(w->auth, kind, name))
		return true;
	return fleet_event(w->fleet, kind, name);
}

static void sync_cb(void *arg, bool in_sync)
{
	struct worker *w = arg;
	if (w->auth)
		auth_set_cache(w->auth, in_sync);
	fleet_set_sync(w->fleet, in_sync);
	worker_admin_redis_sync(w->wadmin, in_sync);
}

/* The fleet's question: which Deployment does project name? */
static bool fleet_target_cb(void *arg, const char *project,
			    struct act_target *t)
{
	struct worker *w = arg;
	if (!routesync_authoritative(w->rsync))
		return false; /* a missing route may exist: unsure */
	struct route *r = routes_find_project(w->routes, project);
	if (!r || !r->deployment)
		return false;
	*t = (struct act_target){
		.namespace_ = r->namespace_,
		.deployment = r->deployment,
		.service = r->service,
		.has_addr = r->naddrs > 0,
		.idle_timeout_s = r->idle_timeout_s,
		.max_replicas = r->max_replicas,
	};
	if (r->naddrs)
		t->addr = r->addrs[0];
	return true;
}

static void fleet_recent_cb(void *arg, const char *user, size_t len,
			    const char *project)
{
	struct worker *w = arg;
	fleet_recent(w->fleet, user, len, project);
}

/* Leave the loop; with a fleet, a moment later, so that its last words
 * (leaving the replica set) are written. */
static void exit_loop(struct worker *w)
{
	if (!w->fleet) {
		event_base_loopexit(w->base, NULL);
		return;
	}
	fleet_leave(w->fleet);
	struct timeval tv = {0, 50 * 1000};
	event_base_loopexit(w->base, &tv);
}

static void close_listeners(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_destroy(w->listeners[i]);
	w->nlisteners = 0;
}

/* max_connections counts every client socket: served connections and
 * TLS handshakes still in progress. */
static void update_full(struct worker *w)
{
	bool full = w->nconns + w->nhandshakes >= w->cfg->max_connections;
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_set_full(w->listeners[i], full);
	if (w->draining && w->nconns == 0 && w->nhandshakes == 0)
		exit_loop(w);
}

static void count_cb(void *arg, unsigned count)
{
	struct worker *w = arg;
	w->nconns = count;
	update_full(w);
}

static void hs_count_cb(void *arg, unsigned pending)
{
	struct worker *w = arg;
	w->nhandshakes = pending;
	update_full(w);
}

static void accept_cb(void *arg, evutil_socket_t fd, const struct sockaddr *sa,
		      int salen)
{
	struct worker *w = arg;
	proxy_accept(w->proxy, fd, sa, salen);
}

static void tls_accept_cb(void *arg, evutil_socket_t fd,
			  const struct sockaddr *sa, int salen)
{
	struct worker *w = arg;
	tls_accept(w->tls, fd, sa, salen);
}

static void handshake_done_cb(void *arg, struct bufferevent *bev,
			 const struct sockaddr *sa, int salen)
{
	struct worker *w = arg;
	proxy_accept_tls(w->proxy, bev, sa, salen);
}

int worker_reload(struct worker *w)
{
	if (!w->tls) {
		gw_log(GW_LOG_INFO, "worker", "reload: no TLS certificates to "
		       "reload");
		return 0;
	}
	return tls_reload(w->tls, w->cfg);
}

static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	gw_log(GW_LOG_INFO, "worker", "SIGHUP: reloading");
	worker_admin_reload_begin(w->wadmin);
	int rc = worker_reload(w);
	worker_admin_reload_end(w->wadmin, rc == 0,
				rc == 0 ? NULL : "certificates kept (see log)");
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct proxy_stats st;
	proxy_get_stats(w->proxy, &st);
	gw_log(GW_LOG_WARN, "worker",
	       "drain timeout: closing %u connection(s) still open", st.open);
	proxy_drain_cut(w->proxy);
	/* A few loop turns to write those 503s; nothing waits longer. */
	struct timeval tv = {0, 100 * 1000};
	event_base_loopexit(w->base, &tv);
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
	worker_admin_draining(w->wadmin, why);
	fleet_shutdown(w->fleet); /* no scale-down decided here any more */
	close_listeners(w);
	tls_shutdown(w->tls);
	proxy_shutdown(w->proxy);
	struct proxy_stats st;
	proxy_get_stats(w->proxy, &st);
	if (st.open == 0) {
		exit_loop(w);
		return;
	}
	struct timeval tv = {w->cfg->drain_timeout_ms / 1000,
			     (w->cfg->drain_timeout_ms % 1000) * 1000};
	event_add(w->drain_timer, &tv);
}

struct worker *worker_create(const struct gw_config *cfg,
			     const struct tls_seed *seed, char *err,
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
		struct kubeapi_params kp = {
			.base = w->base,
			.api_url = cfg->kube_api_url,
			.token_file = cfg->kube_token_file,
			.ca_file = cfg->kube_ca_file,
			.namespace_file = cfg->kube_namespace_file,
			.token_reload_ms = cfg->kube_token_reload_ms,
			.request_timeout_ms = cfg->kube_request_timeout_ms,
		};
		const char *kerr = NULL;
		w->kube = kubeapi_create(&kp, &kerr);
		if (!w->kube) {
			snprintf(err, errlen, "kubernetes: %s", kerr);
			goto fail_listen;
		}
	}
	if (w->kube && w->rsync) {
		struct fleet_params fp = {
			.base = w->base,
			.conn = routesync_conn(w->rsync),
			.stats = w->stats,
			.replica_ttl_ms = cfg->fleet_replica_ttl_ms,
			.lease_ttl_ms = cfg->fleet_lease_ttl_ms,
			.wake_lock_ttl_ms = cfg->fleet_wake_lock_ttl_ms,
			.drain_timeout_ms = cfg->fleet_drain_timeout_ms,
			.reap_interval_ms = cfg->fleet_reap_interval_ms,
			.reap_batch = cfg->fleet_reap_batch,
			.max_waking = cfg->fleet_max_waking,
			.prewake = cfg->fleet_prewake == 1,
			.target = fleet_target_cb,
			.arg = w,
		};
		w->fleet = fleet_create(&fp);
		auth_set_allow_cb(w->auth, fleet_recent_cb, w);
	}
	struct act_params ap = {
		.base = w->base,
		.hold_timeout_ms = cfg->hold_timeout_ms,
		.hold_max_per_project = cfg->hold_max_per_project,
		.hold_max = cfg->hold_max,
		.idle_timeout_ms = cfg->idle_timeout_ms,
		.wake_timeout_ms = cfg->wake_timeout_ms,
		.probe_interval_ms = cfg->probe_interval_ms,
		.stop_grace_ms = cfg->stop_grace_ms,
		.release_concurrency = cfg->release_concurrency,
		.kube = {
			.api = w->kube,
			.probe_interval_ms = cfg->kube_probe_interval_ms,
			.poll_interval_ms = cfg->kube_poll_interval_ms,
			.watch_timeout_s = cfg->kube_watch_timeout_ms / 1000,
			.wake_replicas = cfg->kube_wake_replicas,
			.max_replicas = cfg->kube_max_replicas,
		},
		.fleet = w->fleet ? fleet_hooks(w->fleet) : NULL,
	};
	w->act = activator_create(&ap);
	if (w->fleet)
		fleet_set_activator(w->fleet, w->act);
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
	struct worker_admin_params wp = {
		.base = w->base,
		.cfg = cfg,
		.stats = w->stats,
		.proxy = w->proxy,
		.on_supervisor_lost = supervisor_lost,
		.arg = w,
	};
	w->wadmin = worker_admin_create(&wp);
	if (cfg->ntls_listen) {
		struct tls_params tp = {
			.base = w->base,
			.cfg = cfg,
			.seed = seed,
			.ready_cb = handshake_done_cb,
			.count_cb = hs_count_cb,
			.arg = w,
		};
		w->tls = tls_create(&tp, err, errlen);
		if (!w->tls)
			goto fail_listen;
	}

	size_t n = cfg->nlisten + cfg->ntls_listen;
	w->listeners = gw_xcalloc(n, sizeof(*w->listeners));
	w->listener_tls = gw_xcalloc(n, sizeof(*w->listener_tls));
	for (size_t i = 0; i < n; i++) {
		bool tls = i >= cfg->nlisten;
		const struct gw_addr *a = tls ? &cfg->tls_listen[i - cfg->nlisten]
					      : &cfg->listen[i];
		w->listeners[i] = listener_create(w->base, a,
						  tls ? tls_accept_cb : accept_cb,
						  w, err, errlen);
		if (!w->listeners[i])
			goto fail_listen;
		w->listener_tls[i] = tls;
		listener_stats_register(w->listeners[i], w->stats);
		w->nlisteners++;
	}
	w->sig_term = evsignal_new(w->base, SIGTERM, signal_cb, w);
	w->sig_int = evsignal_new(w->base, SIGINT, signal_cb, w);
	w->sig_hup = evsignal_new(w->base, SIGHUP, hup_cb, w);
	w->drain_timer = evtimer_new(w->base, drain_timeout_cb, w);
	if (!w->sig_term || !w->sig_int || !w->sig_hup || !w->drain_timer) {
		snprintf(err, errlen, "cannot set up signal handling");
		goto fail_listen;
	}
	event_add(w->sig_term, NULL);
	event_add(w->sig_int, NULL);
	event_add(w->sig_hup, NULL);
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
	return worker_admin_set_role(w->wadmin, role->index, role->ctl_fd, err,
				     errlen);
}

int worker_run(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++)
		gw_log(GW_LOG_INFO, "worker", "listening on %s%s",
		       listener_addr(w->listeners[i])->text,
		       w->listener_tls[i] ? " (TLS)" : "");
	worker_admin_listening(w->wadmin, w->nlisteners);
	event_base_dispatch(w->base);
	return w->exit_status;
}

void worker_destroy(struct worker *w)
{
	if (!w)
		return;
	worker_admin_destroy(w->wadmin);
	close_listeners(w);
	free(w->listeners);
	free(w->listener_tls);
	tls_shutdown(w->tls); /* handshakes hand nothing to the proxy now */
	proxy_destroy(w->proxy); /* cancels pending authorizations, holds */
	tls_destroy(w->tls);  /* after the connections using its contexts */
	activator_fleet_detach(w->act); /* no hooks into a freed fleet */
	fleet_destroy(w->fleet); /* before the projects it answers for */
	activator_destroy(w->act); /* stops the apps it started */
	kubeapi_destroy(w->kube);
	upstream_pool_destroy(w->pool);
	auth_destroy(w->auth);
	routesync_destroy(w->rsync); /* fails its own outstanding reads */
	routes_destroy(w->routes);
	/* Freeing a signal event restores the default action: a stop signal
	 * arriving while we are already stopping must not kill us. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (w->sig_term)
		event_free(w->sig_term);
	if (w->sig_int)
		event_free(w->sig_int);
	if (w->sig_hup)
		event_free(w->sig_hup);
	if (w->drain_timer)
		event_free(w->drain_timer);
	stats_destroy(w->stats); /* after every module that registered */
	if (w->base)
		event_base_free(w->base);
	free(w);
}
