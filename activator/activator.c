/* activator.c - the per-project state machine (COLD/WAKING/WARM/DRAINING),
 * the project table, endpoints and idle scale-down. Holds live in
 * hold.c, readiness probes in probe.c, the providers behind provider.h,
 * the fleet's side of the machine (shared wakes and scale-downs) in
 * activator_fleet.c.
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

#define REAP_MS 1000

static const char *const state_name[ACT_STATE_COUNT] = {
	[ACT_COLD] = "cold",
	[ACT_WAKING] = "waking",
	[ACT_WARM] = "warm",
	[ACT_DRAINING] = "draining",
};

static const char *const event_name[AE_COUNT] = {
	[AE_ACQUIRE] = "request",        [AE_WAKE_FAILED] = "wake failed",
	[AE_READY] = "ready",            [AE_WAKE_TIMEOUT] = "wake timeout",
	[AE_REFUSED] = "refused",        [AE_EMPTY] = "no endpoints",
	[AE_IDLE] = "idle",              [AE_STOPPED] = "stopped",
	[AE_STOP_FAILED] = "stop failed", [AE_EXITED] = "exited",
	[AE_RETARGET] = "route changed",
	[AE_DRAIN] = "scale-down elsewhere", [AE_UNDRAIN] = "scale-down off",
	[AE_COLD] = "scaled down elsewhere", [AE_FLEET_STOP] = "fleet scale-down",
	[AE_VERDICT] = "fleet verdict",  [AE_ABANDON] = "nobody waits",
};

static void step(struct act_project *p, enum act_event ev, const char *why);

void act_step(struct act_project *p, enum act_event ev, const char *why)
{
	step(p, ev, why);
}

void act_arm_ms(struct event *ev, unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_add(ev, &tv);
}

/* ---- endpoints ------------------------------------------------------------ */

static bool ep_usable(const struct act_ep *e)
{
	return (e->ready || e->probed) && !e->refused;
}

size_t act_usable_count(const struct act_project *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->neps; i++)
		n += ep_usable(&p->eps[i]);
	return n;
}

struct act_ep *act_ep_find(struct act_project *p, const struct gw_addr *a)
{
	for (size_t i = 0; i < p->neps; i++)
		if (gw_addr_eq(&p->eps[i].addr, a))
			return &p->eps[i];
	return NULL;
}

/* The next usable endpoint, round robin; with cap, only one with fewer
 * than cap requests in flight. NULL: none. */
struct act_ep *act_ep_pick(struct act_project *p, unsigned cap)
{
	for (size_t k = 0; k < p->neps; k++) {
		struct act_ep *e = &p->eps[p->rr++ % p->neps];
		if (ep_usable(e) && (!cap || e->active < cap))
			return e;
	}
	return NULL;
}

/* Replace the endpoint set, keeping what we know of the addresses that
 * stay (probed, refused, requests in flight). */
static void eps_set(struct act_project *p, const struct provider_endpoint *in,
		    size_t n)
{
	struct act_ep *eps = gw_xcalloc(n ? n : 1, sizeof(*eps));
	for (size_t i = 0; i < n; i++) {
		struct act_ep *old = act_ep_find(p, &in[i].addr);
		if (old)
			eps[i] = *old;
		eps[i].addr = in[i].addr;
		eps[i].ready = in[i].ready;
	}
	free(p->eps);
	p->eps = eps;
	p->neps = n;
}

void act_eps_clear(struct act_project *p)
{
	free(p->eps);
	p->eps = NULL;
	p->neps = 0;
}

void act_eps_add_probed(struct act_project *p, const struct gw_addr *addrs,
			size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct act_ep *e = act_ep_find(p, &addrs[i]);
		if (!e) {
			p->eps = gw_xrealloc(p->eps, (p->neps + 1) * sizeof(*e));
			e = &p->eps[p->neps++];
			memset(e, 0, sizeof(*e));
			e->addr = addrs[i];
		}
		e->probed = true;
		e->refused = false;
	}
}

