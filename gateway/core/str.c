/* str.c - slice helpers. */
#include <string.h>

#include "core/str.h"
#include "core/compat.h"

static inline unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool gw_str_eq(struct gw_str a, struct gw_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool gw_str_ieq(struct gw_str a, struct gw_str b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++)
		if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
			return false;
	return true;
}

bool gw_str_ieq_cstr(struct gw_str a, const char *lit)
{
	return gw_str_ieq(a, gw_str_make(lit, strlen(lit)));
}

static inline bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

struct gw_str gw_str_trim(struct gw_str s)
{
	while (s.len && is_ows(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len && is_ows(s.p[s.len - 1]))
		s.len--;
	return s;
}

bool gw_str_next_elem(struct gw_str *list, struct gw_str *elem)
{
	while (list->len) {
		const char *comma = memchr(list->p, ',', list->len);
		size_t n = comma ? (size_t)(comma - list->p) : list->len;
		struct gw_str e = gw_str_trim(gw_str_make(list->p, n));
		list->p += comma ? n + 1 : n;
		list->len -= comma ? n + 1 : n;
		if (e.len) {
			*elem = e;
			return true;
		}
	}
	return false;
}

bool gw_str_list_has(struct gw_str list, const char *token)
{
	struct gw_str e;
	while (gw_str_next_elem(&list, &e))
		if (gw_str_ieq_cstr(e, token))
			return true;
	return false;
}

bool gw_str_to_u64(struct gw_str s, uint64_t *out)
{
	if (s.len == 0)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c < '0' || c > '9')
			return false;
		if (v > (UINT64_MAX - (c - '0')) / 10)
			return false;
		v = v * 10 + (c - '0');
	}
	*out = v;
	return true;
}

bool gw_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}
