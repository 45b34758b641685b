/* hostname.c - authority normalisation for routing. */
#include <arpa/inet.h>
#include <string.h>

#include "hostname.h"
#include "core/compat.h"

static bool host_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_';
}

int hostname_normalize(struct gw_str a, char out[HOSTNAME_MAX],
		       const char **err)
{
	out[0] = '\0';
	if (a.len == 0) {
		*err = "empty host";
		return -1;
	}
	if (memchr(a.p, '@', a.len)) {
		*err = "userinfo in the authority";
		return -1;
	}
	struct gw_str host = a, port = GW_STR_NULL;
	if (a.p[0] == '[') {
		const char *close = memchr(a.p, ']', a.len);
		if (!close) {
			*err = "unterminated IPv6 literal";
			return -1;
		}
		host = gw_str_make(a.p, (size_t)(close - a.p) + 1);
		size_t rest = a.len - host.len;
		if (rest) {
			if (close[1] != ':') {
				*err = "garbage after IPv6 literal";
				return -1;
			}
			port = gw_str_make(close + 2, rest - 1);
		} else {
			port.p = NULL;
		}
		char tmp[64];
		struct in6_addr in6;
		/* inet_pton stops at a NUL: bytes after one would pass
		 * unchecked into the routing key. */
		if (host.len - 2 >= sizeof(tmp) ||
		    memchr(host.p + 1, '\0', host.len - 2)) {
			*err = "invalid IPv6 literal";
			return -1;
		}
		memcpy(tmp, host.p + 1, host.len - 2);
		tmp[host.len - 2] = '\0';
		if (inet_pton(AF_INET6, tmp, &in6) != 1) {
			*err = "invalid IPv6 literal";
			return -1;
		}
	} else {
		const char *colon = memchr(a.p, ':', a.len);
		if (colon) {
			host = gw_str_make(a.p, (size_t)(colon - a.p));
			port = gw_str_make(colon + 1, a.len - host.len - 1);
		}
	}
	if (port.p) {
		uint64_t v;
		if (port.len == 0 || port.len > 5 || !gw_str_to_u64(port, &v) ||
		    v == 0 || v > 65535) {
			*err = "invalid port";
			return -1;
		}
	}
	if (host.len && host.p[0] != '[' && host.p[host.len - 1] == '.')
		host.len--; /* one trailing dot: absolute DNS name */
	if (host.len == 0 || host.len > 253 + (host.p[0] == '[' ? 2 : 0)) {
		*err = host.len ? "host name too long" : "empty host";
		return -1;
	}
	size_t label = 0;
	for (size_t i = 0; i < host.len; i++) {
		unsigned char c = (unsigned char)host.p[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		if (host.p[0] != '[') {
			if (!host_byte(c)) {
				*err = "invalid character in host";
				return -1;
			}
			if (c == '.') {
				if (label == 0) {
					*err = "empty label in host";
					return -1;
				}
				label = 0;
			} else if (++label > 63) {
				*err = "host label too long";
				return -1;
			}
		}
		out[i] = (char)c;
	}
	if (host.p[0] != '[' && label == 0) {
		/* "a.b.." : one dot was stripped, the other ends an empty
		 * label; the key would keep a trailing dot and match nothing */
		out[0] = '\0';
		*err = "empty label in host";
		return -1;
	}
	out[host.len] = '\0';
	return 0;
}

struct gw_str hostname_port(struct gw_str a)
{
	const char *from = a.p;
	size_t len = a.len;
	if (len && a.p[0] == '[') {
		const char *close = memchr(a.p, ']', a.len);
		if (!close)
			return GW_STR_NULL;
		from = close + 1;
		len = a.len - (size_t)(from - a.p);
	}
	const char *colon = len ? memchr(from, ':', len) : NULL;
	if (!colon)
		return GW_STR_NULL;
	return gw_str_make(colon + 1, len - (size_t)(colon + 1 - from));
}

int hostname_split_target(struct gw_str t, struct gw_str *authority,
			  struct gw_str *path, int *path_needs_slash,
			  const char **err)
{
	if (t.len == 0) {
		*err = "empty request target";
		return -1;
	}
	if (t.p[0] == '/' || (t.len == 1 && t.p[0] == '*'))
		return 0;
	size_t skip;
	if (t.len >= 7 && gw_str_ieq_cstr(gw_str_make(t.p, 7), "http://"))
		skip = 7;
	else if (t.len >= 8 && gw_str_ieq_cstr(gw_str_make(t.p, 8), "https://"))
		skip = 8;
	else {
		*err = "unsupported request target form";
		return -1;
	}
	size_t i = skip;
	while (i < t.len && t.p[i] != '/' && t.p[i] != '?' && t.p[i] != '#')
		i++;
	if (i == skip) {
		*err = "absolute target without a host";
		return -1;
	}
	if (i < t.len && t.p[i] == '#') {
		*err = "fragment in the request target";
		return -1;
	}
	*authority = gw_str_make(t.p + skip, i - skip);
	*path_needs_slash = 0;
	if (i == t.len) {
		*path = GW_STR_LIT("/");
	} else {
		*path = gw_str_make(t.p + i, t.len - i);
		*path_needs_slash = t.p[i] == '?';
	}
	return 1;
}
