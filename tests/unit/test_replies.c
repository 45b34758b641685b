/* test_replies.c - the readers of Kubernetes bodies (activator/kube_parse.h)
 * and Redis replies (routeparse.h, auth_int.h, fleet_int.h): the cases the
 * fuzz targets in tests/fuzz/ found or were written for, pinned down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "auth_int.h"
#include "fleet_int.h"
#include "kube_parse.h"
#include "routeparse.h"

#define STR(s) {.type = REDIS_REPLY_STRING, .str = (char *)(s), .len = sizeof(s) - 1}
#define INT(n) {.type = REDIS_REPLY_INTEGER, .integer = (n)}

static void begin(redisReply *e0, redisReply *e1, struct fleet_begin *out)
{
	redisReply *el[3] = {e0, e1, &(redisReply)INT(0)};
	redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = 3, .element = el};
	fleet_begin_parse(&r, 9000, out);
}

static void test_begin_kinds(void **state)
{
	(void)state;
	struct fleet_begin b;
	begin(&(redisReply)STR("ours"), &(redisReply)INT(0), &b);
	assert_int_equal(b.kind, FLEET_BEGIN_OURS);
	assert_int_equal(b.again_ms, 3000); /* renew at ttl / 3 */
	begin(&(redisReply)STR("wait"), &(redisReply)INT(4000), &b);
	assert_int_equal(b.kind, FLEET_BEGIN_WAIT);
	assert_int_equal(b.again_ms, 4020);
	begin(&(redisReply)STR("wait"), &(redisReply)INT(-2), &b);
	assert_int_equal(b.again_ms, 9020); /* no PTTL: the lock's ttl */
	begin(&(redisReply)STR("cold"), &(redisReply)INT(300), &b);
	assert_int_equal(b.kind, FLEET_BEGIN_COLD);
	assert_int_equal(b.again_ms, 320);
	begin(&(redisReply)STR("nonsense"), &(redisReply)INT(0), &b);
	assert_int_equal(b.kind, FLEET_BEGIN_UNDRAINED);
	fleet_begin_parse(NULL, 9000, &b);
	assert_int_equal(b.kind, FLEET_BEGIN_NONE);
	assert_true(b.again_ms > 0);
}

/* A PTTL of 2^63-1 (or any number a broken script returns) once went into
 * "a + 20": signed overflow. Now clamped to ten minutes. */
static void test_begin_numbers_clamped(void **state)
{
	(void)state;
	struct fleet_begin b;
	begin(&(redisReply)STR("wait"), &(redisReply)STR("9223372036854775807"),
	      &b);
	assert_int_equal(b.kind, FLEET_BEGIN_WAIT);
	assert_int_equal(b.again_ms, 600000 + 20);
	begin(&(redisReply)STR("queued"), &(redisReply)INT(INT64_MAX), &b);
	assert_int_equal(b.pos, 600000);
	assert_true(b.len >= 0);
	begin(&(redisReply)STR("queued"), &(redisReply)INT(INT64_MIN), &b);
	assert_int_equal(b.pos, 0);
}

static void test_ready_news(void **state)
{
	(void)state;
	char project[256];
	struct gw_addr a[32];
	assert_int_equal(fleet_ready_parse("demo 127.0.0.1:9001,[::1]:9002,bad",
					   project, a, 32), 2);
	assert_string_equal(project, "demo");
	assert_string_equal(a[1].text, "[::1]:9002");
	assert_int_equal(fleet_ready_parse(" 127.0.0.1:1", project, a, 32), 0);
	assert_int_equal(fleet_ready_parse("demo", project, a, 32), 0);
	/* Past the 511 bytes read, the cut lands inside an address: with
	 * one of 10 bytes and 35 of 14 first, what is left of the next is
	 * "10.0.0.1:80", which parses (as another address). It must not
	 * count. */
	char news[1024] = "demo 1.2.3.4:5,";
	for (int i = 0; i < 45; i++)
		strcat(news, "10.0.0.1:8080,");
	struct gw_addr c[64];
	size_t n = fleet_ready_parse(news, project, c, 64);
	assert_int_equal(n, 36);
	for (size_t i = 1; i < n; i++)
		assert_string_equal(c[i].text, "10.0.0.1:8080");
	char few[1024] = "demo ";
	for (int i = 0; i < 36; i++)
		strcat(few, "10.0.0.2:8080,");
	few[strlen(few) - 1] = '\0';
	struct gw_addr b[64];
	n = fleet_ready_parse(few, project, b, 64);
	assert_int_equal(n, 36);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(b[i].text, "10.0.0.2:8080");
}

