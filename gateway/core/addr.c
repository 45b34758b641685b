/* addr.c - numeric socket addresses and CIDR matching. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "core/dnsname.h"
#include "core/compat.h"

static void format_text(struct gw_addr *a)
{
	char ip[INET6_ADDRSTRLEN];
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)&a->ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(a->text, sizeof(a->text), "[%s]:%u", ip,
			 ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)&a->ss;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(a->text, sizeof(a->text), "%s:%u", ip,
			 ntohs(s4->sin_port));
	}
}

int gw_addr_parse(const char *s, struct gw_addr *out, const char **err)
{
	memset(out, 0, sizeof(*out));
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':') {
			*err = "expected [IPv6]:PORT";
			return -1;
		}
		colon = close + 1;
		size_t n = (size_t)(close - s - 1);
		if (n >= sizeof(host)) {
			*err = "invalid IPv6 address";
			return -1;
		}
		memcpy(host, s + 1, n);
		host[n] = '\0';
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			*err = "expected ADDRESS:PORT";
			return -1;
		}
		size_t n = (size_t)(colon - s);
		if (n >= sizeof(host) || memchr(s, ':', n)) {
			*err = "IPv6 addresses need brackets: [ADDR]:PORT";
			return -1;
		}
		memcpy(host, s, n);
		host[n] = '\0';
	}
	char *end = NULL;
	long port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 1 || port > 65535 || colon[1] == '-' ||
	    colon[1] == '+') {
		*err = "port must be 1-65535";
		return -1;
	}
	if (strcmp(host, "localhost") == 0)
		memcpy(host, "127.0.0.1", sizeof("127.0.0.1"));

	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
	if (s[0] != '[' && inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		out->len = sizeof(*s4);
	} else if (s[0] == '[' && inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*s6);
	} else {
		*err = "not a numeric IP address (host names are not resolved)";
		return -1;
	}
	format_text(out);
	return 0;
}

void gw_addr_from_sockaddr(struct gw_addr *out, const struct sockaddr *sa,
			   socklen_t len)
{
	memset(out, 0, sizeof(*out));
	if (len > sizeof(out->ss))
		len = sizeof(out->ss);
	memcpy(&out->ss, sa, len);
	out->len = len;
	format_text(out);
}

const char *gw_addr_ip(const struct gw_addr *a, char *buf, size_t bufsz)
{
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)&a->ss;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf,
				  (socklen_t)bufsz);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)bufsz);
	} else {
		const struct sockaddr_in *s4 = (const void *)&a->ss;
		inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)bufsz);
	}
	return buf;
}

bool gw_addr_eq(const struct gw_addr *a, const struct gw_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return false;
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)&a->ss,
					  *y = (const void *)&b->ss;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	const struct sockaddr_in *x = (const void *)&a->ss,
				 *y = (const void *)&b->ss;
	return x->sin_port == y->sin_port &&
	       x->sin_addr.s_addr == y->sin_addr.s_addr;
}

int gw_hostport_parse(const char *s, struct gw_hostport *out,
		      const char **err)
{
	memset(out, 0, sizeof(*out));
	/* gw_addr_parse takes "localhost" as 127.0.0.1; here it is a name
	 * like any other, answered by /etc/hosts. */
	bool literal = s[0] == '[' || (strncmp(s, "localhost:", 10) != 0 &&
				       gw_addr_parse(s, &out->addr, err) == 0);
	if (literal) {
		if (s[0] == '[' && gw_addr_parse(s, &out->addr, err) != 0)
			return -1;
		out->numeric = true;
		gw_addr_ip(&out->addr, out->host, sizeof(out->host));
		const struct sockaddr_in *s4 = (const void *)&out->addr.ss;
		const struct sockaddr_in6 *s6 = (const void *)&out->addr.ss;
		out->port = ntohs(out->addr.ss.ss_family == AF_INET6
					  ? s6->sin6_port
					  : s4->sin_port);
		snprintf(out->text, sizeof(out->text), "%s", out->addr.text);
		return 0;
	}
	const char *colon = strrchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : 0;
	if (!colon || n == 0) {
		*err = "expected NAME:PORT or ADDRESS:PORT";
		return -1;
	}
	char *end = NULL;
	long port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 1 || port > 65535 || colon[1] == '-' ||
	    colon[1] == '+') {
		*err = "port must be 1-65535";
		return -1;
	}
	if (n >= sizeof(out->host)) {
		*err = "host name longer than 253 characters";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		out->host[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
	}
	out->host[n] = '\0';
	size_t check = out->host[n - 1] == '.' ? n - 1 : n; /* FQDN */
	if (!gw_dns_subdomain(out->host, check)) {
		*err = "not an IP address or a DNS name (labels of a-z, 0-9 "
		       "and '-')";
		return -1;
	}
	out->port = (uint16_t)port;
	snprintf(out->text, sizeof(out->text), "%s:%u", out->host,
		 (unsigned)out->port);
	return 0;
}

int gw_cidr_parse(const char *s, struct gw_cidr *out, const char **err)
{
	memset(out, 0, sizeof(*out));
	char ip[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof(ip)) {
		*err = "expected ADDRESS[/PREFIX]";
		return -1;
	}
	memcpy(ip, s, n);
	ip[n] = '\0';
	unsigned max;
	if (inet_pton(AF_INET, ip, out->net) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, ip, out->net) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		*err = "not a numeric IP address";
		return -1;
	}
	out->prefix = max;
	if (slash) {
		char *end = NULL;
		long p = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || p < 0 || (unsigned long)p > max) {
			*err = "prefix length out of range";
			return -1;
		}
		out->prefix = (unsigned)p;
	}
	return 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	if (memcmp(a, b, full) != 0)
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

bool gw_cidr_match(const struct gw_cidr *c, const struct gw_addr *a)
{
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)&a->ss;
		return c->family == AF_INET &&
		       prefix_match(c->net, (const uint8_t *)&s4->sin_addr,
				    c->prefix);
	}
	const struct sockaddr_in6 *s6 = (const void *)&a->ss;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return c->family == AF_INET &&
		       prefix_match(c->net, &s6->sin6_addr.s6_addr[12],
				    c->prefix);
	return c->family == AF_INET6 &&
	       prefix_match(c->net, s6->sin6_addr.s6_addr, c->prefix);
}