/* Probe every candidate (new ones at once), unless the fleet says this
 * is not the time (queued, or a scale-down goes first). */
void act_probe_all(struct act_project *p)
{
	if (!act_probe_allowed(p))
		return;
	struct gw_addr *addrs = gw_xcalloc(p->neps ? p->neps : 1, sizeof(*addrs));
	for (size_t i = 0; i < p->neps; i++)
		addrs[i] = p->eps[i].addr;
	probe_start(p->probe, addrs, p->neps, p->pv->probe_interval_ms);
	free(addrs);
}

void act_probe_stop(struct act_project *p)
{
	probe_stop(p->probe);
}

/* ---- the provider's calls --------------------------------------------------- */

void act_call_wake(struct act_project *p)
{
	if (p->call_pending)
		return; /* one call at a time: a wake still on its way counts */
	const char *why = NULL;
	switch (p->pv->ops->wake(p->pv, &why)) {
	case PROVIDER_PENDING:
		p->call_pending = true;
		p->call = PROVIDER_WAKE;
		break;
	case PROVIDER_DONE:
		break;
	case PROVIDER_FAILED:
		step(p, AE_WAKE_FAILED, why);
		break;
	}
}

/* ---- the state machine -------------------------------------------------------- */

static void enter_cold(struct act_project *p, enum act_event ev, const char *why)
{
	probe_stop(p->probe);
	event_del(p->wake_timer);
	if (p->pv && p->pv->ops->watch_stop)
		p->pv->ops->watch_stop(p->pv);
	act_eps_clear(p);
	p->rewake = false;
	bool prewake = p->prewake; /* asked for while it was stopping */
	p->prewake = false;
	p->call_again = false;
	if (p->call_pending && p->pv->ops->cancel(p->pv))
		p->call_pending = false; /* else its answer is ignored */
	if (ev == AE_WAKE_FAILED || ev == AE_WAKE_TIMEOUT) {
		act_holds_fail(p, why);
		return;
	}
	/* Requests that came while it stopped (or were queued for release)
	 * wake it again; so does a login that came meanwhile. */
	if (p->nholds || (prewake && ev == AE_COLD) ||
	    (prewake && ev == AE_STOPPED)) {
		p->prewake = prewake && !p->nholds;
		step(p, AE_ACQUIRE, NULL);
	}
}

static void enter_waking(struct act_project *p, enum act_event ev)
{
	p->wake_start_ms = gw_now_ms();
	p->probes_at_wake = probe_attempts(p->probe);
	p->rewake = ev == AE_REFUSED;
	act_arm_ms(p->wake_timer, p->a->p.wake_timeout_ms);
	if (p->pv->has_fixed) {
		struct provider_endpoint fixed = {.addr = p->pv->fixed};
		eps_set(p, &fixed, 1);
	}
	/* What we know must be proven again; pods known from the watch are
	 * probed at once (one that came back on the same address too). */
	for (size_t i = 0; i < p->neps; i++)
		p->eps[i].probed = p->eps[i].refused = false;
	if (p->pv->ops->watch_start)
		p->pv->ops->watch_start(p->pv);
	gw_log(GW_LOG_INFO, "activator", "%s: waking (%s%s%s)", p->name,
	       p->pv->ops->name, ev == AE_REFUSED ? ", refused while warm" : "",
	       p->prewake ? ", pre-wake" : "");
	if (act_fleet_managed(p)) {
		/* One scale call across the fleet: it says who makes it. */
		act_fleet_enter_waking(p, ev);
		return;
	}
	act_probe_all(p);
	act_call_wake(p); /* last: may fail and go on to COLD */
}

