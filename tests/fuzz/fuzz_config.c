/* fuzz_config.c - the configuration parser, from memory
 * (config_load_string, style.md practice 20).
 *
 * Input: the text of a gateway.conf (cut at the first NUL, as a C string
 * is). Invariants: a rejected file says where and why; an accepted one is a
 * snapshot whose routes are keyed by normalised hosts with at least one
 * upstream address each, whose limits are inside the key table's ranges
 * (checked on the keys the request path uses), and which config_finalize
 * either completes or refuses with a reason. No leak either way (LSan).
 */
#include <stdbool.h>

#include "config.h"
#include "fuzz.h"
#include "hostname.h"

/* In an accepted file, every line inih takes for a section header names a
 * known section and carries nothing else but a comment. */
static void check_sections(const char *text)
{
	static const char *const known[] = {
		"gateway",    "client", "upstream", "redis", "auth",
		"activator",  "fleet",  "admin",    "tls",   "kubernetes",
		"log",	      "routes", "exec"};
	for (const char *line = text; line;) {
		const char *nl = strchr(line, '\n');
		const char *s = line;
		if (line == text && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
			s += 3;
		const char *close = s[0] == '[' ? strchr(s, ']') : NULL;
		if (close && (!nl || close < nl)) {
			size_t n = (size_t)(close - s - 1);
			bool ok = false;
			for (size_t i = 0; i < sizeof(known) / sizeof(known[0]);
			     i++)
				ok |= strlen(known[i]) == n &&
				      memcmp(known[i], s + 1, n) == 0;
			FUZZ_CHECK(ok);
			const char *r = close + 1;
			while (*r == ' ' || *r == '\t' || *r == '\r')
				r++;
			FUZZ_CHECK(*r == '\0' || *r == '\n' || *r == ';' ||
				   *r == '#');
		}
		line = nl ? nl + 1 : NULL;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	char err[512];
	err[0] = '\0';
	struct gw_config *cfg =
		config_load_string(text, "fuzz.conf", err, sizeof(err));
	if (!cfg) {
		free(text);
		FUZZ_CHECK(strncmp(err, "fuzz.conf:", 10) == 0);
		return 0;
	}
	check_sections(text);
	free(text);
	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct config_route *r = &cfg->routes[i];
		char norm[HOSTNAME_MAX];
		const char *e = NULL;
		FUZZ_CHECK(r->host != NULL && r->naddrs >= 1 && r->addrs);
		FUZZ_CHECK(hostname_normalize(
				   gw_str_make(r->host, strlen(r->host)), norm,
				   &e) == 0);
		FUZZ_CHECK(strcmp(norm, r->host) == 0);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(cfg->routes[j].host, r->host) != 0);
	}
	FUZZ_CHECK(cfg->header_max_bytes >= 1024 &&
		   cfg->header_max_bytes <= 1048576);
	FUZZ_CHECK(cfg->header_max_count >= 1 && cfg->header_max_count <= 1000);
	FUZZ_CHECK(cfg->response_header_max_bytes >= 1024 &&
		   cfg->response_header_max_bytes <= 1048576);
	FUZZ_CHECK(cfg->auth_cookie != NULL);

	err[0] = '\0';
	if (config_finalize(cfg, err, sizeof(err)) == 0)
		FUZZ_CHECK(cfg->nlisten >= 1);
	else
		FUZZ_CHECK(err[0] != '\0');
	config_destroy(cfg);
	return 0;
}
