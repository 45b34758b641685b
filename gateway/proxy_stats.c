/* proxy_stats.c - the proxy's counters: requests by project and status
 * class, upstream latency, exchanges in flight, tunnels, upstream connect
 * failures. The increments sit where things happen (proxy.c, proxy_up.c);
 * the tables, the per-exchange accounting and the gauges computed at
 * scrape time are here.
 */
#include <stdlib.h>
#include <string.h>

#include "proxy_int.h"
#include "routes.h"
#include "core/stats.h"
#include "core/compat.h"

/* Key of the series for exchanges that never had a project. */
#define UNROUTED_KEY "_none"

#define CODE_ROW(i, cls)                                                      \
	{"gateway_requests",                                                   \
	 "Exchanges ended, by project and status class (one per access-log "  \
	 "line; project=\"_none\": no route).",                               \
	 STATS_COUNTER,                                                        \
	 offsetof(struct proxy_project_stats, code) + (i) * sizeof(uint64_t), \
	 .label = "code", .label_value = (cls)}
static const struct stats_metric project_metrics[] = {
	CODE_ROW(0, "1xx"), CODE_ROW(1, "2xx"), CODE_ROW(2, "3xx"),
	CODE_ROW(3, "4xx"), CODE_ROW(4, "5xx"),
	{"gateway_project_upstream_latency_seconds",
	 "Per project: from the upstream leg's start (connect or pooled "
	 "connection) to the response head.",
	 STATS_HISTOGRAM, offsetof(struct proxy_project_stats, latency),
	 .buckets = &stats_buckets_latency_us},
};
#undef CODE_ROW
static const struct stats_table project_table = {
	.metrics = project_metrics,
	.nmetrics = GW_ARRAY_LEN(project_metrics),
	.row_size = sizeof(struct proxy_project_stats),
};

static void proxy_refresh(void *obj);

#define PC(f) offsetof(struct proxy_counters, f)
#define CONNECT_HELP "Upstream connects that failed, by reason."
static const struct stats_metric proxy_metrics[] = {
	{"gateway_upstream_latency_seconds",
	 "From the upstream leg's start (connect or pooled connection) to "
	 "the response head, every project.",
	 STATS_HISTOGRAM, PC(latency), .buckets = &stats_buckets_latency_us},
	{"gateway_requests_in_flight",
	 "Exchanges in progress now (held ones included, tunnels not).",
	 STATS_GAUGE, PC(in_flight)},
	{"gateway_tunnels_open", "Upgraded connections (WebSockets) open now.",
	 STATS_GAUGE, PC(tunnels_open)},
	{"gateway_tunnels", "Connections switched to a tunnel (101).",
	 STATS_COUNTER, PC(tunnels)},
	{"gateway_upstream_connect_failures", CONNECT_HELP, STATS_COUNTER,
	 PC(connect_refused), .label = "reason", .label_value = "refused"},
	{"gateway_upstream_connect_failures", CONNECT_HELP, STATS_COUNTER,
	 PC(connect_timeouts), .label = "reason", .label_value = "timeout"},
	{"gateway_upstream_connect_failures", CONNECT_HELP, STATS_COUNTER,
	 PC(connect_errors), .label = "reason", .label_value = "error"},
	{"gateway_upstream_connect_failures", CONNECT_HELP, STATS_COUNTER,
	 PC(connect_no_fds), .label = "reason", .label_value = "no_descriptors"},
	{"gateway_upstream_retries",
	 "Requests sent again on a fresh connection after a stale pooled one "
	 "failed.",
	 STATS_COUNTER, PC(retries)},
};
#undef CONNECT_HELP
#undef PC
static const struct stats_table proxy_table = {
	.metrics = proxy_metrics,
	.nmetrics = GW_ARRAY_LEN(proxy_metrics),
	.refresh = proxy_refresh,
};

/* Gauges cheaper to count at scrape time than to track per exchange. */
static void proxy_refresh(void *obj)
{
	struct proxy *px = gw_container_of((struct proxy_counters *)obj,
					   struct proxy, ctr);
	uint64_t in_flight = 0, tunnels = 0;
	struct conn *c;
	TAILQ_FOREACH(c, &px->conns, link) {
		in_flight += c->state == CONN_EXCHANGE;
		tunnels += c->state == CONN_TUNNEL;
	}
	px->ctr.in_flight = in_flight;
	px->ctr.tunnels_open = tunnels;
}

void proxy_stats_register(struct proxy *px, struct stats *s)
{
	px->reg = stats_register(s, &proxy_table, &px->ctr, NULL);
	px->by_project = stats_keyed_create(s, &project_table, "project", NULL);
	/* Taken first, so that it always has a series of its own. */
	px->unrouted = stats_keyed_row(px->by_project, UNROUTED_KEY,
				       sizeof(UNROUTED_KEY) - 1);
}

void proxy_stats_unregister(struct proxy *px)
{
	stats_unregister(px->reg);
	px->reg = NULL;
	stats_keyed_destroy(px->by_project);
	px->by_project = NULL;
	px->unrouted = &px->own_row;
}

struct proxy_project_stats *proxy_project_row(struct proxy *px,
					      struct route *r)
{
	if (!px->by_project)
		return px->unrouted;
	/* Rows live as long as the keyed table, so a route replaced under an
	 * exchange leaves a valid pointer behind. */
	if (!r->stats_row)
		r->stats_row = stats_keyed_row(px->by_project, r->project,
					       strlen(r->project));
	return r->stats_row;
}

void proxy_count_exchange(struct conn *c)
{
	struct exchange *x = &c->x;
	struct proxy_project_stats *row = x->prow ? x->prow : c->px->unrouted;
	unsigned cls = x->status >= 100 && x->status < 600
			       ? (unsigned)x->status / 100 - 1
			       : 3; /* no answer: the client left (499) */
	row->code[cls]++;
	if (x->t_up_head) {
		uint64_t us = x->t_up_head - x->t_up_start;
		stats_hist_observe(&row->latency, &stats_buckets_latency_us, us);
		stats_hist_observe(&c->px->ctr.latency, &stats_buckets_latency_us,
				   us);
	}
}
