/* activator.h - scale to zero: hold requests for a sleeping app, wake it
 * once, release them when it listens, put it back to sleep when idle.
 *
 * One activator per worker process. A project is in one of four states:
 *
 *   cold --acquire--> waking --app accepts--> warm --idle--> draining
 *     ^                  |                                     |
 *     +--- start failed / wake timeout          app exited ----+--> cold
 *
 * Waking is single-flight: however many requests arrive, the provider is
 * asked once. Requests that arrive while waking or draining are held in a
 * bounded FIFO (per project and in all); every hold ends exactly once:
 * released with the app's address, or failed (hold timeout, start
 * failure), in which case the caller answers 503 + Retry-After.
 *
 * Held requests are released at most release_concurrency at a time per
 * project (more follow as those finish), oldest first; while some are
 * still queued, newcomers queue behind them.
 *
 * Readiness is a TCP connect to the app's address every probe_interval
 * while waking, so a request goes out as soon as the app listens.
 *
 * Activity: every acquired request (and the stream it may become, such as
 * a WebSocket) counts until activator_done(); a project is stopped only
 * after idle_timeout with nothing counted.
 *
 * Providers: exec (a local command, sh -c, in its own process group;
 * SIGTERM then SIGKILL after stop_grace). The Kubernetes provider plugs in
 * behind the same wake/stop calls.
 *
 * Ownership: projects live as long as the activator; callers may keep
 * struct act_project pointers across callbacks.
 */
#ifndef GW_ACTIVATOR_H
#define GW_ACTIVATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/addr.h"

struct event_base;
struct kube;
struct activator;
struct act_project;
struct act_hold;

/* Coordination with the other gateway processes serving the same apps
 * (Kubernetes projects only): activity is shared, and scale-down is
 * decided by one process for everyone. */
typedef void (*act_stop_cb)(struct act_project *p, bool stop_now);
struct act_fleet {
	/* The project is in use here (at most about once a second, and every
	 * second while a request or stream is open). */
	void (*touch)(void *arg, const char *project);
	/* Locally idle for idle_ms: may it be scaled down? done() once, later:
	 * true when no process used it within idle_ms and this one holds
	 * the scale-down lease; false otherwise (or when unsure). */
	void (*may_stop)(void *arg, const char *project, unsigned idle_ms,
			 act_stop_cb done, struct act_project *p);
	/* Cold here: should this process make the scale call? done(p, true)
	 * once it holds the wake lock (or cannot tell); false when another
	 * process is waking it (the EndpointSlice watch will tell). */
	void (*may_wake)(void *arg, const char *project, act_stop_cb done,
			 struct act_project *p);
	void *arg;
};

struct act_params {
	struct event_base *base;
	unsigned hold_timeout_ms;
	unsigned hold_max_per_project;
	unsigned hold_max;
	unsigned idle_timeout_ms;   /* default when the route has none */
	unsigned probe_interval_ms;
	unsigned stop_grace_ms;
	unsigned release_concurrency; /* held requests in flight at once */
	struct kube *kube;          /* Kubernetes provider, or NULL */
	const struct act_fleet *fleet; /* NULL: this process decides alone */
};

/* What to run for a project (copied). Either an exec command, or a
 * Kubernetes Deployment whose Service's ready endpoints receive the
 * requests (or, with has_addr, the fixed address: the Service's). */
struct act_target {
	const char *exec_command;  /* sh -c command */
	const char *namespace_, *deployment, *service;
	struct gw_addr addr;       /* exec: where it listens */
	bool has_addr;             /* kube: send here, not to the pods */
	unsigned idle_timeout_s;   /* 0: the default */
};

enum act_result {
	ACT_READY, /* warm: *addr is set, the request counts as activity */
	ACT_HELD,  /* the callback will tell */
	ACT_FULL,  /* hold queue full: answer 503 now */
	ACT_FAILED, /* the app could not be started: answer 503 now */
};

/* ok: *addr is where to send it (activity counted, waited_ms how long it
 * was held); !ok: answer 503 (why says what happened, for the log). */
typedef void (*act_cb)(void *arg, bool ok, const struct gw_addr *addr,
		       unsigned waited_ms, const char *why);

struct activator *activator_create(const struct act_params *p);

/* True when Kubernetes routes can be scaled (a kube provider is set). */
bool activator_has_kube(const struct activator *a);

/* The project called name (created cold on first use; target updated). */
struct act_project *activator_project(struct activator *a, const char *name,
				      const struct act_target *t);

enum act_result activator_acquire(struct act_project *p, act_cb cb, void *arg,
				  struct act_hold **hold, struct gw_addr *addr);

/* Give up a hold: its callback will not run. NULL is fine. */
void activator_cancel(struct act_hold *h);

/* One acquired request (or its stream) is over. */
void activator_done(struct act_project *p);

/* The app refused a connection while believed warm (stopped elsewhere):
 * treat it as cold so that the next acquire wakes it. */
void activator_refused(struct act_project *p);

/* Fail every hold, stop every app this activator started, free. */
void activator_destroy(struct activator *a);

#endif
