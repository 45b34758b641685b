/* test_stats.c - registration, keyed tables and their cap, histograms,
 * snapshots: collect, encode, merge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "core/stats.h"

struct mod {
	uint64_t hits;
	uint64_t open;
	uint64_t cpu_us;
	struct stats_hist lat;
	int refreshed;
};

static void mod_refresh(void *obj)
{
	struct mod *m = obj;
	m->refreshed++;
	m->open = 7;
}

static const struct stats_metric mod_metrics[] = {
	{"gateway_test_hits", "Hits.", STATS_COUNTER, offsetof(struct mod, hits)},
	{"gateway_test_open", "Open now.", STATS_GAUGE, offsetof(struct mod, open)},
	{"gateway_test_cpu_seconds", "CPU.", STATS_COUNTER,
	 offsetof(struct mod, cpu_us), .divisor = 1000000},
	{"gateway_test_latency_seconds", "Latency.", STATS_HISTOGRAM,
	 offsetof(struct mod, lat), &stats_buckets_latency_us},
};
static const char *const mod_labels[] = {"listener", NULL};
static const struct stats_table mod_table = {
	.labels = mod_labels,
	.metrics = mod_metrics,
	.nmetrics = sizeof(mod_metrics) / sizeof(mod_metrics[0]),
	.refresh = mod_refresh,
};

/* Value of the series of family `name` whose key/labels match. */
static const uint64_t *find(const struct stats_snap *s, const char *name,
			    const char *key, const char *labels)
{
	for (size_t i = 0; i < stats_snap_nfamilies(s); i++) {
		struct stats_family_info f;
		stats_snap_family(s, i, &f);
		if (strcmp(f.name, name) != 0)
			continue;
		for (size_t j = 0; j < f.nseries; j++) {
			struct stats_series_info r;
			stats_snap_series(s, i, j, &r);
			if ((key == NULL) != (r.key == NULL))
				continue;
			if (key && strcmp(key, r.key) != 0)
				continue;
			if (strcmp(labels, r.labels) == 0)
				return r.v;
		}
	}
	return NULL;
}

static void test_register_and_collect(void **state)
{
	struct stats *st = stats_create(10);
	struct mod a = {0}, b = {0};
	stats_register(st, &mod_table, &a, (const char *[]){"1.2.3.4:80"});
	struct stats_reg *rb = stats_register(st, &mod_table, &b,
					      (const char *[]){"x\"y\\z\n"});
	a.hits = 3;
	b.hits = 5;
	a.cpu_us = 1500000;
	stats_hist_observe(&a.lat, &stats_buckets_latency_us, 1000);  /* le 1ms */
	stats_hist_observe(&a.lat, &stats_buckets_latency_us, 1001);  /* le 2.5ms */
	stats_hist_observe(&a.lat, &stats_buckets_latency_us, 999999999);
	struct stats_snap *s = stats_snap_create(NULL);
	stats_collect(st, s);
	assert_int_equal(a.refreshed, 1);
	const uint64_t *v = find(s, "gateway_test_hits", NULL,
				 "listener=\"1.2.3.4:80\"");
	assert_non_null(v);
	assert_int_equal(v[0], 3);
	/* label values are escaped once, at registration */
	v = find(s, "gateway_test_hits", NULL, "listener=\"x\\\"y\\\\z\\n\"");
	assert_non_null(v);
	assert_int_equal(v[0], 5);
	v = find(s, "gateway_test_open", NULL, "listener=\"1.2.3.4:80\"");
	assert_int_equal(v[0], 7);
	v = find(s, "gateway_test_latency_seconds", NULL,
		 "listener=\"1.2.3.4:80\"");
	assert_non_null(v);
	assert_int_equal(v[0], 3);                 /* count */
	assert_int_equal(v[1], 1000 + 1001 + 999999999); /* sum */
	assert_int_equal(v[2], 1);                 /* <= 1ms */
	assert_int_equal(v[3], 1);                 /* <= 2.5ms */
	assert_int_equal(v[2 + stats_buckets_latency_us.n], 1); /* +Inf */
	stats_snap_destroy(s);

	stats_unregister(rb);
	s = stats_snap_create(NULL);
	stats_collect(st, s);
	assert_null(find(s, "gateway_test_hits", NULL,
			 "listener=\"x\\\"y\\\\z\\n\""));
	stats_snap_destroy(s);
	stats_destroy(st);
}

