/* activator_int.h - private to activator.c and hold.c: the project and
 * activator structures. Never included from outside activator/.
 *
 * Always true: p->nholds == length of p->holds; a->nholds == sum of
 * p->nholds; p->active == sum of eps[].active plus requests to addresses
 * that have left the set; at most one provider call is pending
 * (call_pending); a project with refs, holds, requests in flight or a
 * pending call is never freed.
 */
#ifndef GW_ACTIVATOR_INT_H
#define GW_ACTIVATOR_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "activator.h"
#include "provider.h"

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
	bool stop_asked;           /* fleet: may_stop in flight */
	unsigned idle_ms;
	unsigned probes_at_wake;   /* probe_attempts() when the wake began */
	uint64_t wake_start_ms;
	uint64_t last_active_ms;   /* last request start or end */
	uint64_t last_used_ms;     /* last lookup or request */
	uint64_t last_touch_ms;    /* fleet: activity last shared */
	uint64_t bind_ms;          /* provider last bound (or tried) */
	char name[];               /* as the route names it */
};

struct activator {
	struct act_params p;
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
void act_touch(struct act_project *p);

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
