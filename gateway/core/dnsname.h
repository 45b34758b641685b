/* dnsname.h - the Kubernetes object-name rules (DNS-1123), in one place.
 *
 * Namespaces and Services are DNS-1123 labels; Deployments are DNS-1123
 * subdomains. Names from Redis and from the command line are checked with
 * these before they are stored, and again before they go into an API URL:
 * a name that passes contains no '/', '%', or ".." segment.
 */
#ifndef GW_CORE_DNSNAME_H
#define GW_CORE_DNSNAME_H

#include <stdbool.h>
#include <stddef.h>

#define GW_DNS_LABEL_MAX 63
#define GW_DNS_SUBDOMAIN_MAX 253

/* 1-63 of [a-z0-9-], alphanumeric at both ends. s need not be
 * NUL-terminated (a NUL inside fails). */
bool gw_dns_label(const char *s, size_t len);

/* Labels joined by single dots, at most 253 in all. */
bool gw_dns_subdomain(const char *s, size_t len);

#endif
