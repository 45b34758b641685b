/* addr.h - numeric socket addresses: parse, format, compare, CIDR match. */
#ifndef GW_CORE_ADDR_H
#define GW_CORE_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct gw_addr {
	struct sockaddr_storage ss; /* AF_INET or AF_INET6 */
	socklen_t len;              /* bytes of ss in use */
	char text[64];              /* "1.2.3.4:80" or "[::1]:80" */
};

/* Parse "IPv4:port", "[IPv6]:port" or "localhost:port" (-> 127.0.0.1).
 * Names other than localhost are refused: resolution must never block the
 * loop. Returns 0, or -1 with *err set to a static reason. */
int gw_addr_parse(const char *s, struct gw_addr *out, const char **err);
/* Fill out from a sockaddr (accepted peer), formatting text. */
void gw_addr_from_sockaddr(struct gw_addr *out, const struct sockaddr *sa,
			   socklen_t len);
/* Write just the IP ("1.2.3.4" / "::1", no brackets or port) into buf. */
const char *gw_addr_ip(const struct gw_addr *a, char *buf, size_t bufsz);
bool gw_addr_eq(const struct gw_addr *a, const struct gw_addr *b);

/* An outbound address that may be a DNS name (configured Redis in
 * Kubernetes: "redis.gateway.svc:6379"). Resolving it is the caller's job,
 * and must not block (gateway/core/resolve.h). */
struct gw_hostport {
	char host[254];      /* lowercase name (trailing dot kept), or the IP
				literal without brackets */
	uint16_t port;       /* 1-65535 */
	bool numeric;        /* host is an IP literal: addr holds it */
	struct gw_addr addr; /* numeric only */
	char text[264];      /* "host:port" ("[v6]:port"), for logs */
};

/* Parse "NAME:PORT", "IPv4:PORT" or "[IPv6]:PORT". A name is labels of
 * [a-z0-9-] (case folded), 1-63 each, at most 253 in all, optionally
 * ending in a dot. "localhost" is a name here (resolved from /etc/hosts).
 * Returns 0, or -1 with *err set to a static reason. */
int gw_hostport_parse(const char *s, struct gw_hostport *out,
		      const char **err);

struct gw_cidr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t net[16];   /* network bytes (4 used for IPv4) */
	unsigned prefix;   /* prefix length in bits */
};

/* Parse "10.0.0.0/8", "::1/128" or a bare address (full-length prefix).
 * Returns 0 or -1 with *err. */
int gw_cidr_parse(const char *s, struct gw_cidr *out, const char **err);
/* True when the address (IPv4-mapped IPv6 counts as IPv4) is inside. */
bool gw_cidr_match(const struct gw_cidr *c, const struct gw_addr *a);

#endif
