/* activator_int.h - private to activator.c and hold.c: the project and
 * activator structures. Never included from outside activator/.
 *
 * Always true: p->nholds == length of p->holds; a->nholds == sum of
 * p->nholds; p->active == sum of eps[].active plus requests to addresses
 * that have left the set; at most one provider call is pending
 * (call_pending); a project with refs, holds, requests in flight or a
 * pending call is never freed; role != ACT_ROLE_NONE exactly while the
 * fleet has a wake ticket for the project (wake_begin() called, wake_end()
 * not yet), which is only in WAKING, or in DRAINING after a request asked.
 */
#ifndef GW_ACTIVATOR_INT_H
#define GW_ACTIVATOR_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "activator.h"
#include "provider.h"
#include "core/stats.h"

struct event;
struct probe;

/* Project state (one enum, one transition function: step()). */
enum act_state {
	ACT_COLD = 0,  /* not running as far as we know; no watch, no probe */
	ACT_WAKING,    /* wake asked (or awaited from another process);
			  probing every candidate; requests held */
	ACT_WARM,      /* an endpoint accepted: requests go out */
	ACT_DRAINING,  /* stop asked, not confirmed yet; requests held */
	ACT_STATE_COUNT
};

/* What can happen to a project; step() decides what it does. */
enum act_event {
	AE_ACQUIRE = 0,  /* a request wants a cold or draining app */
	AE_WAKE_FAILED,  /* the wake call failed, or the app died starting */
	AE_READY,        /* a probe connected (or the fleet's ready news) */
	AE_WAKE_TIMEOUT, /* wake_timeout passed while waking */
	AE_REFUSED,      /* warm, but no usable endpoint left: wake again */
	AE_EMPTY,        /* warm, and the platform reports no endpoint */
	AE_IDLE,         /* idle here (not fleet-managed) */
	AE_STOPPED,      /* the stop is confirmed */
	AE_STOP_FAILED,  /* the stop failed: the app keeps running */
	AE_EXITED,       /* the app went away by itself */
	AE_RETARGET,     /* the route now names another app */
	AE_DRAIN,        /* fleet: a scale-down elsewhere begins; idle here */
	AE_UNDRAIN,      /* fleet: that scale-down was called off */
	AE_COLD,         /* fleet: scaled to zero elsewhere */
	AE_FLEET_STOP,   /* fleet: this process scales it down for all */
	AE_VERDICT,      /* fleet: a wake verdict for a draining project */
	AE_ABANDON,      /* fleet: queued for a wake slot, nobody waits now */
	AE_COUNT
};

/* How a fleet-managed WAKING project wakes (a sub-state of WAKING; also
 * set in DRAINING once a held request asked the fleet). */
enum act_role {
	ACT_ROLE_NONE = 0,  /* no fleet ticket (not fleet-managed, or idle) */
	ACT_ROLE_ASKING,    /* wake_begin() sent, no verdict yet: no probes */
	ACT_ROLE_CALL,      /* we make the scale call; probing */
	ACT_ROLE_WAIT,      /* another process makes it; probing */
	ACT_ROLE_QUEUED,    /* waiting for a wake slot: no probes */
	ACT_ROLE_WAIT_COLD, /* a committed scale-down first: no probes */
	ACT_ROLE_COUNT
};

/* One address of the app. */
struct act_ep {
	struct gw_addr addr;
	bool ready;      /* the platform says it serves */
	bool probed;     /* our probe connected since the last wake */
	bool refused;    /* a request's connect was refused since */
	unsigned active; /* requests sent there, not done yet */
};

struct act_hold {
	TAILQ_ENTRY(act_hold) link;
	struct act_project *p;
	act_cb cb;
	void *arg;
	uint64_t since_ms;
};
TAILQ_HEAD(act_hold_list, act_hold);

struct act_project {
	struct act_project *next;  /* hash chain */
	struct activator *a;
	struct provider *pv;       /* NULL: nothing can wake it */
	int kind;                  /* which provider kind pv is */
	enum act_state state;
	struct act_ep *eps;        /* known addresses (candidates) */
	size_t neps;
	size_t rr;                 /* round-robin cursor */
	struct probe *probe;
	struct act_hold_list holds; /* FIFO: oldest first */
	unsigned nholds;
	struct event *hold_timer;  /* the oldest hold's hold_timeout */
	struct event *wake_timer;  /* wake_timeout */
	bool releasing;            /* act_holds_release() is on the stack */
	unsigned active;           /* acquired and not done */
	unsigned refs;             /* callers and fleet questions holding p */
	bool call_pending;         /* a provider wake/stop is pending */
	enum provider_call call;   /* which one */
	bool rewake;               /* waking again after refusals */
	enum act_role role;        /* fleet: how it wakes (see enum) */
	enum act_verdict verdict;  /* fleet: the verdict AE_VERDICT carries */
	bool call_again;           /* fleet: wake call again once the pending
				      one ends (scaled down under it) */
	bool fleet_stop;           /* fleet: the pending stop is the fleet's
				      scale-down (stopped() follows) */
	bool prewake;              /* woken with nobody waiting (login) */
	bool ready_news;           /* AE_READY came from the fleet's news */
	bool busy_shared;          /* fleet: our "busy" entry is published */
	uint64_t busy_ms;          /* fleet: when it was last refreshed */
	unsigned idle_ms;
	unsigned probes_at_wake;   /* probe_attempts() when the wake began */
	uint64_t wake_start_ms;
	uint64_t last_active_ms;   /* last request start or end */
	uint64_t last_used_ms;     /* last lookup or request */
	uint64_t bind_ms;          /* provider last bound (or tried) */
	char name[];               /* as the route names it */
};

