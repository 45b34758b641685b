/* test_dnsname.c - Kubernetes object names (they go into API URLs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/dnsname.h"

static bool kube_valid_label(const char *s)
{
	return gw_dns_label(s, s ? strlen(s) : 0);
}

static bool kube_valid_subdomain(const char *s)
{
	return gw_dns_subdomain(s, s ? strlen(s) : 0);
}

static void test_labels(void **state)
{
	assert_true(kube_valid_label("apps"));
	assert_true(kube_valid_label("a"));
	assert_true(kube_valid_label("web-2"));
	assert_true(kube_valid_label("0abc"));
	assert_false(kube_valid_label(""));
	assert_false(kube_valid_label(NULL));
	assert_false(kube_valid_label("-web"));
	assert_false(kube_valid_label("web-"));
	assert_false(kube_valid_label("Web"));
	assert_false(kube_valid_label("web.app"));
	assert_false(kube_valid_label("web/../x"));
	assert_false(kube_valid_label("web%2F"));
	assert_false(kube_valid_label("web app"));
	char l63[64], l64[65];
	memset(l63, 'a', 63);
	l63[63] = '\0';
	memset(l64, 'a', 64);
	l64[64] = '\0';
	assert_true(kube_valid_label(l63));
	assert_false(kube_valid_label(l64));
	static const char *const bad[] = {"a_b", "a\n", "a?x", "a#x", "..",
					  "../.."};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_false(kube_valid_label(bad[i]));
	/* an embedded NUL is not a shorter valid label */
	assert_false(gw_dns_label("ab\0c", 4));
	assert_false(gw_dns_subdomain("ab.\0c", 5));
}

static void test_subdomains(void **state)
{
	assert_true(kube_valid_subdomain("web"));
	assert_true(kube_valid_subdomain("web.v2"));
	assert_true(kube_valid_subdomain("a.b-c.d"));
	assert_false(kube_valid_subdomain("web..v2"));
	assert_false(kube_valid_subdomain(".web"));
	assert_false(kube_valid_subdomain("web."));
	assert_false(kube_valid_subdomain("web/../x"));
	assert_false(kube_valid_subdomain("web.-x"));
	char s254[255];
	memset(s254, 'a', 254);
	for (int i = 60; i < 254; i += 61)
		s254[i] = '.';
	s254[254] = '\0';
	assert_false(kube_valid_subdomain(s254));
	s254[253] = '\0';
	assert_true(kube_valid_subdomain(s254));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_subdomains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
