/* listener.c - evconnlistener with connection-limit and EMFILE back-off. */
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listener.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/compat.h"

#define ACCEPT_BACKOFF_MS 100

/* ---- counters (core/stats.h) ---- */
struct listener_stats {
	uint64_t accepted; /* connections handed to the callback */
	uint64_t backoffs; /* accept errors, each pausing ACCEPT_BACKOFF_MS */
	uint64_t paused;   /* 1 while not accepting (full or backing off) */
};

static const struct stats_metric listener_metrics[] = {
	{"gateway_listener_accepted_connections",
	 "Client connections accepted.", STATS_COUNTER,
	 offsetof(struct listener_stats, accepted)},
	{"gateway_listener_accept_backoffs",
	 "accept() failures (EMFILE, ENFILE, ENOMEM), each pausing accept "
	 "for 100 ms.",
	 STATS_COUNTER, offsetof(struct listener_stats, backoffs)},
	{"gateway_listener_paused",
	 "1 while the listener does not accept (max_connections reached or "
	 "backing off).",
	 STATS_GAUGE, offsetof(struct listener_stats, paused)},
};
static const char *const listener_labels[] = {"listener", NULL};
static const struct stats_table listener_table = {
	.labels = listener_labels,
	.metrics = listener_metrics,
	.nmetrics = GW_ARRAY_LEN(listener_metrics),
};
/* ---- end of counters ---- */

struct listener {
	struct evconnlistener *evl;
	struct event *backoff;   /* re-enables accept after an error */
	struct gw_addr addr;
	bool full;               /* at max_connections */
	bool erroring;           /* waiting out an accept error */
	struct gw_ratelimit rl;  /* accept error log lines */
	listener_accept_cb cb;
	void *arg;
	struct listener_stats st;
	struct stats_reg *reg;   /* NULL until listener_stats_register */
};

static void update(struct listener *l)
{
	l->st.paused = l->full || l->erroring;
	if (l->full || l->erroring)
		evconnlistener_disable(l->evl);
	else
		evconnlistener_enable(l->evl);
}

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;
	l->st.accepted++;
	l->cb(l->arg, fd, sa, salen);
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	l->erroring = false;
	update(l);
}

static void error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	unsigned dropped = 0;
	if (gw_ratelimit_allow(&l->rl, gw_now_ms(), &dropped))
		gw_log(GW_LOG_WARN, "listener",
		       "%s: accept failed: %s; pausing %d ms (%u similar "
		       "lines suppressed)",
		       l->addr.text, evutil_socket_error_to_string(err),
		       ACCEPT_BACKOFF_MS, dropped);
	/* EMFILE/ENFILE/ENOMEM: the pending connection stays in the backlog;
	 * spinning on accept() would only burn CPU. */
	l->erroring = true;
	l->st.backoffs++;
	update(l);
	struct timeval tv = {0, ACCEPT_BACKOFF_MS * 1000};
	event_add(l->backoff, &tv);
}

struct listener *listener_create(struct event_base *base,
				 const struct gw_addr *addr,
				 listener_accept_cb cb, void *arg, char *err,
				 size_t errlen)
{
	struct listener *l = gw_xcalloc(1, sizeof(*l));
	l->addr = *addr;
	l->cb = cb;
	l->arg = arg;
	l->rl.interval_ms = 10000;
	l->rl.burst = 5;
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
			 LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT;
	if (addr->ss.ss_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	l->evl = evconnlistener_new_bind(base, accept_cb, l, flags, 511,
					 (const struct sockaddr *)&addr->ss,
					 (int)addr->len);
	if (!l->evl) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr->text,
			 strerror(errno));
		free(l);
		return NULL;
	}
	l->backoff = evtimer_new(base, backoff_cb, l);
	evconnlistener_set_error_cb(l->evl, error_cb);
	return l;
}

void listener_set_full(struct listener *l, bool full)
{
	if (l->full == full)
		return;
	l->full = full;
	update(l);
}

const struct gw_addr *listener_addr(const struct listener *l)
{
	return &l->addr;
}

void listener_stats_register(struct listener *l, struct stats *s)
{
	l->reg = stats_register(s, &listener_table, &l->st,
				(const char *const[]){l->addr.text});
}

void listener_destroy(struct listener *l)
{
	if (!l)
		return;
	stats_unregister(l->reg);
	evconnlistener_free(l->evl);
	if (l->backoff)
		event_free(l->backoff);
	free(l);
}
