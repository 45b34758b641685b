/* hold.c - the bounded FIFO of requests waiting for a project, their
 * timeout, and their release over the ready endpoints. */
#include <event2/event.h>
#include <stdlib.h>

#include "activator_int.h"
#include "core/log.h"
#include "core/compat.h"

/* The oldest hold is the first to time out (one timeout for all). */
static void hold_arm(struct act_project *p)
{
	struct act_hold *h = TAILQ_FIRST(&p->holds);
	if (!h) {
		event_del(p->hold_timer);
		return;
	}
	uint64_t due = h->since_ms + p->a->p.hold_timeout_ms, now = gw_now_ms();
	unsigned ms = due > now ? (unsigned)(due - now) : 0;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_add(p->hold_timer, &tv);
}

static void hold_unlink(struct act_hold *h)
{
	struct act_project *p = h->p;
	bool first = TAILQ_FIRST(&p->holds) == h;
	TAILQ_REMOVE(&p->holds, h, link);
	p->nholds--;
	p->a->nholds--;
	if (first)
		hold_arm(p);
}

struct act_hold *act_hold_add(struct act_project *p, act_cb cb, void *arg)
{
	struct activator *a = p->a;
	if (p->nholds >= a->p.hold_max_per_project || a->nholds >= a->p.hold_max) {
		gw_log(GW_LOG_WARN, "activator",
		       "%s: hold queue full (%u here, %u in all)", p->name,
		       p->nholds, a->nholds);
		a->st.hold_rejections++;
		return NULL;
	}
	struct act_hold *h = gw_xcalloc(1, sizeof(*h));
	h->p = p;
	h->cb = cb;
	h->arg = arg;
	h->since_ms = gw_now_ms();
	TAILQ_INSERT_TAIL(&p->holds, h, link);
	p->nholds++;
	a->nholds++;
	a->st.holds++;
	if (p->nholds == 1)
		hold_arm(p);
	return h;
}

void activator_cancel(struct act_hold *h)
{
	if (!h)
		return;
	hold_unlink(h);
	free(h);
}

/* End one hold: with an endpoint, hand it out and count the request. */
static void hold_end(struct act_hold *h, struct act_ep *e, const char *why)
{
	struct act_project *p = h->p;
	act_cb cb = h->cb;
	void *arg = h->arg;
	unsigned waited = (unsigned)(gw_now_ms() - h->since_ms);
	hold_unlink(h);
	free(h);
	struct gw_addr to;
	if (e) {
		to = e->addr; /* copied: the set may change under the callback */
		act_request_start(p, e);
	}
	cb(arg, e != NULL, e ? &to : NULL, waited, why);
}

void act_holds_release(struct act_project *p)
{
	if (p->releasing)
		return; /* the outer loop goes on */
	p->releasing = true;
	struct act_hold *h;
	struct act_ep *e;
	/* At most release_concurrency in flight per endpoint: a burst of
	 * thousands would only queue inside a just-started app (and cost
	 * memory here); the rest follow as earlier ones finish. */
	while (p->state == ACT_WARM && (h = TAILQ_FIRST(&p->holds)) &&
	       (e = act_ep_pick(p, p->a->p.release_concurrency)))
		hold_end(h, e, NULL);
	p->releasing = false;
}

void act_holds_fail(struct act_project *p, const char *why)
{
	/* Only those queued now: a callback may queue a new request (a
	 * pipelined one), which belongs to the next wake. */
	unsigned n = p->nholds;
	struct act_hold *h;
	while (n-- && (h = TAILQ_FIRST(&p->holds)))
		hold_end(h, NULL, why);
}

void act_hold_timeout_cb(int fd, short what, void *arg)
{
	struct act_project *p = arg;
	uint64_t now = gw_now_ms();
	struct act_hold *h;
	unsigned n = p->nholds, expired = 0;
	while (n-- && (h = TAILQ_FIRST(&p->holds)) &&
	       h->since_ms + p->a->p.hold_timeout_ms <= now) {
		expired++;
		hold_end(h, NULL, "hold timeout");
	}
	p->a->st.hold_timeouts += expired;
	if (expired) /* one line for a burst, not one per request */
		gw_log(GW_LOG_WARN, "activator",
		       "%s: %u request(s) held %ums, app not ready", p->name,
		       expired, p->a->p.hold_timeout_ms);
	hold_arm(p);
}
