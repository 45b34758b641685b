/* test_metrics.c - the Prometheus text, byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "core/stats.h"

struct mod {
	uint64_t accepted;
	uint64_t open;
	uint64_t start_ms;
	struct stats_hist lat;
};

static const struct stats_buckets tiny = {.divisor = 1000000, .n = 2,
					  .le = {5000, 1000000}};

static const struct stats_metric metrics[] = {
	{"gateway_accepted_connections", "Accepted \\ connections\nso far.",
	 STATS_COUNTER, offsetof(struct mod, accepted)},
	{"gateway_connections_open", "Open now.", STATS_GAUGE,
	 offsetof(struct mod, open)},
	{"gateway_start_time_seconds", "Start.", STATS_GAUGE,
	 offsetof(struct mod, start_ms), .divisor = 1000},
	{"gateway_latency_seconds", "Latency.", STATS_HISTOGRAM,
	 offsetof(struct mod, lat), &tiny},
};
static const char *const labels[] = {"listener", NULL};
static const struct stats_table table = {
	.labels = labels, .metrics = metrics, .nmetrics = 4,
};

struct row {
	uint64_t n;
};
static const struct stats_metric row_metrics[] = {
	{"gateway_requests", "Requests.", STATS_COUNTER, 0, .label = "code",
	 .label_value = "2xx"},
};
static const struct stats_table row_table = {
	.metrics = row_metrics, .nmetrics = 1, .row_size = sizeof(struct row),
};

static char *render(struct stats *st)
{
	struct stats_snap *s = stats_snap_create(NULL);
	stats_collect(st, s);
	struct evbuffer *b = evbuffer_new();
	metrics_render(s, b);
	size_t n = evbuffer_get_length(b);
	char *out = malloc(n + 1);
	evbuffer_remove(b, out, n);
	out[n] = '\0';
	evbuffer_free(b);
	stats_snap_destroy(s);
	return out;
}

static void test_exposition(void **state)
{
	struct stats *st = stats_create(5);
	struct mod m = {.accepted = 12, .open = 3, .start_ms = 1700000000123};
	stats_hist_observe(&m.lat, &tiny, 5000);
	stats_hist_observe(&m.lat, &tiny, 250000);
	stats_hist_observe(&m.lat, &tiny, 3000000);
	stats_register(st, &table, &m, (const char *[]){"a\"b"});
	struct stats_keyed *k = stats_keyed_create(st, &row_table, "project",
						   NULL);
	((struct row *)stats_keyed_row(k, "app\\1", 5))->n = 9;
	char *text = render(st);
	const char *want =
		"# HELP gateway_accepted_connections_total Accepted \\\\ "
		"connections\\nso far.\n"
		"# TYPE gateway_accepted_connections_total counter\n"
		"gateway_accepted_connections_total{listener=\"a\\\"b\"} 12\n"
		"# HELP gateway_connections_open Open now.\n"
		"# TYPE gateway_connections_open gauge\n"
		"gateway_connections_open{listener=\"a\\\"b\"} 3\n"
		"# HELP gateway_start_time_seconds Start.\n"
		"# TYPE gateway_start_time_seconds gauge\n"
		"gateway_start_time_seconds{listener=\"a\\\"b\"} 1700000000.123\n"
		"# HELP gateway_latency_seconds Latency.\n"
		"# TYPE gateway_latency_seconds histogram\n"
		"gateway_latency_seconds_bucket{listener=\"a\\\"b\",le=\"0.005\"} 1\n"
		"gateway_latency_seconds_bucket{listener=\"a\\\"b\",le=\"1\"} 2\n"
		"gateway_latency_seconds_bucket{listener=\"a\\\"b\",le=\"+Inf\"} 3\n"
		"gateway_latency_seconds_sum{listener=\"a\\\"b\"} 3.255\n"
		"gateway_latency_seconds_count{listener=\"a\\\"b\"} 3\n"
		"# HELP gateway_requests_total Requests.\n"
		"# TYPE gateway_requests_total counter\n"
		"gateway_requests_total{project=\"app\\\\1\",code=\"2xx\"} 9\n";
	assert_string_equal(text, want);
	free(text);
	stats_destroy(st);
}

static void test_unlabelled_and_empty(void **state)
{
	struct stats *st = stats_create(5);
	/* a keyed table with no rows renders nothing, not an empty family */
	stats_keyed_create(st, &row_table, "project", NULL);
	char *text = render(st);
	assert_string_equal(text, "");
	free(text);
	struct stats_snap *s = stats_snap_create(NULL);
	stats_snap_add(s, "gateway_workers", "Workers.", STATS_GAUGE, "", 4);
	struct evbuffer *b = evbuffer_new();
	metrics_render(s, b);
	evbuffer_add(b, "", 1);
	assert_string_equal((char *)evbuffer_pullup(b, -1),
			    "# HELP gateway_workers Workers.\n"
			    "# TYPE gateway_workers gauge\n"
			    "gateway_workers 4\n");
	evbuffer_free(b);
	stats_snap_destroy(s);
	stats_destroy(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exposition),
		cmocka_unit_test(test_unlabelled_and_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
