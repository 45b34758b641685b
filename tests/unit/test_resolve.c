/* test_resolve.c - numeric and /etc/hosts answers, failures, cancel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <string.h>

#include "core/resolve.h"

struct result {
	int calls;
	char text[64];
	char err[128];
};

static void cb(void *arg, const struct gw_addr *a, const char *err)
{
	struct result *r = arg;
	r->calls++;
	if (a)
		snprintf(r->text, sizeof(r->text), "%s", a->text);
	if (err)
		snprintf(r->err, sizeof(r->err), "%s", err);
}

static void run_for(struct event_base *b, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_base_loopexit(b, &tv);
	event_base_dispatch(b);
}

static void test_numeric_and_hosts(void **state)
{
	struct event_base *b = event_base_new();
	const char *err = NULL;
	struct resolver *r = resolver_create(b, 500, &err);
	assert_non_null(r);
	struct result n = {0}, h = {0};
	/* numeric: answered at once, no handle */
	assert_null(resolve_start(r, "127.0.0.2", 6379, cb, &n));
	assert_int_equal(n.calls, 1);
	assert_string_equal(n.text, "127.0.0.2:6379");
	/* localhost comes from /etc/hosts (IPv4 or IPv6 loopback) */
	resolve_start(r, "localhost", 7000, cb, &h);
	run_for(b, 50);
	assert_int_equal(h.calls, 1);
	assert_true(strcmp(h.text, "127.0.0.1:7000") == 0 ||
		    strcmp(h.text, "[::1]:7000") == 0);
	resolver_destroy(r);
	event_base_free(b);
}

static void test_failure_and_cancel(void **state)
{
	struct event_base *b = event_base_new();
	const char *err = NULL;
	struct resolver *r = resolver_create(b, 200, &err);
	assert_non_null(r);
	struct result bad = {0}, cancelled = {0};
	/* .invalid never exists (RFC 6761): NXDOMAIN, or a timeout when no
	 * nameserver answers; an error either way, once */
	resolve_start(r, "no-such-name.invalid", 1, cb, &bad);
	struct resolve_req *q =
		resolve_start(r, "also-missing.invalid", 1, cb, &cancelled);
	if (q)
		resolve_cancel(q);
	run_for(b, 1500);
	assert_int_equal(bad.calls, 1);
	assert_true(bad.err[0] != '\0');
	assert_string_equal(bad.text, "");
	assert_int_equal(cancelled.calls, q ? 0 : 1);
	/* a request pending at shutdown is failed, not leaked */
	struct result pending = {0};
	resolve_start(r, "third.invalid", 1, cb, &pending);
	resolver_destroy(r);
	assert_int_equal(pending.calls, 1);
	event_base_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numeric_and_hosts),
		cmocka_unit_test(test_failure_and_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
