/* test_routespec.c - what route hash fields may hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "routespec.h"

static bool project(const char *s)
{
	return routespec_project(s, strlen(s));
}

static bool num(const char *s, unsigned long min, unsigned long max,
		unsigned long *out)
{
	return routespec_uint(s, strlen(s), min, max, out);
}

static void test_projects(void **state)
{
	(void)state;
	assert_true(project("app-k3m9x2qa"));
	assert_true(project("my_app"));
	assert_true(project("-"));
	char long63[64], long64[65];
	memset(long63, 'a', 63);
	long63[63] = '\0';
	memset(long64, 'a', 64);
	long64[64] = '\0';
	assert_true(project(long63));
	assert_false(project(long64));
	assert_false(project(""));
	assert_false(project("App"));
	assert_false(project("a/b"));
	assert_false(project("a.b"));
	assert_false(project("a b"));
}

static void test_numbers(void **state)
{
	(void)state;
	unsigned long v = 7;
	assert_true(num("1", 1, 65535, &v));
	assert_int_equal(v, 1);
	assert_true(num("65535", 1, 65535, &v));
	assert_int_equal(v, 65535);
	assert_true(num("0080", 1, 65535, &v));
	assert_int_equal(v, 80);
	v = 7;
	static const char *const bad[] = {"0", "65536", "", "-1", "+1", " 1",
					  "1 ", "80x", "0x50", "1e3",
					  "99999999999", "4294967296"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_false(num(bad[i], 1, 65535, &v));
	assert_int_equal(v, 7); /* untouched on failure */
	assert_true(num("2592000", 0, ROUTESPEC_IDLE_MAX, &v));
	assert_false(num("2592001", 0, ROUTESPEC_IDLE_MAX, &v));
	assert_true(num("4294967295", 0, 4294967295ul, &v));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_projects),
		cmocka_unit_test(test_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
