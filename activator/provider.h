/* provider.h - the seam between the activator's state machine and what
 * actually starts and stops apps. Implementer header: activator.c and the
 * providers include it; the gateway includes activator.h only.
 *
 * One provider instance per project, bound when the project is created:
 * exec (a local command, exec.c) or kube (a Deployment, kube_provider.c).
 * The activator drives it through its ops; the provider reports back only
 * through the sink the activator gave it, and never from inside an op.
 *
 * Calls: at most one wake or stop is pending per provider (the activator
 * sees to it). A pending call ends with exactly one sink.call_done(),
 * unless it is cancelled.
 */
#ifndef GW_PROVIDER_H
#define GW_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/addr.h"

struct act_target;
struct event_base;
struct exec_group;
struct kubeapi;
struct provider;

enum provider_call {
	PROVIDER_WAKE = 0, /* make it run (scale up to N / start the process) */
	PROVIDER_STOP,     /* make it stop (scale to 0 / SIGTERM, SIGKILL) */
};

enum provider_start {
	PROVIDER_FAILED = -1, /* could not ask: *why says why; no callback */
	PROVIDER_DONE = 0,    /* done already (no callback) */
	PROVIDER_PENDING = 1, /* sink.call_done() follows */
};

/* An address the app has, or is about to have. */
struct provider_endpoint {
	struct gw_addr addr;
	bool ready; /* the platform says it serves (EndpointSlice ready);
		       otherwise only a probe can tell */
};

struct provider_sink {
	/* The pending call ended: ok, or failed with why. */
	void (*call_done)(void *arg, enum provider_call call, bool ok,
			  const char *why);
	/* The endpoint set now, terminating ones left out (readiness source
	 * started with watch_start). */
	void (*endpoints)(void *arg, const struct provider_endpoint *eps,
			  size_t n);
	/* The app went away by itself (exec: the process exited). */
	void (*exited)(void *arg, const char *why);
	void *arg;
};

struct provider_ops {
	const char *name; /* "exec", "kubernetes": for the log */
	/* Make the app run; DONE when it is running already. */
	enum provider_start (*wake)(struct provider *pv, const char **why);
	/* Make the app stop; DONE when it is not running. */
	enum provider_start (*stop)(struct provider *pv, const char **why);
	/* Start/stop reporting endpoints (nothing to report with a fixed
	 * address, struct provider.fixed). NULL: never any. */
	void (*watch_start)(struct provider *pv);
	void (*watch_stop)(struct provider *pv);
	/* Abandon the pending call if that cannot change anything any more
	 * (it has not reached the platform, or only read from it): returns
	 * true and its callback does not run. Otherwise returns false and the
	 * call goes on (its callback will run). */
	bool (*cancel)(struct provider *pv);
	/* The route changed: take the new target. Returns true when it names
	 * another app (namespace, Deployment, Service, address): the pending
	 * call is then cancelled and the watch, if running, restarted. */
	bool (*update)(struct provider *pv, const struct act_target *t);
	/* Free (cancels the pending call; a running process is left to
	 * exec_group_shutdown). */
	void (*destroy)(struct provider *pv);
};

struct provider {
	const struct provider_ops *ops;
	struct provider_sink sink;
	unsigned probe_interval_ms; /* readiness probe period while waking */
	bool shared;                /* other gateway processes serve the same
				       app: the fleet rules apply */
	bool local;                 /* runs here (exec): a wake that times
				       out is stopped, not left running */
	bool has_fixed;             /* one known address, no watch */
	struct gw_addr fixed;
};

/* ---- exec (exec.c) ---- */

/* The exec apps of one activator: reaps them (SIGCHLD) and stops them all
 * at shutdown. */
struct exec_group *exec_group_create(struct event_base *base,
				     unsigned stop_grace_ms);
/* SIGTERM to every running app, one bounded wait for all of them (at most
 * stop_grace), SIGKILL to the rest. Blocks: for process exit only. */
void exec_group_shutdown(struct exec_group *g);
void exec_group_destroy(struct exec_group *g);

struct provider *exec_provider_create(struct exec_group *g,
				      const struct act_target *t,
				      unsigned probe_interval_ms,
				      const struct provider_sink *sink);

/* ---- kube (kube_provider.c) ---- */

struct kube_provider_params {
	struct kubeapi *api;
	unsigned probe_interval_ms;
	unsigned poll_interval_ms;  /* watch fallback */
	unsigned watch_timeout_s;
	unsigned wake_replicas;     /* replicas asked for when waking from 0 */
	unsigned max_replicas;      /* cap when the route has none */
	bool shared;
};

/* NULL with *err when the target does not name a valid Deployment. */
struct provider *kube_provider_create(const struct kube_provider_params *kp,
				      const struct act_target *t,
				      const struct provider_sink *sink,
				      const char **err);

#endif
