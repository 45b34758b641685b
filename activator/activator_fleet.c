/* activator_fleet.c - the fleet's side of the project state machine:
 * shared wakes (who makes the scale call, admission, ready news), the
 * drain handshake of a scale-down decided elsewhere, and the activity
 * this process shares. The hooks (struct act_fleet) go to gateway/fleet*.c;
 * the activator_fleet_* entry points are its news. docs/fleet.md has the
 * protocol and its sequence diagrams.
 *
 * The states stay COLD/WAKING/WARM/DRAINING (activator.c, step()); the
 * fleet adds the wake role, a sub-state of WAKING (enum act_role), and a
 * DRAINING without a stop of ours: requests are held while another
 * process scales the app down.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activator.h"
#include "activator_int.h"
#include "probe.h"
#include "provider.h"
#include "core/log.h"
#include "core/compat.h"

/* A project whose last request ended this long ago withdraws its "busy"
 * entry (a burst of short requests writes once, not per request). */
#define BUSY_LINGER_MS 500
/* Addresses sent with a wake's end (the ready news carries them). */
#define READY_ADDRS_MAX 16

static const char *const role_name[ACT_ROLE_COUNT] = {
	[ACT_ROLE_NONE] = "none",       [ACT_ROLE_ASKING] = "asking",
	[ACT_ROLE_CALL] = "call",       [ACT_ROLE_WAIT] = "wait",
	[ACT_ROLE_QUEUED] = "queued",   [ACT_ROLE_WAIT_COLD] = "wait-cold",
};

static const struct act_fleet *hooks(const struct act_project *p)
{
	return p->a->p.fleet;
}

bool act_fleet_managed(const struct act_project *p)
{
	return p->a->p.fleet && p->pv && p->pv->shared;
}

bool act_probe_allowed(const struct act_project *p)
{
	return p->role == ACT_ROLE_NONE || p->role == ACT_ROLE_CALL ||
	       p->role == ACT_ROLE_WAIT;
}

static void ask(struct act_project *p)
{
	p->role = ACT_ROLE_ASKING;
	hooks(p)->wake_begin(hooks(p)->arg, p->name);
}

/* End the fleet's wake ticket (none: nothing to do). */
static void ticket_end(struct act_project *p, bool ready)
{
	if (p->role == ACT_ROLE_NONE)
		return;
	p->role = ACT_ROLE_NONE;
	if (!hooks(p))
		return;
	struct gw_addr addrs[READY_ADDRS_MAX];
	size_t n = 0;
	for (size_t i = 0; ready && i < p->neps && n < READY_ADDRS_MAX; i++)
		if ((p->eps[i].ready || p->eps[i].probed) && !p->eps[i].refused)
			addrs[n++] = p->eps[i].addr;
	hooks(p)->wake_end(hooks(p)->arg, p->name, ready, addrs, n, p->idle_ms);
}

void act_fleet_leave(struct act_project *p, enum act_state from,
		     enum act_state to, enum act_event ev, bool reenter)
{
	if (from == ACT_DRAINING && p->fleet_stop &&
	    (to != ACT_DRAINING || reenter)) {
		/* First, so that its news ("cold") goes out before the wake
		 * that requests held meanwhile start (same connection). */
		p->fleet_stop = false;
		if (hooks(p))
			hooks(p)->stopped(hooks(p)->arg, p->name,
					  ev == AE_STOPPED);
	}
	/* The ticket lives on through the verdict that moves a draining
	 * project to WAKING, and within DRAINING; everything else ends it. */
	bool keep = !reenter && ((to == ACT_WAKING && ev == AE_VERDICT) ||
				 (to == ACT_DRAINING && from == ACT_DRAINING));
	if (!keep)
		ticket_end(p, to == ACT_WARM && ev == AE_READY);
}

void act_fleet_enter_waking(struct act_project *p, enum act_event ev)
{
	if (ev == AE_VERDICT) { /* from DRAINING: the ticket answered */
		act_fleet_apply(p, p->verdict);
		return;
	}
	ask(p);
}

void act_fleet_ask(struct act_project *p)
{
	if (p->role == ACT_ROLE_NONE && !p->call_pending && hooks(p))
		ask(p);
}

