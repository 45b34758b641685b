/* worker.c - the per-process loop context, reload and graceful shutdown.
 *
 * SIGTERM/SIGINT: close the listening sockets (new connections go to other
 * workers or are refused), drop TLS handshakes in progress, let every open
 * exchange finish with "Connection: close", and leave the loop when the
 * last connection is gone or drain_timeout has passed. A second signal
 * stops at once.
 *
 * SIGHUP: worker_reload() builds the configuration again (the file and
 * the command line, as at start). A snapshot with errors is refused whole
 * (its FILE:LINE logged) and the running one stays. Otherwise keys that
 * need a restart keep their running values (named in the log), listeners
 * whose address did not change keep their sockets, new ones are bound and
 * removed ones closed, the TLS certificates are loaded again, and the new
 * snapshot goes to the proxy, the routes, authorization and the
 * activator. Open connections keep the snapshot they were accepted with
 * (proxy.h), so exchanges in flight finish on the old settings.
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
#include "core/resolve.h"
#include "core/stats.h"
#include "core/stopsig.h"
#include "core/compat.h"

struct worker {
	struct event_base *base;
	const struct gw_config *cfg; /* current snapshot (a reference) */
	const struct config_source *src; /* how to build it again (SIGHUP) */
	const struct gw_config *tls_cfg; /* the snapshot tls uses (a ref) */
	struct tls_seed seed;    /* for a TLS set made by a reload */
	struct routes *routes;
	struct resolver *resolver; /* [redis] address is a name, or NULL */
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

/* The listeners a snapshot asks for, against those open: kept ones keep
 * their socket, fresh ones are bound now. Nothing visible changes until
 * listen_commit(); listen_abort() closes the fresh ones. */
struct listen_plan {
	struct listener **ls;  /* next's listeners, in its order */
	bool *tls;
	bool *fresh;           /* bound by this plan */
	bool *kept;            /* per open listener: in the plan */
	size_t n;
};

static void listen_plan_free(struct listen_plan *lp)
{
	free(lp->ls);
	free(lp->tls);
	free(lp->fresh);
	free(lp->kept);
}

static void listen_abort(struct listen_plan *lp)
{
	for (size_t i = 0; i < lp->n; i++)
		if (lp->fresh[i])
			listener_destroy(lp->ls[i]);
	listen_plan_free(lp);
}

static int listen_prepare(struct worker *w, const struct gw_config *next,
			  struct listen_plan *lp, char *err, size_t errlen)
{
	lp->n = next->nlisten + next->ntls_listen;
	lp->ls = gw_xcalloc(lp->n + 1, sizeof(*lp->ls));
	lp->tls = gw_xcalloc(lp->n + 1, sizeof(*lp->tls));
	lp->fresh = gw_xcalloc(lp->n + 1, sizeof(*lp->fresh));
	lp->kept = gw_xcalloc(w->nlisteners + 1, sizeof(*lp->kept));
	for (size_t i = 0; i < lp->n; i++) {
		bool tls = i >= next->nlisten;
		const struct gw_addr *a = tls ? &next->tls_listen[i - next->nlisten]
					      : &next->listen[i];
		lp->tls[i] = tls;
		for (size_t j = 0; j < w->nlisteners && !lp->ls[i]; j++) {
			if (lp->kept[j] || w->listener_tls[j] != tls ||
			    !gw_addr_eq(listener_addr(w->listeners[j]), a))
				continue;
			lp->ls[i] = w->listeners[j];
			lp->kept[j] = true;
		}
		if (lp->ls[i])
			continue;
		lp->ls[i] = listener_create(w->base, a,
					    tls ? tls_accept_cb : accept_cb, w,
					    err, errlen);
		if (!lp->ls[i]) {
			listen_abort(lp);
			return -1;
		}
		lp->fresh[i] = true;
	}
	return 0;
}

static void listen_commit(struct worker *w, struct listen_plan *lp)
{
	for (size_t j = 0; j < w->nlisteners; j++) {
		if (lp->kept[j])
			continue;
		gw_log(GW_LOG_INFO, "worker", "reload: closing %s%s",
		       listener_addr(w->listeners[j])->text,
		       w->listener_tls[j] ? " (TLS)" : "");
		listener_destroy(w->listeners[j]);
	}
	for (size_t i = 0; i < lp->n; i++) {
		if (!lp->fresh[i])
			continue;
		listener_stats_register(lp->ls[i], w->stats);
		gw_log(GW_LOG_INFO, "worker", "reload: listening on %s%s",
		       listener_addr(lp->ls[i])->text,
		       lp->tls[i] ? " (TLS)" : "");
	}
	free(w->listeners);
	free(w->listener_tls);
	w->listeners = lp->ls;
	w->listener_tls = lp->tls;
	w->nlisteners = lp->n;
	free(lp->fresh);
	free(lp->kept);
	update_full(w); /* fresh listeners start paused when full */
}

/* TLS for next: the certificates loaded again into the running set, or a
 * first set when TLS listeners appear. 0, or -1 with the old set kept. */
static int tls_apply(struct worker *w, const struct gw_config *next,
		     char *err, size_t errlen)
{
	if (!next->ntls_listen)
		return 0; /* a set left from before serves only its handshakes */
	if (w->tls) {
		if (tls_reload(w->tls, next) != 0) {
			snprintf(err, errlen, "[tls] certificates (see above)");
			return -1;
		}
	} else {
		struct tls_params tp = {
			.base = w->base,
			.cfg = next,
			.seed = &w->seed,
			.ready_cb = handshake_done_cb,
			.count_cb = hs_count_cb,
			.arg = w,
		};
		w->tls = tls_create(&tp, err, errlen);
		if (!w->tls)
			return -1;
		tls_stats_register(w->tls, w->stats);
	}
	const struct gw_config *old = w->tls_cfg;
	w->tls_cfg = config_ref(next);
	config_unref(old);
	return 0;
}

