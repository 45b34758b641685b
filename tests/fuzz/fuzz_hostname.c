/* fuzz_hostname.c - Host/authority normalisation and request-target
 * splitting (hostname.h).
 *
 * Input: the bytes of a request-target (first line) and of a Host value
 * (the rest), as the proxy gets them from a parsed head.
 *
 * Invariants: a normalised host is a routing key (lowercase reg-name bytes
 * or a bracketed IPv6 literal, no port, no trailing dot, NUL-terminated
 * within HOSTNAME_MAX) and normalising it again gives itself; a split
 * absolute-form target gives back an authority and an origin-form path that
 * are the target's own bytes, in order.
 */
#include <stdbool.h>

#include "fuzz.h"
#include "hostname.h"

static bool reg_name_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_';
}

/* Normalise a; when it is accepted, check what a routing key must be. */
static void check_normalize(struct gw_str a)
{
	char out[HOSTNAME_MAX + 1];
	out[HOSTNAME_MAX] = 'X'; /* canary: nothing is written past the end */
	const char *err = NULL;
	int rc = hostname_normalize(a, out, &err);
	FUZZ_CHECK(out[HOSTNAME_MAX] == 'X');
	if (rc != 0) {
		/* out is unspecified on failure (the proxy clears it) */
		FUZZ_CHECK(rc == -1 && err != NULL);
		return;
	}
	size_t n = strnlen(out, HOSTNAME_MAX);
	FUZZ_CHECK(n > 0 && n < HOSTNAME_MAX);
	if (out[0] == '[') {
		FUZZ_CHECK(out[n - 1] == ']');
		for (size_t i = 1; i + 1 < n; i++)
			FUZZ_CHECK(strchr("0123456789abcdef:.", out[i]) &&
				   out[i]);
	} else {
		FUZZ_CHECK(n <= 253 && out[n - 1] != '.' && out[0] != '.');
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(reg_name_byte((unsigned char)out[i]));
		FUZZ_CHECK(!strstr(out, ".."));
	}
	/* The key is a prefix of the authority, case aside: no byte of the
	 * port or of anything after it leaks into it. */
	FUZZ_CHECK(a.len >= n);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(out[i] == a.p[i] ||
			   (a.p[i] >= 'A' && a.p[i] <= 'Z' &&
			    out[i] == a.p[i] + 32));
	/* Idempotent: a routing key normalises to itself. */
	char again[HOSTNAME_MAX];
	FUZZ_CHECK(hostname_normalize(gw_str_make(out, n), again, &err) == 0);
	FUZZ_CHECK(strcmp(again, out) == 0);
}

static void check_split(struct gw_str t)
{
	struct gw_str authority = GW_STR_LIT("untouched"), path = authority;
	int slash = 7;
	const char *err = NULL;
	int form = hostname_split_target(t, &authority, &path, &slash, &err);
	if (form < 0) {
		FUZZ_CHECK(form == -1 && err != NULL);
		return;
	}
	if (form == 0) {
		/* origin-form or "*": outputs left alone */
		FUZZ_CHECK(t.len > 0 &&
			   (t.p[0] == '/' || (t.len == 1 && t.p[0] == '*')));
		FUZZ_CHECK(slash == 7 && authority.p == path.p);
		return;
	}
	FUZZ_CHECK(form == 1);
	FUZZ_CHECK(authority.len > 0 && fuzz_inside(authority, t.p, t.len));
	FUZZ_CHECK(!memchr(authority.p, '/', authority.len) &&
		   !memchr(authority.p, '?', authority.len) &&
		   !memchr(authority.p, '#', authority.len));
	FUZZ_CHECK(path.len > 0);
	if (path.p[0] == '/' && path.len == 1 &&
	    authority.p + authority.len == t.p + t.len) {
		FUZZ_CHECK(slash == 0); /* "http://host" -> "/" */
	} else {
		/* authority then path are the tail of the target */
		FUZZ_CHECK(fuzz_inside(path, t.p, t.len));
		FUZZ_CHECK(authority.p + authority.len == path.p);
		FUZZ_CHECK(path.p + path.len == t.p + t.len);
		FUZZ_CHECK(slash == (path.p[0] == '?'));
		FUZZ_CHECK(path.p[0] == '/' || path.p[0] == '?');
	}
	check_normalize(authority);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *nl = memchr(p, '\n', size);
	struct gw_str target = gw_str_make(p, nl ? (size_t)(nl - p) : size);
	struct gw_str host =
		nl ? gw_str_make(nl + 1, size - target.len - 1) : target;
	check_split(target);
	check_normalize(host);
	return 0;
}