static void enter_warm(struct act_project *p, enum act_event ev)
{
	probe_stop(p->probe);
	event_del(p->wake_timer);
	p->rewake = false;
	p->prewake = false;
	p->last_active_ms = gw_now_ms();
	if (ev == AE_READY)
		gw_log(GW_LOG_INFO, "activator",
		       "%s: ready after %llums (%s); releasing %u held "
		       "request(s)",
		       p->name,
		       (unsigned long long)(gw_now_ms() - p->wake_start_ms),
		       p->ready_news ? "ready news from the fleet" : "probed",
		       p->nholds);
	else
		gw_log(GW_LOG_INFO, "activator", "%s: warm (%s); releasing %u "
		       "held request(s)", p->name, event_name[ev], p->nholds);
	p->ready_news = false;
	act_holds_release(p);
}

static void enter_draining(struct act_project *p, enum act_event ev)
{
	probe_stop(p->probe);
	if (ev == AE_DRAIN) {
		/* Another process scales it down once every process agrees:
		 * from now on nothing goes to its pods. */
		gw_log(GW_LOG_INFO, "activator",
		       "%s: scale-down starting; new requests are held",
		       p->name);
		return;
	}
	p->fleet_stop = ev == AE_FLEET_STOP;
	const char *why = NULL;
	switch (p->pv->ops->stop(p->pv, &why)) {
	case PROVIDER_PENDING:
		p->call_pending = true;
		p->call = PROVIDER_STOP;
		break;
	case PROVIDER_DONE:
		step(p, AE_STOPPED, NULL);
		break;
	case PROVIDER_FAILED:
		step(p, AE_STOP_FAILED, why);
		break;
	}
}

/* DRAINING without a stop of ours pending: a fleet scale-down elsewhere,
 * requests held until it is committed and done, or called off. */
static bool draining_held(const struct act_project *p)
{
	return p->state == ACT_DRAINING && !p->call_pending;
}

/* The one transition function: the next state for (state, event), then
 * the new state's entry actions. */
static void step(struct act_project *p, enum act_event ev, const char *why)
{
	enum act_state from = p->state, to = from;
	bool reenter = false;
	switch (from) {
	case ACT_COLD:
		if ((ev == AE_ACQUIRE || ev == AE_FLEET_STOP) && p->pv)
			to = ev == AE_ACQUIRE ? ACT_WAKING : ACT_DRAINING;
		break;
	case ACT_WAKING:
		if (ev == AE_READY)
			to = ACT_WARM;
		else if (ev == AE_WAKE_FAILED || ev == AE_EXITED ||
			 ev == AE_ABANDON)
			to = ACT_COLD;
		else if (ev == AE_WAKE_TIMEOUT)
			/* A local app stuck starting is stopped; a Deployment
			 * is the platform's (the next request asks again). */
			to = p->pv->local ? ACT_DRAINING : ACT_COLD;
		else if (ev == AE_RETARGET)
			reenter = true;
		break;
	case ACT_WARM:
		if (ev == AE_IDLE || ev == AE_DRAIN || ev == AE_FLEET_STOP)
			to = ACT_DRAINING;
		else if (ev == AE_REFUSED)
			to = ACT_WAKING;
		else if (ev == AE_EMPTY || ev == AE_EXITED ||
			 ev == AE_RETARGET || ev == AE_COLD)
			to = ACT_COLD;
		break;
	case ACT_DRAINING:
		if (ev == AE_STOPPED || ev == AE_EXITED || ev == AE_RETARGET)
			to = ACT_COLD;
		else if (ev == AE_STOP_FAILED)
			/* Still up; without a known endpoint it wakes again
			 * (the fleet's stop comes from a process that may never
			 * have served it). */
			to = act_usable_count(p) ? ACT_WARM : ACT_COLD;
		else if (ev == AE_ACQUIRE && p->call_pending && !p->fleet_stop &&
			 p->pv->ops->cancel(p->pv)) {
			/* The stop never reached the platform: still up. */
			p->call_pending = false;
			to = act_usable_count(p) ? ACT_WARM : ACT_WAKING;
		} else if (draining_held(p)) {
			if (ev == AE_COLD)
				to = ACT_COLD;
			else if (ev == AE_FLEET_STOP)
				reenter = true;
			else if (ev == AE_UNDRAIN ||
				 (ev == AE_VERDICT &&
				  p->verdict == ACT_VERDICT_UNDRAINED))
				to = act_usable_count(p) ? ACT_WARM : ACT_WAKING;
			else if (ev == AE_VERDICT &&
				 p->verdict != ACT_VERDICT_WAIT_COLD)
				/* No scale-down any more (its mark expired):
				 * wake as the fleet says. */
				to = ACT_WAKING;
		}
		break;
	case ACT_STATE_COUNT:
		break;
	}
	if (to == from && !reenter)
		return;
	gw_log(GW_LOG_DEBUG, "activator", "%s: %s -> %s (%s%s%s)", p->name,
	       state_name[from], state_name[to], event_name[ev],
	       why ? ": " : "", why ? why : "");
	act_fleet_leave(p, from, to, ev, reenter);
	act_stats_transition(p, from, to, ev);
	if (ev == AE_WAKE_TIMEOUT)
		act_holds_fail(p, why); /* before a local app is stopped */
	if (ev == AE_RETARGET)
		act_eps_clear(p); /* the old app's pods must not answer for the new */
	p->state = to;
	switch (to) {
	case ACT_COLD:
		enter_cold(p, ev, why);
		break;
	case ACT_WAKING:
		enter_waking(p, ev);
		break;
	case ACT_WARM:
		enter_warm(p, ev);
		break;
	case ACT_DRAINING:
		enter_draining(p, ev);
		break;
	case ACT_STATE_COUNT:
		break;
	}
}

