/* resolve.c - evdns_getaddrinfo with a cancel that cannot race the
 * callback: libevent may call back with EVUTIL_EAI_CANCEL after
 * evdns_getaddrinfo_cancel(), so a cancelled request only drops its
 * caller and frees itself in that final callback. */
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "core/resolve.h"
#include "core/compat.h"

struct resolve_req {
	LIST_ENTRY(resolve_req) link;          /* in resolver.pending */
	struct evdns_getaddrinfo_request *req; /* NULL once answered */
	resolve_cb cb;                         /* NULL once cancelled */
	void *arg;
	bool started;                          /* evdns_getaddrinfo returned */
	bool finished;                         /* callback ran before that */
};

struct resolver {
	struct evdns_base *dns;
	LIST_HEAD(, resolve_req) pending;      /* started, not answered */
};

struct resolver *resolver_create(struct event_base *base, unsigned timeout_ms,
				 const char **err)
{
	struct evdns_base *dns =
		evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
					     EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!dns) {
		*err = "cannot read /etc/resolv.conf";
		return NULL;
	}
	char v[32];
	snprintf(v, sizeof(v), "%u.%03u", timeout_ms / 1000, timeout_ms % 1000);
	evdns_base_set_option(dns, "timeout:", v);
	evdns_base_set_option(dns, "attempts:", "2");
	struct resolver *r = gw_xcalloc(1, sizeof(*r));
	r->dns = dns;
	LIST_INIT(&r->pending);
	return r;
}

void resolver_destroy(struct resolver *r)
{
	if (!r)
		return;
	/* evdns finishes a cancelled lookup only on a later loop iteration,
	 * which at shutdown never comes: answer pending requests now and free
	 * them. libevent's own part of each lookup stays allocated until exit
	 * (tests/lsan.supp says why). */
	struct resolve_req *q;
	while ((q = LIST_FIRST(&r->pending))) {
		LIST_REMOVE(q, link);
		resolve_cb cb = q->cb;
		q->cb = NULL;
		if (cb)
			cb(q->arg, NULL, "resolver shut down");
		free(q);
	}
	evdns_base_free(r->dns, 0);
	free(r);
}

static void done_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct resolve_req *q = arg;
	q->req = NULL;
	if (q->started)
		LIST_REMOVE(q, link);
	if (q->cb) {
		if (result == 0 && res) {
			struct gw_addr a;
			gw_addr_from_sockaddr(&a, res->ai_addr,
					      (socklen_t)res->ai_addrlen);
			q->cb(q->arg, &a, NULL);
		} else {
			q->cb(q->arg, NULL,
			      result == EVUTIL_EAI_CANCEL
				      ? "resolver shut down"
				      : evutil_gai_strerror(result));
		}
	}
	if (res)
		evutil_freeaddrinfo(res);
	if (q->started)
		free(q);
	else
		q->finished = true; /* resolve_start frees it */
}

struct resolve_req *resolve_start(struct resolver *r, const char *host,
				  unsigned port, resolve_cb cb, void *arg)
{
	struct resolve_req *q = gw_xcalloc(1, sizeof(*q));
	q->cb = cb;
	q->arg = arg;
	char service[8];
	snprintf(service, sizeof(service), "%u", port);
	struct evutil_addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
		.ai_flags = EVUTIL_AI_ADDRCONFIG,
	};
	q->req = evdns_getaddrinfo(r->dns, host, service, &hints, done_cb, q);
	q->started = true;
	if (q->finished) {
		free(q);
		return NULL;
	}
	LIST_INSERT_HEAD(&r->pending, q, link);
	return q;
}

void resolve_cancel(struct resolve_req *q)
{
	if (!q)
		return;
	q->cb = NULL;
	if (q->req)
		evdns_getaddrinfo_cancel(q->req); /* done_cb frees q */
}
