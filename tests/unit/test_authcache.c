/* test_authcache.c - the decision cache and its two indexes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "authcache.h"

static int get(struct authcache *c, const char *sid, const char *project,
	       uint64_t now)
{
	int d = -1;
	return authcache_get(c, sid, project, now, &d) ? d : -1;
}

static void test_put_get_expire(void **state)
{
	(void)state;
	struct authcache *c = authcache_create(100, 42);
	authcache_put(c, "s1", "p1", 1, 1000);
	authcache_put(c, "s1", "p2", 2, 1000);
	authcache_put(c, "s2", "p1", 3, 500);
	assert_int_equal(get(c, "s1", "p1", 10), 1);
	assert_int_equal(get(c, "s1", "p2", 10), 2);
	assert_int_equal(get(c, "s2", "p1", 10), 3);
	assert_int_equal(get(c, "s2", "p2", 10), -1);
	/* no confusion between ("s1","p1") and ("s1p","1") */
	assert_int_equal(get(c, "s1p", "1", 10), -1);
	/* replaced, not duplicated */
	authcache_put(c, "s1", "p1", 4, 1000);
	assert_int_equal(get(c, "s1", "p1", 10), 4);
	assert_int_equal(authcache_count(c), 3);
	/* expiry is exclusive of the deadline, and drops the entry */
	assert_int_equal(get(c, "s2", "p1", 500), -1);
	assert_int_equal(authcache_count(c), 2);
	authcache_destroy(c);
	authcache_destroy(NULL);
}

static void test_drop_by_session_and_project(void **state)
{
	(void)state;
	struct authcache *c = authcache_create(1000, 7);
	char s[16], p[16];
	for (int i = 0; i < 20; i++)
		for (int j = 0; j < 5; j++) {
			snprintf(s, sizeof(s), "sid%d", i);
			snprintf(p, sizeof(p), "proj%d", j);
			authcache_put(c, s, p, i * 10 + j, 1000);
		}
	assert_int_equal(authcache_count(c), 100);
	assert_int_equal(authcache_drop_session(c, "sid3"), 5);
	assert_int_equal(authcache_drop_session(c, "sid3"), 0);
	assert_int_equal(authcache_drop_session(c, "nobody"), 0);
	assert_int_equal(get(c, "sid3", "proj0", 1), -1);
	assert_int_equal(get(c, "sid4", "proj0", 1), 40);
	assert_int_equal(authcache_drop_project(c, "proj2"), 19);
	assert_int_equal(get(c, "sid4", "proj2", 1), -1);
	assert_int_equal(get(c, "sid4", "proj1", 1), 41);
	assert_int_equal(authcache_count(c), 100 - 5 - 19);
	/* groups emptied by one index are gone for the other too */
	authcache_put(c, "sid3", "proj2", 99, 1000);
	assert_int_equal(get(c, "sid3", "proj2", 1), 99);
	assert_int_equal(authcache_drop_project(c, "proj2"), 1);
	authcache_clear(c);
	assert_int_equal(authcache_count(c), 0);
	authcache_destroy(c);
}

static void test_bounded_oldest_first(void **state)
{
	(void)state;
	struct authcache *c = authcache_create(16, 1);
	char s[16];
	for (int i = 0; i < 40; i++) {
		snprintf(s, sizeof(s), "s%d", i);
		authcache_put(c, s, "p", i, 1000);
	}
	assert_int_equal(authcache_count(c), 16);
	assert_int_equal(get(c, "s23", "p", 1), -1);
	assert_int_equal(get(c, "s24", "p", 1), 24);
	assert_int_equal(get(c, "s39", "p", 1), 39);
	authcache_destroy(c);
}

static void test_grows_lazily(void **state)
{
	(void)state;
	struct authcache *c = authcache_create(1000000, 3);
	size_t initial = authcache_buckets(c);
	assert_true(initial <= 64); /* not a million buckets up front */
	char s[16];
	for (int i = 0; i < 5000; i++) {
		snprintf(s, sizeof(s), "s%d", i);
		authcache_put(c, s, "p", i, 1000);
	}
	assert_true(authcache_buckets(c) >= 4096);
	assert_true(authcache_buckets(c) <= 8192);
	for (int i = 0; i < 5000; i += 499) {
		snprintf(s, sizeof(s), "s%d", i);
		assert_int_equal(get(c, s, "p", 1), i);
	}
	assert_int_equal(authcache_drop_project(c, "p"), 5000);
	authcache_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_expire),
		cmocka_unit_test(test_drop_by_session_and_project),
		cmocka_unit_test(test_bounded_oldest_first),
		cmocka_unit_test(test_grows_lazily),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