/* ---- what the provider and the probes report ---------------------------------- */

static void sink_call_done(void *arg, enum provider_call call, bool ok,
			   const char *why)
{
	struct act_project *p = arg;
	if (!p->call_pending || p->call != call)
		return;
	p->call_pending = false;
	if (call == PROVIDER_WAKE && p->state == ACT_WAKING && !ok) {
		gw_log(GW_LOG_ERROR, "activator", "%s: cold start failed: %s",
		       p->name, why);
		step(p, AE_WAKE_FAILED, why);
	} else if (call == PROVIDER_WAKE && p->state == ACT_WAKING &&
		   p->call_again) {
		/* It was scaled down while this call was on its way: what the
		 * call saw is stale, ask again. */
		p->call_again = false;
		act_call_wake(p);
	} else if (call == PROVIDER_STOP && p->state == ACT_DRAINING) {
		step(p, ok ? AE_STOPPED : AE_STOP_FAILED, why);
	}
}

static void sink_endpoints(void *arg, const struct provider_endpoint *eps,
			   size_t n)
{
	struct act_project *p = arg;
	eps_set(p, eps, n);
	switch (p->state) {
	case ACT_WAKING:
		act_probe_all(p);
		break;
	case ACT_WARM:
		if (act_usable_count(p)) {
			act_holds_release(p); /* more room, if any waited */
			break;
		}
		gw_log(GW_LOG_INFO, "activator", "%s: no %sendpoint left",
		       p->name, n ? "usable " : "");
		step(p, n ? AE_REFUSED : AE_EMPTY, NULL);
		break;
	case ACT_COLD:
	case ACT_DRAINING:
	case ACT_STATE_COUNT:
		break;
	}
}

static void sink_exited(void *arg, const char *why)
{
	struct act_project *p = arg;
	char msg[128];
	snprintf(msg, sizeof(msg), "app exited (%s)%s", why,
		 p->state == ACT_WAKING ? " before it was ready" : "");
	if (p->state == ACT_WAKING && p->rewake) {
		/* It was warm, a connect was refused, and now we know why:
		 * start it again for the requests waiting. */
		gw_log(GW_LOG_WARN, "activator", "%s: %s; starting it again",
		       p->name, msg);
		p->rewake = false;
		act_call_wake(p);
		return;
	}
	gw_log(GW_LOG_WARN, "activator", "%s: %s", p->name, msg);
	step(p, p->state == ACT_WAKING ? AE_WAKE_FAILED : AE_EXITED, msg);
}

