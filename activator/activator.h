/* activator.h - scale to zero: hold requests for a sleeping app, wake it
 * once, release them when it listens, put it back to sleep when idle.
 *
 * One activator per worker process. A project (one app) is in one of
 * four states (docs/kubernetes.md has the diagram):
 *
 *   COLD -request-> WAKING -a probe connects-> WARM -idle-> DRAINING
 *    ^  ^             | wake failed / wake_timeout            |
 *    |  +-------------+                 stop confirmed -------+
 *    +------------------------------------------------------+
 *
 * Waking is single-flight: however many requests arrive, the provider is
 * asked once. Requests that arrive while waking or draining are held in a
 * bounded FIFO (per project and in all); every hold ends exactly once:
 * released with an address, or failed (hold timeout, wake failure, wake
 * timeout), in which case the caller answers 503 + Retry-After. A request
 * held while draining wakes the app again once the stop is confirmed (or
 * at once, when the stop had not reached the platform yet).
 *
 * Held requests are released oldest first, at most release_concurrency
 * in flight per ready endpoint, round robin over the ready endpoints; more
 * follow as those finish, and newcomers queue behind them meanwhile.
 *
 * Readiness is a TCP connect to every candidate address (exec: its
 * address; Kubernetes: each pod that is not terminating, ready or not yet;
 * or the route's fixed address) every probe interval while waking, so a
 * request goes out as soon as the app listens.
 *
 * Activity: every acquired request (and the stream it may become, such as
 * a WebSocket) counts until activator_done(); a project is stopped only
 * after idle_timeout with nothing counted.
 *
 * Ownership: activator_project() returns a reference the caller gives back
 * with activator_project_release(); a project nobody references, cold and
 * unused for its idle timeout, is forgotten (a removed route leaves
 * nothing behind).
 */
#ifndef GW_ACTIVATOR_H
#define GW_ACTIVATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/addr.h"

struct event_base;
struct kubeapi;
struct stats;
struct activator;
struct act_project;
struct act_hold;

/* Coordination with the other gateway processes serving the same apps
 * (Kubernetes projects, with Redis): gateway/fleet.h implements these
 * hooks; the activator knows projects, never Redis. docs/fleet.md has the
 * protocol.
 *
 * Calls both ways never nest: no hook calls back into the activator, and
 * the fleet's entry points below (activator_fleet_*) are called from the
 * loop, never from inside a hook.
 *
 * What the fleet answers a wake with (several times per wake at most:
 * a takeover turns WAIT into CALL, admission turns QUEUED into CALL). */
enum act_verdict {
	ACT_VERDICT_CALL = 0,  /* this process makes the scale call (it holds
				  the wake lock, or Redis cannot tell) */
	ACT_VERDICT_WAIT,      /* another process makes it: probe, and take
				  its "ready" news */
	ACT_VERDICT_QUEUED,    /* no wake slot yet (cluster-wide cap): keep
				  holding, no probes */
	ACT_VERDICT_WAIT_COLD, /* a scale-down is committed: hold, wake it
				  again once it is done */
	ACT_VERDICT_UNDRAINED, /* a scale-down not yet committed was called
				  off: the app runs */
	ACT_VERDICT_COUNT
};

struct act_fleet {
	/* Open requests or streams here for the project (busy: at once when
	 * the count leaves 0, then every busy_refresh_ms while it stays
	 * above), or none any more (!busy: once, a moment after it reached
	 * 0). idle_ms: the project's idle timeout. */
	void (*activity)(void *arg, const char *project, bool busy,
			 unsigned idle_ms);
	/* A wake starts here, or must be decided again (the app was scaled
	 * down under it): the fleet answers with activator_fleet_verdict()
	 * until wake_end(). */
	void (*wake_begin)(void *arg, const char *project);
	/* The wake ended here: ready (addrs: the endpoints that answered,
	 * idle_ms the project's idle timeout) or not (failed, timed out,
	 * abandoned, scaled down meanwhile). No verdict follows. */
	void (*wake_end)(void *arg, const char *project, bool ready,
			 const struct gw_addr *addrs, size_t n, unsigned idle_ms);
	/* A stop asked with activator_fleet_stop() is over: ok = the app is
	 * at zero; !ok = it was not stopped (it keeps running). */
	void (*stopped)(void *arg, const char *project, bool ok);
	unsigned busy_refresh_ms; /* see activity() */
	void *arg;
};

/* The Kubernetes provider's settings ([kubernetes]). */
struct act_kube_params {
	struct kubeapi *api;        /* NULL: no Kubernetes provider */
	unsigned probe_interval_ms; /* pods: direct TCP probe period */
	unsigned poll_interval_ms;  /* EndpointSlices when watching fails */
	unsigned watch_timeout_s;
	unsigned wake_replicas;     /* replicas asked for when waking from 0 */
	unsigned max_replicas;      /* cap when the route has none */
};