static void test_events(void **state)
{
	(void)state;
	struct routeparse_event ev;
	assert_int_equal(routeparse_event("route app.test", 14, &ev),
			 ROUTEPARSE_EVENT_ROUTE);
	assert_int_equal(ev.host.len, 8);
	assert_int_equal(routeparse_event("session abc", 11, &ev),
			 ROUTEPARSE_EVENT_OTHER);
	assert_string_equal(ev.kind, "session");
	assert_string_equal(ev.name, "abc");
	assert_int_equal(routeparse_event("session a\0c", 11, &ev),
			 ROUTEPARSE_EVENT_MALFORMED);
	assert_int_equal(routeparse_event("session ", 8, &ev),
			 ROUTEPARSE_EVENT_MALFORMED);
	assert_int_equal(routeparse_event("nonsense", 8, &ev),
			 ROUTEPARSE_EVENT_MALFORMED);
	assert_string_equal(ev.shown, "nonsense");
}

static void test_session(void **state)
{
	(void)state;
	redisReply *el[2] = {&(redisReply)STR("alice"),
			     &(redisReply)STR("2000000000")};
	redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = el};
	struct auth_session s;
	assert_int_equal(auth_session_reply(&r, 1700000000, &s),
			 AUTH_SESSION_VALID);
	assert_int_equal(s.user_len, 5);
	assert_int_equal(auth_session_reply(&r, 2000000000, &s),
			 AUTH_SESSION_NONE);
	el[1] = &(redisReply){.type = REDIS_REPLY_NIL};
	assert_int_equal(auth_session_reply(&r, 1700000000, &s),
			 AUTH_SESSION_BAD_EXPIRES);
	assert_int_equal(auth_member_reply(&(redisReply)INT(1)), AUTH_ALLOW);
	assert_int_equal(auth_member_reply(&(redisReply)INT(2)),
			 AUTH_FORBIDDEN);
	assert_int_equal(auth_member_reply(&(redisReply)STR("1")),
			 AUTH_UNAVAILABLE);
}

static void test_kube(void **state)
{
	(void)state;
	long long n;
	char *rv = NULL;
	const char *neg = "{\"spec\":{\"replicas\":-3},\"metadata\":"
			  "{\"resourceVersion\":\"7\"}}";
	assert_true(kube_parse_scale(neg, strlen(neg), &n, &rv));
	assert_int_equal(n, 0);
	assert_string_equal(rv, "7");
	free(rv);
	const char *big = "{\"spec\":{\"replicas\":9223372036854775807},"
			  "\"metadata\":{\"resourceVersion\":\"7\"}}";
	assert_true(kube_parse_scale(big, strlen(big), &n, &rv));
	assert_int_equal(n, INT32_MAX);
	free(rv);
	const char *flt = "{\"spec\":{\"replicas\":1.5},\"metadata\":"
			  "{\"resourceVersion\":\"7\"}}";
	assert_false(kube_parse_scale(flt, strlen(flt), &n, &rv));
	char why[8];
	const char *st = "{\"kind\":\"Status\",\"message\":\"too old resource\"}";
	assert_true(kube_parse_status(st, strlen(st), why, sizeof(why)));
	assert_string_equal(why, "too old");

	struct kube_slices *s = kube_slices_create();
	char rvb[16] = "";
	const char *list =
		"{\"metadata\":{\"resourceVersion\":\"12\"},\"items\":[{"
		"\"metadata\":{\"name\":\"a\"},\"addressType\":\"IPv4\","
		"\"ports\":[{\"port\":80}],\"endpoints\":[{\"addresses\":"
		"[\"10.0.0.1\",\"localhost.evil\",\"10.0.0.2:9\"]}]}]}";
	assert_true(kube_parse_list(s, list, strlen(list), rvb, sizeof(rvb)));
	assert_string_equal(rvb, "12");
	size_t k;
	struct kube_endpoint *eps = kube_slices_endpoints(s, &k);
	assert_int_equal(k, 1); /* only the numeric address */
	assert_string_equal(eps[0].addr.text, "10.0.0.1:80");
	free(eps);
	long long code;
	const char *del = "{\"type\":\"DELETED\",\"object\":{\"metadata\":"
			  "{\"name\":\"a\",\"resourceVersion\":\"13\"}}}";
	assert_int_equal(kube_parse_event(s, del, strlen(del), rvb, sizeof(rvb),
					  &code, why, sizeof(why)),
			 KUBE_EVENT_CHANGE);
	assert_int_equal(kube_slices_count(s), 0);
	assert_string_equal(rvb, "13");
	assert_int_equal(kube_parse_event(s, "{", 1, rvb, sizeof(rvb), &code,
					  why, sizeof(why)),
			 KUBE_EVENT_UNREADABLE);
	kube_slices_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_begin_kinds),
		cmocka_unit_test(test_begin_numbers_clamped),
		cmocka_unit_test(test_ready_news),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_session),
		cmocka_unit_test(test_kube),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