/* Hand next to every module that follows a reload. Cannot fail. */
static void apply(struct worker *w, const struct gw_config *next)
{
	proxy_set_config(w->proxy, next);
	auth_set_config(w->auth, next);
	routes_replace_static(w->routes, next->routes, next->nroutes);
	struct act_params ap = {
		.hold_timeout_ms = next->hold_timeout_ms,
		.hold_max_per_project = next->hold_max_per_project,
		.hold_max = next->hold_max,
		.idle_timeout_ms = next->idle_timeout_ms,
		.wake_timeout_ms = next->wake_timeout_ms,
		.probe_interval_ms = next->probe_interval_ms,
		.release_concurrency = next->release_concurrency,
	};
	activator_reconfigure(w->act, &ap);
	gw_log_threshold = next->log_level;
	const struct gw_config *old = w->cfg;
	w->cfg = config_ref(next);
	config_unref(old);
	update_full(w); /* max_connections may have changed */
}

int worker_reload(struct worker *w)
{
	char err[1024] = "";
	if (w->draining) {
		gw_log(GW_LOG_WARN, "worker", "reload: stopping; ignored");
		return -1;
	}
	struct gw_config *next = w->src->load(w->src, NULL, err, sizeof(err));
	if (!next) {
		gw_log(GW_LOG_ERROR, "worker", "reload: %s; keeping the running "
		       "configuration", err);
		return -1;
	}
	char changed[512];
	if (config_keep_restart_only(next, w->cfg, changed, sizeof(changed)))
		gw_log(GW_LOG_WARN, "worker", "reload: %s changed: restart to "
		       "apply (running values kept)", changed);
	struct listen_plan lp;
	if (listen_prepare(w, next, &lp, err, sizeof(err)) != 0)
		goto fail;
	if (tls_apply(w, next, err, sizeof(err)) != 0) {
		listen_abort(&lp);
		goto fail;
	}
	listen_commit(w, &lp);
	apply(w, next);
	gw_log(GW_LOG_INFO, "worker", "reload: configuration %s applied "
	       "(%zu listener(s), %zu static route(s))",
	       w->src->path ? w->src->path : "(command line)", w->nlisteners,
	       next->nroutes);
	config_destroy(next); /* the modules hold their references */
	return 0;
fail:
	gw_log(GW_LOG_ERROR, "worker", "reload: %s; keeping the running "
	       "configuration", err);
	config_destroy(next);
	return -1;
}

static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	gw_log(GW_LOG_INFO, "worker", "SIGHUP: reloading");
	worker_admin_reload_begin(w->wadmin);
	int rc = worker_reload(w);
	worker_admin_reload_end(w->wadmin, rc == 0);
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
			     const struct tls_seed *seed,
			     const struct config_source *src, char *err,
			     size_t errlen)
{
	struct worker *w = gw_xcalloc(1, sizeof(*w));
	w->cfg = config_ref(cfg);
	w->src = src;
	w->seed = *seed;
	w->base = event_base_new();
	if (!w->base) {
		snprintf(err, errlen, "cannot create the event loop");
		goto fail_base;
	}
	w->stats = stats_create(cfg->metrics_max_projects);
	w->routes = routes_create_static(cfg->routes, cfg->nroutes);
	if (cfg->redis_addr) {
		if (!cfg->redis_addr->numeric) {
			/* /etc/resolv.conf and /etc/hosts are read here, at
			 * start; lookups are asynchronous from then on. */
			const char *rerr = NULL;
			w->resolver = resolver_create(
				w->base, cfg->redis_connect_timeout_ms, &rerr);
			if (!w->resolver) {
				snprintf(err, errlen, "[redis] address %s: %s",
					 cfg->redis_addr->text, rerr);
				goto fail_listen;
			}
		}
		struct routesync_params rp = {
			.base = w->base,
			.cfg = cfg,
			.resolver = w->resolver,
			.routes = w->routes,
			.on_event = event_cb,
			.on_sync = sync_cb,
			.arg = w,
		};
		w->rsync = routesync_create(&rp);
		routesync_stats_register(w->rsync, w->stats);
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
		kubeapi_stats_register(w->kube, w->stats);
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
	activator_stats_register(w->act, w->stats);
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
	proxy_stats_register(w->proxy, w->stats);
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
		w->tls_cfg = config_ref(cfg);
		tls_stats_register(w->tls, w->stats);
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
	config_unref(w->cfg);
	explicit_bzero(&w->seed, sizeof(w->seed));
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
	resolver_destroy(w->resolver); /* after the connections using it */
	routes_destroy(w->routes);
	struct event *sigs[] = {w->sig_term, w->sig_int, w->sig_hup};
	stopsig_free_events(sigs, GW_ARRAY_LEN(sigs));
	if (w->drain_timer)
		event_free(w->drain_timer);
	stats_destroy(w->stats); /* after every module that registered */
	if (w->base)
		event_base_free(w->base);
	config_unref(w->tls_cfg); /* after every module that used them */
	config_unref(w->cfg);
	explicit_bzero(&w->seed, sizeof(w->seed));
	free(w);
}
