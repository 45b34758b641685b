/* dnsname.c - DNS-1123 labels and subdomains. */
#include "dnsname.h"

static bool lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

bool gw_dns_label(const char *s, size_t len)
{
	if (!s || len == 0 || len > GW_DNS_LABEL_MAX)
		return false;
	if (!lower_alnum(s[0]) || !lower_alnum(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

bool gw_dns_subdomain(const char *s, size_t len)
{
	if (!s || len == 0 || len > GW_DNS_SUBDOMAIN_MAX)
		return false;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.')
			continue;
		if (!gw_dns_label(s + start, i - start))
			return false;
		start = i + 1;
	}
	return true;
}