struct row {
	uint64_t req;
	uint64_t req_5xx;
};

static const struct stats_metric row_metrics[] = {
	{"gateway_test_requests", "Requests.", STATS_COUNTER,
	 offsetof(struct row, req), .label = "code", .label_value = "2xx"},
	{"gateway_test_requests", "Requests.", STATS_COUNTER,
	 offsetof(struct row, req_5xx), .label = "code", .label_value = "5xx"},
};
static const struct stats_table row_table = {
	.metrics = row_metrics,
	.nmetrics = 2,
	.row_size = sizeof(struct row),
};

static void test_keyed_cap(void **state)
{
	struct stats *st = stats_create(2);
	struct stats_keyed *k = stats_keyed_create(st, &row_table, "project",
						   NULL);
	struct row *a = stats_keyed_row(k, "a", 1);
	struct row *b = stats_keyed_row(k, "b", 1);
	struct row *c = stats_keyed_row(k, "c", 1);
	struct row *d = stats_keyed_row(k, "d", 1);
	assert_true(a != b);
	assert_true(c == d);                        /* both _other */
	assert_true(stats_keyed_row(k, "a", 1) == a); /* sticky */
	assert_true(stats_keyed_row(k, "bad\n", 4) == c); /* not printable */
	assert_true(stats_keyed_row(k, STATS_KEY_OTHER, 6) == c);
	a->req = 1;
	b->req = 2;
	c->req = 10;
	c->req_5xx = 4;
	struct stats_snap *s = stats_snap_create(NULL);
	stats_collect(st, s);
	assert_int_equal(find(s, "gateway_test_requests", "a", "code=\"2xx\"")[0], 1);
	assert_int_equal(find(s, "gateway_test_requests", "b", "code=\"2xx\"")[0], 2);
	assert_int_equal(find(s, "gateway_test_requests", "_other", "code=\"2xx\"")[0], 10);
	assert_int_equal(find(s, "gateway_test_requests", "_other", "code=\"5xx\"")[0], 4);
	assert_null(find(s, "gateway_test_requests", "c", "code=\"2xx\""));
	stats_snap_destroy(s);
	stats_keyed_destroy(k);
	stats_destroy(st);
}

static void test_zero_keys_means_all_other(void **state)
{
	struct stats *st = stats_create(0);
	struct stats_keyed *k = stats_keyed_create(st, &row_table, "project",
						   NULL);
	struct row *a = stats_keyed_row(k, "a", 1);
	a->req = 3;
	struct stats_snap *s = stats_snap_create(NULL);
	stats_collect(st, s);
	assert_int_equal(find(s, "gateway_test_requests", "_other", "code=\"2xx\"")[0], 3);
	stats_snap_destroy(s);
	stats_destroy(st); /* frees the keyed table too */
}

static char *encode(const struct stats_snap *s, size_t *len)
{
	struct evbuffer *b = evbuffer_new();
	stats_snap_encode(s, b);
	*len = evbuffer_get_length(b);
	char *out = malloc(*len + 1);
	evbuffer_remove(b, out, *len);
	evbuffer_free(b);
	return out;
}

