/* routespec.c - checks for route hash fields. */
#include "routespec.h"

static bool is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

bool routespec_project(const char *s, size_t len)
{
	if (len == 0 || len > ROUTESPEC_PROJECT_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

bool routespec_uint(const char *s, size_t len, unsigned long min,
		    unsigned long max, unsigned long *out)
{
	if (len == 0 || len > 10)
		return false;
	unsigned long long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < min || v > max)
		return false;
	*out = (unsigned long)v;
	return true;
}