static void probe_ok(void *arg, const struct gw_addr *addr)
{
	struct act_project *p = arg;
	struct act_ep *e = act_ep_find(p, addr);
	if (e) {
		e->probed = true;
		e->refused = false;
	}
	if (p->state == ACT_WAKING)
		step(p, AE_READY, NULL);
}

static void wake_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct act_project *p = arg;
	char why[160];
	snprintf(why, sizeof(why),
		 "not ready after %ums (%u probe(s) of %zu address(es))",
		 p->a->p.wake_timeout_ms,
		 probe_attempts(p->probe) - p->probes_at_wake, p->neps);
	gw_log(GW_LOG_ERROR, "activator", "%s: cold start failed: %s", p->name,
	       why);
	step(p, AE_WAKE_TIMEOUT, why);
}

/* ---- the project table --------------------------------------------------------- */

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct act_project **table_slot(struct activator *a, const char *name)
{
	struct act_project **pp =
		&a->buckets[name_hash(name) & (a->nbuckets - 1)];
	while (*pp && strcmp((*pp)->name, name) != 0)
		pp = &(*pp)->next;
	return pp;
}

struct act_project *act_project_find(struct activator *a, const char *name)
{
	return *table_slot(a, name);
}

static void table_grow(struct activator *a)
{
	size_t n = a->nbuckets * 2;
	struct act_project **b = gw_xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < a->nbuckets; i++) {
		struct act_project *p = a->buckets[i], *next;
		for (; p; p = next) {
			next = p->next;
			struct act_project **pp = &b[name_hash(p->name) & (n - 1)];
			p->next = *pp;
			*pp = p;
		}
	}
	free(a->buckets);
	a->buckets = b;
	a->nbuckets = n;
}

static void project_free(struct act_project *p)
{
	act_holds_fail(p, "shutting down");
	if (p->pv)
		p->pv->ops->destroy(p->pv);
	probe_destroy(p->probe);
	event_free(p->wake_timer);
	event_free(p->hold_timer);
	free(p->eps);
	free(p);
}

enum provider_kind { KIND_NONE = 0, KIND_EXEC, KIND_KUBE };

static enum provider_kind kind_of(const struct activator *a,
				  const struct act_target *t)
{
	if (t->exec_command)
		return KIND_EXEC;
	if (t->deployment && a->p.kube.api)
		return KIND_KUBE;
	return KIND_NONE;
}

/* Bind a provider of the target's kind (NULL when none can serve it). */
static void bind_provider(struct act_project *p, const struct act_target *t)
{
	struct activator *a = p->a;
	struct provider_sink sink = {.call_done = sink_call_done,
				     .endpoints = sink_endpoints,
				     .exited = sink_exited,
				     .arg = p};
	const char *err = NULL;
	p->kind = kind_of(a, t);
	p->bind_ms = gw_now_ms();
	switch (p->kind) {
	case KIND_EXEC:
		p->pv = exec_provider_create(a->exec, t, a->p.probe_interval_ms,
					     &sink);
		break;
	case KIND_KUBE: {
		struct kube_provider_params kp = {
			.api = a->p.kube.api,
			.probe_interval_ms = a->p.kube.probe_interval_ms,
			.poll_interval_ms = a->p.kube.poll_interval_ms,
			.watch_timeout_s = a->p.kube.watch_timeout_s,
			.wake_replicas = a->p.kube.wake_replicas,
			.max_replicas = a->p.kube.max_replicas,
			.shared = a->p.fleet != NULL,
		};
		p->pv = kube_provider_create(&kp, t, &sink, &err);
		break;
	}
	case KIND_NONE:
		err = "no provider for this route";
		break;
	}
	if (!p->pv)
		gw_log(GW_LOG_ERROR, "activator", "%s: cannot be woken: %s",
		       p->name, err);
}