static void test_encode_merge(void **state)
{
	struct stats *st = stats_create(10);
	struct mod a = {.hits = 4};
	stats_hist_observe(&a.lat, &stats_buckets_latency_us, 20000);
	stats_register(st, &mod_table, &a, (const char *[]){"tab\there"});
	struct stats_keyed *k = stats_keyed_create(st, &row_table, "project",
						   NULL);
	((struct row *)stats_keyed_row(k, "p1", 2))->req = 6;
	struct stats_snap *s = stats_snap_create(NULL);
	stats_collect(st, s);
	size_t len;
	char *wire = encode(s, &len);

	/* Two workers' worth, capped at one project by the merger. */
	struct stats_admit *adm = stats_admit_create(1);
	struct stats_snap *m = stats_snap_create(adm);
	const char *err = NULL;
	assert_int_equal(stats_snap_merge_encoded(m, wire, len, &err), 0);
	assert_int_equal(stats_snap_merge_encoded(m, wire, len, &err), 0);
	assert_int_equal(find(m, "gateway_test_hits", NULL,
			      "listener=\"tab\there\"")[0], 8);
	const uint64_t *h = find(m, "gateway_test_latency_seconds", NULL,
				 "listener=\"tab\there\"");
	assert_int_equal(h[0], 2);
	assert_int_equal(h[1], 40000);
	assert_int_equal(find(m, "gateway_test_requests", "p1", "code=\"2xx\"")[0], 12);
	/* A project the merger has no room for goes to _other. */
	((struct row *)stats_keyed_row(k, "p2", 2))->req = 1;
	struct stats_snap *s2 = stats_snap_create(NULL);
	stats_collect(st, s2);
	size_t len2;
	char *wire2 = encode(s2, &len2);
	assert_int_equal(stats_snap_merge_encoded(m, wire2, len2, &err), 0);
	assert_int_equal(find(m, "gateway_test_requests", "p1", "code=\"2xx\"")[0], 18);
	assert_int_equal(find(m, "gateway_test_requests", "_other", "code=\"2xx\"")[0], 1);
	assert_null(find(m, "gateway_test_requests", "p2", "code=\"2xx\""));

	/* Garbage is refused with a reason, never crashes. */
	const char *bad[] = {"X\n", "F 9 1 0\tn\t\th\n", "S 0 1 5\tN\t\n",
			     "F 0 1 0\tn\t\th", "F 2 1000000 2 5 3\tn\t\th\n",
			     "F 0 1 0\t9bad\t\th\n", "F 0 7 0\tn\t\th\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(stats_snap_merge_encoded(m, bad[i],
							  strlen(bad[i]), &err),
				 -1);
		assert_non_null(err);
	}
	free(wire);
	free(wire2);
	stats_snap_destroy(s);
	stats_snap_destroy(s2);
	stats_snap_destroy(m);
	stats_admit_destroy(adm);
	stats_destroy(st);
}

static void test_format_scaled(void **state)
{
	char b[STATS_NUM_MAX];
	stats_format_scaled(b, sizeof(b), 5000, 1000000);
	assert_string_equal(b, "0.005");
	stats_format_scaled(b, sizeof(b), 2500, 1000000);
	assert_string_equal(b, "0.0025");
	stats_format_scaled(b, sizeof(b), 60000000, 1000000);
	assert_string_equal(b, "60");
	stats_format_scaled(b, sizeof(b), 1500, 1000);
	assert_string_equal(b, "1.5");
	stats_format_scaled(b, sizeof(b), 42, 1);
	assert_string_equal(b, "42");
	stats_format_scaled(b, sizeof(b), UINT64_MAX, 1);
	assert_string_equal(b, "18446744073709551615");
	assert_true(stats_pow10(1) && stats_pow10(1000) && !stats_pow10(0) &&
		    !stats_pow10(20));
	assert_true(stats_valid_metric_name("gateway_a:b_1"));
	assert_false(stats_valid_metric_name("1a"));
	assert_false(stats_valid_metric_name("a-b"));
	assert_true(stats_valid_label_name("project"));
	assert_false(stats_valid_label_name("__name"));
	assert_false(stats_valid_label_name("a:b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_and_collect),
		cmocka_unit_test(test_keyed_cap),
		cmocka_unit_test(test_zero_keys_means_all_other),
		cmocka_unit_test(test_encode_merge),
		cmocka_unit_test(test_format_scaled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