void act_fleet_apply(struct act_project *p, enum act_verdict v)
{
	enum act_role was = p->role;
	switch (v) {
	case ACT_VERDICT_CALL:
		p->role = ACT_ROLE_CALL;
		break;
	case ACT_VERDICT_WAIT:
	case ACT_VERDICT_UNDRAINED:
		p->role = ACT_ROLE_WAIT;
		break;
	case ACT_VERDICT_QUEUED:
		p->role = ACT_ROLE_QUEUED;
		break;
	case ACT_VERDICT_WAIT_COLD:
		p->role = ACT_ROLE_WAIT_COLD;
		break;
	case ACT_VERDICT_COUNT:
		return;
	}
	if (was != p->role)
		gw_log(GW_LOG_INFO, "activator", "%s: %s", p->name,
		       p->role == ACT_ROLE_CALL ? "this gateway makes the scale call"
		       : p->role == ACT_ROLE_WAIT
			       ? v == ACT_VERDICT_UNDRAINED
					 ? "scale-down called off; it runs"
					 : "another gateway is waking it; waiting for "
					   "its news and probing"
		       : p->role == ACT_ROLE_QUEUED
			       ? "waiting for a wake slot (max_waking)"
			       : "a scale-down is committed; waking it after");
	if (p->role == ACT_ROLE_QUEUED || p->role == ACT_ROLE_WAIT_COLD) {
		/* Nothing to probe yet; pods of a scale-down must not
		 * answer for the next wake. */
		probe_stop(p->probe);
		if (p->role == ACT_ROLE_WAIT_COLD)
			act_eps_clear(p);
		return;
	}
	if (was == ACT_ROLE_QUEUED || was == ACT_ROLE_WAIT_COLD) {
		/* Its wake starts only now: wake_timeout from here. */
		p->wake_start_ms = gw_now_ms();
		p->probes_at_wake = probe_attempts(p->probe);
		act_arm_ms(p->wake_timer, p->a->p.wake_timeout_ms);
	}
	act_probe_all(p);
	if (p->role == ACT_ROLE_CALL) {
		if (p->call_pending)
			p->call_again = true; /* what it read may be stale */
		else
			act_call_wake(p); /* last: may fail, go COLD */
	}
}

/* ---- news ------------------------------------------------------------------ */

static struct act_project *managed(struct activator *a, const char *name)
{
	struct act_project *p = a->p.fleet ? act_project_find(a, name) : NULL;
	return p && act_fleet_managed(p) ? p : NULL;
}

void activator_fleet_verdict(struct activator *a, const char *project,
			     enum act_verdict v)
{
	struct act_project *p = managed(a, project);
	if (!p || p->role == ACT_ROLE_NONE)
		return; /* its ticket ended meanwhile */
	gw_log(GW_LOG_DEBUG, "activator", "%s: verdict %d in role %s", p->name,
	       (int)v, role_name[p->role]);
	if (p->state == ACT_WAKING) {
		act_fleet_apply(p, v);
		return;
	}
	if (p->state == ACT_DRAINING) {
		if (v == ACT_VERDICT_WAIT_COLD) {
			if (p->role != ACT_ROLE_WAIT_COLD)
				gw_log(GW_LOG_INFO, "activator",
				       "%s: a scale-down is committed; waking it "
				       "after (%u held)", p->name, p->nholds);
			p->role = ACT_ROLE_WAIT_COLD; /* held until "cold" */
			return;
		}
		p->verdict = v;
		act_step(p, AE_VERDICT, NULL);
	}
}

bool activator_fleet_ready(struct activator *a, const char *project,
			   const struct gw_addr *addrs, size_t n)
{
	struct act_project *p = managed(a, project);
	/* Only a wake that may use it: not while a scale-down goes first. */
	if (!p || p->state != ACT_WAKING || p->role == ACT_ROLE_WAIT_COLD ||
	    n == 0)
		return false;
	/* The holder of the wake lock connected to these a moment ago:
	 * trust it, and release the holds now rather than at our own next
	 * probe (a refused connect takes an address out again). */
	act_eps_add_probed(p, addrs, n);
	p->ready_news = true;
	act_step(p, AE_READY, NULL);
	return true;
}