struct act_project *activator_project(struct activator *a, const char *name,
				      const struct act_target *t)
{
	struct act_project **pp = table_slot(a, name);
	struct act_project *p = *pp;
	if (!p) {
		size_t n = strlen(name);
		p = gw_xcalloc(1, sizeof(*p) + n + 1);
		memcpy(p->name, name, n + 1);
		p->a = a;
		TAILQ_INIT(&p->holds);
		p->probe = probe_create(a->p.base, probe_ok, p);
		p->wake_timer = evtimer_new(a->p.base, wake_timeout_cb, p);
		p->hold_timer = evtimer_new(a->p.base, act_hold_timeout_cb, p);
		if (!p->wake_timer || !p->hold_timer)
			gw_oom(0);
		bind_provider(p, t);
		*pp = p;
		if (++a->count > a->nbuckets && !a->iterating)
			table_grow(a);
	} else if ((int)kind_of(a, t) != p->kind ||
		   (!p->pv && gw_now_ms() - p->bind_ms >= 1000)) {
		/* exec <-> Kubernetes: rebind once nothing is in flight. A
		 * target that could not be bound is tried again (the route may
		 * be fixed by now), at most once a second. */
		if (p->state == ACT_COLD && !p->call_pending) {
			if (p->pv)
				p->pv->ops->destroy(p->pv);
			p->pv = NULL;
			bind_provider(p, t);
		}
	} else if (p->pv->ops->update(p->pv, t)) {
		p->call_pending = false; /* update cancelled it */
		step(p, AE_RETARGET, NULL);
	}
	p->idle_ms = t->idle_timeout_s ? t->idle_timeout_s * 1000
				       : a->p.idle_timeout_ms;
	p->last_used_ms = gw_now_ms();
	p->refs++;
	return p;
}

struct act_project *activator_project_get(struct activator *a,
					  const char *name)
{
	struct act_project *p = *table_slot(a, name);
	if (p)
		p->refs++;
	return p;
}

void activator_project_release(struct act_project *p)
{
	if (p && p->refs)
		p->refs--;
}

/* ---- requests ------------------------------------------------------------------- */

void act_request_start(struct act_project *p, struct act_ep *e)
{
	e->active++;
	p->active++;
	p->last_active_ms = gw_now_ms();
	if (p->active == 1 && act_fleet_managed(p))
		act_fleet_busy(p);
}

enum act_result activator_acquire(struct act_project *p, act_cb cb, void *arg,
				  struct act_hold **hold, struct gw_addr *addr)
{
	*hold = NULL;
	p->last_used_ms = gw_now_ms();
	if (!p->pv)
		return ACT_FAILED;
	/* Before queueing, so that a start that fails at once is answered
	 * here, never by a callback inside this call. */
	if (p->state == ACT_COLD || p->state == ACT_DRAINING)
		step(p, AE_ACQUIRE, NULL);
	if (p->state == ACT_COLD)
		return ACT_FAILED;
	/* Warm with nobody queued: go. With a queue (a release in
	 * progress), newcomers line up behind it. */
	if (p->state == ACT_WARM && p->nholds == 0) {
		struct act_ep *e = act_ep_pick(p, 0);
		if (e) {
			act_request_start(p, e);
			*addr = e->addr;
			return ACT_READY;
		}
	}
	*hold = act_hold_add(p, cb, arg);
	if (*hold && p->state == ACT_DRAINING && act_fleet_managed(p))
		act_fleet_ask(p); /* a scale-down elsewhere: call it off */
	return *hold ? ACT_HELD : ACT_FULL;
}

void activator_done(struct act_project *p, const struct gw_addr *addr)
{
	if (p->active)
		p->active--;
	struct act_ep *e = addr ? act_ep_find(p, addr) : NULL;
	if (e && e->active)
		e->active--;
	p->last_active_ms = gw_now_ms();
	if (p->nholds && p->state == ACT_WARM)
		act_holds_release(p);
}

void activator_refused(struct act_project *p, const struct gw_addr *addr)
{
	struct act_ep *e = addr ? act_ep_find(p, addr) : NULL;
	if (e) {
		e->refused = true;
		e->probed = false;
	}
	if (p->state != ACT_WARM || (e && act_usable_count(p)))
		return;
	gw_log(GW_LOG_WARN, "activator",
	       "%s: %s refused while believed warm; waking again", p->name,
	       addr ? addr->text : "?");
	step(p, AE_REFUSED, NULL);
}

