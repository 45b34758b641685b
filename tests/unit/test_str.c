/* test_str.c - byte slices: comparisons, trimming, lists, numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/str.h"

#define S(lit) gw_str_make(lit, sizeof(lit) - 1)

static void test_compare(void **state)
{
	assert_true(gw_str_eq(S("abc"), S("abc")));
	assert_false(gw_str_eq(S("abc"), S("abC")));
	assert_false(gw_str_eq(S("abc"), S("ab")));
	assert_true(gw_str_ieq(S("Content-Length"), S("content-LENGTH")));
	assert_false(gw_str_ieq(S("a"), S("b")));
	assert_true(gw_str_ieq_cstr(S("HOST"), "host"));
	assert_false(gw_str_ieq_cstr(S("hostx"), "host"));
	assert_true(gw_str_eq(GW_STR_NULL, S("")));
}

static void test_trim(void **state)
{
	struct gw_str t = gw_str_trim(S(" \t a b \t "));
	assert_int_equal(t.len, 3);
	assert_memory_equal(t.p, "a b", 3);
	assert_int_equal(gw_str_trim(S("   ")).len, 0);
}

static void test_lists(void **state)
{
	struct gw_str l = S(" a ,, b\t,c ,"), e;
	const char *want[] = {"a", "b", "c"};
	size_t n = 0;
	while (gw_str_next_elem(&l, &e)) {
		assert_true(n < 3);
		assert_true(gw_str_eq(e, gw_str_make(want[n], 1)));
		n++;
	}
	assert_int_equal(n, 3);
	assert_true(gw_str_list_has(S("keep-alive, Upgrade"), "upgrade"));
	assert_false(gw_str_list_has(S("keep-alive, upgraded"), "upgrade"));
	assert_false(gw_str_list_has(S(""), "close"));
}

static void test_numbers(void **state)
{
	uint64_t v;
	assert_true(gw_str_to_u64(S("0"), &v));
	assert_int_equal(v, 0);
	assert_true(gw_str_to_u64(S("18446744073709551615"), &v));
	assert_true(v == UINT64_MAX);
	assert_false(gw_str_to_u64(S("18446744073709551616"), &v));
	assert_false(gw_str_to_u64(S(""), &v));
	assert_false(gw_str_to_u64(S("+1"), &v));
	assert_false(gw_str_to_u64(S("-1"), &v));
	assert_false(gw_str_to_u64(S("1 "), &v));
	assert_false(gw_str_to_u64(S("0x1"), &v));
}

static void test_tchar(void **state)
{
	const char ok[] = "!#$%&'*+-.^_`|~09azAZ";
	for (size_t i = 0; i < sizeof(ok) - 1; i++)
		assert_true(gw_is_tchar((unsigned char)ok[i]));
	const char bad[] = " \t\"(),/:;<=>?@[\\]{}\x7f\x80";
	for (size_t i = 0; i < sizeof(bad) - 1; i++)
		assert_false(gw_is_tchar((unsigned char)bad[i]));
	assert_false(gw_is_tchar(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compare),
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_tchar),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