bool activator_fleet_drain(struct activator *a, const char *project)
{
	struct act_project *p = a->p.fleet ? act_project_find(a, project) : NULL;
	if (!p || !act_fleet_managed(p))
		return true; /* nothing of it here */
	switch (p->state) {
	case ACT_COLD:
		return true; /* its next request asks the fleet first */
	case ACT_WAKING:
		return false;
	case ACT_WARM: {
		uint64_t idle = gw_now_ms() - p->last_active_ms;
		if (p->active || p->nholds || idle < p->idle_ms) {
			gw_log(GW_LOG_INFO, "activator",
			       "%s: in use here (%u open, %u held, idle %llums); "
			       "scale-down called off",
			       p->name, p->active, p->nholds,
			       (unsigned long long)idle);
			return false;
		}
		act_step(p, AE_DRAIN, NULL);
		return p->state == ACT_DRAINING;
	}
	case ACT_DRAINING:
		return !p->nholds || p->call_pending;
	case ACT_STATE_COUNT:
		break;
	}
	return false;
}

void activator_fleet_undrain(struct activator *a, const char *project)
{
	struct act_project *p = managed(a, project);
	if (!p)
		return;
	if (p->state == ACT_DRAINING && !p->call_pending)
		act_step(p, AE_UNDRAIN, NULL);
	else if (p->state == ACT_WAKING && p->role == ACT_ROLE_WAIT_COLD)
		ask(p); /* the scale-down failed: it may run, or not */
}

void activator_fleet_cold(struct activator *a, const char *project)
{
	struct act_project *p = managed(a, project);
	if (!p)
		return;
	if (p->state == ACT_WARM ||
	    (p->state == ACT_DRAINING && !p->call_pending)) {
		act_step(p, AE_COLD, NULL);
		return;
	}
	if (p->state == ACT_WAKING && p->role != ACT_ROLE_ASKING &&
	    p->role != ACT_ROLE_QUEUED) {
		/* Scaled down under this wake: whatever it saw or probed is
		 * gone. Decide again (our lock, if any, is still ours). */
		probe_stop(p->probe);
		act_eps_clear(p);
		ask(p);
	}
}

bool activator_fleet_stop(struct act_project *p)
{
	/* Every process acked: here it is idle or held (DRAINING), or cold
	 * (never used here). Anything else means the agreement is stale. */
	bool ok = p->pv && act_fleet_managed(p) && !p->call_pending &&
		  (p->state == ACT_COLD || p->state == ACT_DRAINING ||
		   (p->state == ACT_WARM && !p->active));
	if (!ok)
		return false;
	/* stopped() follows exactly once, when the stop ends (maybe from
	 * inside this call, when the provider answers at once). */
	act_step(p, AE_FLEET_STOP, NULL);
	return true;
}

void activator_fleet_prewake(struct act_project *p)
{
	if (!p->pv || !act_fleet_managed(p))
		return;
	if (p->state == ACT_DRAINING) {
		p->prewake = true; /* once it is down: see enter_cold() */
		return;
	}
	if (p->state != ACT_COLD)
		return; /* waking or warm already */
	p->prewake = true;
	act_step(p, AE_ACQUIRE, NULL);
}

/* ---- activity ----------------------------------------------------------------- */

static void share(struct act_project *p, bool busy, uint64_t now)
{
	p->busy_shared = busy;
	p->busy_ms = now;
	hooks(p)->activity(hooks(p)->arg, p->name, busy, p->idle_ms);
}

void act_fleet_busy(struct act_project *p)
{
	if (!p->busy_shared)
		share(p, true, gw_now_ms());
}

void act_fleet_tick(struct act_project *p, uint64_t now)
{
	unsigned refresh = hooks(p)->busy_refresh_ms;
	if (p->active && (!p->busy_shared || now - p->busy_ms >= refresh))
		share(p, true, now);
	else if (!p->active && p->busy_shared &&
		 now - p->last_active_ms >= BUSY_LINGER_MS)
		share(p, false, now);
	if (p->state == ACT_WAKING && p->role == ACT_ROLE_QUEUED &&
	    !p->nholds && !p->prewake) {
		gw_log(GW_LOG_INFO, "activator",
		       "%s: nobody waits for it any more; leaving the wake queue",
		       p->name);
		act_step(p, AE_ABANDON, NULL);
	}
}