bool activator_has_kube(const struct activator *a)
{
	return a && a->p.kube.api;
}

/* ---- idle ---------------------------------------------------------------------- */

static void reap_one(struct act_project *p, uint64_t now)
{
	if (act_fleet_managed(p)) {
		/* Scale-down is the fleet's decision (its leader drains it
		 * once every process agrees): only share what we see. */
		act_fleet_tick(p, now);
		return;
	}
	if (p->state != ACT_WARM || p->active || p->nholds ||
	    now - p->last_active_ms < p->idle_ms)
		return;
	gw_log(GW_LOG_INFO, "activator", "%s: idle for %llus; stopping", p->name,
	       (unsigned long long)(now - p->last_active_ms) / 1000);
	step(p, AE_IDLE, NULL);
}

static bool forgettable(const struct act_project *p, uint64_t now)
{
	return p->state == ACT_COLD && !p->nholds && !p->active && !p->refs &&
	       !p->call_pending && p->role == ACT_ROLE_NONE &&
	       !p->busy_shared && now - p->last_used_ms >= p->idle_ms;
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	struct activator *a = arg;
	uint64_t now = gw_now_ms();
	a->iterating = true; /* no rehash under our feet */
	for (size_t i = 0; i < a->nbuckets; i++) {
		struct act_project **pp = &a->buckets[i];
		while (*pp) {
			struct act_project *p = *pp;
			reap_one(p, now);
			if (!forgettable(p, now)) {
				pp = &p->next;
				continue;
			}
			/* Cold, unused, unreferenced (a removed route, or an
			 * app nobody visits): it costs nothing to forget. */
			gw_log(GW_LOG_DEBUG, "activator", "%s: forgotten (unused)",
			       p->name);
			*pp = p->next;
			a->count--;
			project_free(p);
		}
	}
	a->iterating = false;
}

/* ---- lifetime ---------------------------------------------------------------------- */

struct activator *activator_create(const struct act_params *prm)
{
	struct activator *a = gw_xcalloc(1, sizeof(*a));
	a->p = *prm;
	a->nbuckets = 64;
	a->buckets = gw_xcalloc(a->nbuckets, sizeof(*a->buckets));
	a->exec = exec_group_create(prm->base, prm->stop_grace_ms);
	a->reaper = event_new(prm->base, -1, EV_PERSIST, reaper_cb, a);
	if (!a->reaper)
		gw_oom(0);
	unsigned tick = prm->idle_timeout_ms / 4;
	if (tick > REAP_MS || tick == 0)
		tick = REAP_MS;
	act_arm_ms(a->reaper, tick);
	return a;
}

void activator_reconfigure(struct activator *a, const struct act_params *p)
{
	a->p.hold_timeout_ms = p->hold_timeout_ms;
	a->p.hold_max_per_project = p->hold_max_per_project;
	a->p.hold_max = p->hold_max;
	a->p.idle_timeout_ms = p->idle_timeout_ms;
	a->p.wake_timeout_ms = p->wake_timeout_ms;
	a->p.probe_interval_ms = p->probe_interval_ms;
	a->p.release_concurrency = p->release_concurrency;
}

void activator_fleet_detach(struct activator *a)
{
	if (a)
		a->p.fleet = NULL;
}

void activator_destroy(struct activator *a)
{
	if (!a)
		return;
	a->p.fleet = NULL; /* the fleet is gone by now */
	/* Every app this process started, at once, within stop_grace. */
	exec_group_shutdown(a->exec);
	for (size_t i = 0; i < a->nbuckets; i++) {
		struct act_project *p;
		while ((p = a->buckets[i])) {
			a->buckets[i] = p->next;
			project_free(p);
		}
	}
	free(a->buckets);
	act_stats_unregister(a);
	exec_group_destroy(a->exec);
	event_free(a->reaper);
	free(a);
}
