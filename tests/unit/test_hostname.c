/* test_hostname.c - routing keys from Host values and request targets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "hostname.h"

static const char *norm(const char *in)
{
	static char out[HOSTNAME_MAX];
	const char *err = NULL;
	if (hostname_normalize(gw_str_make(in, strlen(in)), out, &err) != 0) {
		assert_non_null(err);
		return NULL;
	}
	return out;
}

static void test_normal_forms(void **state)
{
	assert_string_equal(norm("App-X.Example.ORG"), "app-x.example.org");
	assert_string_equal(norm("app.example.org."), "app.example.org");
	assert_string_equal(norm("app.example.org:8080"), "app.example.org");
	assert_string_equal(norm("APP.example.org.:443"), "app.example.org");
	assert_string_equal(norm("127.0.0.1:80"), "127.0.0.1");
	assert_string_equal(norm("[::1]:8080"), "[::1]");
	assert_string_equal(norm("[2001:DB8::1]"), "[2001:db8::1]");
	assert_string_equal(norm("localhost"), "localhost");
}

static void test_rejected(void **state)
{
	static const char *const bad[] = {
		"", ":80", "a..b", ".a", "a b", "a@b", "user:pw@host",
		"host:", "host:99999", "host:8o", "host:-1", "a/b", "a\\b",
		"a%2eb", "[::1", "::1", "[zz::1]", "a.b:80:80", "..",
		"x..", "x..:80", "a.b..",
		"host\r", "a,b",
		/* found by tests/fuzz/fuzz_hostname: one dot stripped, the
		 * key kept the other */
		"app.test..", "app.test..:8080",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (norm(bad[i]))
			fail_msg("accepted '%s' as '%s'", bad[i], norm(bad[i]));
}

static void test_too_long(void **state)
{
	char big[400];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (size_t i = 50; i < sizeof(big) - 1; i += 51)
		big[i] = '.';
	assert_null(norm(big));
}

/* Found by tests/fuzz/fuzz_hostname: inet_pton stopped at a NUL inside
 * the brackets, so "[::1\0<anything>]" was accepted and the bytes after
 * the NUL were copied into the routing key unchecked. */
static void test_nul_in_ipv6_literal(void **state)
{
	static const char lit[] = "[::fff:01\0\0zz 92.0.2.1]";
	char out[HOSTNAME_MAX];
	const char *err = NULL;
	assert_int_equal(hostname_normalize(gw_str_make(lit, sizeof(lit) - 1),
					    out, &err),
			 -1);
	assert_string_equal(err, "invalid IPv6 literal");
}

static int split(const char *t, struct gw_str *auth, struct gw_str *path,
		 int *slash)
{
	const char *err = NULL;
	*auth = GW_STR_NULL;
	*path = GW_STR_NULL;
	*slash = 0;
	return hostname_split_target(gw_str_make(t, strlen(t)), auth, path,
				     slash, &err);
}

static void test_targets(void **state)
{
	struct gw_str a, p;
	int slash;
	assert_int_equal(split("/x?y", &a, &p, &slash), 0);
	assert_int_equal(split("*", &a, &p, &slash), 0);
	assert_int_equal(split("http://Host.example:81/p/q?r=1", &a, &p, &slash),
			 1);
	assert_int_equal(a.len, strlen("Host.example:81"));
	assert_memory_equal(a.p, "Host.example:81", a.len);
	assert_int_equal(p.len, strlen("/p/q?r=1"));
	assert_memory_equal(p.p, "/p/q?r=1", p.len);
	assert_int_equal(split("HTTPS://h", &a, &p, &slash), 1);
	assert_int_equal(p.len, 1);
	assert_memory_equal(p.p, "/", 1);
	assert_int_equal(split("http://h?q", &a, &p, &slash), 1);
	assert_int_equal(slash, 1);
	assert_memory_equal(p.p, "?q", 2);
}

static void test_bad_targets(void **state)
{
	struct gw_str a, p;
	int slash;
	assert_int_equal(split("ftp://h/", &a, &p, &slash), -1);
	assert_int_equal(split("h:443", &a, &p, &slash), -1); /* authority-form */
	assert_int_equal(split("x", &a, &p, &slash), -1);
}

static void test_port(void **state)
{
	struct gw_str p = hostname_port(GW_STR_LIT("a.b:8080"));
	assert_int_equal(p.len, 4);
	assert_memory_equal(p.p, "8080", 4);
	p = hostname_port(GW_STR_LIT("[::1]:443"));
	assert_int_equal(p.len, 3);
	assert_memory_equal(p.p, "443", 3);
	assert_int_equal(hostname_port(GW_STR_LIT("[::1]")).len, 0);
	assert_int_equal(hostname_port(GW_STR_LIT("a.b")).len, 0);
	assert_int_equal(hostname_port(GW_STR_LIT("a.b.")).len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normal_forms),
		cmocka_unit_test(test_rejected),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_nul_in_ipv6_literal),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_bad_targets),
		cmocka_unit_test(test_port),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
