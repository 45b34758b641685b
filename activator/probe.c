/* probe.c - TCP connect readiness probes (probe.h). */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probe.h"
#include "core/compat.h"

struct slot {
	struct probe *pr;
	struct gw_addr addr;
	evutil_socket_t fd;   /* connect in flight, or -1 */
	struct event *ev;     /* its write-ready/timeout event */
};

struct probe {
	struct event_base *base;
	probe_cb cb;
	void *arg;
	struct slot slots[PROBE_CANDIDATES_MAX];
	size_t n;
	unsigned attempts;
	bool running;
	struct event *tick;   /* the next round */
	struct event *hit;    /* reports a connect that succeeded at once */
	struct gw_addr hit_addr;
};

static void slot_close(struct slot *s)
{
	if (s->ev) {
		event_free(s->ev);
		s->ev = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}

static void slot_cb(evutil_socket_t fd, short what, void *arg)
{
	struct slot *s = arg;
	struct probe *pr = s->pr;
	int soerr = -1;
	socklen_t len = sizeof(soerr);
	if (what & EV_WRITE)
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
	struct gw_addr addr = s->addr;
	slot_close(s);
	if (soerr == 0)
		pr->cb(pr->arg, &addr); /* may restart or stop: s is gone */
}

static void hit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *pr = arg;
	if (pr->running)
		pr->cb(pr->arg, &pr->hit_addr);
}

static void slot_try(struct slot *s)
{
	struct probe *pr = s->pr;
	if (s->fd >= 0)
		return; /* still trying from an earlier round */
	pr->attempts++;
	s->fd = socket(s->addr.ss.ss_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return;
	if (connect(s->fd, (const struct sockaddr *)&s->addr.ss, s->addr.len) ==
	    0) {
		slot_close(s);
		pr->hit_addr = s->addr;
		event_active(pr->hit, EV_TIMEOUT, 0); /* from the loop */
		return;
	}
	if (errno != EINPROGRESS) {
		slot_close(s); /* refused: the app does not listen yet */
		return;
	}
	s->ev = event_new(pr->base, s->fd, EV_WRITE, slot_cb, s);
	if (!s->ev) {
		slot_close(s);
		return;
	}
	struct timeval tv = {PROBE_CONNECT_TIMEOUT_MS / 1000,
			     (PROBE_CONNECT_TIMEOUT_MS % 1000) * 1000};
	event_add(s->ev, &tv);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe *pr = arg;
	for (size_t i = 0; i < pr->n; i++)
		slot_try(&pr->slots[i]);
}

struct probe *probe_create(struct event_base *base, probe_cb cb, void *arg)
{
	struct probe *pr = gw_xcalloc(1, sizeof(*pr));
	pr->base = base;
	pr->cb = cb;
	pr->arg = arg;
	pr->tick = event_new(base, -1, EV_PERSIST, tick_cb, pr);
	pr->hit = evtimer_new(base, hit_cb, pr);
	if (!pr->tick || !pr->hit)
		gw_oom(0);
	for (size_t i = 0; i < PROBE_CANDIDATES_MAX; i++) {
		pr->slots[i].pr = pr;
		pr->slots[i].fd = -1;
	}
	return pr;
}

void probe_stop(struct probe *pr)
{
	pr->running = false;
	event_del(pr->tick);
	event_del(pr->hit);
	for (size_t i = 0; i < pr->n; i++)
		slot_close(&pr->slots[i]);
	pr->n = 0;
}

void probe_start(struct probe *pr, const struct gw_addr *addrs, size_t n,
		 unsigned interval_ms)
{
	probe_stop(pr);
	if (n == 0)
		return; /* nothing to try until candidates come */
	pr->n = n < PROBE_CANDIDATES_MAX ? n : PROBE_CANDIDATES_MAX;
	for (size_t i = 0; i < pr->n; i++)
		pr->slots[i].addr = addrs[i];
	pr->running = true;
	if (!interval_ms)
		interval_ms = 1;
	struct timeval tv = {interval_ms / 1000, (interval_ms % 1000) * 1000};
	event_add(pr->tick, &tv);
	tick_cb(-1, 0, pr); /* the first round now */
}

unsigned probe_attempts(const struct probe *pr)
{
	return pr->attempts;
}

void probe_destroy(struct probe *pr)
{
	if (!pr)
		return;
	probe_stop(pr);
	event_free(pr->tick);
	event_free(pr->hit);
	free(pr);
}