struct act_params {
	struct event_base *base;
	unsigned hold_timeout_ms;
	unsigned hold_max_per_project;
	unsigned hold_max;
	unsigned idle_timeout_ms;   /* default when the route has none */
	unsigned wake_timeout_ms;   /* a wake not ready by then failed */
	unsigned probe_interval_ms; /* exec apps */
	unsigned stop_grace_ms;
	unsigned release_concurrency; /* per ready endpoint, held requests */
	struct act_kube_params kube;
	const struct act_fleet *fleet; /* NULL: this process decides alone */
};

/* What to run for a project (copied). Either an exec command, or a
 * Kubernetes Deployment whose Service's endpoints receive the requests
 * (or, with has_addr, the fixed address: the Service's). */
struct act_target {
	const char *exec_command;  /* sh -c command */
	const char *namespace_;    /* NULL: the default namespace */
	const char *deployment, *service; /* service NULL: = deployment */
	struct gw_addr addr;       /* exec: where it listens */
	bool has_addr;             /* kube: send here, not to the pods */
	unsigned idle_timeout_s;   /* 0: the default */
	unsigned max_replicas;     /* kube: 0: the default */
};

enum act_result {
	ACT_READY, /* warm: *addr is set, the request counts as activity */
	ACT_HELD,  /* the callback will tell */
	ACT_FULL,  /* hold queue full: answer 503 now */
	ACT_FAILED, /* the app cannot be started: answer 503 now */
};

/* ok: *addr is where to send it (activity counted, waited_ms how long it
 * was held); !ok: answer 503 (why says what happened, for the log). Runs
 * from the loop, never inside activator_acquire(). */
typedef void (*act_cb)(void *arg, bool ok, const struct gw_addr *addr,
		       unsigned waited_ms, const char *why);

struct activator *activator_create(const struct act_params *p);

/* Register the activator's series with s (docs/operations.md, "Metrics":
 * activations, their duration, scale-downs, holds, projects by state).
 * Once; unregistered by activator_destroy. */
void activator_stats_register(struct activator *a, struct stats *s);

/* Reload: the hold limits and timeouts, the default idle timeout, the
 * wake timeout, the probe interval and release_concurrency of p (the
 * rest of p is ignored: the loop, providers and fleet stay). Holds and
 * wakes under way keep the deadlines they have. */
void activator_reconfigure(struct activator *a, const struct act_params *p);

/* True when Kubernetes routes can be scaled (a kube provider is set). */
bool activator_has_kube(const struct activator *a);

/* A reference to the project called name (created cold on first use; the
 * target updated: a route that now names another app restarts it). */
struct act_project *activator_project(struct activator *a, const char *name,
				      const struct act_target *t);
/* A reference to the project called name if this activator knows it
 * (its target as last set), else NULL. */
struct act_project *activator_project_get(struct activator *a,
					  const char *name);
/* Give the reference back. NULL is fine. */
void activator_project_release(struct act_project *p);

enum act_result activator_acquire(struct act_project *p, act_cb cb, void *arg,
				  struct act_hold **hold, struct gw_addr *addr);

/* Give up a hold (the client left, or got the waking page): its callback
 * will not run and its queue slot is free at once. NULL is fine. */
void activator_cancel(struct act_hold *h);

/* One acquired request (or its stream) to addr is over. */
void activator_done(struct act_project *p, const struct gw_addr *addr);

/* A connect to addr was refused while the project was believed warm (the
 * pod went away, the app was stopped elsewhere): addr gets no requests
 * until a probe reaches it again, and with no address left the project
 * wakes again at once (known addresses are probed immediately). */
void activator_refused(struct act_project *p, const struct gw_addr *addr);

/* ---- news from the fleet (gateway/fleet*.c); unknown projects are
 * ignored unless said otherwise ---- */

/* The answer to a wake_begin() of project. */
void activator_fleet_verdict(struct activator *a, const char *project,
			     enum act_verdict v);
/* Another process's wake made project ready at addrs (it connected to
 * them): a waking project takes them at once and releases its holds. */
/* Returns true when it was taken (the project was waking here). */
bool activator_fleet_ready(struct activator *a, const char *project,
			   const struct gw_addr *addrs, size_t n);
/* A scale-down of project is starting. Returns true when it is idle here
 * (nothing in flight, nothing held, unused for its idle timeout; or not
 * known here): from now on its requests are held, never sent to its
 * pods. false: in use here, the scale-down must be called off. */
bool activator_fleet_drain(struct activator *a, const char *project);
/* The scale-down was called off: held requests go out. */
void activator_fleet_undrain(struct activator *a, const char *project);
/* The app was scaled to zero (by another process): held requests wake it
 * again. */
void activator_fleet_cold(struct activator *a, const char *project);
/* This process scales p down now, for the whole fleet (every process has
 * agreed). Returns false when it cannot (no provider, waking here):
 * stopped() is then not called. */
bool activator_fleet_stop(struct act_project *p);
/* Wake p with nobody waiting yet (a user just logged in): now when cold,
 * once it is down when it is being scaled down, else nothing. */
void activator_fleet_prewake(struct act_project *p);
/* No hooks are called after this (shutdown: the fleet goes first). */
void activator_fleet_detach(struct activator *a);

/* Fail every hold, stop every app this activator started (one bounded
 * wait for all of them), free. */
void activator_destroy(struct activator *a);

#endif