/* The activator's counters (activator_stats.c). */
struct act_stats {
	uint64_t wakes;          /* WAKING entered */
	uint64_t wakes_ready;    /* WAKING -> WARM */
	uint64_t wakes_failed;   /* wake failed, or the app died starting */
	uint64_t wakes_timeout;  /* wake_timeout */
	struct stats_hist wake_duration; /* wake start -> ready, us */
	uint64_t stops;          /* stops confirmed (scale-downs) */
	uint64_t stop_failures;
	uint64_t holds;          /* requests queued */
	uint64_t hold_timeouts;  /* holds that ended with hold_timeout */
	uint64_t hold_rejections; /* refused: a hold limit was reached */
	uint64_t held;           /* gauge (refresh): a->nholds */
	uint64_t state[ACT_STATE_COUNT]; /* gauges (refresh): projects */
};

struct activator {
	struct act_params p;
	struct act_stats st;
	struct stats_reg *reg;     /* NULL until activator_stats_register */
	struct act_project **buckets; /* power of two */
	size_t nbuckets, count;
	bool iterating;            /* the reaper walks the table: no rehash */
	unsigned nholds;
	struct exec_group *exec;
	struct event *reaper;
};

/* activator.c */
struct act_ep *act_ep_find(struct act_project *p, const struct gw_addr *a);
struct act_ep *act_ep_pick(struct act_project *p, unsigned cap);
size_t act_usable_count(const struct act_project *p);
/* A request to an endpoint starts (counted in p->active and e->active). */
void act_request_start(struct act_project *p, struct act_ep *e);
/* The one transition function. */
void act_step(struct act_project *p, enum act_event ev, const char *why);
/* The project called name, or NULL (never creates one). */
struct act_project *act_project_find(struct activator *a, const char *name);
/* Probe every candidate now and every probe interval (waking). */
void act_probe_all(struct act_project *p);
void act_probe_stop(struct act_project *p);
/* Ask the provider to wake the app (at most one call pending). */
void act_call_wake(struct act_project *p);
/* Add addresses known to answer (the fleet's ready news): probed. */
void act_eps_add_probed(struct act_project *p, const struct gw_addr *addrs,
			size_t n);
void act_eps_clear(struct act_project *p);
void act_arm_ms(struct event *ev, unsigned ms);

/* activator_fleet.c: the fleet side of the state machine */
bool act_fleet_managed(const struct act_project *p);
/* Entry actions of WAKING for a fleet-managed project. */
void act_fleet_enter_waking(struct act_project *p, enum act_event ev);
/* Apply a wake verdict to a WAKING project (its sub-state). */
void act_fleet_apply(struct act_project *p, enum act_verdict v);
/* Called by step() on every transition, before the entry actions: ends
 * the fleet's wake ticket and reports a fleet stop, as due. */
void act_fleet_leave(struct act_project *p, enum act_state from,
		     enum act_state to, enum act_event ev, bool reenter);
/* A request for a DRAINING project held here: ask the fleet (once). */
void act_fleet_ask(struct act_project *p);
/* Reaper tick: share activity, end abandoned queued wakes. */
void act_fleet_tick(struct act_project *p, uint64_t now);
/* A request started (active just went up). */
void act_fleet_busy(struct act_project *p);
/* May probes run now? (not while asking, queued or waiting for cold) */
bool act_probe_allowed(const struct act_project *p);

/* activator_stats.c */
/* Count a transition (step(), before the entry actions). */
void act_stats_transition(struct act_project *p, enum act_state from,
			  enum act_state to, enum act_event ev);
void act_stats_unregister(struct activator *a);

/* hold.c */
/* Queue a request; NULL when a hold limit is reached (logged). */
struct act_hold *act_hold_add(struct act_project *p, act_cb cb, void *arg);
/* Hand held requests to usable endpoints, within release_concurrency
 * per endpoint, oldest first. */
void act_holds_release(struct act_project *p);
/* Fail every hold queued now (not those queued by the callbacks). */
void act_holds_fail(struct act_project *p, const char *why);
void act_hold_timeout_cb(int fd, short what, void *arg);

#endif
